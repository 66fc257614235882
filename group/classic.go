package group

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group/classic"
)

// The classic protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) is the
// business of package classic; here a request finds its group, and the
// group's snapshot is persisted whenever it changed.
//
// A group id names one kind of group at a time. As in Kafka 4.x, a
// JoinGroup to an empty consumer group deletes that group (tombstones for
// its records; its offsets stay) and makes a classic group in its place.
// A JoinGroup to a consumer group with members gets
// INCONSISTENT_GROUP_PROTOCOL: Kafka would let the classic member join the
// consumer group (KIP-848's online migration), which Samsa does not do.

// classicClient is who sent a call, for package classic.
func classicClient(call Call) classic.Client {
	return classic.Client{ID: call.ClientID, Host: call.ClientHost}
}

// JoinGroup handles a classic JoinGroup; its reply usually comes in a later
// Output, when the rebalance completes.
func (c *Coordinator) JoinGroup(call Call, req *kmsg.JoinGroupRequest) Output {
	c.observe(call.Now)
	fail := func(code int16, memberID string) Output {
		resp := kmsg.NewPtrJoinGroupResponse()
		resp.ErrorCode, resp.MemberID, resp.Generation = code, memberID, -1
		return failed(call, resp)
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code, req.MemberID)
	}
	g := c.lookup(req.Group)
	if g != nil && g.consumer != nil && !g.empty() {
		return fail(kerr.InconsistentGroupProtocol.Code, "")
	}
	if g != nil && g.consumer == nil {
		g.ensureClassic(c.cfg.Classic)
		out := Output{Replies: g.classic.Join(call.Now, call.Token, call.Version, classicClient(call), req)}
		c.persistClassic(g, call.Now, &out)
		c.schedule(g)
		return out
	}

	// A new classic group, in place of nothing or of an empty consumer
	// group.
	if req.MemberID != "" {
		// Kafka creates a group only for a join with no member id.
		return fail(kerr.UnknownMemberID.Code, req.MemberID)
	}
	fresh := classic.New(req.Group, c.cfg.Classic)
	replies := fresh.Join(call.Now, call.Token, call.Version, classicClient(call), req)
	if fresh.Len() == 0 && joinRefused(replies, call.Token) {
		return Output{Replies: replies} // nothing joined: no group
	}
	var out Output
	if g == nil {
		g = c.add(req.Group)
	} else {
		out.Records = c.groupTombstones(g, out.Records)
		g.consumer, g.keys = nil, nil
	}
	g.classic = fresh
	out.Replies = replies
	// Kafka persists a new group even when the join changed nothing else
	// (a dynamic member told to rejoin with the member id it was given).
	c.snapshotClassic(g, call.Now, &out)
	c.schedule(g)
	return out
}

// joinRefused reports whether replies answer the JoinGroup with tok with an
// error other than MEMBER_ID_REQUIRED (which makes a group in Kafka).
func joinRefused(replies []Reply, tok Token) bool {
	for _, r := range replies {
		if r.Token != tok {
			continue
		}
		resp, ok := r.Response.(*kmsg.JoinGroupResponse)
		return ok && resp.ErrorCode != 0 && resp.ErrorCode != kerr.MemberIDRequired.Code
	}
	return false
}

// classicGroup returns the classic group that a SyncGroup, Heartbeat or
// LeaveGroup names, or the error code to answer: INVALID_GROUP_ID for an
// empty id, UNKNOWN_MEMBER_ID when there is no classic group with id (no
// group, or a consumer group).
func (c *Coordinator) classicGroup(id string) (*group, int16) {
	if id == "" {
		return nil, kerr.InvalidGroupID.Code
	}
	g := c.lookup(id)
	if g == nil || g.consumer != nil {
		return nil, kerr.UnknownMemberID.Code
	}
	g.ensureClassic(c.cfg.Classic)
	return g, 0
}

// failed is the Output that answers call with resp, an error response.
func failed(call Call, resp kmsg.Response) Output {
	resp.SetVersion(call.Version)
	return Output{Replies: []Reply{reply(call, resp)}}
}

// SyncGroup handles a classic SyncGroup; followers' replies wait for the
// leader's assignment.
func (c *Coordinator) SyncGroup(call Call, req *kmsg.SyncGroupRequest) Output {
	c.observe(call.Now)
	g, code := c.classicGroup(req.Group)
	if code != 0 {
		resp := kmsg.NewPtrSyncGroupResponse()
		resp.ErrorCode = code
		return failed(call, resp)
	}
	out := Output{Replies: g.classic.Sync(call.Now, call.Token, call.Version, req)}
	c.persistClassic(g, call.Now, &out)
	c.schedule(g)
	return out
}

// Heartbeat handles a classic Heartbeat.
func (c *Coordinator) Heartbeat(call Call, req *kmsg.HeartbeatRequest) Output {
	c.observe(call.Now)
	g, code := c.classicGroup(req.Group)
	if code != 0 {
		resp := kmsg.NewPtrHeartbeatResponse()
		resp.ErrorCode = code
		return failed(call, resp)
	}
	var out Output
	if resp := g.classic.Heartbeat(call.Now, call.Version, req); resp != nil {
		out.Replies = []Reply{reply(call, resp)}
	}
	c.persistClassic(g, call.Now, &out)
	c.schedule(g)
	return out
}

// LeaveGroup handles a classic LeaveGroup (v3+: a batch of members).
func (c *Coordinator) LeaveGroup(call Call, req *kmsg.LeaveGroupRequest) Output {
	c.observe(call.Now)
	g, code := c.classicGroup(req.Group)
	if code != 0 {
		resp := kmsg.NewPtrLeaveGroupResponse()
		resp.ErrorCode = code
		return failed(call, resp)
	}
	resp, others := g.classic.Leave(call.Now, call.Version, req)
	var out Output
	if resp != nil {
		out.Replies = append(out.Replies, reply(call, resp))
	}
	out.Replies = append(out.Replies, others...)
	c.persistClassic(g, call.Now, &out)
	c.schedule(g)
	return out
}
