package group

import (
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit handles OffsetCommit v0–v9: from a classic member (checked
// against its generation), a KIP-848 member (checked against its epoch), or
// a simple consumer (generation -1, no member id) of an empty group.
//
// Each partition is answered on its own: UNKNOWN_TOPIC_OR_PARTITION for a
// partition that does not exist (before the group is even looked at, as
// Kafka's request handler does), then the group's verdict on the member
// (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, …) for every other partition,
// then OFFSET_METADATA_TOO_LARGE. Every offset accepted becomes a record
// (OffsetCommitValue v3, or v1 with the expiry of a v2–v4 retention time).
//
// A KIP-848 member must commit with v9+ (UNSUPPORTED_VERSION before) and
// its current epoch; an older epoch still commits the partitions the
// member got at or before it (KIP-1251), the others get
// STALE_MEMBER_EPOCH. An accepted commit by a classic member extends its
// session, as Kafka's does.
func (c *Coordinator) OffsetCommit(call Call, req *kmsg.OffsetCommitRequest) Output {
	c.observe(call.Now)
	resp := kmsg.NewPtrOffsetCommitResponse()
	resp.Version = call.Version
	out := Output{Replies: []Reply{reply(call, resp)}}

	// First pass: which partitions exist.
	known := 0
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			if !c.partitionExists(t.Topic, p.Partition) {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else {
				known++
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if known == 0 {
		return out // Kafka does not reach the coordinator: no group is made
	}

	g, code := c.checkCommit(call.Now, call.Version, req)
	staleOK := g != nil && g.consumer != nil && code == kerr.StaleMemberEpoch.Code
	commitTime := ms(call.Now)
	expires := int64(-1)
	if req.RetentionTimeMillis != -1 && call.Version >= 2 && call.Version <= 4 {
		expires = commitTime + req.RetentionTimeMillis
	}
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			rp := &resp.Topics[i].Partitions[j]
			switch {
			case rp.ErrorCode != 0:
				continue
			case staleOK:
				// KIP-1251: an older epoch still commits the partitions
				// the member got at or before it.
				rp.ErrorCode = g.consumer.CheckCommitPartition(req.MemberID, req.Generation, c.topics[t.Topic].ID, p.Partition)
				if rp.ErrorCode != 0 {
					continue
				}
			case code != 0:
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
			o := offset{
				offset:      p.Offset,
				leaderEpoch: p.LeaderEpoch,
				metadata:    metadata,
				committed:   commitTime,
				expires:     expires,
			}
			if call.Version == 1 && p.Timestamp != -1 {
				o.committed = p.Timestamp // v1's explicit commit timestamp
			}
			if g == nil {
				// A simple consumer's first commit: Kafka makes an empty
				// classic group with no protocol to hold the offsets.
				g = c.add(req.Group)
				g.ensureClassic(c.cfg.Classic)
			}
			g.setOffset(t.Topic, p.Partition, o)
			c.txn.supersede(req.Group, topicPartition{t.Topic, p.Partition}, false)
			out.Records = append(out.Records, c.offsetRecord(req.Group, t.Topic, p.Partition, o))
		}
	}
	return out
}

// partitionExists reports whether the last SetTopics had topic/partition.
func (c *Coordinator) partitionExists(topic string, partition int32) bool {
	t, ok := c.topics[topic]
	return ok && partition >= 0 && partition < t.Partitions
}

// checkCommit finds the group of a commit and the error code of the whole
// commit (0 if it may go ahead); the group is nil for a simple consumer
// whose group does not exist yet.
func (c *Coordinator) checkCommit(now time.Time, version int16, req *kmsg.OffsetCommitRequest) (*group, int16) {
	g := c.lookup(req.Group)
	if g == nil {
		switch {
		case req.Generation < 0:
			return nil, 0
		case version >= 9:
			// v9+ says so, for both protocols.
			return nil, kerr.GroupIDNotFound.Code
		default:
			return nil, kerr.IllegalGeneration.Code
		}
	}
	if g.consumer != nil {
		cg := g.consumer
		if req.Generation < 0 && cg.Len() == 0 {
			return g, 0
		}
		code := cg.CheckCommit(req.MemberID, req.Generation)
		if code == kerr.UnknownMemberID.Code {
			return g, code
		}
		if version < 9 {
			// Members of a KIP-848 group must commit with v9+.
			return g, kerr.UnsupportedVersion.Code
		}
		return g, code
	}
	g.ensureClassic(c.cfg.Classic)
	code := g.classic.CheckCommit(req.MemberID, req.InstanceID, req.Generation)
	if code == 0 && req.MemberID != "" {
		g.classic.ExtendSession(now, req.MemberID)
	}
	return g, code
}

// javaLength is the length of s as Java counts it (UTF-16 code units), the
// measure of Kafka's offset.metadata.max.bytes.
func javaLength(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// OffsetFetch answers one group of an OffsetFetch (v8+ batches groups; the
// driver maps v0–v7 onto this). Nil topics means every committed partition.
//
// As in Kafka, an unknown group is no error: its partitions have no
// committed offset (-1), and a fetch of every partition finds none. In v9+
// a KIP-848 member names itself (member id and epoch) and is checked
// (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH); a client that sends neither (an
// admin) is not.
//
// With requireStable, a partition with a transactional offset pending
// (TxnOffsetCommit, txn_offsets.go) is UNSTABLE_OFFSET_COMMIT; without it,
// the last committed offset is answered, as in Kafka.
func (c *Coordinator) OffsetFetch(call Call, req kmsg.OffsetFetchRequestGroup, requireStable bool) kmsg.OffsetFetchResponseGroup {
	c.observe(call.Now)
	resp := kmsg.NewOffsetFetchResponseGroup()
	resp.Group = req.Group
	g := c.lookup(req.Group)
	if g != nil && g.consumer != nil && (req.MemberID != nil || req.MemberEpoch >= 0) {
		memberID := ""
		if req.MemberID != nil {
			memberID = *req.MemberID
		}
		if code := g.consumer.CheckCommit(memberID, req.MemberEpoch); code != 0 {
			resp.ErrorCode = code
			return resp
		}
	}

	answer := func(topic string, partition int32) kmsg.OffsetFetchResponseGroupTopicPartition {
		rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		rp.Partition = partition
		rp.Offset, rp.LeaderEpoch, rp.Metadata = -1, -1, errorString("")
		if requireStable && c.pendingOffset(req.Group, topic, partition) {
			rp.ErrorCode = kerr.UnstableOffsetCommit.Code
			return rp
		}
		if g == nil {
			return rp
		}
		if o, ok := g.offset(topic, partition); ok {
			rp.Offset, rp.LeaderEpoch, rp.Metadata = o.offset, o.leaderEpoch, errorString(o.metadata)
		}
		return rp
	}

	if req.Topics == nil {
		if g == nil {
			return resp
		}
		for _, topic := range slices.Sorted(maps.Keys(g.offsets)) {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic = topic
			for _, p := range slices.Sorted(maps.Keys(g.offsets[topic])) {
				rt.Partitions = append(rt.Partitions, answer(topic, p))
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetFetchResponseGroupTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rt.Partitions = append(rt.Partitions, answer(t.Topic, p))
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// OffsetDelete handles OffsetDelete: offsets of topics the group is not
// subscribed to, of a group that is empty or not using them.
//
// As in Kafka: GROUP_ID_NOT_FOUND for an unknown group; NON_EMPTY_GROUP
// for a classic group with members that does not speak the consumer
// protocol (its subscriptions are unknown); GROUP_SUBSCRIBED_TO_TOPIC for
// the partitions of a topic the members use. Deleting an offset that was
// never committed succeeds and writes nothing.
func (c *Coordinator) OffsetDelete(call Call, req *kmsg.OffsetDeleteRequest) Output {
	c.observe(call.Now)
	resp := kmsg.NewPtrOffsetDeleteResponse()
	resp.Version = call.Version
	out := Output{Replies: []Reply{reply(call, resp)}}
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return out
	}
	g := c.lookup(req.Group)
	if g == nil {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return out
	}
	g.ensureClassic(c.cfg.Classic)
	if g.classic != nil && !g.empty() && g.classic.ProtocolType() != "consumer" {
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		return out
	}
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		inUse := g.subscribed(t.Topic)
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			switch {
			case inUse:
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				// Pending transactional offsets go too, as in Kafka.
				pending := c.txn.supersede(req.Group, topicPartition{t.Topic, p.Partition}, true)
				if g.deleteOffset(t.Topic, p.Partition) || pending {
					out.Records = append(out.Records, c.offsetTombstone(req.Group, t.Topic, p.Partition))
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	c.dropIfSimple(g)
	return out
}
