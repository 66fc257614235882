package group

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// heartbeat sends a ConsumerGroupHeartbeat v1 (the client names itself);
// a join (epoch 0) subscribes to topics.
func (h *harness) heartbeat(group, member string, epoch int32, topics ...string) (*kmsg.ConsumerGroupHeartbeatResponse, Output) {
	h.t.Helper()
	return h.heartbeatOwning(group, member, epoch, nil, topics...)
}

// heartbeatOwning is heartbeat with the partitions the member owns (nil:
// unchanged).
func (h *harness) heartbeatOwning(group, member string, epoch int32, owned []kmsg.ConsumerGroupHeartbeatRequestTopic, topics ...string) (*kmsg.ConsumerGroupHeartbeatResponse, Output) {
	h.t.Helper()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group = group
	req.MemberID = member
	req.MemberEpoch = epoch
	req.Topics = owned
	if epoch == 0 {
		req.RebalanceTimeoutMillis = 30_000
		req.SubscribedTopicNames = topics
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	}
	call := h.call(1)
	out := h.take(h.c.ConsumerGroupHeartbeat(call, req))
	return h.replies[call.Token].(*kmsg.ConsumerGroupHeartbeatResponse), out
}

// joinConsumer makes a consumer group member and returns its epoch.
func (h *harness) joinConsumer(group, member string, topics ...string) int32 {
	h.t.Helper()
	r, out := h.heartbeat(group, member, 0, topics...)
	if r.ErrorCode != 0 || len(out.Records) == 0 {
		h.t.Fatalf("join %s: %+v (%d records)", group, r, len(out.Records))
	}
	return r.MemberEpoch
}

func TestConsumerGroupLifecycle(t *testing.T) {
	h := newHarness(t)
	epoch := h.joinConsumer("cg", "m1", "orders")
	g := h.c.groups["cg"]
	if g == nil || g.typ() != "consumer" || g.consumer.Len() != 1 {
		t.Fatalf("group %+v", dump(h.c)["cg"])
	}
	if l := listed(h.c.ListGroups(5, nil, []string{"consumer"})); len(l) != 1 || !strings.HasPrefix(l[0], "cg:") || !strings.HasSuffix(l[0], ":consumer:consumer") {
		t.Fatalf("list %v", l)
	}
	if d := h.c.ConsumerGroupDescribe(0, "cg", false); d.ErrorCode != 0 || d.Group != "cg" || len(d.Members) != 1 {
		t.Fatalf("describe %+v", d)
	}
	if d := h.c.DescribeGroup(6, "cg"); d.ErrorCode != kerr.GroupIDNotFound.Code || d.State != "Dead" ||
		d.ErrorMessage == nil || !strings.Contains(*d.ErrorMessage, "not a classic group") {
		t.Fatalf("classic describe of a consumer group: %+v", d)
	}
	h.checkReplay()

	// Commits: v9 with the member's epoch; older versions are refused to
	// KIP-848 members.
	offsets := map[string]map[int32]int64{"orders": {0: 3}, "payments": {1: 4}}
	for _, tc := range []struct {
		name    string
		version int16
		member  string
		epoch   int32
		want    int16
	}{
		{"member", 9, "m1", epoch, 0},
		{"member with v8", 8, "m1", epoch, kerr.UnsupportedVersion.Code},
		{"newer epoch", 9, "m1", epoch + 1, kerr.StaleMemberEpoch.Code},
		{"unknown member", 9, "m9", epoch, kerr.UnknownMemberID.Code},
		{"unknown member with v8", 8, "m9", epoch, kerr.UnknownMemberID.Code},
		{"simple consumer of a group with members", 9, "", -1, kerr.UnknownMemberID.Code},
	} {
		for tp, code := range commitCodes(h.commit(tc.version, "cg", tc.member, tc.epoch, offsets)) {
			if code != tc.want {
				t.Errorf("%s: %s code %d, want %d", tc.name, tp, code, tc.want)
			}
		}
	}

	// OffsetFetch v9 checks a member that names itself; an admin is not.
	fetch := func(member *string, epoch int32) kmsg.OffsetFetchResponseGroup {
		req := kmsg.NewOffsetFetchRequestGroup()
		req.Group = "cg"
		req.MemberID = member
		req.MemberEpoch = epoch
		return h.c.OffsetFetch(h.call(9), req, true)
	}
	m1, m9 := "m1", "m9"
	if f := fetch(nil, -1); f.ErrorCode != 0 || !maps.Equal(fetched(f), map[string]int64{"orders/0": 3, "payments/1": 4}) {
		t.Fatalf("admin fetch %+v", f)
	}
	if f := fetch(&m1, epoch); f.ErrorCode != 0 || len(fetched(f)) != 2 {
		t.Fatalf("member fetch %+v", f)
	}
	if f := fetch(&m1, epoch+1); f.ErrorCode != kerr.StaleMemberEpoch.Code || len(f.Topics) != 0 {
		t.Fatalf("stale fetch %+v", f)
	}
	if f := fetch(&m9, epoch); f.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("unknown member fetch %+v", f)
	}

	// A classic member cannot join, nor can the group be deleted.
	call := h.call(5)
	if out := h.take(h.c.JoinGroup(call, joinRequest("cg", "", "consumer", "orders"))); len(out.Records) != 0 {
		t.Fatalf("refused join wrote %d records", len(out.Records))
	}
	if r := h.replies[call.Token].(*kmsg.JoinGroupResponse); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("classic join of a consumer group: %+v", r)
	}
	if code, _ := h.c.DeleteGroup(h.now, "cg"); code != kerr.NonEmptyGroup.Code {
		t.Fatalf("delete of a live consumer group: %d", code)
	}
	h.checkReplay()

	// The member leaves; the group is empty and may be deleted, with a
	// tombstone for each of its records and offsets.
	if r, _ := h.heartbeat("cg", "m1", -1); r.ErrorCode != 0 {
		t.Fatalf("leave: %+v", r)
	}
	if s := h.c.groups["cg"].state(); s != "Empty" {
		t.Fatalf("after leave: %s", s)
	}
	h.checkReplay()
	live := len(h.c.groups["cg"].keys)
	code, recs := h.c.DeleteGroup(h.now, "cg")
	if code != 0 || len(recs) != live+2 {
		t.Fatalf("delete: code %d, %d records, want %d", code, len(recs), live+2)
	}
	h.log = append(h.log, recs...)
	if len(h.c.groups) != 0 {
		t.Fatalf("groups left: %v", dump(h.c))
	}
	h.checkReplay()
}

