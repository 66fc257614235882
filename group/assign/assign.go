// Package assign holds KIP-848's server-side assignors: given the members'
// subscriptions, the topics' partitions and the current assignment, compute
// the target assignment. "uniform" spreads every subscribed partition as
// evenly as possible and moves as few as it can; "range" gives each member
// contiguous ranges of each topic's partitions, co-partitioned across
// topics, as the classic range assignor does. Both are deterministic pure
// functions.
package assign

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

// Lookup returns an assignor by name; ok is false for names it does not
// know.
func Lookup(name string) (Assignor, bool) { return nil, false }
