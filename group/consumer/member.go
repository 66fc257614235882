package consumer

import (
	"bytes"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// memberState is where a member is in its reconciliation, with the values
// Kafka persists (MemberState).
type memberState int8

const (
	// stateStable: the member has converged to the target assignment of
	// its epoch.
	stateStable memberState = 0
	// stateUnrevoked: the member must revoke partitions before it may move
	// to the next epoch.
	stateUnrevoked memberState = 1
	// stateUnreleased: the member is at the target epoch but waits for
	// partitions other members have not released yet.
	stateUnreleased memberState = 2
)

// topicPartition names one partition.
type topicPartition struct {
	topic     [16]byte
	partition int32
}

// assignment is a set of partitions: topic id → sorted partitions. A topic
// is present only with at least one partition.
type assignment map[[16]byte][]int32

func (a assignment) has(tp topicPartition) bool {
	_, ok := slices.BinarySearch(a[tp.topic], tp.partition)
	return ok
}

func (a assignment) each(fn func(topicPartition)) {
	for t, ps := range a {
		for _, p := range ps {
			fn(topicPartition{t, p})
		}
	}
}

func (a assignment) len() int {
	n := 0
	for _, ps := range a {
		n += len(ps)
	}
	return n
}

func (a assignment) equal(b assignment) bool {
	if len(a) != len(b) {
		return false
	}
	for t, ps := range a {
		if !slices.Equal(ps, b[t]) {
			return false
		}
	}
	return true
}

// sortedTopics returns a's topic ids in byte order.
func (a assignment) sortedTopics() [][16]byte {
	ids := make([][16]byte, 0, len(a))
	for t := range a {
		ids = append(ids, t)
	}
	slices.SortFunc(ids, func(x, y [16]byte) int { return bytes.Compare(x[:], y[:]) })
	return ids
}

// assignmentOf builds an assignment from a list of partitions.
func assignmentOf(tps []topicPartition) assignment {
	a := make(assignment)
	for _, tp := range tps {
		a[tp.topic] = append(a[tp.topic], tp.partition)
	}
	for t, ps := range a {
		slices.Sort(ps)
		a[t] = slices.Compact(ps)
	}
	return a
}

// assignmentFrom copies an assignor's result, dropping empty topics.
func assignmentFrom(m map[[16]byte][]int32) assignment {
	a := make(assignment, len(m))
	for t, ps := range m {
		if len(ps) > 0 {
			a[t] = slices.Clone(ps)
		}
	}
	return a
}

// member is one member of the group.
type member struct {
	id         string
	instanceID *string
	rackID     *string
	clientID   string
	clientHost string
	// topicNames is the subscription by name, sorted and deduplicated.
	topicNames []string
	// topicRegex is the subscription by regex, nil if none.
	topicRegex *string
	// rebalanceTimeout is how long the member may take to revoke, in ms.
	rebalanceTimeout int32
	serverAssignor   *string

	epoch         int32
	previousEpoch int32
	state         memberState
	// assigned are the partitions the member is told it owns.
	assigned assignment
	// pendingRevocation are partitions it still holds but must give up.
	pendingRevocation assignment
	// assignedAt is the member epoch at which each held partition was
	// assigned to it (KIP-1251), for the relaxed commit check.
	assignedAt map[topicPartition]int32

	// topics are the names of the existing topics the subscription
	// resolves to, sorted; set on each metadata refresh.
	topics []string

	sessionDeadline time.Time
	// rebalanceDeadline is when a member that must revoke is fenced; zero
	// unless state is stateUnrevoked.
	rebalanceDeadline time.Time
}

func newMember(id string) *member {
	return &member{
		id:                id,
		rebalanceTimeout:  -1,
		assigned:          make(assignment),
		pendingRevocation: make(assignment),
		assignedAt:        make(map[topicPartition]int32),
	}
}

// reconciledTo is whether the member has converged to the target
// assignment of epoch.
func (m *member) reconciledTo(epoch int32) bool {
	return m.state == stateStable && m.epoch == epoch
}

// metadata is what the member's ConsumerGroupMemberMetadata record holds,
// to see whether it changed.
type memberMetadata struct {
	instanceID, rackID, topicRegex, serverAssignor string
	hasInstance, hasRack, hasRegex, hasAssignor    bool
	clientID, clientHost                           string
	topicNames                                     string
	rebalanceTimeout                               int32
}

func deref(s *string) (string, bool) {
	if s == nil {
		return "", false
	}
	return *s, true
}

func (m *member) metadata() memberMetadata {
	md := memberMetadata{
		clientID:         m.clientID,
		clientHost:       m.clientHost,
		rebalanceTimeout: m.rebalanceTimeout,
	}
	md.instanceID, md.hasInstance = deref(m.instanceID)
	md.rackID, md.hasRack = deref(m.rackID)
	md.topicRegex, md.hasRegex = deref(m.topicRegex)
	md.serverAssignor, md.hasAssignor = deref(m.serverAssignor)
	for _, n := range m.topicNames {
		md.topicNames += n + "\x00"
	}
	return md
}

// ownsAny is whether the owned partitions a member reported include any
// of set; a member that did not report them (nil) is assumed to.
func ownsAny(owned []kmsg.ConsumerGroupHeartbeatRequestTopic, set assignment) bool {
	if owned == nil {
		return set.len() > 0
	}
	for _, t := range owned {
		for _, p := range t.Partitions {
			if set.has(topicPartition{t.TopicID, p}) {
				return true
			}
		}
	}
	return false
}

// ownedSubsetOf is whether the reported owned partitions are all in set.
func ownedSubsetOf(owned []kmsg.ConsumerGroupHeartbeatRequestTopic, set assignment) bool {
	if owned == nil {
		return false
	}
	for _, t := range owned {
		for _, p := range t.Partitions {
			if !set.has(topicPartition{t.TopicID, p}) {
				return false
			}
		}
	}
	return true
}

func strPtr(s *string) *string {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}
