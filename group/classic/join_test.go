package classic

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestJoinErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stable int // members of a Stable group to set up first (static "s0", "s1", ...)
		args   func(ids []string) joinArgs
		want   int16
		wantID func(ids []string) string // the response's member id
	}{
		{name: "session timeout below the minimum",
			args: func([]string) joinArgs { return joinArgs{session: 5999 * time.Millisecond} },
			want: invalidSessionTimeout},
		{name: "session timeout above the maximum",
			args: func([]string) joinArgs { return joinArgs{session: 31 * time.Minute} },
			want: invalidSessionTimeout},
		{name: "no protocol type",
			args: func([]string) joinArgs { return joinArgs{protoType: "-"} },
			want: inconsistentProtocol},
		{name: "no protocols",
			args: func([]string) joinArgs { return joinArgs{protocols: []kmsg.JoinGroupRequestProtocol{}} },
			want: inconsistentProtocol},
		{name: "other protocol type",
			stable: 1,
			args:   func([]string) joinArgs { return joinArgs{protoType: "connect"} },
			want:   inconsistentProtocol},
		{name: "no protocol in common",
			stable: 1,
			args:   func([]string) joinArgs { return joinArgs{protocols: protocols("sticky", "t")} },
			want:   inconsistentProtocol},
		{name: "known member with no protocol in common",
			stable: 1,
			args: func(ids []string) joinArgs {
				return joinArgs{memberID: ids[0], instanceID: strp("s0"), protocols: protocols("sticky", "t")}
			},
			want:   inconsistentProtocol,
			wantID: func(ids []string) string { return ids[0] }},
		{name: "unknown member id",
			stable: 1,
			args:   func([]string) joinArgs { return joinArgs{memberID: "nobody"} },
			want:   unknownMemberID,
			wantID: func([]string) string { return "nobody" }},
		{name: "unknown member id in an empty group",
			args:   func([]string) joinArgs { return joinArgs{memberID: "nobody"} },
			want:   unknownMemberID,
			wantID: func([]string) string { return "nobody" }},
		{name: "unknown instance id with a member id",
			stable: 1,
			args: func(ids []string) joinArgs {
				return joinArgs{memberID: ids[0], instanceID: strp("other")}
			},
			want:   unknownMemberID,
			wantID: func(ids []string) string { return ids[0] }},
		{name: "instance id held by another member id",
			stable: 2,
			args: func(ids []string) joinArgs {
				return joinArgs{memberID: ids[1], instanceID: strp("s0")}
			},
			want:   fencedInstanceID,
			wantID: func(ids []string) string { return ids[1] }},
		{name: "v4 dynamic member without a member id",
			args:   func([]string) joinArgs { return joinArgs{version: 4, client: "cl"} },
			want:   memberIDRequired,
			wantID: func([]string) string { return "cl-1" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			ids := h.staticGroup(tc.stable)
			gen := h.g.Generation()
			r := h.joinResp(h.joinWith(tc.args(ids)))
			if r.ErrorCode != tc.want {
				t.Fatalf("error %d, want %d", r.ErrorCode, tc.want)
			}
			want := ""
			if tc.wantID != nil {
				want = tc.wantID(ids)
			}
			if r.MemberID != want {
				t.Fatalf("member id %q, want %q", r.MemberID, want)
			}
			if r.Generation != -1 || r.Protocol != nil {
				t.Fatalf("error response carries a generation: %+v", r)
			}
			if h.g.Generation() != gen || (tc.stable > 0 && h.g.State() != Stable) {
				t.Fatalf("a refused join changed the group: %s generation %d", h.g.State(), h.g.Generation())
			}
		})
	}
}

// staticGroup makes a Stable group of n static members "s0", "s1", ….
func (h *harness) staticGroup(n int) []string {
	h.t.Helper()
	if n == 0 {
		return nil
	}
	var toks []Token
	for i := range n {
		toks = append(toks, h.joinWith(joinArgs{client: "c", instanceID: strp("s" + string(rune('0'+i)))}))
	}
	for !h.answered(toks[0]) && h.untilDeadline(time.Hour) {
	}
	var ids []string
	assign := map[string][]byte{}
	for _, tok := range toks {
		r := h.joinResp(tok)
		if r.ErrorCode != 0 {
			h.t.Fatalf("static join: %d", r.ErrorCode)
		}
		ids = append(ids, r.MemberID)
		assign[r.MemberID] = []byte("a-" + r.MemberID)
	}
	h.sync(h.g.Leader(), h.g.Generation(), assign)
	for _, id := range ids {
		if id != h.g.Leader() {
			h.sync(id, h.g.Generation(), nil)
		}
	}
	h.wantState(Stable)
	return ids
}

