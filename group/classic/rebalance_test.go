package classic

import (
	"bytes"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestEagerRebalance(t *testing.T) {
	h := newHarness(t, testConfig())
	a, ta := h.joinNew("a")
	b, tb := h.joinNew("b")
	h.wantState(PreparingRebalance)
	if h.answered(ta) || h.answered(tb) {
		t.Fatal("joins answered before the initial delay ended")
	}
	// The initial delay (3 s) grows once by 3 s since b joined during it.
	h.advance(3 * time.Second)
	if h.answered(ta) {
		t.Fatal("join answered although a member joined during the initial delay")
	}
	h.advance(3 * time.Second)
	h.wantState(CompletingRebalance)
	ra, rb := h.joinResp(ta), h.joinResp(tb)
	for _, r := range []*kmsg.JoinGroupResponse{ra, rb} {
		if r.ErrorCode != 0 || r.Generation != 1 || r.LeaderID != a || r.Protocol == nil || *r.Protocol != "range" ||
			r.ProtocolType == nil || *r.ProtocolType != "consumer" || r.SkipAssignment {
			t.Fatalf("join response %+v", r)
		}
	}
	if len(ra.Members) != 2 || ra.Members[0].MemberID != a || ra.Members[1].MemberID != b ||
		!bytes.Equal(ra.Members[1].ProtocolMetadata, subscription("t")) {
		t.Fatalf("leader's members %+v", ra.Members)
	}
	if len(rb.Members) != 0 {
		t.Fatalf("follower got members %+v", rb.Members)
	}

	sb := h.sync(b, 1, nil)
	if h.answered(sb) {
		t.Fatal("follower's sync answered before the leader's")
	}
	sa := h.sync(a, 1, map[string][]byte{a: []byte("A"), b: []byte("B"), "stranger": []byte("X")})
	h.wantState(Stable)
	if got := h.syncResp(sa); got.ErrorCode != 0 || string(got.MemberAssignment) != "A" || *got.Protocol != "range" {
		t.Fatalf("leader's sync %+v", got)
	}
	if got := h.syncResp(sb); got.ErrorCode != 0 || string(got.MemberAssignment) != "B" {
		t.Fatalf("follower's sync %+v", got)
	}
	if !h.g.Dirty() {
		t.Fatal("the assignment is not to be persisted")
	}

	// A third member: the others learn of the rebalance by heartbeat and
	// rejoin; no initial delay this time.
	c, tc := h.joinNew("c")
	h.wantState(PreparingRebalance)
	if code := h.heartbeat(a, 1); code != rebalanceInProgress {
		t.Fatalf("heartbeat during rebalance: %d", code)
	}
	ta2 := h.join(a)
	if h.answered(ta2) || h.answered(tc) {
		t.Fatal("join phase completed before b rejoined")
	}
	tb2 := h.join(b)
	h.wantState(CompletingRebalance)
	for _, tok := range []Token{ta2, tb2, tc} {
		if r := h.joinResp(tok); r.ErrorCode != 0 || r.Generation != 2 {
			t.Fatalf("rejoin response %+v", r)
		}
	}
	if n := len(h.joinResp(ta2).Members); n != 3 {
		t.Fatalf("leader got %d members", n)
	}
	// Members keep their old assignment until the new one arrives, and a
	// commit in this generation must wait for it.
	if code := h.g.CheckCommit(c, nil, 2); code != rebalanceInProgress {
		t.Fatalf("commit while completing: %d", code)
	}
	sc := h.sync(c, 2, nil)
	h.sync(a, 2, map[string][]byte{c: []byte("C")})
	if got := h.syncResp(sc); string(got.MemberAssignment) != "C" {
		t.Fatalf("c's assignment %q", got.MemberAssignment)
	}
	// b was left out by the leader: it gets an empty assignment.
	if got := h.syncResp(h.sync(b, 2, nil)); got.ErrorCode != 0 || len(got.MemberAssignment) != 0 {
		t.Fatalf("b's sync %+v", got)
	}
	if code := h.g.CheckCommit(c, nil, 2); code != 0 {
		t.Fatalf("commit when stable: %d", code)
	}
}

// TestCooperativeRebalance follows the two rounds of KIP-429: the first
// round's assignment revokes partitions, and the members whose owned
// partitions changed rejoin at once for the second round.
func TestCooperativeRebalance(t *testing.T) {
	h := newHarness(t, testConfig())
	coop := func(owned ...string) []kmsg.JoinGroupRequestProtocol {
		m := kmsg.NewConsumerMemberMetadata()
		m.Version = 1
		m.Topics = []string{"t"}
		m.UserData = []byte(string(rune(len(owned))))
		for _, o := range owned {
			m.OwnedPartitions = append(m.OwnedPartitions, kmsg.ConsumerMemberMetadataOwnedPartition{Topic: o})
		}
		return []kmsg.JoinGroupRequestProtocol{{Name: "cooperative-sticky", Metadata: m.AppendTo(nil)}}
	}
	// Generation 1: a alone owns everything.
	ta := h.joinWith(joinArgs{client: "a", protocols: coop()})
	a := h.joinResp(ta).MemberID
	ta = h.joinWith(joinArgs{client: "a", memberID: a, protocols: coop()})
	h.advance(3 * time.Second)
	gen := h.joinResp(ta).Generation
	h.sync(a, gen, map[string][]byte{a: []byte("all")})
	h.wantState(Stable)

	// b joins: round one. The leader's assignment revokes from a what b
	// will get, and gives b nothing yet.
	b, tb := h.joinNewWith(joinArgs{client: "b", protocols: coop()})
	h.wantState(PreparingRebalance)
	ta = h.joinWith(joinArgs{memberID: a, protocols: coop("t")})
	h.wantState(CompletingRebalance)
	if r := h.joinResp(ta); r.Generation != gen+1 || *r.Protocol != "cooperative-sticky" || len(r.Members) != 2 {
		t.Fatalf("round one leader join %+v", r)
	}
	if r := h.joinResp(tb); r.Generation != gen+1 || r.LeaderID != a {
		t.Fatalf("round one follower join %+v", r)
	}
	sb := h.sync(b, gen+1, nil)
	h.sync(a, gen+1, map[string][]byte{a: []byte("half")})
	h.wantState(Stable)
	if len(h.syncResp(sb).MemberAssignment) != 0 {
		t.Fatal("round one gave b partitions still owned by a")
	}

	// Round two: a, having revoked partitions, rejoins at once with its new
	// owned partitions; the group rebalances again and b rejoins too.
	ta = h.joinWith(joinArgs{memberID: a, protocols: coop("t", "t")})
	h.wantState(PreparingRebalance)
	if code := h.heartbeat(b, gen+1); code != rebalanceInProgress {
		t.Fatalf("b's heartbeat in round two: %d", code)
	}
	tb = h.joinWith(joinArgs{memberID: b, protocols: coop()})
	h.wantState(CompletingRebalance)
	for _, tok := range []Token{ta, tb} {
		if r := h.joinResp(tok); r.ErrorCode != 0 || r.Generation != gen+2 {
			t.Fatalf("round two join %+v", r)
		}
	}
	sb = h.sync(b, gen+2, nil)
	h.sync(a, gen+2, map[string][]byte{a: []byte("half"), b: []byte("other half")})
	h.wantState(Stable)
	if string(h.syncResp(sb).MemberAssignment) != "other half" {
		t.Fatal("round two did not give b its partitions")
	}
}

func TestLeaderRejoinInStableForcesRebalance(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.stableGroup(2)
	tl := h.join(ids[0])
	h.wantState(PreparingRebalance)
	tf := h.join(ids[1])
	if h.joinResp(tl).Generation != 2 || h.joinResp(tf).Generation != 2 {
		t.Fatal("no new generation after the leader's rejoin")
	}
}

func TestFollowerRejoinInStableKeepsGeneration(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.stableGroup(2)
	r := h.joinResp(h.join(ids[1]))
	h.wantState(Stable)
	if r.ErrorCode != 0 || r.Generation != 1 || r.LeaderID != ids[0] || len(r.Members) != 0 {
		t.Fatalf("follower rejoin %+v", r)
	}
	if got := h.syncResp(h.sync(ids[1], 1, nil)); string(got.MemberAssignment) != "a-"+ids[1] {
		t.Fatalf("follower's assignment %q", got.MemberAssignment)
	}
}

func TestRejoinInCompletingRebalanceRepeatsTheResponse(t *testing.T) {
	h := newHarness(t, testConfig())
	a, ta := h.joinNew("a")
	h.advance(3 * time.Second)
	h.wantState(CompletingRebalance)
	r := h.joinResp(h.join(a))
	h.wantState(CompletingRebalance)
	if r.Generation != h.joinResp(ta).Generation || len(r.Members) != 1 {
		t.Fatalf("repeat %+v", r)
	}
	// With other metadata it is a new rebalance instead.
	tok := h.joinWith(joinArgs{memberID: a, protocols: protocols("range", "t", "u")})
	h.wantState(CompletingRebalance) // the only member rejoined: done at once
	if got := h.joinResp(tok); got.Generation != 2 {
		t.Fatalf("generation %d after a metadata change", got.Generation)
	}
}

func TestProtocolSelection(t *testing.T) {
	h := newHarness(t, testConfig())
	two := func(first, second string) []kmsg.JoinGroupRequestProtocol {
		return []kmsg.JoinGroupRequestProtocol{{Name: first, Metadata: []byte(first)}, {Name: second, Metadata: []byte(second)}}
	}
	// a prefers range, b and c prefer sticky: sticky wins by votes.
	tok := h.joinWith(joinArgs{version: 3, client: "a", protocols: two("range", "sticky")})
	h.joinWith(joinArgs{version: 3, client: "b", protocols: two("sticky", "range")})
	h.joinWith(joinArgs{version: 3, client: "c", protocols: []kmsg.JoinGroupRequestProtocol{{Name: "sticky"}, {Name: "range"}, {Name: "x"}}})
	// d supports only x: no protocol in common with the group.
	if r := h.joinResp(h.joinWith(joinArgs{version: 3, client: "d", protocols: []kmsg.JoinGroupRequestProtocol{{Name: "x"}}})); r.ErrorCode != inconsistentProtocol {
		t.Fatalf("join with no common protocol: %d", r.ErrorCode)
	}
	h.advance(10 * time.Second)
	r := h.joinResp(tok)
	if *r.Protocol != "sticky" {
		t.Fatalf("protocol %q, want sticky", *r.Protocol)
	}
	if string(r.Members[0].ProtocolMetadata) != "sticky" {
		t.Fatalf("leader got metadata %q for the wrong protocol", r.Members[0].ProtocolMetadata)
	}
}

func TestJoinV0UsesSessionTimeoutForRebalance(t *testing.T) {
	h := newHarness(t, testConfig())
	req := kmsg.NewPtrJoinGroupRequest()
	req.ProtocolType = "consumer"
	req.Protocols = protocols("range", "t")
	req.SessionTimeoutMillis = 7000
	req.RebalanceTimeoutMillis = 999999 // not in v0; ignored
	h.next++
	h.open[h.next] = "join"
	h.collect(h.g.Join(h.now, h.next, 0, Client{ID: "old"}, req))
	if h.answered(h.next) {
		t.Fatal("v0 join needs no member id: it waits for the rebalance")
	}
	if got := h.g.rebalanceTimeout(); got != 7*time.Second {
		t.Fatalf("rebalance timeout %v, want the session timeout", got)
	}
	h.advance(3 * time.Second)
	if r := h.joinResp(h.next); r.ErrorCode != 0 || r.MemberID != "old-1" {
		t.Fatalf("v0 join %+v", r)
	}
}
