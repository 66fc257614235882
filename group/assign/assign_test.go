package assign

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

func tid(b byte) [16]byte { return [16]byte{b} }

func members(n int, topics ...[16]byte) []Member {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = Member{ID: fmt.Sprintf("m%02d", i), Topics: topics}
	}
	return ms
}

// check verifies the invariants every assignor promises and returns the
// number of partitions per member.
func check(t *testing.T, ms []Member, partitions map[[16]byte]int32, a Assignment) map[string]int {
	t.Helper()
	subscribed := map[string]map[[16]byte]bool{}
	anySub := map[[16]byte]bool{}
	for _, m := range ms {
		subscribed[m.ID] = map[[16]byte]bool{}
		for _, tp := range m.Topics {
			subscribed[m.ID][tp] = true
			anySub[tp] = true
		}
		if _, ok := a[m.ID]; !ok {
			t.Fatalf("member %s missing from the assignment", m.ID)
		}
	}
	if len(a) != len(ms) {
		t.Fatalf("assignment has %d members, want %d", len(a), len(ms))
	}
	owner := map[topicPartition]string{}
	load := map[string]int{}
	for id, topics := range a {
		for topic, ps := range topics {
			if !slices.IsSorted(ps) {
				t.Fatalf("%s: partitions of %v not sorted: %v", id, topic, ps)
			}
			if !subscribed[id][topic] {
				t.Fatalf("%s got topic %v it does not subscribe to", id, topic)
			}
			for _, p := range ps {
				if p < 0 || p >= partitions[topic] {
					t.Fatalf("%s got partition %d of %v, which has %d", id, p, topic, partitions[topic])
				}
				tp := topicPartition{topic, p}
				if prev, dup := owner[tp]; dup {
					t.Fatalf("partition %v assigned to %s and %s", tp, prev, id)
				}
				owner[tp] = id
				load[id]++
			}
		}
	}
	for topic, n := range partitions {
		if !anySub[topic] {
			continue
		}
		for p := int32(0); p < n; p++ {
			if _, ok := owner[topicPartition{topic, p}]; !ok {
				t.Fatalf("partition %d of %v is not assigned", p, topic)
			}
		}
	}
	return load
}

func spread(load map[string]int, ms []Member) (lo, hi int) {
	lo, hi = 1<<30, -1
	for _, m := range ms {
		lo, hi = min(lo, load[m.ID]), max(hi, load[m.ID])
	}
	return lo, hi
}

func withCurrent(ms []Member, a Assignment) []Member {
	out := slices.Clone(ms)
	for i := range out {
		out[i].Current = a[out[i].ID]
	}
	return out
}

func moved(before, after Assignment) int {
	own := map[topicPartition]string{}
	for id, ts := range before {
		for t, ps := range ts {
			for _, p := range ps {
				own[topicPartition{t, p}] = id
			}
		}
	}
	n := 0
	for id, ts := range after {
		for t, ps := range ts {
			for _, p := range ps {
				if prev, ok := own[topicPartition{t, p}]; ok && prev != id {
					n++
				}
			}
		}
	}
	return n
}

func TestUniformBalancesHomogeneous(t *testing.T) {
	parts := map[[16]byte]int32{tid(1): 12, tid(2): 7, tid(3): 1}
	for n := 1; n <= 25; n++ {
		ms := members(n, tid(1), tid(2), tid(3))
		a := Uniform(ms, parts)
		lo, hi := spread(check(t, ms, parts, a), ms)
		if hi-lo > 1 {
			t.Fatalf("%d members: loads from %d to %d", n, lo, hi)
		}
	}
}

