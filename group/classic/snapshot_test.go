package classic

import (
	"bytes"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDirty(t *testing.T) {
	h := newHarness(t, testConfig())
	if h.g.Dirty() {
		t.Fatal("a new group is dirty before anyone joins")
	}
	a, ta := h.joinNew("a")
	if !h.g.Dirty() {
		t.Fatal("a new group's first join is not persisted")
	}
	v := h.g.Snapshot(h.now)
	if h.g.Dirty() || v.Generation != 0 || len(v.Members) != 0 || v.Protocol != nil || v.Leader != nil {
		t.Fatalf("first snapshot %+v", v)
	}
	h.advance(3 * time.Second)
	h.joinResp(ta)
	if h.g.Dirty() {
		t.Fatal("a generation without its assignment is to be persisted")
	}
	h.sync(a, 1, map[string][]byte{a: []byte("A")})
	if !h.g.Dirty() {
		t.Fatal("the assignment is not to be persisted")
	}
	h.g.Snapshot(h.now)
	h.heartbeat(a, 1)
	h.sync(a, 1, nil)
	if h.g.Dirty() {
		t.Fatal("heartbeats and syncs in Stable are to be persisted")
	}
}

func TestSnapshotRestore(t *testing.T) {
	h := newHarness(t, testConfig())
	dyn := h.stableGroup(1)
	s := h.joinWith(joinArgs{client: "st", instanceID: strp("s"), session: 20 * time.Second, rebalance: 40 * time.Second})
	h.join(dyn[0])
	h.wantState(CompletingRebalance)
	sid := h.joinResp(s).MemberID
	h.sync(dyn[0], 2, map[string][]byte{dyn[0]: []byte("D"), sid: []byte("S")})
	h.wantState(Stable)

	v := h.g.Snapshot(h.now)
	if v.Version != 3 || v.ProtocolType != "consumer" || *v.Protocol != "range" || *v.Leader != dyn[0] || v.Generation != 2 {
		t.Fatalf("snapshot %+v", v)
	}
	// Through the wire format, as the coordinator stores it.
	var back kmsg.GroupMetadataValue
	if err := back.ReadFrom(v.AppendTo(nil)); err != nil {
		t.Fatal(err)
	}
	later := h.now.Add(time.Hour)
	g := Restore("g", testConfig(), &back, later)
	if g.State() != Stable || g.Generation() != 2 || g.Leader() != dyn[0] || g.Protocol() != "range" ||
		g.ProtocolType() != "consumer" || g.Len() != 2 || g.Dirty() {
		t.Fatalf("restored %s gen %d leader %q protocol %q len %d", g.State(), g.Generation(), g.Leader(), g.Protocol(), g.Len())
	}
	m := g.members[sid]
	if m.instanceID == nil || *m.instanceID != "s" || m.clientID != "st" || m.sessionTimeout != 20*time.Second ||
		m.rebalanceTimeout != 40*time.Second || string(m.assignment) != "S" || !bytes.Equal(m.metadata("range"), subscription("t")) {
		t.Fatalf("restored static member %+v", m)
	}
	if d, ok := g.Deadline(); !ok || !d.Equal(later.Add(10*time.Second)) {
		t.Fatalf("restored sessions: deadline %v, want from now", d)
	}
	// Members carry on: sync, heartbeat, commit; the static member is
	// known by its instance id.
	h2 := &harness{t: t, g: g, now: later, open: map[Token]string{}, replies: map[Token]kmsg.Response{}}
	if r := h2.syncResp(h2.syncWith(5, sid, strp("s"), 2, nil)); r.ErrorCode != 0 || string(r.MemberAssignment) != "S" {
		t.Fatalf("sync after restore %+v", r)
	}
	if code := h2.heartbeat(dyn[0], 2); code != 0 {
		t.Fatalf("heartbeat after restore: %d", code)
	}
	if code := g.CheckCommit(sid, strp("s"), 2); code != 0 {
		t.Fatalf("commit after restore: %d", code)
	}
	// A rejoin may not reuse generation 2.
	tok := h2.join(dyn[0])
	h2.joinWith(joinArgs{memberID: sid, instanceID: strp("s")})
	if r := h2.joinResp(tok); r.Generation != 3 {
		t.Fatalf("generation after restore %d", r.Generation)
	}
	// Snapshotting the restored group gives the same record back.
	if v2 := Restore("g", testConfig(), v, later).Snapshot(later); !reflect.DeepEqual(v2.Members, v.Members) {
		t.Fatalf("snapshot of a restored group differs:\n%+v\n%+v", v2.Members, v.Members)
	}
}

func TestRestoreEmpty(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.stableGroup(1)
	h.leave(kmsg.LeaveGroupRequestMember{MemberID: ids[0]})
	v := h.g.Snapshot(h.now)
	g := Restore("g", testConfig(), v, h.now)
	if g.State() != Empty || g.Generation() != 2 || g.ProtocolType() != "consumer" || g.Len() != 0 {
		t.Fatalf("restored empty group %s gen %d type %q", g.State(), g.Generation(), g.ProtocolType())
	}
	if _, ok := g.Deadline(); ok {
		t.Fatal("restored empty group has timers")
	}
	// A corrupt record (members without a protocol) restores empty.
	v.Members = []kmsg.GroupMetadataValueMember{{MemberID: "m"}}
	if g := Restore("g", testConfig(), v, h.now); g.State() != Empty || g.Len() != 0 {
		t.Fatal("members restored without a protocol")
	}
	// Old records: no rebalance timeout (v0), no state timestamp.
	v = &kmsg.GroupMetadataValue{ProtocolType: "consumer", Generation: 4, Protocol: strp("range"), Leader: strp("x"),
		CurrentStateTimestamp: -1,
		Members:               []kmsg.GroupMetadataValueMember{{MemberID: "m", SessionTimeoutMillis: 9000, RebalanceTimeoutMillis: -1}}}
	g = Restore("g", testConfig(), v, h.now)
	if g.Leader() != "m" || g.members["m"].rebalanceTimeout != 9*time.Second || g.State() != Stable {
		t.Fatalf("restored old record: leader %q, rebalance %v", g.Leader(), g.members["m"].rebalanceTimeout)
	}
}

func TestDescribe(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := h.stableGroup(2)
	d := h.g.Describe(5)
	if d.Group != "g" || d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != "range" || len(d.Members) != 2 || d.ErrorCode != 0 {
		t.Fatalf("describe stable %+v", d)
	}
	for i, m := range d.Members {
		if m.MemberID != ids[i] || m.ClientHost != "/127.0.0.1" || !bytes.Equal(m.ProtocolMetadata, subscription("t")) ||
			string(m.MemberAssignment) != "a-"+ids[i] {
			t.Fatalf("described member %+v", m)
		}
	}
	h.join(ids[0])
	d = h.g.Describe(5)
	if d.State != "PreparingRebalance" || d.Protocol != "" || len(d.Members[0].ProtocolMetadata) != 0 ||
		string(d.Members[0].MemberAssignment) != "a-"+ids[0] {
		t.Fatalf("describe preparing %+v", d)
	}
}

func TestSubscribed(t *testing.T) {
	h := newHarness(t, testConfig())
	if _, ok := h.g.Subscribed(); ok {
		t.Fatal("a group with no protocol type knows its topics")
	}
	_, ta := h.joinNewWith(joinArgs{client: "a", protocols: protocols("range", "t1", "t2")})
	h.joinNewWith(joinArgs{client: "b", protocols: protocols("range", "t2", "t3")})
	if _, ok := h.g.Subscribed(); ok {
		t.Fatal("topics known before the first generation")
	}
	for !h.answered(ta) && h.untilDeadline(time.Hour) {
	}
	topics, ok := h.g.Subscribed()
	var got []string
	for tp := range topics {
		got = append(got, tp)
	}
	sort.Strings(got)
	if !ok || !reflect.DeepEqual(got, []string{"t1", "t2", "t3"}) {
		t.Fatalf("subscribed %v %v", got, ok)
	}

	// Not a consumer group: unknown.
	h = newHarness(t, testConfig())
	_, tok := h.joinNewWith(joinArgs{protoType: "connect", protocols: protocols("default")})
	for !h.answered(tok) && h.untilDeadline(time.Hour) {
	}
	if _, ok := h.g.Subscribed(); ok {
		t.Fatal("a connect group has known topics")
	}
	// Undecodable consumer metadata: unknown.
	h = newHarness(t, testConfig())
	_, tok = h.joinNewWith(joinArgs{protocols: []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 1, 0}}}})
	for !h.answered(tok) && h.untilDeadline(time.Hour) {
	}
	if _, ok := h.g.Subscribed(); ok {
		t.Fatal("garbage metadata gives known topics")
	}
}

func TestFreshGroupIsPersistedOnlyByACreatingJoin(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  joinArgs
		dirty bool
	}{
		{"join with no member id", joinArgs{}, true},
		{"refused protocol", joinArgs{protocols: []kmsg.JoinGroupRequestProtocol{}}, true},
		{"join with a member id", joinArgs{memberID: "m"}, false},
		{"invalid session timeout", joinArgs{session: time.Second}, false},
	} {
		h := newHarness(t, testConfig())
		h.joinWith(tc.args)
		if h.g.Dirty() != tc.dirty {
			t.Errorf("%s: dirty %v, want %v", tc.name, h.g.Dirty(), tc.dirty)
		}
	}
}
