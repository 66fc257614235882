package group

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The records of __consumer_offsets, in Kafka's schema (its
// group-coordinator message definitions): a key starts with an int16
// version that says what the record is.
//
//	key version 0, 1   OffsetCommitKey (group, topic, partition)
//	                   value OffsetCommitValue: offset, leader epoch,
//	                   metadata, commit timestamp (and, version 1 only,
//	                   an expire timestamp)
//	key version 2      GroupMetadataKey (group)
//	                   value GroupMetadataValue: a classic group's
//	                   protocol, generation, leader and members
//	key versions 3–8   a KIP-848 consumer group's records (metadata,
//	                   subscriptions, target and current assignments),
//	                   written and read by package consumer
//
// A record with no value is a tombstone: compaction keeps the last record
// of each key. Other key versions (share groups, …) are skipped on replay,
// as Kafka skips what it does not know.
const (
	offsetCommitKeyVersion  = 1 // what Kafka writes (0 and 1 are the same)
	groupMetadataKeyVersion = 2
	// offsetCommitValueVersion is what Kafka writes for a commit without
	// an explicit expiry (its newest non-flexible version);
	// offsetCommitValueExpiring is the version that carries the expire
	// timestamp of OffsetCommit v2–v4's retention time.
	offsetCommitValueVersion  = 3
	offsetCommitValueExpiring = 1
)

// keyVersion is the version that starts a record key; ok is false for a
// key too short to have one.
func keyVersion(key []byte) (v int16, ok bool) {
	if len(key) < 2 {
		return 0, false
	}
	return int16(binary.BigEndian.Uint16(key)), true
}

// offsetKey encodes the key of a committed offset.
func offsetKey(groupID, topic string, partition int32) []byte {
	k := kmsg.OffsetCommitKey{Version: offsetCommitKeyVersion, Group: groupID, Topic: topic, Partition: partition}
	return k.AppendTo(nil)
}

// offsetValue encodes a committed offset.
func offsetValue(o offset) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetCommitValueVersion
	if o.expires >= 0 {
		v.Version = offsetCommitValueExpiring
	}
	v.Offset = o.offset
	v.LeaderEpoch = o.leaderEpoch
	v.Metadata = o.metadata
	v.CommitTimestamp = o.committed
	v.ExpireTimestamp = o.expires
	return v.AppendTo(nil)
}

// decodeOffsetValue decodes a committed offset of any version (0–4).
func decodeOffsetValue(b []byte) (offset, error) {
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(b); err != nil {
		return offset{}, err
	}
	o := offset{
		offset:      v.Offset,
		leaderEpoch: -1,
		metadata:    v.Metadata,
		committed:   v.CommitTimestamp,
		expires:     -1,
	}
	if v.Version >= 3 {
		o.leaderEpoch = v.LeaderEpoch
	}
	if v.Version == 1 {
		o.expires = v.ExpireTimestamp
	}
	return o, nil
}

// groupKey encodes the key of a classic group's metadata.
func groupKey(groupID string) []byte {
	k := kmsg.GroupMetadataKey{Version: groupMetadataKeyVersion, Group: groupID}
	return k.AppendTo(nil)
}

// groupValue encodes a classic group's snapshot, in the version it names.
func groupValue(v *kmsg.GroupMetadataValue) []byte { return v.AppendTo(nil) }

// offsetRecord is the record of a committed offset.
func (c *Coordinator) offsetRecord(groupID, topic string, partition int32, o offset) Record {
	return Record{Partition: c.partition(groupID), Key: offsetKey(groupID, topic, partition), Value: offsetValue(o)}
}

// offsetTombstone is the tombstone of a committed offset.
func (c *Coordinator) offsetTombstone(groupID, topic string, partition int32) Record {
	return Record{Partition: c.partition(groupID), Key: offsetKey(groupID, topic, partition)}
}

// persistClassic appends the snapshot of a classic group that changed.
func (c *Coordinator) persistClassic(g *group, now time.Time, out *Output) {
	if g.classic == nil || !g.classic.Dirty() {
		return
	}
	c.snapshotClassic(g, now, out)
}

// snapshotClassic appends the snapshot of a classic group.
func (c *Coordinator) snapshotClassic(g *group, now time.Time, out *Output) {
	v := g.classic.Snapshot(now)
	if v == nil {
		return
	}
	g.emptySince = v.CurrentStateTimestamp
	g.persisted = true
	out.Records = append(out.Records, Record{Partition: c.partition(g.id), Key: groupKey(g.id), Value: groupValue(v)})
}

// persistConsumer appends the records of a consumer group's changes and
// keeps track of its live keys.
func (c *Coordinator) persistConsumer(g *group, out *Output) {
	if g.consumer == nil {
		return
	}
	p := c.partition(g.id)
	for _, kv := range g.consumer.TakeRecords() {
		g.trackKey(kv.Key, kv.Value)
		out.Records = append(out.Records, Record{Partition: p, Key: kv.Key, Value: kv.Value})
	}
}

// trackKey notes a consumer group record: a live key or a tombstone.
func (g *group) trackKey(key, value []byte) {
	if value == nil {
		delete(g.keys, string(key))
		return
	}
	if g.keys == nil {
		g.keys = make(map[string]struct{})
	}
	g.keys[string(key)] = struct{}{}
}

// groupTombstones appends the tombstones that delete a group's own records
// (not its offsets): its GroupMetadata for a classic group, every live
// record for a consumer group.
func (c *Coordinator) groupTombstones(g *group, out []Record) []Record {
	p := c.partition(g.id)
	g.persisted = false
	if g.consumer != nil {
		for _, k := range sortedKeys(g.keys) {
			out = append(out, Record{Partition: p, Key: []byte(k)})
		}
		return out
	}
	return append(out, Record{Partition: p, Key: groupKey(g.id)})
}

// errCorrupt is a record of a known kind that does not decode.
type errCorrupt struct {
	what string
	err  error
}

func (e *errCorrupt) Error() string {
	return fmt.Sprintf("group: corrupt %s record: %v", e.what, e.err)
}

func (e *errCorrupt) Unwrap() error { return e.err }
