package consumer

// Records, in Kafka's schema for consumer groups in __consumer_offsets
// (group-coordinator/src/main/resources/common/message):
//
//	key version 3  ConsumerGroupMetadataKey              {group}         → value v0 {Epoch}
//	key version 4  ConsumerGroupPartitionMetadataKey     {group}         → (only tombstoned; Kafka 4 no longer needs it)
//	key version 5  ConsumerGroupMemberMetadataKey        {group, member} → value v0 {InstanceId, RackId, ClientId, ClientHost,
//	                                                                          SubscribedTopicNames, SubscribedTopicRegex,
//	                                                                          RebalanceTimeoutMs, ServerAssignor}
//	key version 6  ConsumerGroupTargetAssignmentMetadataKey {group}      → value v0 {AssignmentEpoch}
//	key version 7  ConsumerGroupTargetAssignmentMemberKey   {group, member} → value v0 {TopicPartitions}
//	key version 8  ConsumerGroupCurrentMemberAssignmentKey  {group, member} → value v0 {MemberEpoch, PreviousMemberEpoch,
//	                                                                          State, AssignedPartitions,
//	                                                                          PartitionsPendingRevocation}
//
// A key is its int16 version then its fields, not flexible (int16-length
// strings). A value is its int16 version then its fields, flexible
// (compact strings and arrays, uvarint length + 1; a tagged-field section
// closing each struct). A nil value is a tombstone.

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
)

const (
	keyGroupMetadata     int16 = 3
	keyPartitionMetadata int16 = 4
	keyMemberMetadata    int16 = 5
	keyTargetMetadata    int16 = 6
	keyTargetMember      int16 = 7
	keyCurrentAssignment int16 = 8
)

func groupKey(version int16, group string) []byte {
	return kbin.AppendString(kbin.AppendInt16(nil, version), group)
}

func memberKey(version int16, group, member string) []byte {
	return kbin.AppendString(groupKey(version, group), member)
}

func groupMetadataKey(group string) []byte     { return groupKey(keyGroupMetadata, group) }
func partitionMetadataKey(group string) []byte { return groupKey(keyPartitionMetadata, group) }
func targetMetadataKey(group string) []byte    { return groupKey(keyTargetMetadata, group) }
func memberMetadataKey(group, member string) []byte {
	return memberKey(keyMemberMetadata, group, member)
}
func targetMemberKey(group, member string) []byte { return memberKey(keyTargetMember, group, member) }
func currentAssignmentKey(group, member string) []byte {
	return memberKey(keyCurrentAssignment, group, member)
}

// valueHeader starts a version 0 value.
func valueHeader() []byte { return kbin.AppendInt16(nil, 0) }

func endStruct(dst []byte) []byte { return kbin.AppendUvarint(dst, 0) } // no tagged fields

func groupMetadataValue(epoch int32) []byte {
	return endStruct(kbin.AppendInt32(valueHeader(), epoch))
}

func targetMetadataValue(epoch int32) []byte {
	return endStruct(kbin.AppendInt32(valueHeader(), epoch))
}

func appendPartitions(dst []byte, a assignment) []byte {
	topics := a.sortedTopics()
	dst = kbin.AppendCompactArrayLen(dst, len(topics))
	for _, t := range topics {
		dst = kbin.AppendUuid(dst, t)
		dst = kbin.AppendCompactArrayLen(dst, len(a[t]))
		for _, p := range a[t] {
			dst = kbin.AppendInt32(dst, p)
		}
		dst = endStruct(dst)
	}
	return dst
}

func targetMemberValue(a assignment) []byte {
	return endStruct(appendPartitions(valueHeader(), a))
}