func TestUniformAddingMemberMovesOnlyWhatMust(t *testing.T) {
	parts := map[[16]byte]int32{tid(1): 12}
	ms := members(3, tid(1))
	a := Uniform(ms, parts)
	// Adding a fourth member: each of the three gives exactly one.
	ms4 := append(withCurrent(ms, a), Member{ID: "m99", Topics: [][16]byte{tid(1)}})
	b := Uniform(ms4, parts)
	load := check(t, ms4, parts, b)
	if got := moved(a, b); got != 3 {
		t.Fatalf("moved %d partitions, want 3", got)
	}
	if load["m99"] != 3 {
		t.Fatalf("new member got %d partitions, want 3", load["m99"])
	}
	// Every old member kept the rest of what it had.
	for _, m := range ms {
		kept := 0
		for _, p := range b[m.ID][tid(1)] {
			if slices.Contains(a[m.ID][tid(1)], p) {
				kept++
			}
		}
		if kept != 3 {
			t.Fatalf("%s kept %d of its partitions, want 3", m.ID, kept)
		}
	}
}

func TestUniformRemovingMemberMovesOnlyItsPartitions(t *testing.T) {
	parts := map[[16]byte]int32{tid(1): 10, tid(2): 5}
	ms := members(5, tid(1), tid(2))
	a := Uniform(ms, parts)
	rest := withCurrent(ms[1:], a)
	b := Uniform(rest, parts)
	check(t, rest, parts, b)
	gone := 0
	for _, ps := range a[ms[0].ID] {
		gone += len(ps)
	}
	if got := moved(a, b); got != gone {
		t.Fatalf("moved %d partitions, want %d (those of the member that left)", got, gone)
	}
}

func TestUniformIsStableWhenNothingChanges(t *testing.T) {
	parts := map[[16]byte]int32{tid(1): 9, tid(2): 4}
	ms := members(4, tid(1), tid(2))
	a := Uniform(ms, parts)
	b := Uniform(withCurrent(ms, a), parts)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("assignment changed with no change of input:\n%v\n%v", a, b)
	}
}

func TestUniformHeterogeneous(t *testing.T) {
	parts := map[[16]byte]int32{tid(1): 6, tid(2): 6, tid(3): 3}
	ms := []Member{
		{ID: "a", Topics: [][16]byte{tid(1)}},
		{ID: "b", Topics: [][16]byte{tid(1), tid(2)}},
		{ID: "c", Topics: [][16]byte{tid(2)}},
		{ID: "d", Topics: [][16]byte{tid(9)}}, // topic that does not exist
	}
	a := Uniform(ms, parts)
	load := check(t, ms, parts, a)
	if len(a["d"]) != 0 {
		t.Fatalf("member of a missing topic got %v", a["d"])
	}
	if _, ok := a["a"][tid(3)]; ok {
		t.Fatal("a topic nobody subscribes to was assigned")
	}
	if load["a"] != 4 || load["b"] != 4 || load["c"] != 4 {
		t.Fatalf("loads %v, want 4 each", load)
	}
}

func TestUniformDropsPartitionsThatNoLongerQualify(t *testing.T) {
	parts := map[[16]byte]int32{tid(1): 2}
	ms := []Member{
		{ID: "a", Topics: [][16]byte{tid(1)}, Current: map[[16]byte][]int32{tid(1): {0, 1, 5}, tid(2): {0}}},
		{ID: "b", Topics: [][16]byte{tid(1)}, Current: map[[16]byte][]int32{tid(1): {0}}},
	}
	a := Uniform(ms, parts)
	check(t, ms, parts, a)
	if !reflect.DeepEqual(a["a"][tid(1)], []int32{0}) || !reflect.DeepEqual(a["b"][tid(1)], []int32{1}) {
		t.Fatalf("got %v", a)
	}
}

func TestRangeContiguousAndCoPartitioned(t *testing.T) {
	parts := map[[16]byte]int32{tid(1): 7, tid(2): 7}
	ms := []Member{
		{ID: "z", InstanceID: "i0", Topics: [][16]byte{tid(1), tid(2)}},
		{ID: "a", InstanceID: "i2", Topics: [][16]byte{tid(1), tid(2)}},
		{ID: "m", InstanceID: "i1", Topics: [][16]byte{tid(1), tid(2)}},
	}
	a := Range(ms, parts)
	check(t, ms, parts, a)
	want := map[string][]int32{"z": {0, 1, 2}, "m": {3, 4}, "a": {5, 6}}
	for id, ps := range want {
		for _, topic := range [][16]byte{tid(1), tid(2)} {
			if !reflect.DeepEqual(a[id][topic], ps) {
				t.Fatalf("%s topic %v: got %v, want %v", id, topic, a[id][topic], ps)
			}
		}
	}
}

