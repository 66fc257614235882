package classic

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Error codes, read-only.
var (
	unknownMemberID         = kerr.UnknownMemberID.Code
	fencedInstanceID        = kerr.FencedInstanceID.Code
	illegalGeneration       = kerr.IllegalGeneration.Code
	rebalanceInProgress     = kerr.RebalanceInProgress.Code
	inconsistentProtocol    = kerr.InconsistentGroupProtocol.Code
	coordinatorNotAvailable = kerr.CoordinatorNotAvailable.Code
	invalidSessionTimeout   = kerr.InvalidSessionTimeout.Code
	memberIDRequired        = kerr.MemberIDRequired.Code
	groupMaxSizeReached     = kerr.GroupMaxSizeReached.Code
)

// Join handles a JoinGroup. The reply to tok may be in the result or in the
// result of a later call.
func (g *Group) Join(now time.Time, tok Token, version int16, client Client, req *kmsg.JoinGroupRequest) []Reply {
	g.join(now, &waiting{tok: tok, version: version}, client, req)
	return g.flush()
}

// joinRequest is what the group keeps of a JoinGroup.
type joinRequest struct {
	memberID         string
	instanceID       *string
	protocolType     string
	protocols        []kmsg.JoinGroupRequestProtocol
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
}

func (g *Group) join(now time.Time, w *waiting, client Client, req *kmsg.JoinGroupRequest) {
	r := joinRequest{
		memberID:         req.MemberID,
		instanceID:       req.InstanceID,
		protocolType:     req.ProtocolType,
		protocols:        copyProtocols(req.Protocols),
		sessionTimeout:   millis(req.SessionTimeoutMillis),
		rebalanceTimeout: millis(req.RebalanceTimeoutMillis),
	}
	if w.version == 0 {
		// v0 has no rebalance timeout: the session timeout serves.
		r.rebalanceTimeout = r.sessionTimeout
	}
	if w.version < 5 {
		r.instanceID = nil // static membership came with v5
	}
	st := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	if st < g.cfg.MinSessionTimeout || (g.cfg.MaxSessionTimeout > 0 && st > g.cfg.MaxSessionTimeout) {
		g.joinError(w, r.memberID, invalidSessionTimeout)
		return
	}
	if g.fresh && r.memberID == "" {
		// Kafka creates a group on a JoinGroup with no member id, and
		// writes its (empty) metadata then. A join with a member id does
		// not create the group (and gets UNKNOWN_MEMBER_ID).
		g.dirty = true
	}
	if !g.acceptJoining(r.memberID) {
		// Kafka drops the member that is over the limit (the group's
		// size may exceed a lowered group.max.size).
		g.joinError(w, "", groupMaxSizeReached)
		if r.memberID != "" {
			g.remove(r.memberID)
			// Deviation: Kafka lets the others wait for the rebalance
			// timeout even when all of them have now joined.
			g.maybeCompleteJoin(now)
		}
		return
	}
	if r.memberID == "" {
		g.joinNew(now, w, client, r)
	} else {
		g.joinExisting(now, w, client, r)
	}
}

// acceptJoining reports whether memberID may join with respect to
// group.max.size, as Kafka's acceptJoiningMember.
func (g *Group) acceptJoining(memberID string) bool {
	if g.cfg.MaxSize <= 0 {
		return true
	}
	switch g.state {
	case PreparingRebalance:
		// Counting the members that rejoined (not the group's size) lets
		// a group above a lowered limit shed the last rejoining members.
		if m, ok := g.members[memberID]; ok && m.join != nil {
			return true
		}
		return g.awaitingJoin() < g.cfg.MaxSize
	case CompletingRebalance, Stable:
		_, ok := g.members[memberID]
		return ok || len(g.members) < g.cfg.MaxSize
	default:
		return true
	}
}

