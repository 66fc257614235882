package consumer

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestThreeMembersConverge(t *testing.T) {
	s := newSim(t, testConfig(), map[string]int32{"orders": 12})
	for _, id := range ids(3) {
		s.hb(s.newClient(id, "orders"))
	}
	s.settle()
	h := s.holdings("orders")
	for _, id := range ids(3) {
		if h[id] != 4 {
			t.Fatalf("holdings %v, want 4 each", h)
		}
	}
	for _, c := range s.clients {
		if c.epoch != s.g.Epoch() {
			t.Fatalf("%s at epoch %d, group at %d", c.id, c.epoch, s.g.Epoch())
		}
	}
	if s.g.Len() != 3 || s.g.State() != Stable {
		t.Fatalf("len %d state %s", s.g.Len(), s.g.State())
	}
}

func TestJoinResponseCarriesMemberAndInterval(t *testing.T) {
	cfg := testConfig()
	cfg.HeartbeatInterval = 3 * time.Second
	s := newSim(t, cfg, map[string]int32{"orders": 2})
	resp := s.hb(s.newClient("m1", "orders"))
	if resp.ErrorCode != 0 || resp.MemberID == nil || *resp.MemberID != "m1" || resp.MemberEpoch != 1 ||
		resp.HeartbeatIntervalMillis != 3000 || resp.Assignment == nil || len(resp.Assignment.Topics) != 1 ||
		!slices.Equal(resp.Assignment.Topics[0].Partitions, []int32{0, 1}) {
		t.Fatalf("join response %+v", resp)
	}
}

func TestLeaveMovesPartitions(t *testing.T) {
	s := newSim(t, testConfig(), map[string]int32{"orders": 12})
	for _, id := range ids(3) {
		s.hb(s.newClient(id, "orders"))
	}
	s.settle()
	before := s.g.Epoch()
	if resp := s.leave(s.clients[0], -1); resp.ErrorCode != 0 || resp.MemberEpoch != -1 {
		t.Fatalf("leave: %+v", resp)
	}
	if s.g.Epoch() != before+1 || s.g.Len() != 2 {
		t.Fatalf("epoch %d (was %d), len %d", s.g.Epoch(), before, s.g.Len())
	}
	s.settle()
	h := s.holdings("orders")
	if h["member-1"] != 6 || h["member-2"] != 6 {
		t.Fatalf("holdings %v, want 6 each", h)
	}
	// Its heartbeats are now unknown.
	c := s.clients[0]
	c.joined, c.epoch = true, 3
	if resp := s.hb(c); resp.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat after leave: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
}

// TestNewMemberWaitsForRevocation checks that a partition moves only once
// its old owner has released it: the new member is told of it only after
// the old owner's heartbeat no longer reports it.
func TestNewMemberWaitsForRevocation(t *testing.T) {
	s := newSim(t, testConfig(), map[string]int32{"orders": 12})
	for _, id := range ids(3) {
		c := s.newClient(id, "orders")
		c.lazy = true
		s.hb(c)
	}
	s.settle()
	newcomer := s.newClient("member-3", "orders")
	resp := s.hb(newcomer)
	if resp.ErrorCode != 0 || resp.Assignment == nil || len(resp.Assignment.Topics) != 0 {
		t.Fatalf("newcomer got %+v before anyone released anything", resp.Assignment)
	}
	if s.g.State() != Reconciling {
		t.Fatalf("state %s, want Reconciling", s.g.State())
	}
	old := s.clients[0]
	resp = s.hb(old)
	if resp.Assignment == nil || len(resp.Assignment.Topics[0].Partitions) != 3 {
		t.Fatalf("old owner was not told to revoke one partition: %+v", resp.Assignment)
	}
	if m := s.g.members[old.id]; m.state != stateUnrevoked || m.epoch == s.g.Epoch() {
		t.Fatalf("old owner state %d epoch %d: it must wait at its epoch until it revokes", m.state, m.epoch)
	}
	// The old owner still reports the partition: the newcomer still waits,
	// also when the old owner's heartbeat omits its owned partitions.
	s.hb(newcomer)
	s.send(old, old.request(false, true))
	if got := len(newcomer.owned); got != 0 {
		t.Fatalf("newcomer holds %d partitions while the old owner has not released", got)
	}
	s.release(old)
	s.hb(old)
	if m := s.g.members[old.id]; m.epoch != s.g.Epoch() {
		t.Fatalf("old owner at epoch %d after revoking, group at %d", m.epoch, s.g.Epoch())
	}
	s.hb(newcomer)
	if got := len(newcomer.owned); got != 1 {
		t.Fatalf("newcomer holds %d partitions after one was released, want 1", got)
	}
	s.settle()
	h := s.holdings("orders")
	for _, c := range s.clients {
		if h[c.id] != 3 {
			t.Fatalf("holdings %v, want 3 each", h)
		}
	}
}

