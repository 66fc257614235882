package classic

import (
	"bytes"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Sync handles a SyncGroup.
func (g *Group) Sync(now time.Time, tok Token, version int16, req *kmsg.SyncGroupRequest) []Reply {
	g.sync(now, &waiting{tok: tok, version: version}, req)
	return g.flush()
}

func (g *Group) sync(now time.Time, w *waiting, req *kmsg.SyncGroupRequest) {
	instanceID := req.InstanceID
	if w.version < 3 {
		instanceID = nil
	}
	switch {
	case g.state == Empty:
		g.syncError(w, unknownMemberID)
		return
	case g.state == Dead:
		g.syncError(w, coordinatorNotAvailable)
		return
	}
	if code := g.validate(req.MemberID, instanceID); code != 0 {
		g.syncError(w, code)
		return
	}
	if req.Generation != g.generation {
		g.syncError(w, illegalGeneration)
		return
	}
	if w.version >= 5 && (inconsistent(req.ProtocolType, g.protocolTypePtr()) || inconsistent(req.Protocol, g.protocol)) {
		g.syncError(w, inconsistentProtocol)
		return
	}
	m := g.members[req.MemberID]
	switch g.state {
	case PreparingRebalance:
		g.syncError(w, rebalanceInProgress)
	case CompletingRebalance:
		if m.sync != nil {
			// Deviation: Kafka forgets a superseded SyncGroup; we answer
			// it, so that every request gets a response.
			g.failSync(m, rebalanceInProgress)
		}
		m.sync = w
		g.synced(m.id)
		if m.id != g.leader {
			return // followers wait for the leader's assignment
		}
		assignments := make(map[string][]byte, len(req.GroupAssignment))
		for _, a := range req.GroupAssignment {
			assignments[a.MemberID] = a.MemberAssignment
		}
		for _, id := range g.order {
			// Members the leader left out get an empty assignment.
			g.members[id].assignment = bytes.Clone(assignments[id])
		}
		g.propagate(now, 0)
		g.transition(now, Stable)
		g.dirty = true
	case Stable:
		g.synced(m.id)
		g.reply(w, g.syncResponse(w.version, m.assignment))
	}
}

// synced notes that a member sent its SyncGroup; the pending sync timer
// stops once all have.
func (g *Group) synced(id string) {
	delete(g.pendingSync, id)
	if len(g.pendingSync) == 0 {
		g.syncDeadline = time.Time{}
	}
}

// inconsistent reports whether a request's protocol type or name differs
// from the group's, when both are known.
func inconsistent(req, group *string) bool {
	return req != nil && group != nil && *req != *group
}

// propagate answers every waiting SyncGroup with the member's assignment
// (code 0) or with an error, and restarts those members' sessions.
func (g *Group) propagate(now time.Time, code int16) {
	for _, id := range g.order {
		m := g.members[id]
		if m.sync == nil {
			continue
		}
		w := m.sync
		m.sync = nil
		if code != 0 {
			g.syncError(w, code)
		} else {
			g.reply(w, g.syncResponse(w.version, m.assignment))
		}
		m.resetSession(now)
	}
}

// syncResponse is a successful SyncGroup response.
func (g *Group) syncResponse(version int16, assignment []byte) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = version
	resp.ProtocolType = g.protocolTypePtr()
	if g.protocol != nil {
		p := *g.protocol
		resp.Protocol = &p
	}
	resp.MemberAssignment = bytes.Clone(assignment)
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp
}

// syncError answers a SyncGroup with an error.
func (g *Group) syncError(w *waiting, code int16) {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = w.version
	resp.ErrorCode = code
	resp.MemberAssignment = []byte{}
	g.reply(w, resp)
}

// failSync answers the member's waiting SyncGroup, if any, with an error.
func (g *Group) failSync(m *member, code int16) {
	if m.sync == nil {
		return
	}
	w := m.sync
	m.sync = nil
	g.syncError(w, code)
}
