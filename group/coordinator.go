package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group/classic"
	"github.com/samsa-io/samsa/group/consumer"
	"github.com/samsa-io/samsa/internal/javahash"
)

// Config holds the coordinator's settings, with Kafka's config names. A
// zero field means Kafka's default.
type Config struct {
	// Partitions is offsets.topic.num.partitions (50): a group's records go
	// to partition Partition(groupID, Partitions).
	Partitions int32
	// OffsetsRetention is offsets.retention.minutes (7 days): the offsets
	// of a group that has been empty this long expire.
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is offsets.retention.check.interval.ms
	// (10 minutes): how often expired offsets and empty groups are
	// looked for.
	OffsetsRetentionCheckInterval time.Duration
	// MaxMetadataBytes is offset.metadata.max.bytes (4096): a commit with
	// longer metadata gets OFFSET_METADATA_TOO_LARGE. Like Kafka, it counts
	// the metadata's UTF-16 code units.
	MaxMetadataBytes int
	Classic          classic.Config
	Consumer         consumer.Config
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		Partitions:                    50,
		OffsetsRetention:              7 * 24 * time.Hour,
		OffsetsRetentionCheckInterval: 10 * time.Minute,
		MaxMetadataBytes:              4096,
		Classic:                       classic.DefaultConfig(),
		Consumer:                      consumer.DefaultConfig(),
	}
}

// withDefaults fills the zero fields of cfg with Kafka's defaults.
func (cfg Config) withDefaults() Config {
	def := DefaultConfig()
	if cfg.Partitions <= 0 {
		cfg.Partitions = def.Partitions
	}
	if cfg.OffsetsRetention <= 0 {
		cfg.OffsetsRetention = def.OffsetsRetention
	}
	if cfg.OffsetsRetentionCheckInterval <= 0 {
		cfg.OffsetsRetentionCheckInterval = def.OffsetsRetentionCheckInterval
	}
	if cfg.MaxMetadataBytes <= 0 {
		cfg.MaxMetadataBytes = def.MaxMetadataBytes
	}
	return cfg
}

// Token identifies a request whose response may be due later (a JoinGroup
// waits for the rebalance); the driver chooses it and matches Replies by it.
type Token = classic.Token

// Reply is a response now due to the request with Token.
type Reply = classic.Reply

// Call is what every request brings besides its body.
type Call struct {
	Now        time.Time
	Token      Token
	Version    int16
	ClientID   string
	ClientHost string
}

// Record is one record for __consumer_offsets, in Kafka's schema. A nil
// Value is a tombstone.
type Record struct {
	Partition  int32
	Key, Value []byte
}

// Output is the effect of one input. The driver appends Records (in order)
// and waits until they are durable before it sends Replies; if the append
// fails it answers those replies with an error instead.
type Output struct {
	Records []Record
	Replies []Reply
}

// Topic is what the coordinator knows of a topic: offsets for unknown
// topics are refused, and consumer groups assign partitions from it.
type Topic = consumer.Topic

// Coordinator holds every group of the offsets partitions this broker
// leads. It is not safe for concurrent use: the driver serializes calls.
//
// A group id maps to one *group, which is a classic group or a consumer
// group (never both) and holds the group's committed offsets. A group with
// offsets but no members and no protocol is a "simple" classic group, as
// Kafka creates for consumers that commit without joining.
type Coordinator struct {
	cfg Config
	// groups by id.
	groups map[string]*group
	// timers orders the groups that have a deadline by it.
	timers timerHeap
	// topics is the last SetTopics; nil before the first, and then every
	// commit is refused with UNKNOWN_TOPIC_OR_PARTITION.
	topics map[string]Topic
	// nextExpiry is when Tick next looks for expired offsets and empty
	// groups; zero until the first input that brings the time.
	nextExpiry time.Time
	// txn holds the transactional offsets pending until their producer's
	// marker (txn_offsets.go).
	txn txnOffsets
}

// New returns an empty coordinator.
func New(cfg Config) *Coordinator {
	return &Coordinator{cfg: cfg.withDefaults(), groups: make(map[string]*group)}
}

// Partition is the __consumer_offsets partition of a group, as Kafka
// computes it: the Java String hash code of the id (over its UTF-16 code
// units), made non-negative with Kafka's Utils.abs (which maps MinInt32 to
// 0), modulo n.
func Partition(groupID string, n int32) int32 { return javahash.Partition(groupID, n) }

// GroupOffset is one committed offset, for lag.
type GroupOffset struct {
	Group     string
	Topic     string
	Partition int32
	Offset    int64
}

// Offsets calls fn for every committed offset of every group (lag metrics).
func (c *Coordinator) Offsets(fn func(GroupOffset)) {
	for id, g := range c.groups {
		for topic, parts := range g.offsets {
			for p, o := range parts {
				fn(GroupOffset{Group: id, Topic: topic, Partition: p, Offset: o.offset})
			}
		}
	}
}

// observe starts the expiry schedule on the first input that brings the
// time.
func (c *Coordinator) observe(now time.Time) {
	if c.nextExpiry.IsZero() {
		c.nextExpiry = now.Add(c.cfg.OffsetsRetentionCheckInterval)
	}
}

// lookup returns the group with id, or nil.
func (c *Coordinator) lookup(id string) *group { return c.groups[id] }

// add makes a group entry for id (which must be unknown).
func (c *Coordinator) add(id string) *group {
	g := &group{id: id, emptySince: -1, heapIndex: -1}
	c.groups[id] = g
	return g
}

// remove forgets a group and its offsets (their tombstones are the
// caller's).
func (c *Coordinator) remove(g *group) {
	c.timers.remove(g)
	delete(c.groups, g.id)
}

// partition is the __consumer_offsets partition of group id.
func (c *Coordinator) partition(id string) int32 { return Partition(id, c.cfg.Partitions) }

// errorString returns a pointer to msg, for kmsg's nullable messages.
func errorString(msg string) *string { return &msg }

// ms is t in Unix milliseconds, as Kafka's records store time.
func ms(t time.Time) int64 { return t.UnixMilli() }

// reply wraps a response due now to the call.
func reply(call Call, r kmsg.Response) Reply { return Reply{Token: call.Token, Response: r} }