func TestSessionExpiry(t *testing.T) {
	s := newSim(t, testConfig(), map[string]int32{"orders": 6})
	a, b := s.newClient("a", "orders"), s.newClient("b", "orders")
	s.hb(a)
	s.hb(b)
	s.settle()
	if d, ok := s.g.Deadline(); !ok || !d.Equal(s.now.Add(45*time.Second)) {
		t.Fatalf("deadline %v %v", d, ok)
	}
	// a keeps heartbeating, b goes silent.
	for range 8 {
		s.now = s.now.Add(5 * time.Second)
		s.hb(a)
		s.tick(0)
	}
	if s.g.Len() != 2 {
		t.Fatalf("b expired early")
	}
	s.tick(5 * time.Second) // 45 s since b's last heartbeat
	if s.g.Len() != 1 || s.g.members["b"] != nil {
		t.Fatalf("b did not expire: %d members", s.g.Len())
	}
	s.settle()
	if h := s.holdings("orders"); h["a"] != 6 {
		t.Fatalf("a holds %d, want 6", h["a"])
	}
}

func TestRebalanceTimeoutFencesMemberThatDoesNotRevoke(t *testing.T) {
	s := newSim(t, testConfig(), map[string]int32{"orders": 4})
	a := s.newClient("a", "orders")
	a.lazy = true
	s.hb(a)
	b := s.newClient("b", "orders")
	s.hb(b)
	s.hb(a) // told to revoke, keeps holding (lazy, never released)
	for range 12 {
		s.now = s.now.Add(5 * time.Second)
		s.hb(a)
		s.hb(b)
		s.tick(0)
	}
	// The rebalance timeout (60 s) passed: a is fenced, b gets everything.
	if s.g.members["a"] != nil {
		t.Fatal("member that never revoked was not fenced")
	}
	s.settle()
	if h := s.holdings("orders"); h["b"] < 2 {
		t.Fatalf("holdings %v", h)
	}
}

func TestRegexPicksUpNewTopic(t *testing.T) {
	s := newSim(t, testConfig(), map[string]int32{"orders-eu": 2, "orders": 1, "payments": 3})
	c := s.newClient("m1")
	c.regex = str(`orders-.*`)
	s.hb(c)
	s.settle()
	if h := s.holdings("orders-eu"); h["m1"] != 2 {
		t.Fatalf("holds %d, want 2 (orders-eu only; the regex must match whole names)", h["m1"])
	}
	epoch := s.g.Epoch()
	s.setTopics(map[string]int32{"orders-eu": 2, "orders": 1, "payments": 3, "orders-us": 4})
	if s.g.Epoch() != epoch+1 {
		t.Fatalf("new matching topic did not bump the epoch")
	}
	s.settle()
	if h := s.holdings("orders-eu", "orders-us"); h["m1"] != 6 {
		t.Fatalf("holds %d, want 6", h["m1"])
	}
	if !reflect.DeepEqual(s.g.Subscribed(), map[string]bool{"orders-eu": true, "orders-us": true}) {
		t.Fatalf("subscribed %v", s.g.Subscribed())
	}
	// A topic the regex does not match changes nothing.
	epoch = s.g.Epoch()
	s.setTopics(map[string]int32{"orders-eu": 2, "orders": 1, "payments": 3, "orders-us": 4, "audit": 1})
	if s.g.Epoch() != epoch {
		t.Fatal("unrelated topic bumped the epoch")
	}
	// More partitions of a subscribed topic do.
	s.setTopics(map[string]int32{"orders-eu": 3, "orders": 1, "payments": 3, "orders-us": 4, "audit": 1})
	if s.g.Epoch() != epoch+1 {
		t.Fatal("new partitions did not bump the epoch")
	}
	s.settle()
	if h := s.holdings("orders-eu", "orders-us"); h["m1"] != 7 {
		t.Fatalf("holds %d, want 7", h["m1"])
	}
}

