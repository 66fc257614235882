package group

import (
	"maps"
	"testing"
	"time"
)

func TestDeletedTopicsLoseTheirOffsets(t *testing.T) {
	h := newHarness(t)
	h.commit(8, "a", "", -1, map[string]map[int32]int64{"orders": {0: 1, 1: 1}, "payments": {0: 1}})
	h.commit(8, "b", "", -1, map[string]map[int32]int64{"payments": {1: 1}})

	// The same topics again: nothing changes.
	if out := h.take(h.c.SetTopics(h.now, testTopics())); len(out.Records) != 0 {
		t.Fatalf("unchanged topics wrote %d records", len(out.Records))
	}

	// payments is deleted; orders is deleted and created again (new id).
	topics := testTopics()
	delete(topics, "payments")
	topics["orders"] = Topic{Name: "orders", ID: [16]byte{9}, Partitions: 3}
	out := h.take(h.c.SetTopics(h.now, topics))
	if ts := tombstones(out.Records); ts[1] != 4 || len(out.Records) != 4 {
		t.Fatalf("records %d, tombstones %v; want 4 offset tombstones", len(out.Records), ts)
	}
	if got := fetched(h.fetch("a", nil)); len(got) != 0 {
		t.Fatalf("offsets of a: %v", got)
	}
	h.checkReplay()

	// Committing to the deleted topic is refused now.
	if code := commitCodes(h.commit(8, "a", "", -1, map[string]map[int32]int64{"payments": {0: 1}}))["payments/0"]; code == 0 {
		t.Fatal("commit to a deleted topic accepted")
	}
}

// The first SetTopics deletes nothing: a coordinator that starts knows of
// no topic yet.
func TestFirstSetTopicsKeepsOffsets(t *testing.T) {
	h := newHarness(t)
	h.commit(8, "a", "", -1, map[string]map[int32]int64{"payments": {0: 1}})
	c := h.replayed()
	if out := c.SetTopics(h.now, map[string]Topic{}); len(out.Records) != 0 {
		t.Fatalf("first SetTopics wrote %d records", len(out.Records))
	}
	if n := c.groups["a"].numOffsets(); n != 1 {
		t.Fatalf("%d offsets", n)
	}
}

// Replay follows the log: the last record of a key wins, tombstones
// delete, classic groups come back with their generation and members.
func TestReplayRebuildsGroupsAndOffsets(t *testing.T) {
	h := newHarness(t)
	h.commit(8, "simple", "", -1, map[string]map[int32]int64{"orders": {0: 1, 1: 2}})
	h.commit(8, "simple", "", -1, map[string]map[int32]int64{"orders": {0: 5}})
	member, gen := h.joinOne("live", "consumer", "orders")
	h.commit(7, "live", member, gen, map[string]map[int32]int64{"orders": {2: 9}})
	h.commit(8, "gone", "", -1, map[string]map[int32]int64{"payments": {0: 1}})
	code, recs := h.c.DeleteGroup(h.now, "gone")
	if code != 0 {
		t.Fatalf("delete: %d", code)
	}
	h.log = append(h.log, recs...)
	h.checkReplay()

	c := h.replayed()
	if got := c.groups["live"]; got.classic.Generation() != gen || got.classic.Len() != 1 {
		t.Fatalf("replayed live group: generation %d, %d members", got.classic.Generation(), got.classic.Len())
	}
	if _, ok := c.groups["gone"]; ok {
		t.Fatal("a deleted group came back")
	}
	o, _ := c.groups["simple"].offset("orders", 0)
	if o.offset != 5 || o.committed != t0.UnixMilli() || o.metadata != "md-orders-0" || o.leaderEpoch != 7 {
		t.Fatalf("replayed offset %+v", o)
	}

	// The restored member has a fresh session from Loaded: it is still a
	// member just before its session timeout, and gone after it.
	loaded := h.now
	c.Tick(loaded.Add(9 * time.Second))
	if c.groups["live"].classic.Len() != 1 {
		t.Fatal("restored member expired early")
	}
	for i := 0; i < 10; i++ {
		d, ok := c.Deadline()
		if !ok || d.After(loaded.Add(time.Minute)) {
			break
		}
		c.Tick(d)
	}
	if c.groups["live"].classic.Len() != 0 {
		t.Fatal("restored member never expired")
	}
}

// A group metadata tombstone with offsets left behind leaves a simple
// group holding them.
func TestReplayOfATombstonedGroupKeepsItsOffsets(t *testing.T) {
	h := newHarness(t)
	h.joinOne("g", "consumer", "orders")
	h.commit(8, "g2", "", -1, map[string]map[int32]int64{"orders": {0: 1}})
	log := append([]Record(nil), h.log...)
	// Commit records of g, then a tombstone of its metadata.
	log = append(log, h.c.offsetRecord("g", "orders", 1, offset{offset: 4, leaderEpoch: -1, committed: 1, expires: -1}))
	log = append(log, Record{Partition: h.c.partition("g"), Key: groupKey("g")})
	c := New(h.cfg)
	for _, r := range log {
		if err := c.Replay(r.Partition, r.Key, r.Value); err != nil {
			t.Fatal(err)
		}
	}
	c.Loaded(h.now)
	g := c.groups["g"]
	if g == nil || g.classic == nil || g.classic.Len() != 0 || g.classic.ProtocolType() != "" {
		t.Fatalf("group after tombstone: %+v", dump(c)["g"])
	}
	if got := dump(c)["g"].Offsets; !maps.Equal(got, map[string]offset{"orders/1": {offset: 4, leaderEpoch: -1, committed: 1, expires: -1}}) {
		t.Fatalf("offsets %v", got)
	}
}