func TestMemberIDRequired(t *testing.T) {
	h := newHarness(t, testConfig())
	tok := h.joinWith(joinArgs{client: "cl", session: 10 * time.Second})
	r := h.joinResp(tok)
	if r.ErrorCode != memberIDRequired || r.MemberID == "" {
		t.Fatalf("first join %+v", r)
	}
	h.wantState(Empty)
	if h.g.Len() != 0 {
		t.Fatal("a pending member counts as a member")
	}
	// Rejoining with the id within the session timeout makes a member.
	h.advance(9 * time.Second)
	tok = h.joinWith(joinArgs{client: "cl", memberID: r.MemberID})
	if h.answered(tok) || h.g.Len() != 1 {
		t.Fatal("the pending member was not added")
	}
	h.advance(3 * time.Second)
	if got := h.joinResp(tok); got.ErrorCode != 0 || got.MemberID != r.MemberID {
		t.Fatalf("second join %+v", got)
	}

	// A pending id that is not used expires with the session timeout.
	late := h.joinResp(h.joinWith(joinArgs{client: "late"})).MemberID
	h.advance(10 * time.Second)
	if got := h.joinResp(h.joinWith(joinArgs{client: "late", memberID: late})); got.ErrorCode != unknownMemberID {
		t.Fatalf("join with an expired pending id: %d", got.ErrorCode)
	}
}

func TestPendingMemberHoldsTheRebalance(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.stableGroup(1)
	// A new client gets its id; the leader rejoins; the join phase waits
	// for the pending member until it joins or its id expires.
	p := h.joinResp(h.joinWith(joinArgs{client: "p", session: 8 * time.Second})).MemberID
	h.wantState(Stable)
	tl := h.join(ids[0])
	h.wantState(PreparingRebalance)
	if h.answered(tl) {
		t.Fatal("join phase completed with a member id pending")
	}
	h.advance(8 * time.Second)
	if r := h.joinResp(tl); r.ErrorCode != 0 || r.Generation != 2 || len(r.Members) != 1 {
		t.Fatalf("leader join after the pending id expired %+v", r)
	}
	if _, ok := h.g.pending[p]; ok {
		t.Fatal("expired pending id still there")
	}

	// Leaving with a pending id removes it as well.
	p = h.joinResp(h.joinWith(joinArgs{client: "p"})).MemberID
	resp := h.leave(kmsg.LeaveGroupRequestMember{MemberID: p})
	if resp.Members[0].ErrorCode != 0 {
		t.Fatalf("leave of a pending member: %d", resp.Members[0].ErrorCode)
	}
	if _, ok := h.g.pending[p]; ok {
		t.Fatal("pending member still there after leaving")
	}
}

func TestJoinBeforeV4NeedsNoMemberID(t *testing.T) {
	h := newHarness(t, testConfig())
	tok := h.joinWith(joinArgs{version: 3, client: "old"})
	if h.answered(tok) {
		t.Fatal("v3 join answered at once")
	}
	h.advance(3 * time.Second)
	if r := h.joinResp(tok); r.ErrorCode != 0 || r.MemberID == "" || r.Generation != 1 {
		t.Fatalf("v3 join %+v", r)
	}
}

func TestGroupMaxSize(t *testing.T) {
	cfg := testConfig()
	cfg.MaxSize = 2
	h := newHarness(t, cfg)
	ids := h.stableGroup(2)
	// Stable: a third member is refused; the known ones are not.
	// (Before it even gets a member id, as Kafka checks the size first.)
	if r := h.joinResp(h.joinWith(joinArgs{client: "third"})); r.ErrorCode != groupMaxSizeReached || r.MemberID != "" {
		t.Fatalf("third member %+v", r)
	}
	if h.g.Len() != 2 || h.g.State() != Stable {
		t.Fatal("refused member changed the group")
	}
	// PreparingRebalance: the limit counts members that rejoined, so a
	// newcomer may take the place of a member slow to rejoin (as Kafka).
	t0 := h.join(ids[0])
	h.wantState(PreparingRebalance)
	tx := h.joinWith(joinArgs{version: 3, client: "x"})
	if h.answered(tx) {
		t.Fatalf("newcomer refused with one member rejoined: %d", h.joinResp(tx).ErrorCode)
	}
	if r := h.joinResp(h.join(ids[1])); r.ErrorCode != groupMaxSizeReached {
		t.Fatalf("late member: %d", r.ErrorCode)
	}
	if h.joinResp(t0).ErrorCode != 0 || h.joinResp(tx).ErrorCode != 0 || h.g.Len() != 2 {
		t.Fatal("the rebalance did not complete with the leader and the newcomer")
	}
}

