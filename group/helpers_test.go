package group

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group/consumer"
)

// t0 is the fake clock's start.
var t0 = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// testConfig is Kafka's defaults with predictable member ids.
func testConfig() Config {
	cfg := DefaultConfig()
	n := 0
	cfg.Classic.NewMemberID = func(prefix string) string {
		n++
		return fmt.Sprintf("%s-%d", prefix, n)
	}
	m := 0
	cfg.Consumer.NewMemberID = func() string {
		m++
		return fmt.Sprintf("member-%d", m)
	}
	return cfg
}

// testTopics are the cluster's topics in most tests.
func testTopics() map[string]Topic {
	return map[string]Topic{
		"orders":   {Name: "orders", ID: [16]byte{1}, Partitions: 3},
		"payments": {Name: "payments", ID: [16]byte{2}, Partitions: 2},
	}
}

// harness drives a coordinator with a fake clock and keeps every record it
// wrote, in order, as the log of __consumer_offsets.
type harness struct {
	t       testing.TB
	c       *Coordinator
	cfg     Config
	now     time.Time
	next    Token
	log     []Record
	replies map[Token]kmsg.Response
	// session is the session timeout of the members joinOne makes.
	session time.Duration
}

func newHarness(t testing.TB) *harness {
	return newHarnessConfig(t, testConfig())
}

func newHarnessConfig(t testing.TB, cfg Config) *harness {
	h := &harness{t: t, c: New(cfg), cfg: cfg, now: t0, replies: map[Token]kmsg.Response{}, session: 10 * time.Second}
	h.c.Loaded(h.now)
	h.take(h.c.SetTopics(h.now, testTopics()))
	return h
}

// call is the Call of a new request at the harness's time.
func (h *harness) call(version int16) Call {
	h.next++
	return Call{Now: h.now, Token: h.next, Version: version, ClientID: "client", ClientHost: "/127.0.0.1"}
}

// take appends an output's records to the log and keeps its replies.
func (h *harness) take(out Output) Output {
	h.t.Helper()
	for _, r := range out.Records {
		if want := Partition(groupOfKey(h.t, r.Key), h.cfg.Partitions); r.Partition != want {
			h.t.Fatalf("record of group %q in partition %d, want %d", groupOfKey(h.t, r.Key), r.Partition, want)
		}
	}
	h.log = append(h.log, out.Records...)
	for _, r := range out.Replies {
		if _, dup := h.replies[r.Token]; dup {
			h.t.Fatalf("second reply to token %d", r.Token)
		}
		h.replies[r.Token] = r.Response
	}
	return out
}

// advance moves the clock by d and ticks.
func (h *harness) advance(d time.Duration) Output {
	h.t.Helper()
	h.now = h.now.Add(d)
	return h.take(h.c.Tick(h.now))
}

// until ticks at each deadline up to (and then at) limit.
func (h *harness) until(limit time.Time) {
	h.t.Helper()
	for {
		d, ok := h.c.Deadline()
		if !ok || d.After(limit) {
			break
		}
		if d.After(h.now) {
			h.now = d
		}
		h.take(h.c.Tick(h.now))
	}
	h.now = limit
	h.take(h.c.Tick(h.now))
}

