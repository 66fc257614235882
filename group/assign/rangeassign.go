package assign

import (
	"cmp"
	"slices"
)

// Range is the "range" assignor. For each topic, the members subscribed to
// it, sorted by instance id (or member id for members without one), get
// contiguous ranges of its partitions: with n partitions and k members each
// gets n/k, and the first n%k one more. Members that subscribe to the same
// topics with the same partition counts therefore get the same partition
// numbers of every topic (co-partitioning, for joins). Static members keep
// their ranges across restarts because their order does not depend on the
// member id. It ignores the current assignment, as Kafka's does.
func Range(members []Member, partitions map[[16]byte]int32) Assignment {
	members = slices.Clone(members)
	key := func(m Member) string {
		if m.InstanceID != "" {
			return m.InstanceID
		}
		return m.ID
	}
	slices.SortFunc(members, func(a, b Member) int {
		if c := cmp.Compare(key(a), key(b)); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})

	subscribers := make(map[[16]byte][]int)
	for i, m := range members {
		seen := make(map[[16]byte]bool, len(m.Topics))
		for _, t := range m.Topics {
			if _, ok := partitions[t]; ok && !seen[t] {
				seen[t] = true
				subscribers[t] = append(subscribers[t], i)
			}
		}
	}

	owned := make([][]topicPartition, len(members))
	for _, t := range sortedTopics(partitions) {
		subs := subscribers[t]
		if len(subs) == 0 {
			continue
		}
		n := partitions[t]
		quota, extra := n/int32(len(subs)), n%int32(len(subs))
		next := int32(0)
		for i, m := range subs {
			count := quota
			if int32(i) < extra {
				count++
			}
			for p := next; p < next+count; p++ {
				owned[m] = append(owned[m], topicPartition{t, p})
			}
			next += count
		}
	}
	return build(members, owned)
}