func TestStaticMemberRejoinsWithItsPartitions(t *testing.T) {
	s := newSim(t, testConfig(), map[string]int32{"orders": 6})
	a, b := s.newClient("a1", "orders"), s.newClient("b", "orders")
	a.instance = str("instance-a")
	s.hb(a)
	s.hb(b)
	s.settle()
	aHeld := copySet(a.owned)
	epoch := s.g.Epoch()

	// Another process with the same instance id cannot join while a is in.
	dup := s.newClient("a2", "orders")
	dup.instance = str("instance-a")
	if resp := s.hb(dup); resp.ErrorCode != kerr.UnreleasedInstanceID.Code {
		t.Fatalf("duplicate instance: %v", kerr.ErrorForCode(resp.ErrorCode))
	}

	if resp := s.leave(a, -2); resp.ErrorCode != 0 || resp.MemberEpoch != -2 {
		t.Fatalf("static leave: %+v", resp)
	}
	if s.g.Epoch() != epoch || s.g.Len() != 2 {
		t.Fatalf("static leave rebalanced: epoch %d len %d", s.g.Epoch(), s.g.Len())
	}
	s.now = s.now.Add(20 * time.Second)
	s.hb(b)
	s.tick(0)
	if len(b.owned) != 3 {
		t.Fatalf("b took a's partitions while a was away: %d", len(b.owned))
	}
	// a restarts with a new member id and its instance id.
	dup.joined = false
	resp := s.hb(dup)
	if resp.ErrorCode != 0 || !reflect.DeepEqual(copySet(dup.owned), aHeld) {
		t.Fatalf("rejoined static member got %v, had %v (%v)", dup.owned, aHeld, kerr.ErrorForCode(resp.ErrorCode))
	}
	if s.g.Epoch() != epoch || s.g.Len() != 2 || s.g.members["a1"] != nil {
		t.Fatalf("rejoin rebalanced: epoch %d len %d", s.g.Epoch(), s.g.Len())
	}
	s.settle()

	// A static member that leaves and does not come back expires.
	s.leave(dup, -2)
	s.tick(44 * time.Second)
	if s.g.Len() != 2 {
		t.Fatal("static member expired early")
	}
	s.now = s.now.Add(time.Second)
	s.hb(b)
	s.tick(0)
	s.settle()
	if s.g.Len() != 1 || len(b.owned) != 6 {
		t.Fatalf("after expiry: len %d, b holds %d", s.g.Len(), len(b.owned))
	}
}

