package classic

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// harness drives one group with a fake clock and checks that every
// JoinGroup and SyncGroup gets exactly one reply.
type harness struct {
	t       testing.TB
	g       *Group
	cfg     Config
	now     time.Time
	next    Token
	open    map[Token]string        // requests not yet answered: "join" or "sync"
	replies map[Token]kmsg.Response // answered requests
}

var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// testConfig is Kafka's defaults with predictable member ids.
func testConfig() Config {
	cfg := DefaultConfig()
	n := 0
	cfg.NewMemberID = func(prefix string) string {
		n++
		return fmt.Sprintf("%s-%d", prefix, n)
	}
	return cfg
}

func newHarness(t testing.TB, cfg Config) *harness {
	return &harness{
		t:       t,
		g:       New("g", cfg),
		cfg:     cfg,
		now:     epoch,
		open:    make(map[Token]string),
		replies: make(map[Token]kmsg.Response),
	}
}

// collect records replies, failing on a reply to a request that is not
// waiting or of the wrong kind.
func (h *harness) collect(rs []Reply) {
	h.t.Helper()
	for _, r := range rs {
		kind, ok := h.open[r.Token]
		if !ok {
			h.t.Fatalf("reply to token %d, which is not waiting (already answered: %v)", r.Token, h.replies[r.Token] != nil)
		}
		switch r.Response.(type) {
		case *kmsg.JoinGroupResponse:
			if kind != "join" {
				h.t.Fatalf("JoinGroup response to %s token %d", kind, r.Token)
			}
		case *kmsg.SyncGroupResponse:
			if kind != "sync" {
				h.t.Fatalf("SyncGroup response to %s token %d", kind, r.Token)
			}
		default:
			h.t.Fatalf("unexpected response type %T", r.Response)
		}
		delete(h.open, r.Token)
		h.replies[r.Token] = r.Response
	}
}

// advance moves the clock by d and ticks.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.now = h.now.Add(d)
	h.collect(h.g.Tick(h.now))
}

// untilDeadline ticks at the group's deadline (if any, up to limit ahead).
func (h *harness) untilDeadline(limit time.Duration) bool {
	h.t.Helper()
	d, ok := h.g.Deadline()
	if !ok || d.After(h.now.Add(limit)) {
		return false
	}
	if d.After(h.now) {
		h.now = d
	}
	h.collect(h.g.Tick(h.now))
	return true
}

type joinArgs struct {
	version    int16
	client     string
	memberID   string
	instanceID *string
	protoType  string
	protocols  []kmsg.JoinGroupRequestProtocol
	session    time.Duration
	rebalance  time.Duration
}

func (h *harness) joinWith(a joinArgs) Token {
	h.t.Helper()
	if a.version == 0 {
		a.version = 9 // v0 tests call Join directly
	}
	if a.client == "" {
		a.client = "c"
	}
	switch a.protoType {
	case "":
		a.protoType = "consumer"
	case "-":
		a.protoType = "" // really none
	}
	if a.protocols == nil {
		a.protocols = protocols("range", "t")
	}
	if a.session == 0 {
		a.session = 10 * time.Second
	}
	if a.rebalance == 0 {
		a.rebalance = 60 * time.Second
	}
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group = "g"
	req.MemberID = a.memberID
	req.InstanceID = a.instanceID
	req.ProtocolType = a.protoType
	req.Protocols = a.protocols
	req.SessionTimeoutMillis = int32(a.session.Milliseconds())
	req.RebalanceTimeoutMillis = int32(a.rebalance.Milliseconds())
	h.next++
	tok := h.next
	h.open[tok] = "join"
	h.collect(h.g.Join(h.now, tok, a.version, Client{ID: a.client, Host: "/127.0.0.1"}, req))
	return tok
}

// join sends a v9 JoinGroup with the default protocols.
func (h *harness) join(memberID string) Token {
	h.t.Helper()
	return h.joinWith(joinArgs{memberID: memberID})
}

// joinNew joins a dynamic member through KIP-394 and returns its id and the
// token of its (second) JoinGroup.
func (h *harness) joinNew(client string) (string, Token) {
	h.t.Helper()
	return h.joinNewWith(joinArgs{client: client})
}

