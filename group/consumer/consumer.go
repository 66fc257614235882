// Package consumer is the state machine of one consumer group speaking
// KIP-848's protocol (ConsumerGroupHeartbeat): the group epoch, each
// member's epoch and subscription (topic names or a regex), a target
// assignment computed on the server by an assignor of package assign, and
// each member's reconciliation towards it, incremental and with no global
// barrier: a partition is given to its new owner only once the old owner
// has acknowledged its revocation in a heartbeat.
//
// It does no I/O and reads no clock: every method takes the time.
//
// Invariants, after every method returns:
//   - a partition is held (assigned, or pending revocation) by at most one
//     member, and a member is told of a partition only once no other member
//     holds it;
//   - the group epoch never decreases; a member's epoch only moves up to
//     the target assignment epoch, except when it leaves (-1, -2) or its
//     client rejoins with epoch 0;
//   - every change that must survive a restart is queued for TakeRecords,
//     in the order Kafka writes it to __consumer_offsets.
//
// Regular expressions (SubscribedTopicRegex) are Go's regexp (RE2 syntax)
// and must match a whole topic name. Kafka compiles them with RE2/J, the
// Java port of the same RE2 syntax, so the dialects agree on everything a
// topic name ([a-zA-Z0-9._-]) can exercise; Go rejects a few constructs
// RE2/J accepts (possessive quantifiers such as a*+), which then answer
// INVALID_REGULAR_EXPRESSION. Neither has Java's java.util.regex
// backreferences or lookaround. Kafka resolves regexes asynchronously, in
// batches; this group resolves them at once, on each heartbeat and
// SetTopics.
//
// Where this differs from Kafka's group coordinator (4.x), on purpose:
//   - a member that rejoins with epoch 0 under its member id is taken back
//     in place with its assignment (Kafka since KAFKA-19233), also when it
//     is a static member still holding its instance id (Kafka answers
//     UNRELEASED_INSTANCE_ID there, which clients retry until the session
//     expires);
//   - the target assignment is computed as soon as the group epoch bumps,
//     not at the next heartbeat, so Assigning is seen only after a restart,
//     until the topics are known;
//   - Tick removes every expired member with a single epoch bump;
//   - a member revoking partitions stays at its epoch until it has revoked
//     them (Kafka moves it to epoch+1 when it must revoke again);
//   - a full request (which gets the assignment back) may carry a regex
//     instead of topic names;
//   - a static member taking over the instance id of one that left (-2) is
//     not refused by group.consumer.max.size, since it replaces it;
//   - the partition metadata record (key 4) is not written: after a restart
//     the restored target assignment stands if it still fits the topics;
//   - KIP-1251's per-partition assignment epochs are not persisted (see
//     CheckCommitPartition).
package consumer

import (
	"crypto/rand"
	"encoding/base64"
	"time"

	"github.com/samsa-io/samsa/group/assign"
)

// Config holds a group's settings, with Kafka's config names.
type Config struct {
	// SessionTimeout is group.consumer.session.timeout.ms (45 s).
	SessionTimeout time.Duration
	// HeartbeatInterval is group.consumer.heartbeat.interval.ms (5 s).
	HeartbeatInterval time.Duration
	// MaxSize is group.consumer.max.size; 0 means no limit.
	MaxSize int
	// Assignors are the server-side assignors, by name ("uniform",
	// "range"); the first is the default (group.consumer.assignors).
	Assignors []string
	// NewMemberID makes a member id; nil means a random uuid (KIP-1082:
	// clients may also bring their own).
	NewMemberID func() string
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		SessionTimeout:    45 * time.Second,
		HeartbeatInterval: 5 * time.Second,
		Assignors:         []string{"uniform", "range"},
	}
}

// assignors are the configured assignor names that package assign knows;
// with none configured, all of them.
func (c Config) assignors() []string {
	var out []string
	for _, name := range c.Assignors {
		if _, ok := assign.Lookup(name); ok {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return assign.Names()
	}
	return out
}

// Topic is what the group knows of a topic.
type Topic struct {
	Name       string
	ID         [16]byte
	Partitions int32
}

// Client is who sent a request.
type Client struct {
	ID, Host string
}

// KV is one record for __consumer_offsets, in Kafka's schema for consumer
// groups (key versions 3 to 8); a nil Value is a tombstone.
type KV struct {
	Key, Value []byte
}

// State is a group's state as Kafka names it for consumer groups.
type State string

const (
	Empty       State = "Empty"
	Assigning   State = "Assigning"
	Reconciling State = "Reconciling"
	Stable      State = "Stable"
	Dead        State = "Dead"
)

// Group is one KIP-848 consumer group. It is not safe for concurrent use.
type Group struct {
	id  string // immutable
	cfg Config // immutable

	// epoch is the group epoch: it grows whenever the members, their
	// subscriptions or the subscribed topics' partitions change.
	epoch int32
	// assignmentEpoch is the group epoch the target assignment was
	// computed for; it lags epoch only while the topics are unknown
	// (after a restart, until the first heartbeat or SetTopics).
	assignmentEpoch int32

	members map[string]*member
	// static maps a group.instance.id to the id of the member holding it.
	static map[string]string
	// target is the target assignment, by member id.
	target map[string]assignment
	// owners is the member holding each partition, as assigned or pending
	// revocation; a partition with no entry is free.
	owners map[topicPartition]string

	// subscribed is the subscription metadata: every topic some member
	// subscribes to (by name or regex) that exists, by name.
	subscribed map[string]Topic
	// metadataKnown is false after a replay, until the topics are seen.
	metadataKnown bool
	// regexes caches compiled subscriptions, by source.
	regexes map[string]*regexpEntry

	dead    bool
	records []KV
}

// New returns an empty group.
func New(id string, cfg Config) *Group {
	return &Group{
		id:            id,
		cfg:           cfg,
		members:       make(map[string]*member),
		static:        make(map[string]string),
		target:        make(map[string]assignment),
		owners:        make(map[topicPartition]string),
		subscribed:    make(map[string]Topic),
		metadataKnown: true,
		regexes:       make(map[string]*regexpEntry),
	}
}

// State is the group's state: Empty with no members, Assigning while the
// target assignment lags the group epoch, Reconciling while some member has
// not converged to it, Stable otherwise; Dead once deleted.
func (g *Group) State() State {
	switch {
	case g.dead:
		return Dead
	case len(g.members) == 0:
		return Empty
	case g.epoch > g.assignmentEpoch:
		return Assigning
	}
	for _, m := range g.members {
		if !m.reconciledTo(g.assignmentEpoch) {
			return Reconciling
		}
	}
	return Stable
}

// Len is the number of members (a static member that left with epoch -2
// counts until its session expires or it is replaced).
func (g *Group) Len() int { return len(g.members) }

// Epoch is the group epoch.
func (g *Group) Epoch() int32 { return g.epoch }

// newMemberID makes a member id for a v0 join that brings none.
func (g *Group) newMemberID() string {
	if g.cfg.NewMemberID != nil {
		return g.cfg.NewMemberID()
	}
	var id [16]byte
	rand.Read(id[:])
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// emit queues a record for TakeRecords.
func (g *Group) emit(key, value []byte) {
	g.records = append(g.records, KV{Key: key, Value: value})
}

// TakeRecords returns the records that persist what changed since the last
// call, in Kafka's schema, in order.
func (g *Group) TakeRecords() []KV {
	out := g.records
	g.records = nil
	return out
}
