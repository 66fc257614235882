package consumer

import (
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Describe answers ConsumerGroupDescribe for this group: its state,
// epochs and assignor, and each member (sorted by member id) with its
// subscription, client, current assignment (without the partitions it
// still has to revoke) and target assignment. Topics are named from
// topics; partitions of a topic it does not know are left out, as Kafka
// does.
func (g *Group) Describe(version int16, topics map[string]Topic) kmsg.ConsumerGroupDescribeResponseGroup {
	names := make(map[[16]byte]string, len(topics)+len(g.subscribed))
	for _, t := range g.subscribed {
		names[t.ID] = t.Name
	}
	for name, t := range topics {
		names[t.ID] = name
	}
	out := kmsg.NewConsumerGroupDescribeResponseGroup()
	out.Group = g.id
	out.State = string(g.State())
	out.Epoch = g.epoch
	out.AssignmentEpoch = g.assignmentEpoch
	out.AssignorName = g.preferredAssignor()
	out.Members = []kmsg.ConsumerGroupDescribeResponseGroupMember{}
	for _, id := range slices.Sorted(maps.Keys(g.members)) {
		m := g.members[id]
		dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = strPtr(m.instanceID)
		dm.RackID = strPtr(m.rackID)
		dm.MemberEpoch = m.epoch
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		dm.SubscribedTopics = slices.Clone(m.topicNames)
		if dm.SubscribedTopics == nil {
			dm.SubscribedTopics = []string{}
		}
		dm.SubscribedTopicRegex = strPtr(m.topicRegex)
		dm.Assignment = describeAssignment(m.assigned, names)
		dm.TargetAssignment = describeAssignment(g.target[id], names)
		if version >= 1 {
			dm.MemberType = 1 // a member of the consumer protocol
		}
		out.Members = append(out.Members, dm)
	}
	return out
}

func describeAssignment(a assignment, names map[[16]byte]string) kmsg.Assignment {
	out := kmsg.Assignment{TopicPartitions: []kmsg.AssignmentTopicPartition{}}
	for _, t := range a.sortedTopics() {
		name, ok := names[t]
		if !ok {
			continue
		}
		out.TopicPartitions = append(out.TopicPartitions, kmsg.AssignmentTopicPartition{
			TopicID:    t,
			Topic:      name,
			Partitions: slices.Clone(a[t]),
		})
	}
	return out
}

// CheckCommit is the error code (0 for none) of an OffsetCommit (or an
// OffsetFetch v9+) by memberID at memberEpoch: UNKNOWN_MEMBER_ID,
// STALE_MEMBER_EPOCH.
//
// A negative epoch on a group with no members is the admin client or a
// consumer outside group management, and may commit. Otherwise the member
// must exist and the epoch must be its own, as Kafka up to 4.2 requires
// of every commit and still requires of OffsetFetch. Kafka 4.3 (KIP-1251)
// also accepts an older epoch for the partitions the member got at or
// before it: callers with the partitions at hand check those with
// CheckCommitPartition.
func (g *Group) CheckCommit(memberID string, memberEpoch int32) int16 {
	if memberEpoch < 0 && len(g.members) == 0 {
		return 0
	}
	m, ok := g.members[memberID]
	if !ok {
		return kerr.UnknownMemberID.Code
	}
	if memberEpoch != m.epoch {
		return kerr.StaleMemberEpoch.Code
	}
	return 0
}

// CheckCommitPartition is the error code (0 for none) of committing one
// partition by memberID at memberEpoch, with KIP-1251's rule (Kafka 4.3):
// the member's own epoch commits anything; a newer epoch is
// STALE_MEMBER_EPOCH; an older one commits only a partition the member
// holds (assigned, or pending revocation) and got at that epoch or before.
// The epochs at which partitions were assigned are not persisted: after a
// restart they count from the member's epoch at the time, which refuses
// older epochs as Kafka before 4.3 did.
func (g *Group) CheckCommitPartition(memberID string, memberEpoch int32, topicID [16]byte, partition int32) int16 {
	if code := g.CheckCommit(memberID, memberEpoch); code != kerr.StaleMemberEpoch.Code {
		return code
	}
	m := g.members[memberID]
	if memberEpoch > m.epoch {
		return kerr.StaleMemberEpoch.Code
	}
	if at, ok := m.assignedAt[topicPartition{topicID, partition}]; ok && memberEpoch >= at {
		return 0
	}
	return kerr.StaleMemberEpoch.Code
}