func TestConsumerCommitWithAnOlderEpoch(t *testing.T) {
	h := newHarness(t)
	epoch := h.joinConsumer("cg", "m1", "orders")
	// A second member bumps the group epoch: m1 is told to give up some
	// partitions, and moves to the new epoch once it says it has.
	h.joinConsumer("cg", "m2", "orders")
	r, _ := h.heartbeat("cg", "m1", epoch)
	if r.ErrorCode != 0 || r.Assignment == nil {
		t.Fatalf("heartbeat: %+v", r)
	}
	var owned []kmsg.ConsumerGroupHeartbeatRequestTopic
	kept := map[int32]bool{}
	for _, at := range r.Assignment.Topics {
		owned = append(owned, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: at.TopicID, Partitions: at.Partitions})
		for _, p := range at.Partitions {
			kept[p] = true
		}
	}
	r, _ = h.heartbeatOwning("cg", "m1", r.MemberEpoch, owned)
	if r.ErrorCode != 0 || r.MemberEpoch <= epoch || len(kept) == 0 || len(kept) == 3 {
		t.Fatalf("heartbeat after revoking (keeping %v): %+v", kept, r)
	}

	// The older epoch still commits the partitions m1 kept (KIP-1251).
	resp := h.commit(9, "cg", "m1", epoch, map[string]map[int32]int64{"orders": {0: 1, 1: 1, 2: 1}})
	for p := int32(0); p < 3; p++ {
		want := kerr.StaleMemberEpoch.Code
		if kept[p] {
			want = 0
		}
		if got := commitCodes(resp)[fmt.Sprintf("orders/%d", p)]; got != want {
			t.Errorf("orders/%d: code %d, want %d", p, got, want)
		}
	}
}

