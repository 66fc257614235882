package classic

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestStaticMemberRejoinsWithoutRebalance(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.staticGroup(3) // s0 leads
	gen := h.g.Generation()
	h.g.Snapshot(h.now)

	// s1 restarts: it joins with no member id and its instance id.
	r := h.joinResp(h.joinWith(joinArgs{client: "c", instanceID: strp("s1")}))
	h.wantState(Stable)
	if r.ErrorCode != 0 || r.Generation != gen || r.MemberID == ids[1] || r.LeaderID != ids[0] || len(r.Members) != 0 || r.SkipAssignment {
		t.Fatalf("static rejoin %+v", r)
	}
	if !h.g.Dirty() {
		t.Fatal("the new member id is not to be persisted")
	}
	if h.g.Generation() != gen {
		t.Fatal("generation changed")
	}
	// It gets its old assignment; the old member id is fenced.
	if got := h.syncResp(h.syncWith(5, r.MemberID, strp("s1"), gen, nil)); got.ErrorCode != 0 || string(got.MemberAssignment) != "a-"+ids[1] {
		t.Fatalf("sync of the new member id %+v", got)
	}
	req := kmsg.NewPtrHeartbeatRequest()
	req.MemberID, req.InstanceID, req.Generation = ids[1], strp("s1"), gen
	if code := h.g.Heartbeat(h.now, 4, req).ErrorCode; code != fencedInstanceID {
		t.Fatalf("old member id's heartbeat: %d", code)
	}
	if got := h.syncResp(h.syncWith(5, ids[1], strp("s1"), gen, nil)); got.ErrorCode != fencedInstanceID {
		t.Fatalf("old member id's sync: %d", got.ErrorCode)
	}
	if code := h.g.CheckCommit(ids[1], strp("s1"), gen); code != fencedInstanceID {
		t.Fatalf("old member id's commit: %d", code)
	}
	// The others were not disturbed.
	if code := h.heartbeat(ids[2], gen); code != 0 {
		t.Fatalf("other member's heartbeat: %d", code)
	}
}

func TestStaticLeaderRejoin(t *testing.T) {
	for _, tc := range []struct {
		version    int16
		wantLeader func(old, new string) string
		members    int
		skip       bool
	}{
		// Before v9 the old leader id comes back, so that the restarted
		// leader does not think it leads and reassign.
		{version: 5, wantLeader: func(old, _ string) string { return old }},
		{version: 8, wantLeader: func(old, _ string) string { return old }},
		// v9: it is the leader, with the members, but skips assigning.
		{version: 9, wantLeader: func(_, new string) string { return new }, members: 2, skip: true},
	} {
		h := newHarness(t, testConfig())
		ids := h.staticGroup(2)
		r := h.joinResp(h.joinWith(joinArgs{version: tc.version, client: "c", instanceID: strp("s0")}))
		h.wantState(Stable)
		if r.ErrorCode != 0 || r.LeaderID != tc.wantLeader(ids[0], r.MemberID) || len(r.Members) != tc.members || r.SkipAssignment != tc.skip {
			t.Fatalf("v%d: static leader rejoin %+v", tc.version, r)
		}
		if h.g.Leader() != r.MemberID {
			t.Fatalf("v%d: group's leader %q, want the new member id %q", tc.version, h.g.Leader(), r.MemberID)
		}
	}
}

func TestStaticRejoinWithOtherProtocolRebalances(t *testing.T) {
	h := newHarness(t, testConfig())
	h.staticGroup(2)
	both := append(protocols("sticky", "t"), protocols("range", "t")...)
	tok := h.joinWith(joinArgs{client: "c", instanceID: strp("s1"), protocols: both})
	h.wantState(Stable) // range still has the most votes: no rebalance
	if !h.answered(tok) {
		t.Fatal("no answer")
	}
	// Now s0 also prefers sticky: the selected protocol would change.
	tok = h.joinWith(joinArgs{client: "c", instanceID: strp("s0"), protocols: both})
	h.wantState(PreparingRebalance)
	if h.answered(tok) {
		t.Fatal("answered before the rebalance")
	}
}

