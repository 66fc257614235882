// Package consumer is the state machine of one consumer group speaking
// KIP-848's protocol (ConsumerGroupHeartbeat): the group epoch, each
// member's epoch and subscription (topic names or a regex), a target
// assignment computed on the server by an assignor of package assign, and
// each member's reconciliation towards it, incremental and with no global
// barrier: a partition is given to its new owner only once the old owner
// has acknowledged its revocation in a heartbeat.
//
// It does no I/O and reads no clock: every method takes the time.
package consumer

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
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

// Group is one KIP-848 consumer group.
type Group struct {
	id  string
	cfg Config
}

// New returns an empty group.
func New(id string, cfg Config) *Group { return &Group{id: id, cfg: cfg} }

// Heartbeat handles a ConsumerGroupHeartbeat (join, heartbeat, leave) and
// answers it at once. topics are the cluster's topics by name.
func (g *Group) Heartbeat(now time.Time, version int16, client Client, req *kmsg.ConsumerGroupHeartbeatRequest, topics map[string]Topic) *kmsg.ConsumerGroupHeartbeatResponse {
	return nil
}

// SetTopics tells the group the cluster's topics changed: subscriptions by
// regex are matched again and the target assignment recomputed when the
// subscribed partitions changed.
func (g *Group) SetTopics(now time.Time, topics map[string]Topic) {}

// Tick advances time: members whose session expired are removed.
func (g *Group) Tick(now time.Time) {}

// Deadline is when Tick next has something to do.
func (g *Group) Deadline() (t time.Time, ok bool) { return time.Time{}, false }

// State is the group's state.
func (g *Group) State() State { return Empty }

// Len is the number of members.
func (g *Group) Len() int { return 0 }

// Epoch is the group epoch.
func (g *Group) Epoch() int32 { return 0 }

// Describe answers ConsumerGroupDescribe for this group.
func (g *Group) Describe(version int16, topics map[string]Topic) kmsg.ConsumerGroupDescribeResponseGroup {
	return kmsg.ConsumerGroupDescribeResponseGroup{}
}

// CheckCommit is the error code (0 for none) of an OffsetCommit (or an
// OffsetFetch v9+) by memberID at memberEpoch: UNKNOWN_MEMBER_ID,
// STALE_MEMBER_EPOCH.
func (g *Group) CheckCommit(memberID string, memberEpoch int32) int16 { return 0 }

// Subscribed is the set of topic names the members subscribe to now.
func (g *Group) Subscribed() map[string]bool { return nil }

// TakeRecords returns the records that persist what changed since the last
// call, in Kafka's schema, in order.
func (g *Group) TakeRecords() []KV { return nil }

// GroupID decodes the group id of a consumer-group record key (key versions
// 3 to 8); ok is false for other keys.
func GroupID(key []byte) (id string, ok bool) { return "", false }

// Replay applies one record read back from __consumer_offsets at start-up;
// a nil value is a tombstone.
func (g *Group) Replay(key, value []byte) error { return nil }

// Loaded ends replay: members restored from the log get a fresh session
// from now.
func (g *Group) Loaded(now time.Time) {}
