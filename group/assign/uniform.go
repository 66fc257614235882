package assign

import (
	"cmp"
	"slices"
)

// Uniform is the "uniform" assignor. It balances the number of partitions
// per member and is sticky: a member keeps the partitions of its current
// assignment that it still subscribes to, and partitions move only from the
// most loaded members to the least loaded ones.
//
// It works in three steps:
//  1. keep: each member keeps its current partitions that still exist and
//     that it still subscribes to (a partition claimed by two members goes
//     to the first by member id);
//  2. fill: every partition left unassigned goes to the least loaded
//     member subscribed to its topic, topics with the fewest subscribers
//     first;
//  3. balance: while some member could hand one of its partitions to an
//     eligible member holding at least two fewer, the most loaded such
//     member does so, to the least loaded eligible member.
//
// When every member subscribes to the same topics the result differs by at
// most one partition between any two members, and step 3 moves the minimum
// number of partitions: a member only gives while it is the most loaded and
// only receives while it is the least loaded, so no partition moves twice.
// With different subscriptions the result is balanced as far as single
// moves allow (Kafka's heterogeneous builder is likewise a heuristic).
func Uniform(members []Member, partitions map[[16]byte]int32) Assignment {
	members = slices.Clone(members)
	slices.SortFunc(members, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })

	// eligible[topic] lists the indexes of members subscribed to it.
	eligible := make(map[[16]byte][]int)
	for i, m := range members {
		seen := make(map[[16]byte]bool, len(m.Topics))
		for _, t := range m.Topics {
			if _, ok := partitions[t]; !ok || seen[t] {
				continue
			}
			seen[t] = true
			eligible[t] = append(eligible[t], i)
		}
	}

	owner := make(map[topicPartition]int)
	owned := make([][]topicPartition, len(members))

	// 1. keep.
	for i, m := range members {
		subscribed := make(map[[16]byte]bool, len(m.Topics))
		for _, t := range m.Topics {
			subscribed[t] = true
		}
		var keep []topicPartition
		for t, ps := range m.Current {
			n, ok := partitions[t]
			if !ok || !subscribed[t] {
				continue
			}
			for _, p := range ps {
				if p >= 0 && p < n {
					keep = append(keep, topicPartition{t, p})
				}
			}
		}
		slices.SortFunc(keep, compareTP)
		keep = slices.Compact(keep)
		for _, tp := range keep {
			if _, taken := owner[tp]; taken {
				continue
			}
			owner[tp] = i
			owned[i] = append(owned[i], tp)
		}
	}

	// 2. fill, most constrained topics first.
	topics := sortedTopics(partitions)
	topics = slices.DeleteFunc(topics, func(t [16]byte) bool { return len(eligible[t]) == 0 })
	slices.SortStableFunc(topics, func(a, b [16]byte) int {
		return cmp.Compare(len(eligible[a]), len(eligible[b]))
	})
	leastLoaded := func(candidates []int) int {
		best := candidates[0]
		for _, c := range candidates[1:] {
			if len(owned[c]) < len(owned[best]) {
				best = c
			}
		}
		return best
	}
	for _, t := range topics {
		for p := int32(0); p < partitions[t]; p++ {
			tp := topicPartition{t, p}
			if _, taken := owner[tp]; taken {
				continue
			}
			to := leastLoaded(eligible[tp.topic])
			owner[tp] = to
			owned[to] = append(owned[to], tp)
		}
	}

	// 3. balance.
	stuck := make([]bool, len(members))
	for {
		from := -1
		for i := range members {
			if !stuck[i] && (from < 0 || len(owned[i]) > len(owned[from])) {
				from = i
			}
		}
		if from < 0 {
			break
		}
		if !moveOne(owned, eligible, owner, from, leastLoaded) {
			stuck[from] = true
			continue
		}
		clear(stuck)
	}
	return build(members, owned)
}

// moveOne hands one partition of member from (the last movable one in its
// list) to the least loaded eligible member holding at least two fewer; it
// reports whether it moved one.
func moveOne(owned [][]topicPartition, eligible map[[16]byte][]int, owner map[topicPartition]int, from int, leastLoaded func([]int) int) bool {
	list := owned[from]
	for k := len(list) - 1; k >= 0; k-- {
		tp := list[k]
		to := leastLoaded(eligible[tp.topic])
		if len(owned[to]) >= len(list)-1 {
			continue
		}
		owned[from] = append(list[:k], list[k+1:]...)
		owned[to] = append(owned[to], tp)
		owner[tp] = to
		return true
	}
	return false
}
