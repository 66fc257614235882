package group

import (
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transactional offsets (KIP-98, KIP-447): a TxnOffsetCommit writes its
// offsets to __consumer_offsets in a transactional batch of the producer,
// and they stay pending until the producer's commit or abort marker on the
// group's __consumer_offsets partition: a commit makes them the committed
// offsets, an abort drops them. Meanwhile OffsetFetch does not show them,
// and with require_stable answers UNSTABLE_OFFSET_COMMIT for their
// partitions. This is Kafka's pendingTransactionalOffsets.
//
// Replay follows the log: the records of a transactional batch become
// pending (ReplayTransactional) and a control batch settles them
// (ReplayMarker), which the driver also calls once it has written a marker
// to a __consumer_offsets partition.
//
// Kafka keeps the most recent of a transactional and a plain commit of the
// same partition, by their offsets in the log: a pending offset that a plain
// OffsetCommit (or a tombstone) followed is not materialized by the commit
// marker. The coordinator appends its records in the order it makes them,
// so it marks such a pending offset superseded when the plain commit comes.

// txnOffsets is the pending transactional offsets of the coordinator.
type txnOffsets struct {
	// byProducer holds, per producer id, its pending offsets by group.
	byProducer map[int64]map[string]*pendingGroup
	// byGroup holds, per group, the producers with pending offsets in it.
	byGroup map[string]map[int64]struct{}
}

// pendingGroup is one producer's pending offsets in one group.
type pendingGroup map[topicPartition]pendingOffset

type topicPartition struct {
	topic     string
	partition int32
}

type pendingOffset struct {
	offset
	// superseded is set when a plain commit or a deletion of the same
	// partition came after this offset: the commit marker then keeps the
	// plain one.
	superseded bool
}

// addPending records a pending offset of producerID.
func (t *txnOffsets) addPending(producerID int64, groupID string, tp topicPartition, o offset) {
	if t.byProducer == nil {
		t.byProducer = make(map[int64]map[string]*pendingGroup)
		t.byGroup = make(map[string]map[int64]struct{})
	}
	groups := t.byProducer[producerID]
	if groups == nil {
		groups = make(map[string]*pendingGroup)
		t.byProducer[producerID] = groups
	}
	pg := groups[groupID]
	if pg == nil {
		m := make(pendingGroup)
		pg = &m
		groups[groupID] = pg
	}
	(*pg)[tp] = pendingOffset{offset: o}
	producers := t.byGroup[groupID]
	if producers == nil {
		producers = make(map[int64]struct{})
		t.byGroup[groupID] = producers
	}
	producers[producerID] = struct{}{}
}

// has reports whether any producer has an offset of groupID/tp pending.
func (t *txnOffsets) has(groupID string, tp topicPartition) bool {
	for p := range t.byGroup[groupID] {
		if _, ok := (*t.byProducer[p][groupID])[tp]; ok {
			return true
		}
	}
	return false
}

// supersede marks every pending offset of groupID/tp as older than a plain
// commit or deletion; drop (for a deletion) also forgets them, as Kafka's
// replay of an offset tombstone does. It reports whether there was one.
func (t *txnOffsets) supersede(groupID string, tp topicPartition, drop bool) bool {
	found := false
	for p := range t.byGroup[groupID] {
		pg := t.byProducer[p][groupID]
		po, ok := (*pg)[tp]
		if !ok {
			continue
		}
		found = true
		if drop {
			delete(*pg, tp)
			if len(*pg) == 0 {
				t.forget(p, groupID)
			}
			continue
		}
		po.superseded = true
		(*pg)[tp] = po
	}
	return found
}

// forget removes producerID's (empty) entry of groupID.
func (t *txnOffsets) forget(producerID int64, groupID string) {
	delete(t.byProducer[producerID], groupID)
	if len(t.byProducer[producerID]) == 0 {
		delete(t.byProducer, producerID)
	}
	delete(t.byGroup[groupID], producerID)
	if len(t.byGroup[groupID]) == 0 {
		delete(t.byGroup, groupID)
	}
}

// take removes and returns producerID's pending offsets in the groups for
// which in is true.
func (t *txnOffsets) take(producerID int64, in func(groupID string) bool) map[string]*pendingGroup {
	groups := t.byProducer[producerID]
	var out map[string]*pendingGroup
	for id, pg := range groups {
		if !in(id) {
			continue
		}
		if out == nil {
			out = make(map[string]*pendingGroup)
		}
		out[id] = pg
		t.forget(producerID, id)
	}
	return out
}

// TxnOffsetCommit handles TxnOffsetCommit v0–v4 (v3+ names the member, as
// OffsetCommit does). The driver appends the records of the Output in one
// transactional batch of req's producer id and epoch; the offsets are
// pending until that producer's marker on the group's partition
// (ReplayMarker).
//
// As in Kafka: an empty group id is INVALID_GROUP_ID; a partition that
// does not exist is UNKNOWN_TOPIC_OR_PARTITION (before the group is looked
// at); an unknown group is created as a simple group for a generation of
// -1, and ILLEGAL_GENERATION otherwise. A classic group checks the member
// and generation when either is given (UNKNOWN_MEMBER_ID,
// FENCED_INSTANCE_ID, ILLEGAL_GENERATION) but, unlike OffsetCommit, accepts
// a commit that names neither whatever the group's state, and one during a
// rebalance. A KIP-848 group checks the member and its epoch, a stale epoch
// being ILLEGAL_GENERATION, and needs no particular version. Metadata over
// offset.metadata.max.bytes is OFFSET_METADATA_TOO_LARGE.
func (c *Coordinator) TxnOffsetCommit(call Call, req *kmsg.TxnOffsetCommitRequest) Output {
	c.observe(call.Now)
	resp := kmsg.NewPtrTxnOffsetCommitResponse()
	resp.Version = call.Version
	out := Output{Replies: []Reply{reply(call, resp)}}

	code := int16(0)
	if req.Group == "" {
		code = kerr.InvalidGroupID.Code
	}
	known := 0
	for _, t := range req.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			switch {
			case code != 0:
				rp.ErrorCode = code
			case !c.partitionExists(t.Topic, p.Partition):
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				known++
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if known == 0 {
		return out
	}

	generation, memberID, instanceID := int32(-1), "", (*string)(nil)
	if call.Version >= 3 {
		generation, memberID, instanceID = req.Generation, req.MemberID, req.InstanceID
	}
	g, code := c.checkTxnCommit(req.Group, generation, memberID, instanceID)
	commitTime := ms(call.Now)
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			rp := &resp.Topics[i].Partitions[j]
			if rp.ErrorCode != 0 {
				continue
			}
			if code != 0 {
				rp.ErrorCode = code
				continue
			}
			metadata := ""
			if p.Metadata != nil {
				metadata = *p.Metadata
			}
			if javaLength(metadata) > c.cfg.MaxMetadataBytes {
				rp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			o := offset{offset: p.Offset, leaderEpoch: -1, metadata: metadata, committed: commitTime, expires: -1}
			if call.Version >= 2 {
				o.leaderEpoch = p.LeaderEpoch
			}
			if g == nil {
				g = c.add(req.Group)
				g.ensureClassic(c.cfg.Classic)
			}
			c.txn.addPending(req.ProducerID, req.Group, topicPartition{t.Topic, p.Partition}, o)
			out.Records = append(out.Records, c.offsetRecord(req.Group, t.Topic, p.Partition, o))
		}
	}
	return out
}

// checkTxnCommit finds the group of a transactional commit and the error
// code of the whole commit (0 if it may go ahead); the group is nil for a
// simple consumer whose group does not exist yet. These are Kafka's
// validateOffsetCommit rules for a transactional commit.
func (c *Coordinator) checkTxnCommit(groupID string, generation int32, memberID string, instanceID *string) (*group, int16) {
	g := c.lookup(groupID)
	if g == nil {
		if generation < 0 {
			return nil, 0
		}
		return nil, kerr.IllegalGeneration.Code
	}
	if g.consumer != nil {
		code := g.consumer.CheckCommit(memberID, generation)
		if code == kerr.StaleMemberEpoch.Code {
			code = kerr.IllegalGeneration.Code
		}
		return g, code
	}
	g.ensureClassic(c.cfg.Classic)
	if generation < 0 && memberID == "" && instanceID == nil {
		// A commit that names no member: accepted whatever the state,
		// as older versions of the protocol had no member fields.
		code := g.classic.CheckCommit(memberID, instanceID, generation)
		if code == kerr.CoordinatorNotAvailable.Code {
			return g, code
		}
		return g, 0
	}
	code := g.classic.CheckCommit(memberID, instanceID, generation)
	if code == kerr.RebalanceInProgress.Code {
		// Passed the member and generation checks; the group's state is
		// not enforced for transactional commits.
		code = 0
	}
	return g, code
}

// ReplayTransactional applies one record of a transactional batch of
// producerID read back from __consumer_offsets: an offset commit becomes
// pending until the producer's marker (ReplayMarker); anything else is
// replayed as Replay does (Kafka writes only offsets transactionally).
func (c *Coordinator) ReplayTransactional(partition int32, producerID int64, key, value []byte) error {
	v, ok := keyVersion(key)
	if !ok || (v != 0 && v != 1) || value == nil {
		return c.Replay(partition, key, value)
	}
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(key); err != nil {
		return &errCorrupt{"offset commit key", err}
	}
	o, err := decodeOffsetValue(value)
	if err != nil {
		return &errCorrupt{"offset commit value", err}
	}
	c.txn.addPending(producerID, k.Group, topicPartition{k.Topic, k.Partition}, o)
	return nil
}

// ReplayMarker applies producerID's commit or abort marker on
// __consumer_offsets partition: the producer's pending offsets of the
// groups of that partition become committed offsets (commit) or are
// dropped (abort). Offsets that a plain commit or a deletion followed are
// not materialized, nor offsets of topics that no longer exist. The driver
// calls it for the markers it reads back at start-up and for those it
// writes; a marker with nothing pending changes nothing, so applying one
// twice is harmless. It writes no records: the marker is the record.
func (c *Coordinator) ReplayMarker(partition int32, producerID int64, commit bool) {
	taken := c.txn.take(producerID, func(groupID string) bool { return c.partition(groupID) == partition })
	if !commit {
		return
	}
	for _, id := range slices.Sorted(maps.Keys(taken)) {
		pg := *taken[id]
		var g *group
		for tp, po := range pg {
			if po.superseded || (c.topics != nil && !c.partitionExists(tp.topic, tp.partition)) {
				continue
			}
			if g == nil {
				if g = c.lookup(id); g == nil {
					g = c.add(id)
					g.ensureClassic(c.cfg.Classic)
				}
			}
			g.setOffset(tp.topic, tp.partition, po.offset)
		}
	}
}

// pendingOffset reports whether a transaction has an offset of
// group/topic/partition pending (OffsetFetch's require_stable).
func (c *Coordinator) pendingOffset(groupID, topic string, partition int32) bool {
	return c.txn.has(groupID, topicPartition{topic, partition})
}

// PendingTxnOffsets reports whether groupID has transactional offsets
// pending (tests, and describing the group).
func (c *Coordinator) PendingTxnOffsets(groupID string) bool { return len(c.txn.byGroup[groupID]) > 0 }