func copySet(m map[topicPartition]bool) map[topicPartition]bool {
	out := map[topicPartition]bool{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestNullFieldsKeepTheirValue(t *testing.T) {
	s := newSim(t, testConfig(), map[string]int32{"orders": 2, "payments": 2})
	c := s.newClient("m1", "orders")
	c.assignor = str("range")
	s.hb(c)
	s.settle()
	epoch := s.g.Epoch()
	req := c.request(false, true) // everything null
	resp := s.send(c, req)
	if resp.ErrorCode != 0 || resp.Assignment != nil || s.g.Epoch() != epoch {
		t.Fatalf("keepalive changed something: %+v, epoch %d→%d", resp, epoch, s.g.Epoch())
	}
	m := s.g.members["m1"]
	if !slices.Equal(m.topicNames, []string{"orders"}) || m.serverAssignor == nil || *m.serverAssignor != "range" || m.rebalanceTimeout != 60000 {
		t.Fatalf("member lost fields: %+v", m)
	}
	// A full request gets the assignment again even when unchanged.
	if resp := s.send(c, c.request(true, false)); resp.Assignment == nil {
		t.Fatal("full request did not carry the assignment")
	}
	// Changing the subscription bumps the epoch.
	c.names = []string{"orders", "payments"}
	s.send(c, c.request(true, false))
	if s.g.Epoch() != epoch+1 {
		t.Fatalf("subscription change did not bump the epoch")
	}
	s.settle()
	if h := s.holdings("orders", "payments"); h["m1"] != 4 {
		t.Fatalf("holds %d", h["m1"])
	}
}

func TestPreviousEpochIsAccepted(t *testing.T) {
	s := newSim(t, testConfig(), map[string]int32{"orders": 4})
	a := s.newClient("a", "orders")
	s.hb(a)
	b := s.newClient("b", "orders")
	s.hb(b)
	s.settle()
	m := s.g.members["a"]
	// The response that moved a on was lost: it comes back with the
	// previous epoch and owning no more than its assignment.
	req := a.request(false, false)
	req.MemberEpoch = m.previousEpoch
	if resp := s.g.Heartbeat(s.now, 1, Client{}, req, s.topics); resp.ErrorCode != 0 || resp.MemberEpoch != m.epoch {
		t.Fatalf("previous epoch: %v epoch %d", kerr.ErrorForCode(resp.ErrorCode), resp.MemberEpoch)
	}
	// Owning more than its assignment at the previous epoch is fenced.
	req = a.request(false, false)
	req.MemberEpoch = m.previousEpoch
	req.Topics = append(req.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: topicID("orders"), Partitions: []int32{0, 1, 2, 3}})
	if resp := s.g.Heartbeat(s.now, 1, Client{}, req, s.topics); resp.ErrorCode != kerr.FencedMemberEpoch.Code {
		t.Fatalf("previous epoch owning more: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	// An epoch ahead is fenced; the member then rejoins with epoch 0 and
	// the same id and gets its assignment back (KAFKA-19233).
	req = a.request(false, false)
	req.MemberEpoch = m.epoch + 5
	if resp := s.send(a, req); resp.ErrorCode != kerr.FencedMemberEpoch.Code {
		t.Fatalf("epoch ahead: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	if resp := s.hb(a); resp.ErrorCode != 0 || resp.MemberEpoch != m.epoch || len(a.owned) != 2 {
		t.Fatalf("rejoin with epoch 0: %v epoch %d owned %d", kerr.ErrorForCode(resp.ErrorCode), resp.MemberEpoch, len(a.owned))
	}
}

func TestValidation(t *testing.T) {
	cfg := testConfig()
	cfg.MaxSize = 2
	topics := mkTopics(map[string]int32{"orders": 3})
	base := func(id string) *kmsg.ConsumerGroupHeartbeatRequest {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Group, req.MemberID, req.RebalanceTimeoutMillis = "g", id, 30000
		req.SubscribedTopicNames = []string{"orders"}
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		return req
	}
	g := New("g", cfg)
	for _, id := range []string{"a", "b"} {
		if resp := g.Heartbeat(t0, 1, Client{}, base(id), topics); resp.ErrorCode != 0 {
			t.Fatalf("join %s: %v", id, kerr.ErrorForCode(resp.ErrorCode))
		}
	}
	static := base("s1")
	static.InstanceID = str("inst")
	cases := []struct {
		name    string
		version int16
		mod     func(*kmsg.ConsumerGroupHeartbeatRequest)
		want    *kerr.Error
	}{
		{"no member id at v1", 1, func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID = "" }, kerr.InvalidRequest},
		{"blank member id", 1, func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID = "  " }, kerr.InvalidRequest},
		{"no rebalance timeout on join", 1, func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RebalanceTimeoutMillis = -1 }, kerr.InvalidRequest},
		{"no subscription on join", 1, func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.SubscribedTopicNames = nil }, kerr.InvalidRequest},
		{"owned partitions on join", 1, func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{TopicID: topicID("orders"), Partitions: []int32{0}}}
		}, kerr.InvalidRequest},
		{"null owned partitions on join", 1, func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Topics = nil }, kerr.InvalidRequest},
		{"blank instance id", 1, func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.InstanceID = str("") }, kerr.InvalidRequest},
		{"blank rack", 1, func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RackID = str(" ") }, kerr.InvalidRequest},
		{"epoch below -2", 1, func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID, r.MemberEpoch = "a", -3 }, kerr.InvalidRequest},
		{"static leave without instance", 1, func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID, r.MemberEpoch = "a", -2 }, kerr.InvalidRequest},
		{"unknown assignor", 1, func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.ServerAssignor = str("sticky") }, kerr.UnsupportedAssignor},
		{"invalid regex", 1, func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.SubscribedTopicNames, r.SubscribedTopicRegex = nil, str("orders(")
		}, kerr.InvalidRegularExpression},
		{"group full", 1, func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID = "c" }, kerr.GroupMaxSizeReached},
		{"unknown member", 1, func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID, r.MemberEpoch = "zz", 1 }, kerr.UnknownMemberID},
		{"unknown member leaves", 1, func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID, r.MemberEpoch = "zz", -1 }, kerr.UnknownMemberID},
		{"epoch ahead", 1, func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID, r.MemberEpoch = "a", 99 }, kerr.FencedMemberEpoch},
		{"unknown instance", 1, func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.MemberID, r.MemberEpoch, r.InstanceID = "a", 2, str("nobody")
		}, kerr.UnknownMemberID},
		{"ok at v0 without member id", 0, func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID = "" }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := base("a")
			tc.mod(req)
			records := len(g.records)
			epoch := g.Epoch()
			if tc.want == nil {
				g.cfg.MaxSize = 0
				defer func() { g.cfg.MaxSize = 2 }()
			}
			resp := g.Heartbeat(t0, tc.version, Client{}, req, topics)
			if tc.want == nil {
				if resp.ErrorCode != 0 || resp.MemberID == nil || *resp.MemberID == "" {
					t.Fatalf("got %v, member %v", kerr.ErrorForCode(resp.ErrorCode), resp.MemberID)
				}
				return
			}
			if resp.ErrorCode != tc.want.Code || resp.ErrorMessage == nil {
				t.Fatalf("got %v, want %v", kerr.ErrorForCode(resp.ErrorCode), tc.want)
			}
			if len(g.records) != records || g.Epoch() != epoch {
				t.Fatal("a refused heartbeat changed the group")
			}
		})
	}
}

