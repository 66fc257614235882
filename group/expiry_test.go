package group

import (
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const day = 24 * time.Hour

// tombstones counts the tombstones in recs by key version.
func tombstones(recs []Record) map[int16]int {
	out := map[int16]int{}
	for _, r := range recs {
		if r.Value == nil {
			v, _ := keyVersion(r.Key)
			out[v]++
		}
	}
	return out
}

func TestDeadlineIncludesTheExpiryCheck(t *testing.T) {
	h := newHarness(t)
	d, ok := h.c.Deadline()
	if !ok || !d.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("deadline %v %v, want the first expiry check at %v", d, ok, t0.Add(10*time.Minute))
	}
	h.advance(10 * time.Minute)
	if d, _ := h.c.Deadline(); !d.Equal(t0.Add(20 * time.Minute)) {
		t.Fatalf("next deadline %v", d)
	}
}

// A simple group's offsets expire a retention period after their commit;
// then the group, empty and without offsets, is deleted.
func TestSimpleGroupOffsetsExpireAfterCommit(t *testing.T) {
	h := newHarness(t)
	h.commit(8, "simple", "", -1, map[string]map[int32]int64{"orders": {0: 1}})
	h.now = h.now.Add(3 * day)
	h.commit(8, "simple", "", -1, map[string]map[int32]int64{"orders": {1: 1}})

	h.until(t0.Add(7*day - time.Minute))
	if n := h.c.groups["simple"].numOffsets(); n != 2 {
		t.Fatalf("%d offsets before retention, want 2", n)
	}
	n := len(h.log)
	h.until(t0.Add(7*day + 10*time.Minute))
	if got := fetched(h.fetch("simple", nil)); !maps.Equal(got, map[string]int64{"orders/1": 1}) {
		t.Fatalf("offsets after the first expiry: %v", got)
	}
	if ts := tombstones(h.log[n:]); ts[1] != 1 || ts[2] != 0 {
		t.Fatalf("tombstones %v", ts)
	}
	h.checkReplay()

	n = len(h.log)
	h.until(t0.Add(10*day + 10*time.Minute))
	if _, ok := h.c.groups["simple"]; ok {
		t.Fatal("the group outlived its offsets")
	}
	if ts := tombstones(h.log[n:]); ts[1] != 1 || ts[2] != 1 {
		t.Fatalf("tombstones %v", ts)
	}
	h.checkReplay()
}

// A classic group's offsets are kept while it has members, and expire a
// retention period after it became empty, however old the commits.
func TestClassicGroupOffsetsExpireAfterTheGroupEmptied(t *testing.T) {
	h := newHarness(t)
	h.session = 30 * time.Minute
	member, gen := h.joinOne("g", "consumer", "orders")
	h.commit(7, "g", member, gen, map[string]map[int32]int64{"orders": {0: 1}})

	// Ten days of heartbeats: the group stays Stable and keeps its
	// offsets.
	for i := 0; i < 10*24*3; i++ {
		h.advance(20 * time.Minute)
		call := h.call(3)
		h.take(h.c.Heartbeat(call, &kmsg.HeartbeatRequest{Version: 3, Group: "g", MemberID: member, Generation: gen}))
		if r := h.replies[call.Token].(*kmsg.HeartbeatResponse); r.ErrorCode != 0 {
			t.Fatalf("heartbeat at %v: %d", h.now, r.ErrorCode)
		}
	}
	if n := h.c.groups["g"].numOffsets(); n != 1 {
		t.Fatal("offsets of a live group expired")
	}

	h.leave("g", member)
	h.until(h.now.Add(time.Minute))
	emptied := h.now
	if s := h.c.groups["g"].state(); s != "Empty" {
		t.Fatalf("group is %s", s)
	}
	h.until(emptied.Add(7*day - 11*time.Minute))
	if n := h.c.groups["g"].numOffsets(); n != 1 {
		t.Fatal("offsets expired before the retention since the group emptied")
	}
	h.checkReplay()
	h.until(emptied.Add(7*day + 10*time.Minute))
	if _, ok := h.c.groups["g"]; ok {
		t.Fatal("group not deleted after its offsets expired")
	}
	h.checkReplay()
}

// An offset committed with a retention time (v2–v4) expires at its own
// time, even in a group that has members.
func TestExplicitRetentionExpiresAtItsTime(t *testing.T) {
	h := newHarness(t)
	h.session = 30 * time.Minute
	member, gen := h.joinOne("g", "consumer", "orders")
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 2
	req.Group = "g"
	req.MemberID = member
	req.Generation = gen
	req.RetentionTimeMillis = time.Hour.Milliseconds()
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "payments", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 3}}}}
	if code := commitCodes(h.commitRequest(req))["payments/0"]; code != 0 {
		t.Fatalf("commit: %d", code)
	}
	// The member must stay alive: heartbeat through the hour.
	for i := 0; i < 4; i++ {
		h.advance(20 * time.Minute)
		h.take(h.c.Heartbeat(h.call(3), &kmsg.HeartbeatRequest{Version: 3, Group: "g", MemberID: member, Generation: gen}))
	}
	if n := h.c.groups["g"].numOffsets(); n != 0 {
		t.Fatalf("%d offsets left after their retention", n)
	}
	if h.c.groups["g"].state() != "Stable" {
		t.Fatal("the group went away with its offset")
	}
}
