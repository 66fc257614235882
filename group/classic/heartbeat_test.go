package classic

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestHeartbeat(t *testing.T) {
	for _, tc := range []struct {
		name       string
		setup      func(h *harness) []string
		member     func(ids []string) (string, *string)
		generation func(gen int32) int32
		want       int16
	}{
		{name: "empty group",
			setup:  func(h *harness) []string { return nil },
			member: func([]string) (string, *string) { return "m", nil },
			want:   unknownMemberID},
		{name: "unknown member",
			setup:  func(h *harness) []string { return h.stableGroup(1) },
			member: func([]string) (string, *string) { return "m", nil },
			want:   unknownMemberID},
		{name: "wrong generation",
			setup:      func(h *harness) []string { return h.stableGroup(1) },
			member:     func(ids []string) (string, *string) { return ids[0], nil },
			generation: func(gen int32) int32 { return gen + 1 },
			want:       illegalGeneration},
		{name: "fenced instance",
			setup:  func(h *harness) []string { return h.staticGroup(2) },
			member: func(ids []string) (string, *string) { return ids[0], strp("s1") },
			want:   fencedInstanceID},
		{name: "unknown instance",
			setup:  func(h *harness) []string { return h.staticGroup(1) },
			member: func(ids []string) (string, *string) { return ids[0], strp("s9") },
			want:   unknownMemberID},
		{name: "stable",
			setup:  func(h *harness) []string { return h.stableGroup(2) },
			member: func(ids []string) (string, *string) { return ids[1], nil },
			want:   0},
		{name: "static member",
			setup:  func(h *harness) []string { return h.staticGroup(2) },
			member: func(ids []string) (string, *string) { return ids[1], strp("s1") },
			want:   0},
		{name: "preparing rebalance",
			setup: func(h *harness) []string {
				ids := h.stableGroup(2)
				h.join(ids[0])
				return ids
			},
			member: func(ids []string) (string, *string) { return ids[1], nil },
			want:   rebalanceInProgress},
		{name: "completing rebalance",
			setup: func(h *harness) []string {
				ids := h.stableGroup(2)
				h.join(ids[0])
				h.join(ids[1])
				return ids
			},
			member: func(ids []string) (string, *string) { return ids[1], nil },
			want:   0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			ids := tc.setup(h)
			req := kmsg.NewPtrHeartbeatRequest()
			req.MemberID, req.InstanceID = tc.member(ids)
			req.Generation = h.g.Generation()
			if tc.generation != nil {
				req.Generation = tc.generation(req.Generation)
			}
			h.now = h.now.Add(time.Second)
			resp := h.g.Heartbeat(h.now, 4, req)
			if resp.ErrorCode != tc.want || resp.Version != 4 {
				t.Fatalf("heartbeat: error %d (v%d), want %d", resp.ErrorCode, resp.Version, tc.want)
			}
			m := h.g.members[req.MemberID]
			if tc.want == 0 || tc.want == rebalanceInProgress {
				if want := h.now.Add(m.sessionTimeout); !m.deadline.Equal(want) {
					t.Fatalf("session not reset: deadline %v, want %v", m.deadline, want)
				}
			}
		})
	}
}

func TestLeave(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.staticGroup(3)
	resp := h.leave(
		kmsg.LeaveGroupRequestMember{MemberID: ids[0], InstanceID: strp("s0")},
		kmsg.LeaveGroupRequestMember{MemberID: "nobody"},
		kmsg.LeaveGroupRequestMember{MemberID: ids[1], InstanceID: strp("s2")},
		kmsg.LeaveGroupRequestMember{InstanceID: strp("s2")}, // admin removal by instance id
		kmsg.LeaveGroupRequestMember{InstanceID: strp("s9")},
		kmsg.LeaveGroupRequestMember{},
	)
	want := []int16{0, unknownMemberID, fencedInstanceID, 0, unknownMemberID, unknownMemberID}
	if resp.ErrorCode != 0 || len(resp.Members) != len(want) {
		t.Fatalf("leave response %+v", resp)
	}
	for i, m := range resp.Members {
		if m.ErrorCode != want[i] {
			t.Fatalf("member %d (%q): error %d, want %d", i, m.MemberID, m.ErrorCode, want[i])
		}
	}
	if resp.Members[3].InstanceID == nil || *resp.Members[3].InstanceID != "s2" {
		t.Fatal("response does not echo the instance id")
	}
	h.wantState(PreparingRebalance)
	if h.g.Len() != 1 || h.g.Leader() != ids[1] {
		t.Fatalf("%d members left, leader %q", h.g.Len(), h.g.Leader())
	}
}

func TestLeaveV0(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.stableGroup(2)
	for _, tc := range []struct {
		memberID string
		want     int16
	}{{"nobody", unknownMemberID}, {"", unknownMemberID}, {ids[1], 0}} {
		req := kmsg.NewPtrLeaveGroupRequest()
		req.MemberID = tc.memberID
		resp, _ := h.g.Leave(h.now, 2, req)
		if resp.ErrorCode != tc.want || resp.Members != nil {
			t.Fatalf("v2 leave of %q: %+v", tc.memberID, resp)
		}
	}
	h.wantState(PreparingRebalance)
}