// joinNewWith is joinNew with more arguments.
func (h *harness) joinNewWith(a joinArgs) (string, Token) {
	h.t.Helper()
	tok := h.joinWith(a)
	r := h.joinResp(tok)
	if r.ErrorCode != memberIDRequired {
		h.t.Fatalf("first join: error %d, want MEMBER_ID_REQUIRED", r.ErrorCode)
	}
	a.memberID = r.MemberID
	return r.MemberID, h.joinWith(a)
}

func (h *harness) syncWith(version int16, memberID string, instanceID *string, gen int32, assign map[string][]byte) Token {
	h.t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group = "g"
	req.MemberID = memberID
	req.InstanceID = instanceID
	req.Generation = gen
	for id, a := range assign {
		ga := kmsg.NewSyncGroupRequestGroupAssignment()
		ga.MemberID = id
		ga.MemberAssignment = a
		req.GroupAssignment = append(req.GroupAssignment, ga)
	}
	h.next++
	tok := h.next
	h.open[tok] = "sync"
	h.collect(h.g.Sync(h.now, tok, version, req))
	return tok
}

func (h *harness) sync(memberID string, gen int32, assign map[string][]byte) Token {
	h.t.Helper()
	return h.syncWith(5, memberID, nil, gen, assign)
}

func hbReq(memberID string, instanceID *string, gen int32) *kmsg.HeartbeatRequest {
	req := kmsg.NewPtrHeartbeatRequest()
	req.MemberID, req.InstanceID, req.Generation = memberID, instanceID, gen
	return req
}

func (h *harness) heartbeat(memberID string, gen int32) int16 {
	h.t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.MemberID = memberID
	req.Generation = gen
	return h.g.Heartbeat(h.now, 4, req).ErrorCode
}

func (h *harness) leave(members ...kmsg.LeaveGroupRequestMember) *kmsg.LeaveGroupResponse {
	h.t.Helper()
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Members = members
	resp, rs := h.g.Leave(h.now, 5, req)
	h.collect(rs)
	return resp
}

func (h *harness) answered(tok Token) bool { return h.replies[tok] != nil }

func (h *harness) joinResp(tok Token) *kmsg.JoinGroupResponse {
	h.t.Helper()
	r, ok := h.replies[tok].(*kmsg.JoinGroupResponse)
	if !ok {
		h.t.Fatalf("join %d: no response yet", tok)
	}
	return r
}

func (h *harness) syncResp(tok Token) *kmsg.SyncGroupResponse {
	h.t.Helper()
	r, ok := h.replies[tok].(*kmsg.SyncGroupResponse)
	if !ok {
		h.t.Fatalf("sync %d: no response yet", tok)
	}
	return r
}

func (h *harness) wantState(s State) {
	h.t.Helper()
	if got := h.g.State(); got != s {
		h.t.Fatalf("state %s, want %s", got, s)
	}
}

// protocols is one protocol per name, each subscribing to topics.
func protocols(name string, topics ...string) []kmsg.JoinGroupRequestProtocol {
	return []kmsg.JoinGroupRequestProtocol{{Name: name, Metadata: subscription(topics...)}}
}

func subscription(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Version = 1
	m.Topics = topics
	return m.AppendTo(nil)
}

func strp(s string) *string { return &s }

// stableGroup joins n dynamic members and completes a rebalance with
// assignment "a-<member id>" for each; it returns the member ids, leader
// first.
func (h *harness) stableGroup(n int) []string {
	h.t.Helper()
	var ids []string
	var toks []Token
	for i := range n {
		id, tok := h.joinNew(fmt.Sprintf("c%d", i))
		ids = append(ids, id)
		toks = append(toks, tok)
	}
	for !h.answered(toks[0]) {
		if !h.untilDeadline(time.Hour) {
			h.t.Fatal("join phase does not complete")
		}
	}
	h.wantState(CompletingRebalance)
	gen := h.g.Generation()
	leader := h.g.Leader()
	assign := make(map[string][]byte)
	for _, id := range ids {
		assign[id] = []byte("a-" + id)
	}
	var stoks []Token
	for _, id := range ids {
		if id != leader {
			stoks = append(stoks, h.sync(id, gen, nil))
		}
	}
	stoks = append(stoks, h.sync(leader, gen, assign))
	for _, tok := range stoks {
		if r := h.syncResp(tok); r.ErrorCode != 0 {
			h.t.Fatalf("sync error %d", r.ErrorCode)
		}
	}
	h.wantState(Stable)
	out := []string{leader}
	for _, id := range ids {
		if id != leader {
			out = append(out, id)
		}
	}
	return out
}
