// Package classic is the state machine of one consumer group speaking
// Kafka's classic protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup):
// Empty → PreparingRebalance → CompletingRebalance → Stable, generations,
// the leader's assignment, static membership (KIP-345), member ids required
// on first join (KIP-394), session and rebalance timeouts and
// group.initial.rebalance.delay.ms. Eager and cooperative rebalancing are
// both driven by the clients' assignors; the group only needs to be correct
// about who is in which generation.
//
// It does no I/O and reads no clock: every method takes the time, and
// responses that are not due at once (a JoinGroup waiting for the others, a
// follower's SyncGroup waiting for the leader) come back as Replies from a
// later call.
package classic

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config holds a group's settings, with Kafka's config names.
type Config struct {
	// MinSessionTimeout and MaxSessionTimeout are
	// group.min.session.timeout.ms (6 s) and group.max.session.timeout.ms
	// (30 min): a join outside gets INVALID_SESSION_TIMEOUT.
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms (3 s): the
	// first rebalance of an empty group waits this long for more members.
	InitialRebalanceDelay time.Duration
	// MaxSize is group.max.size; 0 means no limit. A join beyond it gets
	// GROUP_MAX_SIZE_REACHED.
	MaxSize int
	// NewMemberID makes a member id for a client id; nil means
	// "<client id>-<random uuid>", as Kafka does. Tests set it.
	NewMemberID func(clientID string) string
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		MinSessionTimeout:     6 * time.Second,
		MaxSessionTimeout:     30 * time.Minute,
		InitialRebalanceDelay: 3 * time.Second,
	}
}

// Token identifies a request whose response may be due later; the caller
// chooses it.
type Token uint64

// Reply is a response now due to the request with Token.
type Reply struct {
	Token    Token
	Response kmsg.Response
}

// Client is who sent a request.
type Client struct {
	ID, Host string
}

// State is a group's state, named as Kafka names it in DescribeGroups and
// ListGroups.
type State string

const (
	Empty               State = "Empty"
	PreparingRebalance  State = "PreparingRebalance"
	CompletingRebalance State = "CompletingRebalance"
	Stable              State = "Stable"
	Dead                State = "Dead"
)

// Group is one classic group.
type Group struct {
	id  string
	cfg Config
}

// New returns an empty group.
func New(id string, cfg Config) *Group { return &Group{id: id, cfg: cfg} }

// Join handles a JoinGroup. The reply to tok may be in the result or in the
// result of a later call.
func (g *Group) Join(now time.Time, tok Token, version int16, client Client, req *kmsg.JoinGroupRequest) []Reply {
	return nil
}

// Sync handles a SyncGroup.
func (g *Group) Sync(now time.Time, tok Token, version int16, req *kmsg.SyncGroupRequest) []Reply {
	return nil
}

// Heartbeat handles a Heartbeat; it is always answered at once.
func (g *Group) Heartbeat(now time.Time, version int16, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	return nil
}

// Leave handles a LeaveGroup; members leaving may complete a rebalance that
// others wait for, whose replies come back too.
func (g *Group) Leave(now time.Time, version int16, req *kmsg.LeaveGroupRequest) (*kmsg.LeaveGroupResponse, []Reply) {
	return nil, nil
}

// Tick advances time: expired sessions, rebalance timeouts, the initial
// delay.
func (g *Group) Tick(now time.Time) []Reply { return nil }

// Deadline is when Tick next has something to do.
func (g *Group) Deadline() (t time.Time, ok bool) { return time.Time{}, false }

// State is the group's state.
func (g *Group) State() State { return Empty }

// ProtocolType is the members' protocol type ("consumer" for consumers,
// "connect" for Connect workers), empty for a group that never had one.
func (g *Group) ProtocolType() string { return "" }

// Generation is the current generation id.
func (g *Group) Generation() int32 { return 0 }

// Len is the number of members.
func (g *Group) Len() int { return 0 }

// Describe answers DescribeGroups for this group.
func (g *Group) Describe(version int16) kmsg.DescribeGroupsResponseGroup {
	return kmsg.DescribeGroupsResponseGroup{}
}

// CheckCommit is the error code (0 for none) of an OffsetCommit by
// memberID (and instanceID, when static) in generation. A commit with
// generation -1 and no member id (a simple consumer) is allowed only while
// the group has no members.
func (g *Group) CheckCommit(memberID string, instanceID *string, generation int32) int16 {
	return 0
}

// Subscribed reports the topics the members subscribe to, decoded from
// their "consumer" protocol metadata; ok is false when that is unknown (not
// a consumer group), and then OffsetDelete must treat every topic as in use
// while the group has members.
func (g *Group) Subscribed() (topics map[string]bool, ok bool) { return nil, false }

// Dirty reports whether the group changed in a way that must be persisted
// since the last call to Snapshot (a new generation, an assignment, members
// leaving); the coordinator then writes Snapshot as a GroupMetadata record.
func (g *Group) Dirty() bool { return false }

// Snapshot returns the group as Kafka persists it (GroupMetadataValue, the
// newest version) and clears Dirty.
func (g *Group) Snapshot(now time.Time) *kmsg.GroupMetadataValue { return nil }

// Restore rebuilds a group from its last persisted snapshot; its members
// get a fresh session from now.
func Restore(id string, cfg Config, v *kmsg.GroupMetadataValue, now time.Time) *Group {
	return New(id, cfg)
}
