package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group/classic"
	"github.com/samsa-io/samsa/group/consumer"
)

// Config holds the coordinator's settings, with Kafka's config names.
type Config struct {
	// Partitions is offsets.topic.num.partitions (50): a group's records go
	// to partition Partition(groupID, Partitions).
	Partitions int32
	// OffsetsRetention is offsets.retention.minutes (7 days): the offsets
	// of a group that has been empty this long expire.
	OffsetsRetention time.Duration
	// MaxMetadataBytes is offset.metadata.max.bytes (4096): a commit with
	// longer metadata gets OFFSET_METADATA_TOO_LARGE.
	MaxMetadataBytes int
	Classic          classic.Config
	Consumer         consumer.Config
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		Partitions:       50,
		OffsetsRetention: 7 * 24 * time.Hour,
		MaxMetadataBytes: 4096,
		Classic:          classic.DefaultConfig(),
		Consumer:         consumer.DefaultConfig(),
	}
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
type Coordinator struct {
	cfg Config
}

// New returns an empty coordinator.
func New(cfg Config) *Coordinator {
	return &Coordinator{cfg: cfg}
}

// Partition is the __consumer_offsets partition of a group, as Kafka
// computes it: the Java String hash code of the id, made non-negative by
// masking the sign bit, modulo n.
func Partition(groupID string, n int32) int32 {
	var h int32
	for _, r := range groupID {
		if r >= 0x10000 { // Java hashes UTF-16 code units
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return (h & 0x7fffffff) % n
}

// JoinGroup handles a classic JoinGroup; its reply usually comes in a later
// Output, when the rebalance completes.
func (c *Coordinator) JoinGroup(call Call, req *kmsg.JoinGroupRequest) Output { return Output{} }

// SyncGroup handles a classic SyncGroup; followers' replies wait for the
// leader's assignment.
func (c *Coordinator) SyncGroup(call Call, req *kmsg.SyncGroupRequest) Output { return Output{} }

// Heartbeat handles a classic Heartbeat.
func (c *Coordinator) Heartbeat(call Call, req *kmsg.HeartbeatRequest) Output { return Output{} }

// LeaveGroup handles a classic LeaveGroup (v3+: a batch of members).
func (c *Coordinator) LeaveGroup(call Call, req *kmsg.LeaveGroupRequest) Output { return Output{} }

// OffsetCommit handles OffsetCommit v0–v9: from a classic member (checked
// against its generation), a KIP-848 member (checked against its epoch), or
// a simple consumer (generation -1, no member id) of an empty group.
func (c *Coordinator) OffsetCommit(call Call, req *kmsg.OffsetCommitRequest) Output {
	return Output{}
}

// OffsetFetch answers one group of an OffsetFetch (v8+ batches groups; the
// driver maps v0–v7 onto this). Nil topics means every committed partition.
func (c *Coordinator) OffsetFetch(call Call, g kmsg.OffsetFetchRequestGroup, requireStable bool) kmsg.OffsetFetchResponseGroup {
	return kmsg.OffsetFetchResponseGroup{}
}

// OffsetDelete handles OffsetDelete: offsets of topics the group is not
// subscribed to, of a group that is empty or not using them.
func (c *Coordinator) OffsetDelete(call Call, req *kmsg.OffsetDeleteRequest) Output { return Output{} }

// DescribeGroup answers one group of a DescribeGroups.
func (c *Coordinator) DescribeGroup(version int16, groupID string) kmsg.DescribeGroupsResponseGroup {
	return kmsg.DescribeGroupsResponseGroup{}
}

// ListGroups lists the groups, filtered by state and type (KIP-518, KIP-848)
// when the filters are not empty.
func (c *Coordinator) ListGroups(version int16, states, types []string) []kmsg.ListGroupsResponseGroup {
	return nil
}

// DeleteGroup deletes an empty group and its offsets (DeleteGroups); it
// returns the error code for the group and the tombstones to write.
func (c *Coordinator) DeleteGroup(now time.Time, groupID string) (int16, []Record) { return 0, nil }

// ConsumerGroupHeartbeat handles KIP-848's heartbeat; its reply is always in
// the returned Output.
func (c *Coordinator) ConsumerGroupHeartbeat(call Call, req *kmsg.ConsumerGroupHeartbeatRequest) Output {
	return Output{}
}

// ConsumerGroupDescribe answers one group of a ConsumerGroupDescribe.
func (c *Coordinator) ConsumerGroupDescribe(version int16, groupID string, includeAuthorizedOperations bool) kmsg.ConsumerGroupDescribeResponseGroup {
	return kmsg.ConsumerGroupDescribeResponseGroup{}
}

// SetTopics tells the coordinator the cluster's topics, by name; consumer
// groups reassign when partitions appear or topics come and go.
func (c *Coordinator) SetTopics(now time.Time, topics map[string]Topic) Output { return Output{} }

// Tick advances time: session and rebalance timeouts, the initial rebalance
// delay, offset expiry.
func (c *Coordinator) Tick(now time.Time) Output { return Output{} }

// Deadline is when Tick next has something to do; ok is false when nothing
// is pending.
func (c *Coordinator) Deadline() (t time.Time, ok bool) { return time.Time{}, false }

// Replay applies one record read back from __consumer_offsets at start-up,
// in log order; a nil value is a tombstone. Records it does not know are
// skipped, as Kafka does.
func (c *Coordinator) Replay(partition int32, key, value []byte) error { return nil }

// Loaded ends replay: members restored from the log get a fresh session
// from now.
func (c *Coordinator) Loaded(now time.Time) {}

// GroupOffset is one committed offset, for lag.
type GroupOffset struct {
	Group     string
	Topic     string
	Partition int32
	Offset    int64
}

// Offsets calls fn for every committed offset of every group (lag metrics).
func (c *Coordinator) Offsets(fn func(GroupOffset)) {}
