package classic

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestSyncErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(h *harness) []string // returns member ids, group left in its state
		version int16
		req     func(ids []string, gen int32) *kmsg.SyncGroupRequest
		want    int16
	}{
		{name: "empty group",
			setup: func(h *harness) []string { return nil },
			req:   func(_ []string, gen int32) *kmsg.SyncGroupRequest { return syncReq("m", nil, gen) },
			want:  unknownMemberID},
		{name: "unknown member",
			setup: func(h *harness) []string { return h.stableGroup(1) },
			req:   func(_ []string, gen int32) *kmsg.SyncGroupRequest { return syncReq("m", nil, gen) },
			want:  unknownMemberID},
		{name: "wrong generation",
			setup: func(h *harness) []string { return h.stableGroup(1) },
			req:   func(ids []string, gen int32) *kmsg.SyncGroupRequest { return syncReq(ids[0], nil, gen-1) },
			want:  illegalGeneration},
		{name: "unknown instance id",
			setup: func(h *harness) []string { return h.staticGroup(1) },
			req:   func(ids []string, gen int32) *kmsg.SyncGroupRequest { return syncReq(ids[0], strp("x"), gen) },
			want:  unknownMemberID},
		{name: "fenced instance id",
			setup: func(h *harness) []string { return h.staticGroup(2) },
			req:   func(ids []string, gen int32) *kmsg.SyncGroupRequest { return syncReq(ids[1], strp("s0"), gen) },
			want:  fencedInstanceID},
		{name: "v5 other protocol type",
			setup: func(h *harness) []string { return h.stableGroup(1) },
			req: func(ids []string, gen int32) *kmsg.SyncGroupRequest {
				r := syncReq(ids[0], nil, gen)
				r.ProtocolType = strp("connect")
				return r
			},
			want: inconsistentProtocol},
		{name: "v5 other protocol name",
			setup: func(h *harness) []string { return h.stableGroup(1) },
			req: func(ids []string, gen int32) *kmsg.SyncGroupRequest {
				r := syncReq(ids[0], nil, gen)
				r.Protocol = strp("sticky")
				return r
			},
			want: inconsistentProtocol},
		{name: "v4 ignores the protocol name",
			setup:   func(h *harness) []string { return h.stableGroup(1) },
			version: 4,
			req: func(ids []string, gen int32) *kmsg.SyncGroupRequest {
				r := syncReq(ids[0], nil, gen)
				r.Protocol = strp("sticky")
				return r
			},
			want: 0},
		{name: "rebalance in progress",
			setup: func(h *harness) []string {
				ids := h.stableGroup(2)
				h.join(ids[0])
				return ids
			},
			req:  func(ids []string, gen int32) *kmsg.SyncGroupRequest { return syncReq(ids[1], nil, gen) },
			want: rebalanceInProgress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			ids := tc.setup(h)
			version := tc.version
			if version == 0 {
				version = 5
			}
			h.next++
			h.open[h.next] = "sync"
			h.collect(h.g.Sync(h.now, h.next, version, tc.req(ids, h.g.Generation())))
			r := h.syncResp(h.next)
			if r.ErrorCode != tc.want {
				t.Fatalf("error %d, want %d", r.ErrorCode, tc.want)
			}
			if r.ErrorCode != 0 && (r.Protocol != nil || len(r.MemberAssignment) != 0) {
				t.Fatalf("error response with content %+v", r)
			}
		})
	}
}

func syncReq(memberID string, instanceID *string, gen int32) *kmsg.SyncGroupRequest {
	r := kmsg.NewPtrSyncGroupRequest()
	r.MemberID, r.InstanceID, r.Generation = memberID, instanceID, gen
	return r
}

func TestSyncInStableReturnsTheAssignment(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.stableGroup(2)
	for _, id := range ids {
		r := h.syncResp(h.sync(id, 1, map[string][]byte{id: []byte("ignored")}))
		if r.ErrorCode != 0 || string(r.MemberAssignment) != "a-"+id || *r.ProtocolType != "consumer" || *r.Protocol != "range" {
			t.Fatalf("sync in Stable %+v", r)
		}
	}
}

func TestRebalanceWhileFollowersWaitForTheAssignment(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.stableGroup(3)
	h.join(ids[0])
	h.join(ids[1])
	h.join(ids[2])
	h.wantState(CompletingRebalance)
	waiting := h.sync(ids[1], 2, nil)
	// A member leaves before the leader synced: the waiting follower is
	// told to rejoin, and old assignments are dropped.
	h.leave(kmsg.LeaveGroupRequestMember{MemberID: ids[2]})
	h.wantState(PreparingRebalance)
	if r := h.syncResp(waiting); r.ErrorCode != rebalanceInProgress {
		t.Fatalf("waiting sync: %d", r.ErrorCode)
	}
	if d := h.g.Describe(5); len(d.Members[0].MemberAssignment) != 0 {
		t.Fatal("assignment kept across an aborted generation")
	}
}

func TestSupersededSyncIsAnswered(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.stableGroup(2)
	h.join(ids[0])
	h.join(ids[1])
	first := h.sync(ids[1], 2, nil)
	second := h.sync(ids[1], 2, nil)
	if r := h.syncResp(first); r.ErrorCode != rebalanceInProgress {
		t.Fatalf("superseded sync: %d", r.ErrorCode)
	}
	h.sync(ids[0], 2, map[string][]byte{ids[1]: []byte("B")})
	if r := h.syncResp(second); string(r.MemberAssignment) != "B" {
		t.Fatalf("second sync %+v", r)
	}
}

func TestPendingSyncExpiry(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.stableGroup(3)
	gen := h.g.Generation()
	// Rebalance with a short rebalance timeout (5 s, below the session).
	tl := h.joinWith(joinArgs{memberID: ids[0], rebalance: 5 * time.Second})
	h.joinWith(joinArgs{memberID: ids[1], rebalance: 5 * time.Second})
	h.joinWith(joinArgs{memberID: ids[2], rebalance: 5 * time.Second})
	if h.joinResp(tl).Generation != gen+1 {
		t.Fatal("no new generation")
	}
	// The leader syncs, ids[1] syncs, ids[2] only heartbeats.
	h.sync(ids[0], gen+1, nil)
	h.sync(ids[1], gen+1, nil)
	h.wantState(Stable)
	h.advance(4 * time.Second)
	h.heartbeat(ids[2], gen+1)
	h.advance(time.Second)
	h.wantState(PreparingRebalance)
	if _, ok := h.g.members[ids[2]]; ok {
		t.Fatal("the member that did not sync is still there")
	}
}

func TestPendingSyncExpiryStopsOnceAllSynced(t *testing.T) {
	h := newHarness(t, testConfig())
	h.stableGroup(2)
	if !h.g.syncDeadline.IsZero() {
		t.Fatal("pending sync timer still set after every member synced")
	}
}