func memberMetadataValue(m *member) []byte {
	dst := valueHeader()
	dst = kbin.AppendCompactNullableString(dst, m.instanceID)
	dst = kbin.AppendCompactNullableString(dst, m.rackID)
	dst = kbin.AppendCompactString(dst, m.clientID)
	dst = kbin.AppendCompactString(dst, m.clientHost)
	dst = kbin.AppendCompactArrayLen(dst, len(m.topicNames))
	for _, n := range m.topicNames {
		dst = kbin.AppendCompactString(dst, n)
	}
	dst = kbin.AppendCompactNullableString(dst, m.topicRegex)
	dst = kbin.AppendInt32(dst, m.rebalanceTimeout)
	dst = kbin.AppendCompactNullableString(dst, m.serverAssignor)
	return endStruct(dst)
}

func currentAssignmentValue(m *member) []byte {
	dst := valueHeader()
	dst = kbin.AppendInt32(dst, m.epoch)
	dst = kbin.AppendInt32(dst, m.previousEpoch)
	dst = kbin.AppendInt8(dst, int8(m.state))
	dst = appendPartitions(dst, m.assigned)
	dst = appendPartitions(dst, m.pendingRevocation)
	return endStruct(dst)
}

func (g *Group) emitCurrentAssignment(m *member) {
	g.emit(currentAssignmentKey(g.id, m.id), currentAssignmentValue(m))
}

// parseKey reads a consumer-group record key.
func parseKey(key []byte) (version int16, group, member string, err error) {
	b := kbin.Reader{Src: key}
	version = b.Int16()
	if b.Complete() != nil || version < keyGroupMetadata || version > keyCurrentAssignment {
		return 0, "", "", fmt.Errorf("not a consumer group record key (version %d)", version)
	}
	group = b.String()
	switch version {
	case keyMemberMetadata, keyTargetMember, keyCurrentAssignment:
		member = b.String()
	}
	if err := b.Complete(); err != nil {
		return 0, "", "", fmt.Errorf("consumer group record key version %d: %w", version, err)
	}
	return version, group, member, nil
}

// GroupID decodes the group id of a consumer-group record key (key versions
// 3 to 8); ok is false for other keys.
func GroupID(key []byte) (id string, ok bool) {
	_, group, _, err := parseKey(key)
	return group, err == nil
}

// valueReader reads a value's fields after its version.
type valueReader struct{ kbin.Reader }

func newValueReader(value []byte) (*valueReader, error) {
	r := &valueReader{kbin.Reader{Src: value}}
	if v := r.Int16(); r.Complete() != nil || v < 0 {
		return nil, errors.New("consumer group record value: bad version")
	}
	return r, nil
}

// skipTags skips a tagged-field section.
func (r *valueReader) skipTags() {
	for n := r.Uvarint(); n > 0 && r.Ok(); n-- {
		r.Uvarint() // tag
		r.Span(int(r.Uvarint()))
	}
}

func (r *valueReader) partitions() assignment {
	a := make(assignment)
	for n := r.CompactArrayLen(); n > 0 && r.Ok(); n-- {
		t := r.Uuid()
		var ps []int32
		for k := r.CompactArrayLen(); k > 0 && r.Ok(); k-- {
			ps = append(ps, r.Int32())
		}
		r.skipTags()
		a[t] = append(a[t], ps...)
	}
	return assignmentOf(flatten(a))
}

func flatten(a assignment) []topicPartition {
	var out []topicPartition
	a.each(func(tp topicPartition) { out = append(out, tp) })
	return out
}