// joinNew handles a JoinGroup with no member id.
func (g *Group) joinNew(now time.Time, w *waiting, client Client, r joinRequest) {
	switch {
	case g.state == Dead:
		g.joinError(w, "", coordinatorNotAvailable)
	case !g.supports(r.protocolType, r.protocols):
		g.joinError(w, "", inconsistentProtocol)
	case r.instanceID != nil:
		id := g.newMemberID(*r.instanceID)
		if old, ok := g.static[*r.instanceID]; ok {
			g.replaceStatic(now, w, r, old, id)
		} else {
			g.addMember(now, w, client, r, id)
		}
	case w.version >= 4:
		// KIP-394: hand out a member id, and expect the member back with
		// it within its session timeout.
		id := g.newMemberID(client.ID)
		g.pending[id] = now.Add(r.sessionTimeout)
		resp := g.joinResponse(w.version, id)
		resp.ErrorCode = memberIDRequired
		g.reply(w, resp)
	default:
		g.addMember(now, w, client, r, g.newMemberID(client.ID))
	}
}

// joinExisting handles a JoinGroup with a member id.
func (g *Group) joinExisting(now time.Time, w *waiting, client Client, r joinRequest) {
	if g.state == Dead {
		g.joinError(w, r.memberID, coordinatorNotAvailable)
		return
	}
	if !g.supports(r.protocolType, r.protocols) {
		g.joinError(w, r.memberID, inconsistentProtocol)
		return
	}
	if _, ok := g.pending[r.memberID]; ok {
		if r.instanceID != nil {
			// Static members never get a pending member id; Kafka fails
			// such a request as an internal error. Deviation: we tell the
			// client to start over instead.
			g.joinError(w, r.memberID, unknownMemberID)
			return
		}
		g.addMember(now, w, client, r, r.memberID)
		return
	}
	if code := g.validate(r.memberID, r.instanceID); code != 0 {
		g.joinError(w, r.memberID, code)
		return
	}
	m := g.members[r.memberID]
	switch g.state {
	case PreparingRebalance:
		g.updateMember(m, r, w)
		g.maybeCompleteJoin(now)
	case CompletingRebalance:
		if m.matches(r.protocols) {
			// The member lost the response of this generation's join:
			// answer it again.
			g.reply(w, g.generationResponse(w.version, m.id, m.id == g.leader))
			return
		}
		g.updateMember(m, r, w)
		g.rebalanceOrCompleteJoin(now)
	case Stable:
		if m.id != g.leader && m.matches(r.protocols) {
			// A follower with unchanged metadata gets the current
			// generation, and syncs to get its assignment.
			g.reply(w, g.generationResponse(w.version, m.id, false))
			return
		}
		// The leader's join forces a rebalance: it lets the leader react
		// to changes outside the members' metadata (topics' partitions).
		g.updateMember(m, r, w)
		g.rebalanceOrCompleteJoin(now)
	default:
		g.joinError(w, r.memberID, unknownMemberID)
	}
}

// addMember adds a new member with id, waiting in JoinGroup.
func (g *Group) addMember(now time.Time, w *waiting, client Client, r joinRequest, id string) {
	m := &member{
		id:               id,
		instanceID:       r.instanceID,
		clientID:         client.ID,
		clientHost:       client.Host,
		rebalanceTimeout: r.rebalanceTimeout,
		sessionTimeout:   r.sessionTimeout,
		protocolType:     r.protocolType,
		protocols:        r.protocols,
		isNew:            true,
	}
	if g.state == PreparingRebalance && g.prevState == Empty {
		g.newMemberAdded = true // the initial delay may grow
	}
	g.add(m, w)
	// A new member cannot heartbeat before it has joined: its join times
	// out instead, so that a client that gave up does not linger.
	m.deadline = now.Add(newMemberJoinTimeout)
	g.rebalanceOrCompleteJoin(now)
}

// updateMember records a known member's rejoin.
func (g *Group) updateMember(m *member, r joinRequest, w *waiting) {
	g.count(m, -1)
	m.protocols = r.protocols
	g.count(m, 1)
	m.rebalanceTimeout = r.rebalanceTimeout
	m.sessionTimeout = r.sessionTimeout
	if m.join != nil {
		// Deviation: Kafka forgets a superseded JoinGroup; we answer it,
		// so that every request gets a response.
		g.failJoin(m, rebalanceInProgress, m.id)
	}
	m.join = w
}