func TestLastMemberLeavingEmptiesTheGroup(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.stableGroup(2)
	h.g.Snapshot(h.now)
	h.leave(kmsg.LeaveGroupRequestMember{MemberID: ids[0]}, kmsg.LeaveGroupRequestMember{MemberID: ids[1]})
	h.wantState(Empty)
	if h.g.Generation() != 2 || h.g.Len() != 0 || h.g.Leader() != "" || h.g.Protocol() != "" {
		t.Fatalf("empty group: generation %d, %d members", h.g.Generation(), h.g.Len())
	}
	if h.g.ProtocolType() != "consumer" {
		t.Fatal("an empty group forgets its protocol type")
	}
	if !h.g.Dirty() {
		t.Fatal("the empty group is not to be persisted")
	}
	if _, ok := h.g.Deadline(); ok {
		t.Fatal("an empty group has timers")
	}
}

func TestLeaveCompletesTheJoinPhase(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.stableGroup(3)
	t0 := h.join(ids[0])
	t1 := h.join(ids[1])
	h.leave(kmsg.LeaveGroupRequestMember{MemberID: ids[2]})
	for _, tok := range []Token{t0, t1} {
		if r := h.joinResp(tok); r.ErrorCode != 0 || r.Generation != 2 {
			t.Fatalf("join after the leave %+v", r)
		}
	}
}

func TestLeaveAnswersTheLeaversWaitingJoin(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.stableGroup(3)
	h.join(ids[0])
	t1 := h.join(ids[1])
	h.leave(kmsg.LeaveGroupRequestMember{MemberID: ids[1]})
	if r := h.joinResp(t1); r.ErrorCode != unknownMemberID {
		t.Fatalf("leaver's join: %d", r.ErrorCode)
	}
}

func TestCheckCommit(t *testing.T) {
	for _, tc := range []struct {
		name       string
		setup      func(h *harness) []string
		member     func(ids []string) (string, *string)
		generation func(gen int32) int32
		want       int16
	}{
		{name: "simple consumer, empty group",
			setup:      func(h *harness) []string { return nil },
			member:     func([]string) (string, *string) { return "", nil },
			generation: func(int32) int32 { return -1 },
			want:       0},
		{name: "simple consumer, group with members",
			setup:      func(h *harness) []string { return h.stableGroup(1) },
			member:     func([]string) (string, *string) { return "", nil },
			generation: func(int32) int32 { return -1 },
			want:       unknownMemberID},
		{name: "member id and generation -1 in an empty group",
			setup:      func(h *harness) []string { return nil },
			member:     func([]string) (string, *string) { return "m", nil },
			generation: func(int32) int32 { return -1 },
			want:       0},
		{name: "unknown member",
			setup:  func(h *harness) []string { return h.stableGroup(1) },
			member: func([]string) (string, *string) { return "m", nil },
			want:   unknownMemberID},
		{name: "generation of an empty group with a member id",
			setup:  func(h *harness) []string { return nil },
			member: func([]string) (string, *string) { return "m", nil },
			want:   unknownMemberID},
		{name: "wrong generation",
			setup:      func(h *harness) []string { return h.stableGroup(1) },
			member:     func(ids []string) (string, *string) { return ids[0], nil },
			generation: func(gen int32) int32 { return gen - 1 },
			want:       illegalGeneration},
		{name: "fenced instance",
			setup:  func(h *harness) []string { return h.staticGroup(2) },
			member: func(ids []string) (string, *string) { return ids[1], strp("s0") },
			want:   fencedInstanceID},
		{name: "stable",
			setup:  func(h *harness) []string { return h.stableGroup(2) },
			member: func(ids []string) (string, *string) { return ids[1], nil },
			want:   0},
		{name: "preparing rebalance, current generation",
			setup: func(h *harness) []string {
				ids := h.stableGroup(2)
				h.join(ids[0])
				return ids
			},
			member: func(ids []string) (string, *string) { return ids[1], nil },
			want:   0},
		{name: "completing rebalance",
			setup: func(h *harness) []string {
				ids := h.stableGroup(2)
				h.join(ids[0])
				h.join(ids[1])
				return ids
			},
			member: func(ids []string) (string, *string) { return ids[1], nil },
			want:   rebalanceInProgress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			ids := tc.setup(h)
			memberID, instanceID := tc.member(ids)
			gen := h.g.Generation()
			if tc.generation != nil {
				gen = tc.generation(gen)
			}
			if got := h.g.CheckCommit(memberID, instanceID, gen); got != tc.want {
				t.Fatalf("CheckCommit: %d, want %d", got, tc.want)
			}
		})
	}
}

func TestCommitExtendsTheSession(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.stableGroup(1)
	for range 3 {
		h.advance(8 * time.Second)
		if code := h.g.CheckCommit(ids[0], nil, 1); code != 0 {
			t.Fatalf("commit: %d", code)
		}
		h.g.ExtendSession(h.now, ids[0])
	}
	h.wantState(Stable)
	h.g.ExtendSession(h.now, "nobody") // ignored
	h.advance(10 * time.Second)
	h.wantState(Empty)
}
