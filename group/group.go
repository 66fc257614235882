package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group/classic"
	"github.com/samsa-io/samsa/group/consumer"
)

// Group types, as ListGroups v5+ names them (KIP-848).
const (
	typeClassic  = "classic"
	typeConsumer = "consumer"
)

// group is one group id: its state machine (classic or consumer; neither
// while its records are being replayed, or for a simple group that has not
// been touched since) and its committed offsets.
type group struct {
	id string

	// classic and consumer: at most one is set.
	classic  *classic.Group
	consumer *consumer.Group

	// snapshot is, during replay, the last GroupMetadataValue read for a
	// classic group; Loaded restores the group from it.
	snapshot *kmsg.GroupMetadataValue

	// persisted is whether the classic group's metadata is in the log (a
	// snapshot written or replayed, not tombstoned since). A simple group
	// is not: it exists while it has offsets.
	persisted bool

	// keys holds the keys of a consumer group's live records, so that
	// deleting the group can write a tombstone for each.
	keys map[string]struct{}

	// emptySince is the CurrentStateTimestamp (Unix ms) of the classic
	// group's last persisted snapshot, -1 when unknown: when the group is
	// Empty, its offsets expire a retention period after it.
	emptySince int64

	// offsets are the committed offsets, by topic and partition.
	offsets map[string]map[int32]offset

	// deadline is the group's next deadline; heapIndex its place in the
	// coordinator's timers, -1 when it has none.
	deadline  time.Time
	heapIndex int
}

// offset is one committed offset, as OffsetCommitValue stores it.
type offset struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	// committed is the commit timestamp, Unix ms.
	committed int64
	// expires is the explicit expiry of OffsetCommit v2–v4's retention
	// time (OffsetCommitValue v1), Unix ms; -1 for none.
	expires int64
}

// typ is the group's type name ("classic" or "consumer").
func (g *group) typ() string {
	if g.consumer != nil {
		return typeConsumer
	}
	return typeClassic
}

// ensureClassic makes g a simple classic group if it has no state machine
// yet (a group that only has offsets).
func (g *group) ensureClassic(cfg classic.Config) {
	if g.classic == nil && g.consumer == nil {
		g.classic = classic.New(g.id, cfg)
	}
}

// empty reports whether the group has no members (Kafka's isEmpty: the
// Empty state).
func (g *group) empty() bool {
	switch {
	case g.consumer != nil:
		return g.consumer.State() == consumer.Empty || g.consumer.State() == consumer.Dead
	case g.classic != nil:
		s := g.classic.State()
		return s == classic.Empty || s == classic.Dead
	}
	return true
}

// state is the group's state as ListGroups and DescribeGroups name it.
func (g *group) state() string {
	switch {
	case g.consumer != nil:
		return string(g.consumer.State())
	case g.classic != nil:
		return string(g.classic.State())
	}
	return string(classic.Empty)
}

// protocolType is the group's protocol type: "consumer" for a consumer
// group, the members' type for a classic group ("" for a simple group).
func (g *group) protocolType() string {
	switch {
	case g.consumer != nil:
		return "consumer"
	case g.classic != nil:
		return g.classic.ProtocolType()
	}
	return ""
}

// subscribed reports whether the group's members use topic, as Kafka's
// isSubscribedToTopic: a consumer group by its subscriptions; a classic
// group by its members' "consumer" protocol metadata, and when that is
// unknown, every topic is in use if the group speaks the consumer protocol.
func (g *group) subscribed(topic string) bool {
	switch {
	case g.consumer != nil:
		return g.consumer.Subscribed()[topic]
	case g.classic != nil:
		if g.classic.Len() == 0 {
			return false
		}
		topics, ok := g.classic.Subscribed()
		if ok {
			return topics[topic]
		}
		return g.classic.ProtocolType() == "consumer"
	}
	return false
}

// nextDeadline is when the group's state machine next needs a Tick.
func (g *group) nextDeadline() (time.Time, bool) {
	switch {
	case g.consumer != nil:
		return g.consumer.Deadline()
	case g.classic != nil:
		return g.classic.Deadline()
	}
	return time.Time{}, false
}

// offset returns the committed offset of topic/partition.
func (g *group) offset(topic string, partition int32) (offset, bool) {
	o, ok := g.offsets[topic][partition]
	return o, ok
}

// setOffset records a committed offset.
func (g *group) setOffset(topic string, partition int32, o offset) {
	if g.offsets == nil {
		g.offsets = make(map[string]map[int32]offset)
	}
	parts := g.offsets[topic]
	if parts == nil {
		parts = make(map[int32]offset)
		g.offsets[topic] = parts
	}
	parts[partition] = o
}

// deleteOffset forgets a committed offset; it reports whether there was
// one.
func (g *group) deleteOffset(topic string, partition int32) bool {
	parts, ok := g.offsets[topic]
	if !ok {
		return false
	}
	if _, ok := parts[partition]; !ok {
		return false
	}
	delete(parts, partition)
	if len(parts) == 0 {
		delete(g.offsets, topic)
	}
	return true
}

// numOffsets is the number of committed offsets.
func (g *group) numOffsets() int {
	n := 0
	for _, parts := range g.offsets {
		n += len(parts)
	}
	return n
}