// commit sends an OffsetCommit of one offset per partition.
func (h *harness) commit(version int16, group, member string, generation int32, offsets map[string]map[int32]int64) *kmsg.OffsetCommitResponse {
	h.t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = version
	req.Group = group
	req.MemberID = member
	req.Generation = generation
	for _, topic := range slices.Sorted(maps.Keys(offsets)) {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = topic
		for _, p := range slices.Sorted(maps.Keys(offsets[topic])) {
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition = p
			rp.Offset = offsets[topic][p]
			rp.LeaderEpoch = 7
			md := fmt.Sprintf("md-%s-%d", topic, p)
			rp.Metadata = &md
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	return h.commitRequest(req)
}

// commitRequest sends req and returns its reply.
func (h *harness) commitRequest(req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	h.t.Helper()
	call := h.call(req.Version)
	h.take(h.c.OffsetCommit(call, req))
	return h.replies[call.Token].(*kmsg.OffsetCommitResponse)
}

// fetch returns the committed offsets of group for the topics (nil: all).
func (h *harness) fetch(group string, topics map[string][]int32) kmsg.OffsetFetchResponseGroup {
	req := kmsg.NewOffsetFetchRequestGroup()
	req.Group = group
	if topics != nil {
		req.Topics = []kmsg.OffsetFetchRequestGroupTopic{}
		for _, topic := range slices.Sorted(maps.Keys(topics)) {
			rt := kmsg.NewOffsetFetchRequestGroupTopic()
			rt.Topic = topic
			rt.Partitions = topics[topic]
			req.Topics = append(req.Topics, rt)
		}
	}
	return h.c.OffsetFetch(h.call(9), req, false)
}

// codes flattens an OffsetCommit response: "topic/partition" → error code.
func commitCodes(resp *kmsg.OffsetCommitResponse) map[string]int16 {
	out := map[string]int16{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out[fmt.Sprintf("%s/%d", t.Topic, p.Partition)] = p.ErrorCode
		}
	}
	return out
}

// fetched flattens an OffsetFetch group: "topic/partition" → offset.
func fetched(g kmsg.OffsetFetchResponseGroup) map[string]int64 {
	out := map[string]int64{}
	for _, t := range g.Topics {
		for _, p := range t.Partitions {
			out[fmt.Sprintf("%s/%d", t.Topic, p.Partition)] = p.Offset
		}
	}
	return out
}

// groupOfKey decodes the group id of a record key.
func groupOfKey(t testing.TB, key []byte) string {
	t.Helper()
	v, _ := keyVersion(key)
	switch v {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			t.Fatal(err)
		}
		return k.Group
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			t.Fatal(err)
		}
		return k.Group
	}
	id, _ := consumer.GroupID(key)
	return id
}

// groupState is what a test compares of a group.
type groupState struct {
	Type, State, ProtocolType string
	Generation                int32
	Members                   int
	Offsets                   map[string]offset
}

// dump is the coordinator's state, for comparisons.
func dump(c *Coordinator) map[string]groupState {
	out := map[string]groupState{}
	for id, g := range c.groups {
		s := groupState{Type: g.typ(), State: g.state(), ProtocolType: g.protocolType(), Offsets: map[string]offset{}}
		if g.classic != nil {
			s.Generation = g.classic.Generation()
			s.Members = g.classic.Len()
		}
		if g.consumer != nil {
			s.Generation = g.consumer.Epoch()
			s.Members = g.consumer.Len()
		}
		for topic, parts := range g.offsets {
			for p, o := range parts {
				s.Offsets[fmt.Sprintf("%s/%d", topic, p)] = o
			}
		}
		out[id] = s
	}
	return out
}

// replayed is a new coordinator loaded from h's log at h's time.
func (h *harness) replayed() *Coordinator {
	h.t.Helper()
	c := New(h.cfg)
	for _, r := range h.log {
		if err := c.Replay(r.Partition, r.Key, r.Value); err != nil {
			h.t.Fatalf("replay: %v", err)
		}
	}
	c.Loaded(h.now)
	return c
}