func TestStaticRejoinDuringCompletingRebalanceRebalances(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.staticGroup(2)
	h.join(ids[0])
	h.joinWith(joinArgs{memberID: ids[1], instanceID: strp("s1")})
	h.wantState(CompletingRebalance)
	follower := h.syncWith(5, ids[1], strp("s1"), 2, nil)
	// s1 restarts before the leader synced: its old id is fenced, and the
	// group rebalances so that the assignment names the new id.
	tok := h.joinWith(joinArgs{client: "c", instanceID: strp("s1")})
	h.wantState(PreparingRebalance)
	if r := h.syncResp(follower); r.ErrorCode != fencedInstanceID {
		t.Fatalf("old id's waiting sync: %d", r.ErrorCode)
	}
	h.join(ids[0])
	if r := h.joinResp(tok); r.ErrorCode != 0 || r.Generation != 3 {
		t.Fatalf("new id's join %+v", r)
	}
}

func TestStaticMemberReplacedWhileWaitingInJoin(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.staticGroup(3)
	leader := h.join(ids[0])
	old := h.joinWith(joinArgs{memberID: ids[1], instanceID: strp("s1")})
	h.wantState(PreparingRebalance)
	// s1 restarts while its old JoinGroup waits: the old request is fenced,
	// the new member id waits in its place.
	tok := h.joinWith(joinArgs{client: "c", instanceID: strp("s1")})
	if r := h.joinResp(old); r.ErrorCode != fencedInstanceID || r.MemberID != ids[1] {
		t.Fatalf("old id's join %+v", r)
	}
	if h.answered(tok) {
		t.Fatal("new id answered before the others rejoined")
	}
	h.join(ids[2])
	r := h.joinResp(tok)
	if r.ErrorCode != 0 || r.Generation != 2 {
		t.Fatalf("new id's join %+v", r)
	}
	found := false
	for _, m := range h.joinResp(leader).Members {
		found = found || m.MemberID == r.MemberID
	}
	if !found {
		t.Fatal("the leader does not see the new member id")
	}
}

func TestStaticMembersAreNotRemovedAtTheRebalanceTimeout(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.staticGroup(2)
	tl := h.join(ids[0])
	// s1 does not rejoin but heartbeats: at the rebalance timeout the group
	// moves on without removing it (only dynamic members are removed).
	for range 7 {
		h.advance(9 * time.Second)
		h.heartbeat(ids[0], 1)
		req := kmsg.NewPtrHeartbeatRequest()
		req.MemberID, req.InstanceID, req.Generation = ids[1], strp("s1"), 1
		h.g.Heartbeat(h.now, 4, req)
	}
	r := h.joinResp(tl)
	if r.Generation != 2 || len(r.Members) != 2 {
		t.Fatalf("after the rebalance timeout %+v", r)
	}
	// It may still rejoin (with changed metadata, a new rebalance) or sync
	// in the new generation.
	tok := h.syncWith(5, ids[1], strp("s1"), 2, nil)
	h.sync(ids[0], 2, map[string][]byte{ids[1]: []byte("x")})
	if got := h.syncResp(tok); got.ErrorCode != 0 || string(got.MemberAssignment) != "x" {
		t.Fatalf("static member's sync %+v", got)
	}
}

func TestStaticMembersThatNeverRejoinWaitForTheirSessions(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.staticGroup(1)
	// The only member is static; it leaves the rebalance hanging (a
	// rebalance forced by a pending member that then expired).
	p := h.joinResp(h.joinWith(joinArgs{client: "p", session: 6 * time.Second})).MemberID
	h.leave(kmsg.LeaveGroupRequestMember{MemberID: p})
	h.wantState(PreparingRebalance)
	// No member rejoins: the phase cannot complete; the static member's
	// session expires and the group becomes Empty.
	for h.g.State() != Empty && h.untilDeadline(time.Hour) {
	}
	h.wantState(Empty)
	if h.g.Generation() != 2 {
		t.Fatalf("generation %d", h.g.Generation())
	}
	_ = ids
}
