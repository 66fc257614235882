package consumer

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The member epochs a heartbeat may carry besides the member's own.
const (
	joinEpoch        = 0
	leaveEpoch       = -1
	staticLeaveEpoch = -2
)

// hbError is a heartbeat refused with a Kafka error code.
type hbError struct {
	err *kerr.Error
	msg string
}

func refuse(err *kerr.Error, format string, args ...any) *hbError {
	return &hbError{err, fmt.Sprintf(format, args...)}
}

func (g *Group) errorResponse(version int16, e *hbError) *kmsg.ConsumerGroupHeartbeatResponse {
	resp := kmsg.NewPtrConsumerGroupHeartbeatResponse()
	resp.Version = version
	resp.ErrorCode = e.err.Code
	resp.ErrorMessage = &e.msg
	return resp
}

// Heartbeat handles a ConsumerGroupHeartbeat (join, heartbeat, leave) and
// answers it at once. topics are the cluster's topics by name.
//
// Fields a heartbeat leaves null (InstanceID, RackID, SubscribedTopicNames,
// SubscribedTopicRegex, ServerAssignor, Topics; RebalanceTimeoutMillis -1)
// keep their previous value, as KIP-848 specifies.
func (g *Group) Heartbeat(now time.Time, version int16, client Client, req *kmsg.ConsumerGroupHeartbeatRequest, topics map[string]Topic) *kmsg.ConsumerGroupHeartbeatResponse {
	if e := g.validate(version, req); e != nil {
		return g.errorResponse(version, e)
	}
	var (
		resp *kmsg.ConsumerGroupHeartbeatResponse
		e    *hbError
	)
	switch req.MemberEpoch {
	case leaveEpoch, staticLeaveEpoch:
		resp, e = g.leave(req)
	default:
		resp, e = g.heartbeat(now, client, req, topics)
	}
	if e != nil {
		return g.errorResponse(version, e)
	}
	resp.Version = version
	return resp
}

// validate checks what a request must carry, as Kafka does before it looks
// at the group (throwIfConsumerGroupHeartbeatRequestIsInvalid).
func (g *Group) validate(version int16, req *kmsg.ConsumerGroupHeartbeatRequest) *hbError {
	blank := func(s *string) bool { return s != nil && strings.TrimSpace(*s) == "" }
	// KIP-1082: from v1 the client makes its member id, even to join.
	if (version >= 1 || req.MemberEpoch > 0 || req.MemberEpoch == leaveEpoch) && blank(&req.MemberID) {
		return refuse(kerr.InvalidRequest, "MemberId can't be empty.")
	}
	if blank(req.InstanceID) {
		return refuse(kerr.InvalidRequest, "InstanceId can't be empty.")
	}
	if blank(req.RackID) {
		return refuse(kerr.InvalidRequest, "RackId can't be empty.")
	}
	switch {
	case req.MemberEpoch == joinEpoch:
		if req.RebalanceTimeoutMillis == -1 {
			return refuse(kerr.InvalidRequest, "RebalanceTimeoutMs must be provided in first request.")
		}
		if req.Topics == nil || len(req.Topics) > 0 {
			return refuse(kerr.InvalidRequest, "TopicPartitions must be empty when (re-)joining.")
		}
		if req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil {
			return refuse(kerr.InvalidRequest, "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.")
		}
	case req.MemberEpoch == staticLeaveEpoch:
		if req.InstanceID == nil {
			return refuse(kerr.InvalidRequest, "InstanceId can't be null.")
		}
	case req.MemberEpoch < staticLeaveEpoch:
		return refuse(kerr.InvalidRequest, "MemberEpoch is invalid.")
	}
	if req.ServerAssignor != nil && !g.knownAssignor(*req.ServerAssignor) {
		return refuse(kerr.UnsupportedAssignor, "ServerAssignor %s is not supported. Supported assignors: %s.",
			*req.ServerAssignor, strings.Join(g.cfg.assignors(), ", "))
	}
	if req.SubscribedTopicRegex != nil {
		if _, err := compileRegex(*req.SubscribedTopicRegex); err != nil {
			return refuse(kerr.InvalidRegularExpression, "SubscribedTopicRegex `%s` is not a valid regular expression: %v.",
				*req.SubscribedTopicRegex, err)
		}
	}
	return nil
}

// checkEpoch fences a heartbeat whose epoch is not the member's. A member
// may come back with its previous epoch if it owns no more than it is
// assigned (the response that moved it on was lost), and with epoch 0 to
// rejoin after it was fenced (KAFKA-19233).
func checkEpoch(m *member, req *kmsg.ConsumerGroupHeartbeatRequest) *hbError {
	e := req.MemberEpoch
	switch {
	case e == joinEpoch || e == m.epoch:
		return nil
	case e > m.epoch:
		return refuse(kerr.FencedMemberEpoch, "The consumer group member has a greater member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.", e, m.epoch)
	case e != m.previousEpoch || !ownedSubsetOf(req.Topics, m.assigned):
		return refuse(kerr.FencedMemberEpoch, "The consumer group member has a smaller member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.", e, m.epoch)
	}
	return nil
}

