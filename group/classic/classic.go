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
//
// Invariants:
//   - The generation id never decreases; each completed join phase bumps it.
//   - Every JoinGroup and SyncGroup gets exactly one reply: at once, or from
//     a later call when the phase it waits for completes, when the member is
//     removed or fenced, or when a newer request of the same member
//     supersedes it.
//   - Members in the group all support the selected protocol, and all use
//     the group's protocol type.
//
// The semantics follow Kafka's ClassicGroup and GroupMetadataManager; the
// few places that differ are marked "Deviation" in the code.
package classic

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config holds a group's settings, with Kafka's config names.
type Config struct {
	// MinSessionTimeout and MaxSessionTimeout are
	// group.min.session.timeout.ms (6 s) and group.max.session.timeout.ms
	// (30 min): a join outside gets INVALID_SESSION_TIMEOUT. A zero
	// MaxSessionTimeout means no upper bound.
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms (3 s): the
	// first rebalance of an empty group waits this long for more members.
	InitialRebalanceDelay time.Duration
	// MaxSize is group.max.size; 0 means no limit. A join beyond it gets
	// GROUP_MAX_SIZE_REACHED.
	MaxSize int
	// NewMemberID makes a member id from a prefix: the client id, or the
	// group instance id for a static member (as Kafka does); nil means
	// "<prefix>-<random uuid>". Tests set it.
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

// newMemberJoinTimeout is Kafka's group.new.member.join.timeout.ms (5 min,
// not a public config): a member that joined for the first time and waits
// in JoinGroup longer than this is removed.
const newMemberJoinTimeout = 5 * time.Minute

// noRejoinRetry is the least wait before a join phase in which no member
// rejoined is tried again, so that members with a rebalance timeout of 0
// cannot make the timer spin.
const noRejoinRetry = time.Second

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

// Group is one classic group. It is not safe for concurrent use.
type Group struct {
	id  string
	cfg Config

	state      State
	prevState  State
	stateSince time.Time // when state was entered; zero when unknown

	protocolType string  // set by the first member ever added; "" before
	protocol     *string // selected protocol of the generation; nil when none
	generation   int32
	leader       string // member id; "" when none

	members map[string]*member
	order   []string          // member ids in the order they were added
	static  map[string]string // group instance id → member id
	// supported counts, per protocol name, the members supporting it.
	supported map[string]int
	// pending are KIP-394 member ids handed out with MEMBER_ID_REQUIRED,
	// with the time they expire unless they join.
	pending map[string]time.Time
	// pendingSync are the members expected to send SyncGroup in the
	// current generation.
	pendingSync map[string]bool
	subscribed  map[string]bool // nil when unknown; computed per generation

	// The join phase timer: when the rebalance completes, or (initial is
	// true) when the initial delay is checked again.
	joinDeadline     time.Time
	initial          bool
	initialDelay     time.Duration // the delay that ends at joinDeadline
	initialRemaining time.Duration // how much longer the delay may grow
	newMemberAdded   bool          // a member joined during the initial delay

	// The pending sync timer: members that have not sent SyncGroup by
	// syncDeadline, in syncGeneration, are removed.
	syncDeadline   time.Time
	syncGeneration int32

	fresh bool    // created by New and never persisted
	dirty bool    // changed since the last Snapshot in a way to persist
	out   []Reply // replies due, collected during one call
}

// member is one member of the group.
type member struct {
	id         string
	instanceID *string // group.instance.id of a static member
	clientID   string
	clientHost string

	rebalanceTimeout time.Duration
	sessionTimeout   time.Duration
	protocolType     string
	protocols        []kmsg.JoinGroupRequestProtocol // in preference order
	assignment       []byte

	join *waiting // a JoinGroup waiting for the join phase to complete
	sync *waiting // a SyncGroup waiting for the leader's assignment

	// isNew is true from the member's first join until its join phase
	// completes; such a member may expire even while it waits in JoinGroup.
	isNew bool
	// deadline is when the member's session expires unless it heartbeats;
	// zero when no expiry is scheduled (Kafka's timer fired while the
	// member was waiting in JoinGroup or SyncGroup).
	deadline time.Time
}

// waiting is a request whose response is not yet due.
type waiting struct {
	tok     Token
	version int16
}

// New returns an empty group.
func New(id string, cfg Config) *Group {
	return &Group{
		id:          id,
		cfg:         cfg,
		state:       Empty,
		prevState:   Dead,
		members:     make(map[string]*member),
		static:      make(map[string]string),
		supported:   make(map[string]int),
		pending:     make(map[string]time.Time),
		pendingSync: make(map[string]bool),
		fresh:       true,
	}
}

// State is the group's state.
func (g *Group) State() State { return g.state }

// ProtocolType is the members' protocol type ("consumer" for consumers,
// "connect" for Connect workers), empty for a group that never had one.
func (g *Group) ProtocolType() string { return g.protocolType }

// Protocol is the protocol selected for the current generation (the
// assignor's name for consumers); "" when none.
func (g *Group) Protocol() string {
	if g.protocol == nil {
		return ""
	}
	return *g.protocol
}

// Generation is the current generation id.
func (g *Group) Generation() int32 { return g.generation }

// Leader is the leader's member id; "" when there is none.
func (g *Group) Leader() string { return g.leader }

// Len is the number of members.
func (g *Group) Len() int { return len(g.members) }

// transition enters state s at now.
func (g *Group) transition(now time.Time, s State) {
	g.prevState = g.state
	g.state = s
	g.stateSince = now
}

// flush returns the replies collected during a call.
func (g *Group) flush() []Reply {
	out := g.out
	g.out = nil
	return out
}

// newMemberID makes a member id from prefix.
func (g *Group) newMemberID(prefix string) string {
	if g.cfg.NewMemberID != nil {
		return g.cfg.NewMemberID(prefix)
	}
	return prefix + "-" + randomUUID()
}

// randomUUID is a random (version 4) UUID in its text form.
func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// millis converts a request's timeout in milliseconds; negative values
// count as 0.
func millis(ms int32) time.Duration {
	if ms < 0 {
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}