// replaceStatic gives a known group instance id a new member id: the old
// member id is fenced, the new one inherits its place (and assignment).
func (g *Group) replaceStatic(now time.Time, w *waiting, r joinRequest, oldID, newID string) {
	oldLeader := g.leader
	old := g.members[oldID]

	g.failJoinFenced(old)
	g.failSync(old, fencedInstanceID)
	m := &member{
		id:               newID,
		instanceID:       old.instanceID,
		clientID:         old.clientID,
		clientHost:       old.clientHost,
		rebalanceTimeout: old.rebalanceTimeout,
		sessionTimeout:   old.sessionTimeout,
		protocolType:     old.protocolType,
		protocols:        old.protocols,
		assignment:       old.assignment,
	}
	delete(g.members, oldID)
	g.members[newID] = m
	for i, id := range g.order {
		if id == oldID {
			g.order[i] = newID
		}
	}
	if g.leader == oldID {
		g.leader = newID
	}
	g.static[*m.instanceID] = newID
	if g.pendingSync[oldID] {
		// Deviation: Kafka leaves the old id pending, and its sync
		// expiry then forces a rebalance; the new id must sync instead.
		delete(g.pendingSync, oldID)
		g.pendingSync[newID] = true
	}
	m.resetSession(now)
	g.updateMember(m, r, w)

	switch g.state {
	case Stable:
		next, _ := g.selectProtocol()
		if g.protocol != nil && *g.protocol == next {
			// Same protocol: no rebalance. Persist the new member id and
			// give the member the current generation.
			g.dirty = true
			m.join = nil
			var resp *kmsg.JoinGroupResponse
			if w.version >= 9 {
				// v9+: the leader gets the members but is told to skip
				// the assignment.
				resp = g.generationResponse(w.version, newID, newID == g.leader)
				resp.SkipAssignment = newID == g.leader
			} else {
				// Before v9 the old leader id is returned, so that a
				// rejoining leader does not reassign.
				resp = g.generationResponse(w.version, newID, false)
				resp.LeaderID = oldLeader
			}
			g.reply(w, resp)
			return
		}
		g.rebalanceOrCompleteJoin(now)
	case CompletingRebalance:
		// The leader may have been sent the old member id: rebalance so
		// that the assignment names the new one.
		g.prepareRebalance(now)
	default:
		g.maybeCompleteJoin(now)
	}
}

// rebalanceOrCompleteJoin starts a rebalance if the group may, or else
// tries to complete the one under way.
func (g *Group) rebalanceOrCompleteJoin(now time.Time) {
	switch g.state {
	case Empty, Stable, CompletingRebalance:
		g.prepareRebalance(now)
	default:
		g.maybeCompleteJoin(now)
	}
}

// prepareRebalance moves the group to PreparingRebalance.
func (g *Group) prepareRebalance(now time.Time) {
	if g.state == CompletingRebalance {
		// Members waiting for an assignment rejoin instead.
		for _, id := range g.order {
			g.members[id].assignment = nil
		}
		g.propagate(now, rebalanceInProgress)
	}
	clear(g.pendingSync)
	g.syncDeadline = time.Time{}

	initial := g.state == Empty
	g.transition(now, PreparingRebalance)
	if initial {
		// A new group waits for more members before its first generation.
		g.initial = true
		g.initialDelay = g.cfg.InitialRebalanceDelay
		g.initialRemaining = max(g.rebalanceTimeout()-g.cfg.InitialRebalanceDelay, 0)
		g.joinDeadline = now.Add(g.initialDelay)
		return
	}
	if g.allJoined() {
		g.completeJoin(now)
		return
	}
	g.initial = false
	g.joinDeadline = now.Add(g.rebalanceTimeout())
}

// maybeCompleteJoin completes the join phase if every member rejoined,
// except during the initial delay.
func (g *Group) maybeCompleteJoin(now time.Time) {
	if g.state == PreparingRebalance && g.prevState != Empty && g.allJoined() {
		g.completeJoin(now)
	}
}

// initialDelayDone runs when the initial delay ends: it grows while new
// members keep coming, up to the rebalance timeout.
func (g *Group) initialDelayDone(now time.Time) {
	if g.newMemberAdded && g.initialRemaining > 0 {
		g.newMemberAdded = false
		delay := min(g.cfg.InitialRebalanceDelay, g.initialRemaining)
		g.initialRemaining = max(g.initialRemaining-g.initialDelay, 0)
		g.initialDelay = delay
		g.joinDeadline = now.Add(delay)
		return
	}
	g.completeJoin(now)
}