// checkReplay checks that replaying the log rebuilds the same groups and
// offsets. A classic group comes back as its last snapshot in the log: as
// the live group when that is Stable or Empty (both are persisted when
// entered), and otherwise at the generation of that snapshot.
func (h *harness) checkReplay() {
	h.t.Helper()
	got, want := dump(h.replayed()), dump(h.c)
	if len(got) != len(want) {
		h.t.Fatalf("replay has groups %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	snapshots := map[string]*kmsg.GroupMetadataValue{}
	for _, r := range h.log {
		if v, _ := keyVersion(r.Key); v != groupMetadataKeyVersion {
			continue
		}
		id := groupOfKey(h.t, r.Key)
		if r.Value == nil {
			delete(snapshots, id)
			continue
		}
		s := new(kmsg.GroupMetadataValue)
		if err := s.ReadFrom(r.Value); err != nil {
			h.t.Fatal(err)
		}
		snapshots[id] = s
	}
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			h.t.Fatalf("replay lacks group %q", id)
		}
		if !maps.Equal(g.Offsets, w.Offsets) {
			h.t.Fatalf("replayed group %q has offsets %v, want %v", id, g.Offsets, w.Offsets)
		}
		if g.Type != w.Type {
			h.t.Fatalf("replayed group %q is a %s group, want %s", id, g.Type, w.Type)
		}
		if w.Type != typeClassic || w.State == "Stable" || w.State == "Empty" {
			if g.State != w.State || g.ProtocolType != w.ProtocolType || g.Generation != w.Generation || g.Members != w.Members {
				h.t.Fatalf("replayed group %q is %+v, want %+v", id, g, w)
			}
			continue
		}
		s := snapshots[id]
		if s == nil {
			s = &kmsg.GroupMetadataValue{} // a simple group
		}
		if g.Generation != s.Generation || g.ProtocolType != s.ProtocolType {
			h.t.Fatalf("replayed group %q is %+v, want its last snapshot %+v", id, g, s)
		}
	}
}

// consumerSubscription is a classic consumer's protocol metadata.
func consumerSubscription(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Version = 0
	m.Topics = topics
	return m.AppendTo(nil)
}

// joinRequest is a JoinGroup v5 of a consumer subscribed to topics.
func joinRequest(group, member, protocolType string, topics ...string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 5
	req.Group = group
	req.MemberID = member
	req.SessionTimeoutMillis = 10_000
	req.RebalanceTimeoutMillis = 10_000
	req.ProtocolType = protocolType
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	p.Metadata = consumerSubscription(topics...)
	req.Protocols = append(req.Protocols, p)
	return req
}

// joinOne makes a classic group of one member, Stable, and returns the
// member id and generation.
func (h *harness) joinOne(group, protocolType string, topics ...string) (string, int32) {
	h.t.Helper()
	join := func(member string) *kmsg.JoinGroupRequest {
		req := joinRequest(group, member, protocolType, topics...)
		req.SessionTimeoutMillis = int32(h.session.Milliseconds())
		return req
	}
	call := h.call(5)
	h.take(h.c.JoinGroup(call, join("")))
	first, ok := h.replies[call.Token].(*kmsg.JoinGroupResponse)
	if !ok || first.MemberID == "" {
		h.t.Fatalf("first join: %+v", h.replies[call.Token])
	}
	call = h.call(5)
	h.take(h.c.JoinGroup(call, join(first.MemberID)))
	h.until(h.now.Add(h.cfg.Classic.InitialRebalanceDelay + time.Second))
	joined, ok := h.replies[call.Token].(*kmsg.JoinGroupResponse)
	if !ok || joined.ErrorCode != 0 {
		h.t.Fatalf("join: %+v", h.replies[call.Token])
	}
	sreq := kmsg.NewPtrSyncGroupRequest()
	sreq.Version = 3
	sreq.Group = group
	sreq.MemberID = joined.MemberID
	sreq.Generation = joined.Generation
	a := kmsg.NewSyncGroupRequestGroupAssignment()
	a.MemberID = joined.MemberID
	a.MemberAssignment = []byte{0, 0}
	sreq.GroupAssignment = append(sreq.GroupAssignment, a)
	call = h.call(3)
	h.take(h.c.SyncGroup(call, sreq))
	if s, ok := h.replies[call.Token].(*kmsg.SyncGroupResponse); !ok || s.ErrorCode != 0 {
		h.t.Fatalf("sync: %+v", h.replies[call.Token])
	}
	return joined.MemberID, joined.Generation
}

// leave makes a classic member leave its group (LeaveGroup v3).
func (h *harness) leave(group, member string) {
	h.t.Helper()
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 3
	req.Group = group
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = member
	req.Members = append(req.Members, m)
	h.take(h.c.LeaveGroup(h.call(3), req))
}