func TestStaticFencing(t *testing.T) {
	s := newSim(t, testConfig(), map[string]int32{"orders": 2})
	a := s.newClient("a", "orders")
	a.instance = str("i")
	s.hb(a)
	// Another member id heartbeating with a's instance id is fenced.
	req := a.request(false, false)
	req.MemberID, req.InstanceID = "other", str("i")
	if resp := s.g.Heartbeat(s.now, 1, Client{}, req, s.topics); resp.ErrorCode != kerr.FencedInstanceID.Code {
		t.Fatalf("got %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	leave := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	leave.MemberID, leave.MemberEpoch, leave.InstanceID = "other", -2, str("i")
	if resp := s.g.Heartbeat(s.now, 1, Client{}, leave, s.topics); resp.ErrorCode != kerr.FencedInstanceID.Code {
		t.Fatalf("static leave by another member id: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	// A static member leaving for good (-1) frees its instance id.
	if resp := s.leave(a, -1); resp.ErrorCode != 0 || s.g.Len() != 0 || len(s.g.static) != 0 {
		t.Fatalf("leave: %v, len %d", kerr.ErrorForCode(resp.ErrorCode), s.g.Len())
	}
	if s.g.State() != Empty {
		t.Fatalf("state %s", s.g.State())
	}
}

func TestV0JoinGetsGeneratedMemberID(t *testing.T) {
	cfg := testConfig()
	cfg.NewMemberID = func() string { return "generated" }
	g := New("g", cfg)
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.RebalanceTimeoutMillis, req.SubscribedTopicNames, req.Topics = 1000, []string{"t"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	resp := g.Heartbeat(t0, 0, Client{}, req, mkTopics(map[string]int32{"t": 1}))
	if resp.ErrorCode != 0 || *resp.MemberID != "generated" || resp.Version != 0 {
		t.Fatalf("%+v", resp)
	}
}

func TestCheckCommit(t *testing.T) {
	s := newSim(t, testConfig(), map[string]int32{"orders": 4})
	if code := s.g.CheckCommit("", -1); code != 0 {
		t.Fatalf("admin commit to an empty group: %v", kerr.ErrorForCode(code))
	}
	a := s.newClient("a", "orders")
	s.hb(a)
	s.settle()
	m := s.g.members["a"]
	kept := topicPartition{topicID("orders"), -1}
	for tp := range a.owned {
		kept = tp
	}
	old := m.epoch
	b := s.newClient("b", "orders")
	s.hb(b)
	s.settle()
	if m.epoch <= old {
		t.Fatal("epoch did not move")
	}
	var gone topicPartition
	for _, p := range []int32{0, 1, 2, 3} {
		tp := topicPartition{topicID("orders"), p}
		if !a.owned[tp] {
			gone = tp
		}
		if a.owned[tp] {
			kept = tp
		}
	}
	cases := []struct {
		name   string
		member string
		epoch  int32
		want   int16
	}{
		{"current", "a", m.epoch, 0},
		{"unknown", "zz", m.epoch, kerr.UnknownMemberID.Code},
		{"newer", "a", m.epoch + 1, kerr.StaleMemberEpoch.Code},
		{"older", "a", old, kerr.StaleMemberEpoch.Code},
		{"admin to a group with members", "", -1, kerr.UnknownMemberID.Code},
	}
	for _, tc := range cases {
		if got := s.g.CheckCommit(tc.member, tc.epoch); got != tc.want {
			t.Errorf("%s: got %v want %v", tc.name, kerr.ErrorForCode(got), kerr.ErrorForCode(tc.want))
		}
	}
	// KIP-1251: an older epoch commits what the member had at that epoch,
	// not what it got later or gave away.
	if code := s.g.CheckCommitPartition("a", old, kept.topic, kept.partition); code != 0 {
		t.Fatalf("older epoch, partition kept since: %v", kerr.ErrorForCode(code))
	}
	if code := s.g.CheckCommitPartition("a", old, gone.topic, gone.partition); code != kerr.StaleMemberEpoch.Code {
		t.Fatalf("older epoch, partition given away: %v", kerr.ErrorForCode(code))
	}
	if code := s.g.CheckCommitPartition("a", m.epoch+1, kept.topic, kept.partition); code != kerr.StaleMemberEpoch.Code {
		t.Fatalf("newer epoch: %v", kerr.ErrorForCode(code))
	}
	if code := s.g.CheckCommitPartition("b", 1, gone.topic, gone.partition); code != kerr.StaleMemberEpoch.Code {
		t.Fatalf("b at an epoch before it got the partition: %v", kerr.ErrorForCode(code))
	}
}

func TestDescribe(t *testing.T) {
	s := newSim(t, testConfig(), map[string]int32{"orders": 3})
	a := s.newClient("a", "orders")
	a.instance = str("inst-a")
	s.hb(a)
	s.settle()
	d := s.g.Describe(1, s.topics)
	if d.Group != "g" || d.State != "Stable" || d.Epoch != s.g.Epoch() || d.AssignmentEpoch != s.g.Epoch() ||
		d.AssignorName != "uniform" || len(d.Members) != 1 {
		t.Fatalf("%+v", d)
	}
	m := d.Members[0]
	if m.MemberID != "a" || *m.InstanceID != "inst-a" || m.ClientID != "client-a" || m.ClientHost != "/10.0.0.1" ||
		!slices.Equal(m.SubscribedTopics, []string{"orders"}) || m.MemberType != 1 || m.MemberEpoch != s.g.Epoch() {
		t.Fatalf("%+v", m)
	}
	want := kmsg.Assignment{TopicPartitions: []kmsg.AssignmentTopicPartition{{TopicID: topicID("orders"), Topic: "orders", Partitions: []int32{0, 1, 2}}}}
	if !reflect.DeepEqual(m.Assignment, want) || !reflect.DeepEqual(m.TargetAssignment, want) {
		t.Fatalf("assignment %+v target %+v", m.Assignment, m.TargetAssignment)
	}
}

func TestDeleteWritesTombstones(t *testing.T) {
	s := newSim(t, testConfig(), map[string]int32{"orders": 3})
	s.hb(s.newClient("a", "orders"))
	s.g.TakeRecords()
	s.g.Delete()
	recs := s.g.TakeRecords()
	var versions []int16
	for _, r := range recs {
		if r.Value != nil {
			t.Fatalf("non-tombstone %x", r.Key)
		}
		v, _, _, err := parseKey(r.Key)
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if !slices.Equal(versions, []int16{8, 7, 5, 6, 4, 3}) {
		t.Fatalf("tombstones %v", versions)
	}
	if s.g.State() != Dead || s.g.Len() != 0 {
		t.Fatalf("state %s", s.g.State())
	}
}