// staticMember is the member holding instance id inst, or nil.
func (g *Group) staticMember(inst string) *member {
	if id, ok := g.static[inst]; ok {
		return g.members[id]
	}
	return nil
}

// heartbeat handles a join (epoch 0) or a regular heartbeat.
func (g *Group) heartbeat(now time.Time, client Client, req *kmsg.ConsumerGroupHeartbeatRequest, topics map[string]Topic) (*kmsg.ConsumerGroupHeartbeatResponse, *hbError) {
	joining := req.MemberEpoch == joinEpoch
	memberID := req.MemberID

	// Find the member, or the one it replaces; change nothing yet.
	var (
		m        *member
		created  bool
		replaces *member // a static member that left (-2), taken over by a new member id
	)
	if req.InstanceID == nil {
		m = g.members[memberID]
		switch {
		case m != nil:
			if e := checkEpoch(m, req); e != nil {
				return nil, e
			}
		case !joining:
			return nil, refuse(kerr.UnknownMemberID, "Member %s is not a member of group %s.", memberID, g.id)
		}
	} else {
		inst := *req.InstanceID
		sm := g.staticMember(inst)
		switch {
		case !joining && sm == nil:
			return nil, refuse(kerr.UnknownMemberID, "Instance id %s is unknown.", inst)
		case sm != nil && sm.id != memberID && (!joining || sm.epoch != staticLeaveEpoch):
			if joining {
				return nil, refuse(kerr.UnreleasedInstanceID, "Static member %s with instance id %s cannot join the group because the instance id is owned by %s member.", memberID, inst, sm.id)
			}
			return nil, refuse(kerr.FencedInstanceID, "Static member %s with instance id %s was fenced by member %s.", memberID, inst, sm.id)
		case sm != nil && sm.id == memberID:
			m = sm
			if e := checkEpoch(m, req); e != nil {
				return nil, e
			}
		case sm != nil: // joining, sm left with -2: take over its state
			replaces = sm
		default: // joining with an instance id nobody holds
			m = g.members[memberID]
		}
	}
	if m == nil && replaces == nil && g.cfg.MaxSize > 0 && len(g.members) >= g.cfg.MaxSize {
		return nil, refuse(kerr.GroupMaxSizeReached, "The consumer group has reached its maximum capacity of %d members.", g.cfg.MaxSize)
	}

	// Now change the group.
	g.dead = false
	if memberID == "" { // v0 join: the coordinator names the member
		memberID = g.newMemberID()
	}
	subscriptionChanged := false
	switch {
	case replaces != nil:
		// Another member already under the new id is replaced too, and
		// its partitions must be reassigned.
		m, subscriptionChanged = g.replaceStatic(replaces, memberID)
	case m == nil:
		m = newMember(memberID)
		created = true
	case joining && m.epoch == staticLeaveEpoch:
		// The static member that left comes back under the same id.
		m.previousEpoch, m.epoch = 0, 0
	}
	before := m.metadata()
	assignedBefore := m.assigned

	subscriptionChanged = subscriptionChanged || created
	if req.InstanceID != nil {
		m.instanceID = strPtr(req.InstanceID)
	}
	if req.RackID != nil {
		m.rackID = strPtr(req.RackID)
	}
	if req.RebalanceTimeoutMillis != -1 {
		m.rebalanceTimeout = req.RebalanceTimeoutMillis
	}
	if req.ServerAssignor != nil {
		m.serverAssignor = strPtr(req.ServerAssignor)
	}
	if req.SubscribedTopicNames != nil {
		names := slices.Clone(req.SubscribedTopicNames)
		slices.Sort(names)
		names = slices.Compact(names)
		if !slices.Equal(names, m.topicNames) {
			subscriptionChanged = true
		}
		m.topicNames = names
	}
	if req.SubscribedTopicRegex != nil {
		if m.topicRegex == nil || *m.topicRegex != *req.SubscribedTopicRegex {
			subscriptionChanged = true
		}
		m.topicRegex = strPtr(req.SubscribedTopicRegex)
	}
	m.clientID, m.clientHost = client.ID, client.Host

	g.members[m.id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if created || replaces != nil || m.metadata() != before {
		g.emit(memberMetadataKey(g.id, m.id), memberMetadataValue(m))
	}

	metadataChanged := g.refresh(topics)
	if subscriptionChanged || metadataChanged || g.epoch == 0 {
		g.bump()
	}
	g.maybeComputeTarget()

	g.reconcile(now, m, req.Topics)
	m.sessionDeadline = now.Add(g.cfg.SessionTimeout)

	resp := kmsg.NewPtrConsumerGroupHeartbeatResponse()
	id := m.id
	resp.MemberID = &id
	resp.MemberEpoch = m.epoch
	resp.HeartbeatIntervalMillis = int32(g.cfg.HeartbeatInterval / time.Millisecond)
	// The assignment goes out on a full request (a join, or a heartbeat
	// carrying every field, as a client sends after an error) and
	// whenever it changed.
	full := joining || (req.RebalanceTimeoutMillis != -1 &&
		(req.SubscribedTopicNames != nil || req.SubscribedTopicRegex != nil) && req.Topics != nil)
	if full || !m.assigned.equal(assignedBefore) {
		resp.Assignment = responseAssignment(m.assigned)
	}
	return resp, nil
}

// responseAssignment is an assignment as a heartbeat response carries it.
func responseAssignment(a assignment) *kmsg.ConsumerGroupHeartbeatResponseAssignment {
	out := &kmsg.ConsumerGroupHeartbeatResponseAssignment{}
	out.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
	for _, t := range a.sortedTopics() {
		rt := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		rt.TopicID = t
		rt.Partitions = slices.Clone(a[t])
		out.Topics = append(out.Topics, rt)
	}
	return out
}

// replaceStatic hands the state of static member old, which left with
// epoch -2, to a new member id that rejoins with its instance id: the new
// member starts at epoch 0 with old's subscription, partitions and target,
// so it gets its partitions back without a rebalance of the others. It
// reports whether it also removed another member that had the new id.
func (g *Group) replaceStatic(old *member, id string) (*member, bool) {
	other, removed := g.members[id]
	if removed {
		g.removeMember(other)
	}
	m := *old
	m.id = id
	m.epoch, m.previousEpoch = 0, 0
	m.rebalanceDeadline = time.Time{}
	m.assignedAt = make(map[topicPartition]int32, len(old.assignedAt))
	for tp, e := range old.assignedAt {
		m.assignedAt[tp] = e
	}
	target, hasTarget := g.target[old.id]
	g.removeMember(old)
	if hasTarget {
		g.target[id] = target
		g.emit(targetMemberKey(g.id, id), targetMemberValue(target))
	}
	hold := func(tp topicPartition) { g.owners[tp] = id }
	m.assigned.each(hold)
	m.pendingRevocation.each(hold)
	g.members[id] = &m
	return &m, removed
}

// leave handles a heartbeat with epoch -1 (leave) or -2 (a static member
// leaving for a while).
func (g *Group) leave(req *kmsg.ConsumerGroupHeartbeatRequest) (*kmsg.ConsumerGroupHeartbeatResponse, *hbError) {
	var m *member
	if req.InstanceID == nil {
		if m = g.members[req.MemberID]; m == nil {
			return nil, refuse(kerr.UnknownMemberID, "Member %s is not a member of group %s.", req.MemberID, g.id)
		}
	} else {
		inst := *req.InstanceID
		if m = g.staticMember(inst); m == nil {
			return nil, refuse(kerr.UnknownMemberID, "Instance id %s is unknown.", inst)
		}
		if m.id != req.MemberID {
			return nil, refuse(kerr.FencedInstanceID, "Static member %s with instance id %s was fenced by member %s.", req.MemberID, inst, m.id)
		}
	}
	resp := kmsg.NewPtrConsumerGroupHeartbeatResponse()
	id := req.MemberID
	resp.MemberID = &id
	resp.MemberEpoch = req.MemberEpoch
	if req.MemberEpoch == staticLeaveEpoch {
		g.staticLeave(m)
	} else {
		g.fence(m)
	}
	return resp, nil
}

// staticLeave keeps a static member that leaves with epoch -2 in the
// group, with its partitions, until its session expires or a member
// rejoins with its instance id. What it had still to revoke is freed.
func (g *Group) staticLeave(m *member) {
	pending := m.pendingRevocation
	m.pendingRevocation = make(assignment)
	pending.each(func(tp topicPartition) {
		if g.owners[tp] == m.id {
			delete(g.owners, tp)
		}
		delete(m.assignedAt, tp)
	})
	for tp := range m.assignedAt {
		m.assignedAt[tp] = 0
	}
	m.epoch = staticLeaveEpoch
	m.rebalanceDeadline = time.Time{}
	g.emitCurrentAssignment(m)
}

// fence removes a member and reassigns its partitions.
func (g *Group) fence(m *member) {
	g.removeMember(m)
	g.unsubscribe()
	g.bump()
}

// removeMember deletes a member, frees its partitions and queues the
// tombstones of its records, in Kafka's order.
func (g *Group) removeMember(m *member) {
	g.emit(currentAssignmentKey(g.id, m.id), nil)
	g.emit(targetMemberKey(g.id, m.id), nil)
	g.emit(memberMetadataKey(g.id, m.id), nil)
	g.release(m)
	delete(g.target, m.id)
	delete(g.members, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
}