// An empty group changes kind on a join of the other kind; its offsets
// stay, its records are tombstoned.
func TestEmptyGroupsChangeKind(t *testing.T) {
	h := newHarness(t)
	h.commit(8, "g", "", -1, map[string]map[int32]int64{"orders": {0: 7}})

	// simple (classic) → consumer
	n := len(h.log)
	h.joinConsumer("g", "m1", "orders")
	if ts := tombstones(h.log[n:]); ts[2] != 1 {
		t.Fatalf("conversion to consumer group: tombstones %v", ts)
	}
	if g := h.c.groups["g"]; g.typ() != "consumer" || g.numOffsets() != 1 {
		t.Fatalf("after the consumer join: %+v", dump(h.c)["g"])
	}
	h.checkReplay()

	// consumer (now empty) → classic
	h.heartbeat("g", "m1", -1)
	live := len(h.c.groups["g"].keys)
	n = len(h.log)
	member, _ := h.joinOne("g", "consumer", "orders")
	if ts := tombstones(h.log[n:]); ts[0]+ts[1]+ts[2] != 0 || len(tombstonesOfConsumer(h.log[n:])) != live {
		t.Fatalf("conversion to classic group: %d consumer tombstones, want %d", len(tombstonesOfConsumer(h.log[n:])), live)
	}
	if g := h.c.groups["g"]; g.typ() != "classic" || g.numOffsets() != 1 {
		t.Fatalf("after the classic join: %+v", dump(h.c)["g"])
	}
	h.checkReplay()

	// A classic group with members stays classic.
	if r, out := h.heartbeat("g", "m2", 0, "orders"); r.ErrorCode != kerr.GroupIDNotFound.Code || len(out.Records) != 0 {
		t.Fatalf("consumer join of a live classic group: %+v", r)
	}
	h.leave("g", member)
}

// tombstonesOfConsumer are the tombstones of consumer group records.
func tombstonesOfConsumer(recs []Record) []Record {
	var out []Record
	for _, r := range recs {
		if v, _ := keyVersion(r.Key); v > 2 && r.Value == nil {
			out = append(out, r)
		}
	}
	return out
}

func TestConsumerGroupSessionsAndExpiry(t *testing.T) {
	h := newHarness(t)
	epoch := h.joinConsumer("cg", "m1", "orders")
	h.commit(9, "cg", "m1", epoch, map[string]map[int32]int64{"orders": {0: 1}, "payments": {0: 2}})

	// The member stops heartbeating: its session ends, the group empties.
	d, ok := h.c.Deadline()
	if !ok || !d.After(h.now) || d.After(h.now.Add(h.cfg.Consumer.SessionTimeout)) {
		t.Fatalf("deadline %v %v", d, ok)
	}
	h.until(h.now.Add(h.cfg.Consumer.SessionTimeout + time.Second))
	if g := h.c.groups["cg"]; g.state() != "Empty" {
		t.Fatalf("after the session: %s", g.state())
	}
	h.checkReplay()

	// A consumer group's offsets expire a retention period after their
	// commit; then the empty group goes.
	h.until(t0.Add(7*day + 10*time.Minute))
	if _, ok := h.c.groups["cg"]; ok {
		t.Fatalf("empty consumer group outlived its offsets: %+v", dump(h.c)["cg"])
	}
	h.checkReplay()
}

// With members, a consumer group's offsets of topics it does not use
// expire; those it uses stay.
func TestConsumerGroupKeepsOffsetsOfTopicsInUse(t *testing.T) {
	h := newHarness(t)
	epoch := h.joinConsumer("cg", "m1", "orders")
	h.commit(9, "cg", "m1", epoch, map[string]map[int32]int64{"orders": {0: 1}, "payments": {0: 2}})
	for h.now.Before(t0.Add(7*day + 20*time.Minute)) {
		h.advance(10 * time.Second)
		r, _ := h.heartbeat("cg", "m1", epoch)
		if r.ErrorCode != 0 {
			t.Fatalf("heartbeat at %v: %+v", h.now, r)
		}
		epoch = r.MemberEpoch
	}
	if got := fetched(h.fetch("cg", nil)); !maps.Equal(got, map[string]int64{"orders/0": 1}) {
		t.Fatalf("offsets after retention: %v", got)
	}
}

func TestSetTopicsReachesConsumerGroups(t *testing.T) {
	h := newHarness(t)
	epoch := h.joinConsumer("cg", "m1", "orders", "fresh")
	topics := testTopics()
	topics["fresh"] = Topic{Name: "fresh", ID: [16]byte{3}, Partitions: 4}
	out := h.take(h.c.SetTopics(h.now, topics))
	if len(out.Records) == 0 {
		t.Fatal("a new subscribed topic wrote no record")
	}
	r, _ := h.heartbeat("cg", "m1", epoch)
	if r.ErrorCode != 0 || r.MemberEpoch <= epoch {
		t.Fatalf("heartbeat after the new topic: %+v", r)
	}
	h.checkReplay()
}