// Replay applies one record read back from __consumer_offsets at start-up;
// a nil value is a tombstone.
func (g *Group) Replay(key, value []byte) error {
	version, group, memberID, err := parseKey(key)
	if err != nil {
		return err
	}
	if group != g.id {
		return fmt.Errorf("record of group %q replayed into group %q", group, g.id)
	}
	g.metadataKnown = false
	if value == nil {
		g.replayTombstone(version, memberID)
		return nil
	}
	r, err := newValueReader(value)
	if err != nil {
		return err
	}
	switch version {
	case keyGroupMetadata:
		epoch := r.Int32()
		if err := r.Complete(); err != nil {
			return fmt.Errorf("group metadata of %q: %w", g.id, err)
		}
		g.dead = false
		g.epoch = epoch
	case keyPartitionMetadata: // derived again from the topics
	case keyMemberMetadata:
		m := g.replayMember(memberID)
		m.instanceID = r.CompactNullableString()
		m.rackID = r.CompactNullableString()
		m.clientID = r.CompactString()
		m.clientHost = r.CompactString()
		var names []string
		for n := r.CompactArrayLen(); n > 0 && r.Ok(); n-- {
			names = append(names, r.CompactString())
		}
		m.topicNames = names
		m.topicRegex = r.CompactNullableString()
		m.rebalanceTimeout = r.Int32()
		m.serverAssignor = r.CompactNullableString()
		if err := r.Complete(); err != nil {
			return fmt.Errorf("member %q of %q: %w", memberID, g.id, err)
		}
	case keyTargetMetadata:
		epoch := r.Int32()
		if err := r.Complete(); err != nil {
			return fmt.Errorf("target assignment epoch of %q: %w", g.id, err)
		}
		g.assignmentEpoch = epoch
	case keyTargetMember:
		a := r.partitions()
		if err := r.Complete(); err != nil {
			return fmt.Errorf("target assignment of %q in %q: %w", memberID, g.id, err)
		}
		g.target[memberID] = a
	case keyCurrentAssignment:
		epoch, previous, state := r.Int32(), r.Int32(), memberState(r.Int8())
		assigned, pending := r.partitions(), r.partitions()
		if err := r.Complete(); err != nil {
			return fmt.Errorf("assignment of %q in %q: %w", memberID, g.id, err)
		}
		m := g.replayMember(memberID)
		m.epoch, m.previousEpoch, m.state = epoch, previous, state
		m.assigned, m.pendingRevocation = assigned, pending
		if state > stateUnreleased {
			// A state this version does not know (a newer broker wrote
			// it): hold everything as pending revocation, so the member
			// gives it all up before it gets anything new.
			m.state = stateUnrevoked
			m.pendingRevocation = assignmentOf(append(flatten(assigned), flatten(pending)...))
			m.assigned = make(assignment)
		}
	}
	return nil
}

func (g *Group) replayMember(id string) *member {
	m, ok := g.members[id]
	if !ok {
		m = newMember(id)
		g.members[id] = m
	}
	return m
}

func (g *Group) replayTombstone(version int16, memberID string) {
	switch version {
	case keyGroupMetadata:
		*g = *New(g.id, g.cfg)
		g.dead = true
		g.metadataKnown = false
	case keyMemberMetadata:
		delete(g.members, memberID)
	case keyTargetMember:
		delete(g.target, memberID)
	case keyCurrentAssignment:
		if m, ok := g.members[memberID]; ok {
			m.assigned, m.pendingRevocation = make(assignment), make(assignment)
		}
	}
}

// Loaded ends replay: members restored from the log get a fresh session
// from now.
func (g *Group) Loaded(now time.Time) {
	clear(g.static)
	clear(g.owners)
	for id, m := range g.members {
		if m.instanceID != nil {
			g.static[*m.instanceID] = id
		}
		m.assignedAt = make(map[topicPartition]int32)
		hold := func(tp topicPartition) {
			g.owners[tp] = id
			m.assignedAt[tp] = max(m.epoch, 0)
		}
		m.assigned.each(hold)
		m.pendingRevocation.each(hold)
		m.topics = nil
		m.sessionDeadline = now.Add(g.cfg.SessionTimeout)
		m.rebalanceDeadline = time.Time{}
		if m.state == stateUnrevoked {
			m.rebalanceDeadline = now.Add(rebalanceTimeout(m, g.cfg))
		}
	}
	for id := range g.target {
		if _, ok := g.members[id]; !ok {
			delete(g.target, id)
		}
	}
	if len(g.members) == 0 && g.epoch == 0 {
		g.metadataKnown = true
	}
}