func TestRangeHeterogeneous(t *testing.T) {
	parts := map[[16]byte]int32{tid(1): 4, tid(2): 3}
	ms := []Member{
		{ID: "a", Topics: [][16]byte{tid(1)}},
		{ID: "b", Topics: [][16]byte{tid(1), tid(2)}},
		{ID: "c", Topics: [][16]byte{tid(2)}},
	}
	a := Range(ms, parts)
	check(t, ms, parts, a)
	if !reflect.DeepEqual(a["a"][tid(1)], []int32{0, 1}) || !reflect.DeepEqual(a["b"][tid(1)], []int32{2, 3}) ||
		!reflect.DeepEqual(a["b"][tid(2)], []int32{0, 1}) || !reflect.DeepEqual(a["c"][tid(2)], []int32{2}) {
		t.Fatalf("got %v", a)
	}
}

func TestLookup(t *testing.T) {
	for _, name := range Names() {
		if _, ok := Lookup(name); !ok {
			t.Fatalf("Lookup(%q) failed", name)
		}
	}
	if _, ok := Lookup("sticky"); ok {
		t.Fatal("Lookup of an unknown assignor succeeded")
	}
}

// TestAssignorsProperty runs both assignors over random groups: the
// invariants always hold, the result does not depend on the order of the
// members, uniform is balanced when subscriptions are equal, and feeding
// uniform its own result back changes nothing.
func TestAssignorsProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 400 {
		nTopics := 1 + rng.IntN(5)
		parts := map[[16]byte]int32{}
		var all [][16]byte
		for i := range nTopics {
			parts[tid(byte(i+1))] = int32(rng.IntN(20))
			all = append(all, tid(byte(i+1)))
		}
		homogeneous := rng.IntN(2) == 0
		n := 1 + rng.IntN(12)
		ms := make([]Member, n)
		for i := range ms {
			ms[i].ID = fmt.Sprintf("m%d", rng.IntN(1000)*100+i)
			if rng.IntN(3) == 0 {
				ms[i].InstanceID = fmt.Sprintf("inst%d", rng.IntN(1000)*100+i)
			}
			if homogeneous {
				ms[i].Topics = all
			} else {
				for _, topic := range all {
					if rng.IntN(2) == 0 {
						ms[i].Topics = append(ms[i].Topics, topic)
					}
				}
			}
			if rng.IntN(2) == 0 { // a random, possibly overlapping, current assignment
				ms[i].Current = map[[16]byte][]int32{}
				for _, topic := range all {
					for p := range int32(20) {
						if rng.IntN(4) == 0 {
							ms[i].Current[topic] = append(ms[i].Current[topic], p)
						}
					}
				}
			}
		}
		for name, fn := range map[string]Assignor{"uniform": Uniform, "range": Range} {
			t.Run(fmt.Sprintf("%d/%s", iter, name), func(t *testing.T) {
				a := fn(ms, parts)
				load := check(t, ms, parts, a)
				shuffled := slices.Clone(ms)
				rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				if b := fn(shuffled, parts); !reflect.DeepEqual(a, b) {
					t.Fatalf("result depends on the order of members")
				}
				if name != "uniform" {
					return
				}
				if homogeneous {
					if lo, hi := spread(load, ms); hi-lo > 1 {
						t.Fatalf("loads from %d to %d", lo, hi)
					}
				}
				if again := fn(withCurrent(ms, a), parts); !reflect.DeepEqual(a, again) {
					t.Fatalf("uniform is not a fixed point of itself")
				}
			})
		}
	}
}