// completeJoin ends the join phase: dynamic members that did not rejoin
// are removed, the generation is bumped, and every waiting JoinGroup is
// answered.
func (g *Group) completeJoin(now time.Time) {
	g.joinDeadline = time.Time{}
	g.initial = false
	for _, id := range append([]string(nil), g.order...) {
		if m := g.members[id]; m.join == nil && !m.isStatic() {
			g.remove(id)
		}
	}
	if g.state == Dead {
		return
	}
	if len(g.members) > 0 && !g.electJoinedLeader() {
		// Only static members that did not rejoin remain: wait for them
		// (or for their sessions to expire).
		g.joinDeadline = now.Add(max(g.rebalanceTimeout(), noRejoinRetry))
		return
	}

	g.generation++
	clear(g.pendingSync)
	if len(g.members) == 0 {
		g.protocol = nil
		g.subscribed = g.computeSubscribed()
		g.transition(now, Empty)
		g.dirty = true
		return
	}
	name, _ := g.selectProtocol()
	g.protocol = &name
	g.subscribed = g.computeSubscribed()
	g.transition(now, CompletingRebalance)
	for _, id := range g.order {
		m := g.members[id]
		if m.join != nil {
			w := m.join
			m.join = nil
			g.reply(w, g.generationResponse(w.version, id, id == g.leader))
		}
		m.resetSession(now)
		m.isNew = false
		g.pendingSync[id] = true
	}
	g.syncGeneration = g.generation
	g.syncDeadline = now.Add(g.rebalanceTimeout())
}

// electJoinedLeader keeps the leader if it rejoined, or else makes a member
// that rejoined the leader; false when no member rejoined.
func (g *Group) electJoinedLeader() bool {
	if l, ok := g.members[g.leader]; ok && l.join != nil {
		return true
	}
	for _, id := range g.order {
		if g.members[id].join != nil {
			g.leader = id
			return true
		}
	}
	return false
}

// generationResponse is a successful JoinGroup response for the current
// generation; withMembers adds the members' metadata (for the leader).
func (g *Group) generationResponse(version int16, memberID string, withMembers bool) *kmsg.JoinGroupResponse {
	resp := g.joinResponse(version, memberID)
	resp.Generation = g.generation
	resp.ProtocolType = g.protocolTypePtr()
	if g.protocol != nil {
		p := *g.protocol
		resp.Protocol = &p
	}
	resp.LeaderID = g.leader
	if withMembers {
		resp.Members = g.joinMembers()
	}
	return resp
}

// joinMembers lists the members with their metadata for the selected
// protocol, for the leader to assign.
func (g *Group) joinMembers() []kmsg.JoinGroupResponseMember {
	out := make([]kmsg.JoinGroupResponseMember, 0, len(g.order))
	for _, id := range g.order {
		m := g.members[id]
		out = append(out, kmsg.JoinGroupResponseMember{
			MemberID:         id,
			InstanceID:       m.instanceID,
			ProtocolMetadata: m.metadata(g.Protocol()),
		})
	}
	return out
}

func (g *Group) protocolTypePtr() *string {
	if g.protocolType == "" {
		return nil
	}
	t := g.protocolType
	return &t
}

// joinResponse is an empty JoinGroup response for version.
func (g *Group) joinResponse(version int16, memberID string) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = version
	resp.MemberID = memberID
	return resp
}

// joinError answers a JoinGroup with an error.
func (g *Group) joinError(w *waiting, memberID string, code int16) {
	resp := g.joinResponse(w.version, memberID)
	resp.ErrorCode = code
	g.reply(w, resp)
}

// failJoin answers the member's waiting JoinGroup, if any, with an error.
func (g *Group) failJoin(m *member, code int16, memberID string) {
	if m.join == nil {
		return
	}
	w := m.join
	m.join = nil
	g.joinError(w, memberID, code)
}

// failJoinFenced answers the waiting JoinGroup of a static member whose
// instance id was taken over.
func (g *Group) failJoinFenced(m *member) {
	g.failJoin(m, fencedInstanceID, m.id)
}

// reply queues the response to w.
func (g *Group) reply(w *waiting, resp kmsg.Response) {
	g.out = append(g.out, Reply{Token: w.tok, Response: resp})
}
