package consumer

import (
	"bytes"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestRecordEncoding(t *testing.T) {
	if got, want := groupMetadataKey("g"), []byte{0, 3, 0, 1, 'g'}; !bytes.Equal(got, want) {
		t.Fatalf("group metadata key %x, want %x", got, want)
	}
	if got, want := currentAssignmentKey("g", "m"), []byte{0, 8, 0, 1, 'g', 0, 1, 'm'}; !bytes.Equal(got, want) {
		t.Fatalf("current assignment key %x, want %x", got, want)
	}
	// Value v0, flexible: version, Epoch, no tagged fields.
	if got, want := groupMetadataValue(5), []byte{0, 0, 0, 0, 0, 5, 0}; !bytes.Equal(got, want) {
		t.Fatalf("group metadata value %x, want %x", got, want)
	}
	a := assignment{topicID("t"): {1, 2}}
	want := []byte{0, 0, 2} // version, one topic (compact length 1+1)
	id := topicID("t")
	want = append(want, id[:]...)
	want = append(want, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0) // two partitions, topic tags, value tags
	if got := targetMemberValue(a); !bytes.Equal(got, want) {
		t.Fatalf("target member value %x, want %x", got, want)
	}

	for _, key := range [][]byte{groupMetadataKey("grp"), memberMetadataKey("grp", "m"), targetMetadataKey("grp"),
		targetMemberKey("grp", "m"), currentAssignmentKey("grp", "m"), partitionMetadataKey("grp")} {
		if id, ok := GroupID(key); !ok || id != "grp" {
			t.Fatalf("GroupID(%x) = %q, %v", key, id, ok)
		}
	}
	for _, key := range [][]byte{
		{0, 1, 0, 1, 'g', 0, 1, 't', 0, 0, 0, 0}, // an offset commit key
		{0, 2, 0, 1, 'g'},                        // a classic group metadata key
		{0, 3, 0, 9, 'g'},                        // truncated
		{0},
		nil,
	} {
		if _, ok := GroupID(key); ok {
			t.Fatalf("GroupID(%x) accepted a key that is not a consumer group key", key)
		}
	}
}

// buildGroup drives a group into a state with static, regex and lazy
// members, one of them still revoking, and returns it with every record it
// wrote.
func buildGroup(t *testing.T) (*sim, []KV) {
	s := newSim(t, testConfig(), map[string]int32{"orders": 6, "orders-eu": 3, "payments": 2})
	var log []KV
	take := func() { log = append(log, s.g.TakeRecords()...) }
	a := s.newClient("a", "orders", "payments")
	a.instance = str("inst-a")
	a.assignor = str("uniform")
	b := s.newClient("b", "orders")
	b.lazy = true
	c := s.newClient("c")
	c.regex = str("orders.*")
	s.hb(a)
	s.hb(b)
	take()
	s.settle()
	take()
	s.hb(c)
	s.hb(b) // b told to revoke; lazy, still holds
	s.hb(a)
	d := s.newClient("d", "payments")
	s.hb(d)
	s.leave(d, -1)
	take()
	return s, log
}

func replay(t *testing.T, log []KV, now time.Time) *Group {
	t.Helper()
	g := New("g", testConfig())
	for _, r := range log {
		if err := g.Replay(r.Key, r.Value); err != nil {
			t.Fatalf("replay: %v", err)
		}
	}
	g.Loaded(now)
	return g
}

// compact keeps the last record of each key, in log order, and drops
// keys whose last record is a tombstone, as log compaction eventually does.
func compact(log []KV) []KV {
	last := map[string]int{}
	for i, r := range log {
		last[string(r.Key)] = i
	}
	var out []KV
	for i, r := range log {
		if last[string(r.Key)] == i && r.Value != nil {
			out = append(out, r)
		}
	}
	return out
}

func TestReplayRestoresTheGroup(t *testing.T) {
	for name, shape := range map[string]func([]KV) []KV{
		"full log":  func(l []KV) []KV { return l },
		"compacted": compact,
	} {
		t.Run(name, func(t *testing.T) {
			s, log := buildGroup(t)
			if s.g.State() != Reconciling {
				t.Fatalf("state %s, want the group mid-reconciliation", s.g.State())
			}
			g := replay(t, shape(log), s.now)
			want, got := s.g.Describe(1, s.topics), g.Describe(1, s.topics)
			if !reflect.DeepEqual(want, got) {
				t.Fatalf("describe after replay:\n got %+v\nwant %+v", got, want)
			}
			if !reflect.DeepEqual(g.owners, s.g.owners) || !reflect.DeepEqual(g.static, s.g.static) {
				t.Fatalf("owners or static members differ after replay")
			}
			if len(g.TakeRecords()) != 0 {
				t.Fatal("replay wrote records")
			}

			// The broker restarted: the members keep heartbeating, with
			// their epochs, to the restored group.
			s.g = g
			s.settle()
			s.holdings("orders", "orders-eu", "payments")
			for _, c := range s.clients[:3] {
				if c.epoch != g.Epoch() {
					t.Fatalf("%s at epoch %d, group at %d", c.id, c.epoch, g.Epoch())
				}
			}
		})
	}
}

func TestReplayedGroupFencesStaleMembers(t *testing.T) {
	s, log := buildGroup(t)
	g := replay(t, log, s.now)
	s.g = g
	a := s.clients[0]
	req := a.request(false, false)
	req.MemberEpoch = a.epoch + 1
	if resp := g.Heartbeat(s.now, 1, Client{}, req, s.topics); resp.ErrorCode != kerr.FencedMemberEpoch.Code {
		t.Fatalf("epoch ahead after restart: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	d := s.clients[3] // left before the restart
	req = d.request(false, false)
	req.MemberEpoch = 3
	if resp := g.Heartbeat(s.now, 1, Client{}, req, s.topics); resp.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("departed member after restart: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	// Members restored from the log get a full session from the load.
	if dl, ok := g.Deadline(); !ok || !dl.Equal(s.now.Add(45*time.Second)) {
		t.Fatalf("deadline %v", dl)
	}
	s.tick(46 * time.Second)
	if g.Len() != 0 || g.State() != Empty {
		t.Fatalf("members restored from the log did not expire: %d", g.Len())
	}
}

func TestReplayThenTopicsChangedWhileDown(t *testing.T) {
	s, log := buildGroup(t)
	s.g.TakeRecords()
	g := replay(t, compact(log), s.now)
	epoch := g.Epoch()
	// While the broker was down, payments grew: the first look at the
	// topics after the restart must rebalance.
	s.g = g
	s.setTopics(map[string]int32{"orders": 6, "orders-eu": 3, "payments": 4})
	if g.Epoch() != epoch+1 {
		t.Fatalf("epoch %d, want %d", g.Epoch(), epoch+1)
	}
	s.settle()
	s.holdings("orders", "orders-eu", "payments")

	// With unchanged topics the restored target stands: no rebalance.
	s2, log2 := buildGroup(t)
	g2 := replay(t, log2, s2.now)
	epoch = g2.Epoch()
	s2.g = g2
	s2.setTopics(map[string]int32{"orders": 6, "orders-eu": 3, "payments": 2})
	if g2.Epoch() != epoch {
		t.Fatalf("unchanged topics after restart bumped the epoch")
	}
}

func TestReplayGroupTombstone(t *testing.T) {
	s, log := buildGroup(t)
	s.g.Delete()
	log = append(log, s.g.TakeRecords()...)
	g := replay(t, log, s.now)
	if g.Len() != 0 || g.State() != Dead {
		t.Fatalf("deleted group replayed as %s with %d members", g.State(), g.Len())
	}
	if len(compact(log)) != 0 {
		t.Fatalf("records left after delete: %d", len(compact(log)))
	}
}

func TestReplayRejectsGarbage(t *testing.T) {
	g := New("g", testConfig())
	bad := [][2][]byte{
		{groupMetadataKey("g"), {0, 0, 1}},                   // truncated epoch
		{memberMetadataKey("g", "m"), {0, 0, 0, 0, 5}},       // truncated
		{currentAssignmentKey("g", "m"), {0xff, 0xff, 0, 0}}, // negative version
		{groupMetadataKey("other"), groupMetadataValue(1)},   // another group
		{{0, 1, 0, 1, 'g'}, {0, 0}},                          // not a consumer group key
	}
	for _, kv := range bad {
		if err := g.Replay(kv[0], kv[1]); err == nil {
			t.Fatalf("Replay(%x, %x) accepted garbage", kv[0], kv[1])
		}
	}
	// Unknown tagged fields are skipped.
	v := slices.Clone(groupMetadataValue(7))
	v = append(v[:len(v)-1], 1, 9, 2, 0xaa, 0xbb)
	if err := g.Replay(groupMetadataKey("g"), v); err != nil || g.Epoch() != 7 {
		t.Fatalf("tagged fields: %v, epoch %d", err, g.Epoch())
	}
}
