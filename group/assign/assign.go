// Package assign holds KIP-848's server-side assignors: given the members'
// subscriptions, the topics' partitions and the current assignment, compute
// the target assignment. "uniform" spreads every subscribed partition as
// evenly as possible and moves as few as it can; "range" gives each member
// contiguous ranges of each topic's partitions, co-partitioned across
// topics, as the classic range assignor does. Both are deterministic pure
// functions.
//
// Invariants of every assignor's result:
//   - every partition of a topic some member subscribes to is assigned to
//     exactly one member, and only to a member subscribed to its topic;
//   - no partition of a topic nobody subscribes to (or of a topic missing
//     from the partition counts) is assigned;
//   - every member appears in the result, with an empty map when it gets
//     nothing; partition lists are sorted;
//   - the same input gives the same output (no map iteration order, no
//     randomness).
package assign

import (
	"bytes"
	"slices"
)

// Member is one member as an assignor sees it.
type Member struct {
	ID string
	// InstanceID is group.instance.id, empty when not static; range sorts
	// members by it when present.
	InstanceID string
	// Topics are the topic ids the member subscribes to (resolved from names
	// or a regex by the group).
	Topics [][16]byte
	// Current is the member's current assignment, for stickiness.
	Current map[[16]byte][]int32
}

// Assignment is a target assignment: member id → topic id → partitions,
// sorted.
type Assignment map[string]map[[16]byte][]int32

// Assignor computes a target assignment; partitions is each topic's
// partition count.
type Assignor func(members []Member, partitions map[[16]byte]int32) Assignment

// Names are the assignors Lookup knows, in Kafka's default order of
// group.consumer.assignors.
var names = []string{"uniform", "range"}

// Names returns the names of the assignors Lookup knows.
func Names() []string { return slices.Clone(names) }

// Lookup returns an assignor by name; ok is false for names it does not
// know.
func Lookup(name string) (Assignor, bool) {
	switch name {
	case "uniform":
		return Uniform, true
	case "range":
		return Range, true
	}
	return nil, false
}

// topicPartition names one partition.
type topicPartition struct {
	topic     [16]byte
	partition int32
}

func compareTP(a, b topicPartition) int {
	if c := bytes.Compare(a.topic[:], b.topic[:]); c != 0 {
		return c
	}
	return int(a.partition) - int(b.partition)
}

// sortedTopics returns the keys of partitions in byte order.
func sortedTopics(partitions map[[16]byte]int32) [][16]byte {
	ids := make([][16]byte, 0, len(partitions))
	for id := range partitions {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
	return ids
}

// build turns per-member partition lists into an Assignment with sorted
// partitions and an entry for every member.
func build(members []Member, owned [][]topicPartition) Assignment {
	out := make(Assignment, len(members))
	for i, m := range members {
		a := make(map[[16]byte][]int32)
		for _, tp := range owned[i] {
			a[tp.topic] = append(a[tp.topic], tp.partition)
		}
		for _, ps := range a {
			slices.Sort(ps)
		}
		out[m.ID] = a
	}
	return out
}
