package classic

import (
	"testing"
	"time"
)

func TestSessionExpiry(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.stableGroup(2)
	// a heartbeats, b goes silent: b is removed 10 s after its last
	// contact and a rebalance starts.
	h.advance(5 * time.Second)
	h.heartbeat(ids[0], 1)
	if d, _ := h.g.Deadline(); !d.After(h.now) {
		t.Fatalf("deadline %v not after now", d)
	}
	h.advance(4 * time.Second)
	h.wantState(Stable)
	h.advance(time.Second + 1) // stableGroup synced b at the start
	h.wantState(PreparingRebalance)
	if _, ok := h.g.members[ids[1]]; ok {
		t.Fatal("silent member not removed")
	}
	tok := h.join(ids[0])
	if r := h.joinResp(tok); r.Generation != 2 || len(r.Members) != 1 {
		t.Fatalf("rejoin %+v", r)
	}
}

func TestMemberWaitingInJoinDoesNotExpire(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.stableGroup(3)
	// a and b rejoin and wait; c keeps heartbeating but does not rejoin.
	ta := h.join(ids[0])
	tb := h.join(ids[1])
	for range 5 {
		h.advance(9 * time.Second)
		if code := h.heartbeat(ids[2], 1); code != rebalanceInProgress {
			t.Fatalf("c's heartbeat: %d", code)
		}
	}
	// 45 s: far past a's and b's sessions, they are still there.
	if h.answered(ta) || h.answered(tb) || h.g.Len() != 3 {
		t.Fatal("a member waiting in JoinGroup expired")
	}
	// c goes silent: when its session expires, the others complete.
	h.advance(10 * time.Second)
	if r := h.joinResp(ta); r.ErrorCode != 0 || len(r.Members) != 2 {
		t.Fatalf("join after c expired %+v", r)
	}
}

func TestNewMemberJoinTimeout(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.staticGroup(1)
	// A new member joins; the static leader never rejoins: the new
	// member's JoinGroup times out after 5 minutes.
	_, tok := h.joinNewWith(joinArgs{client: "n", session: 6 * time.Minute, rebalance: 20 * time.Minute})
	for range 40 {
		h.advance(9 * time.Second)
		h.g.Heartbeat(h.now, 4, hbReq(ids[0], strp("s0"), 1))
	}
	if r := h.joinResp(tok); r.ErrorCode != unknownMemberID {
		t.Fatalf("new member's join after 6 min: %d", r.ErrorCode)
	}
}

func TestCompletingRebalanceMembersThatNeverSyncExpire(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.stableGroup(2)
	h.join(ids[0])
	h.join(ids[1])
	h.wantState(CompletingRebalance)
	// The follower syncs and waits; the leader never syncs nor
	// heartbeats: it expires with its session, and the follower's sync
	// is told to rejoin.
	waiting := h.sync(ids[1], 2, nil)
	h.advance(10 * time.Second)
	if r := h.syncResp(waiting); r.ErrorCode != rebalanceInProgress {
		t.Fatalf("follower's sync: %d", r.ErrorCode)
	}
	h.wantState(PreparingRebalance)
	if h.g.Leader() != ids[1] {
		t.Fatal("leader not replaced")
	}
}

func TestDeadline(t *testing.T) {
	h := newHarness(t, testConfig())
	if _, ok := h.g.Deadline(); ok {
		t.Fatal("a new group has a deadline")
	}
	h.joinWith(joinArgs{client: "x", session: 7 * time.Second})
	if d, ok := h.g.Deadline(); !ok || !d.Equal(h.now.Add(7*time.Second)) {
		t.Fatalf("pending member's deadline %v %v", d, ok)
	}
	h.joinWith(joinArgs{version: 3, client: "y"})
	if d, _ := h.g.Deadline(); !d.Equal(h.now.Add(3 * time.Second)) {
		t.Fatalf("initial delay deadline %v", d)
	}
}

func TestTickFiresTimersAtTheirDeadlines(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.stableGroup(2)
	// One late tick covers b's expiry, the rebalance that follows and a's
	// expiry: the group is Empty, with one generation per join phase.
	h.advance(time.Hour)
	h.wantState(Empty)
	if h.g.Generation() != 2 {
		t.Fatalf("generation %d", h.g.Generation())
	}
	_ = ids
}

func TestStateTimestamp(t *testing.T) {
	h := newHarness(t, testConfig())
	h.stableGroup(1)
	v := h.g.Snapshot(h.now)
	if v.CurrentStateTimestamp != h.now.UnixMilli() {
		t.Fatalf("state timestamp %d, want %d", v.CurrentStateTimestamp, h.now.UnixMilli())
	}
}