func TestGroupMaxSizeWhilePreparingShedsLateMembers(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.stableGroup(3)
	// The limit is lowered (as after a config change): two members
	// rejoin, the third is over the limit and is dropped.
	h.g.cfg.MaxSize = 2
	t0 := h.join(ids[0])
	t1 := h.join(ids[1])
	r := h.joinResp(h.join(ids[2]))
	if r.ErrorCode != groupMaxSizeReached {
		t.Fatalf("late member: %d", r.ErrorCode)
	}
	if _, ok := h.g.members[ids[2]]; ok {
		t.Fatal("the member over the limit is still in the group")
	}
	// The two that rejoined need not wait for the rebalance timeout.
	if h.joinResp(t0).ErrorCode != 0 || h.joinResp(t1).ErrorCode != 0 || h.g.Len() != 2 {
		t.Fatal("the rebalance did not complete with two members")
	}
}

func TestInitialDelay(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rebalance time.Duration
		joins     []time.Duration // when members join, after the first
		done      time.Duration   // when the join phase completes
	}{
		{name: "alone", rebalance: time.Minute, done: 3 * time.Second},
		{name: "one more during the delay", rebalance: time.Minute, joins: []time.Duration{time.Second}, done: 6 * time.Second},
		{name: "members keep coming", rebalance: time.Minute,
			joins: []time.Duration{time.Second, 4 * time.Second, 7 * time.Second}, done: 12 * time.Second},
		{name: "bounded by the rebalance timeout", rebalance: 5 * time.Second,
			joins: []time.Duration{time.Second, 4 * time.Second}, done: 5 * time.Second},
		{name: "rebalance timeout below the delay", rebalance: 2 * time.Second,
			joins: []time.Duration{time.Second}, done: 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			start := h.now
			first := h.joinWith(joinArgs{version: 3, client: "a", rebalance: tc.rebalance})
			for i, at := range tc.joins {
				h.advance(start.Add(at).Sub(h.now))
				if h.answered(first) {
					t.Fatalf("completed before join %d at %v", i, at)
				}
				h.joinWith(joinArgs{version: 3, client: "b", rebalance: tc.rebalance})
			}
			for h.untilDeadline(time.Hour) && !h.answered(first) {
			}
			if !h.answered(first) {
				t.Fatal("never completed")
			}
			if got := h.now.Sub(start); got != tc.done {
				t.Fatalf("completed after %v, want %v", got, tc.done)
			}
			if n := len(h.joinResp(first).Members); n != 1+len(tc.joins) {
				t.Fatalf("%d members", n)
			}
		})
	}
}

func TestRebalanceTimeoutRemovesMembersThatDidNotRejoin(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.stableGroup(3)
	// The members keep heartbeating, but only two rejoin.
	t0 := h.join(ids[0]) // the leader's join starts a rebalance
	t1 := h.join(ids[1])
	for range 5 {
		h.advance(9 * time.Second)
		for _, id := range ids {
			h.heartbeat(id, 1)
		}
	}
	if h.answered(t0) {
		t.Fatal("completed before the rebalance timeout")
	}
	h.advance(15 * time.Second) // 60 s after the rebalance began
	r := h.joinResp(t0)
	if r.ErrorCode != 0 || r.Generation != 2 || len(r.Members) != 2 || h.joinResp(t1).Generation != 2 {
		t.Fatalf("after the rebalance timeout %+v", r)
	}
	if _, ok := h.g.members[ids[2]]; ok {
		t.Fatal("the member that did not rejoin is still there")
	}
	if code := h.heartbeat(ids[2], 1); code != unknownMemberID {
		t.Fatalf("removed member's heartbeat: %d", code)
	}
}

func TestLeaderThatDoesNotRejoinIsReplaced(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.stableGroup(2)
	h.leave(kmsg.LeaveGroupRequestMember{MemberID: "x"}) // no effect
	tf := h.joinWith(joinArgs{memberID: ids[1], protocols: protocols("range", "t", "u")})
	h.advance(time.Minute)
	r := h.joinResp(tf)
	if r.LeaderID != ids[1] || len(r.Members) != 1 {
		t.Fatalf("new leader %q, members %d", r.LeaderID, len(r.Members))
	}
}

func TestSupersededJoinIsAnswered(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.stableGroup(3)
	h.join(ids[0])
	first := h.join(ids[1])
	second := h.join(ids[1])
	if r := h.joinResp(first); r.ErrorCode != rebalanceInProgress {
		t.Fatalf("superseded join: %d", r.ErrorCode)
	}
	h.join(ids[2])
	if r := h.joinResp(second); r.ErrorCode != 0 || r.Generation != 2 {
		t.Fatalf("second join %+v", r)
	}
}
