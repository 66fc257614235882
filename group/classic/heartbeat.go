package classic

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat handles a Heartbeat; it is always answered at once.
func (g *Group) Heartbeat(now time.Time, version int16, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := kmsg.NewPtrHeartbeatResponse()
	resp.Version = version
	instanceID := req.InstanceID
	if version < 3 {
		instanceID = nil
	}
	if g.state == Dead {
		resp.ErrorCode = coordinatorNotAvailable
		return resp
	}
	if code := g.validate(req.MemberID, instanceID); code != 0 {
		resp.ErrorCode = code
		return resp
	}
	if req.Generation != g.generation {
		resp.ErrorCode = illegalGeneration
		return resp
	}
	switch g.state {
	case Empty:
		resp.ErrorCode = unknownMemberID
	case PreparingRebalance:
		g.members[req.MemberID].resetSession(now)
		resp.ErrorCode = rebalanceInProgress
	default:
		// Members may heartbeat between their JoinGroup and SyncGroup.
		g.members[req.MemberID].resetSession(now)
	}
	return resp
}

// Leave handles a LeaveGroup; members leaving may complete a rebalance that
// others wait for, whose replies come back too.
func (g *Group) Leave(now time.Time, version int16, req *kmsg.LeaveGroupRequest) (*kmsg.LeaveGroupResponse, []Reply) {
	resp := kmsg.NewPtrLeaveGroupResponse()
	resp.Version = version
	if g.state == Dead {
		resp.ErrorCode = coordinatorNotAvailable
		return resp, nil
	}
	leaving := req.Members
	if version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	left := false
	for _, l := range leaving {
		code := g.leave(l)
		left = left || code == 0
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID = l.MemberID
		rm.InstanceID = l.InstanceID
		rm.ErrorCode = code
		resp.Members = append(resp.Members, rm)
	}
	if version < 3 {
		// v0–v2 carry the single member's error at the top level.
		resp.ErrorCode = resp.Members[0].ErrorCode
		resp.Members = nil
	}
	if left {
		switch g.state {
		case Stable, CompletingRebalance:
			g.rebalanceOrCompleteJoin(now)
		case PreparingRebalance:
			g.maybeCompleteJoin(now)
		}
	}
	return resp, g.flush()
}

// leave removes one member of a LeaveGroup, named by member id or (with an
// empty member id, as admin clients do) by group instance id.
func (g *Group) leave(l kmsg.LeaveGroupRequestMember) int16 {
	if l.MemberID == "" {
		if l.InstanceID == nil {
			return unknownMemberID
		}
		id, ok := g.static[*l.InstanceID]
		if !ok {
			return unknownMemberID
		}
		g.remove(id)
		return 0
	}
	if _, ok := g.pending[l.MemberID]; ok {
		g.remove(l.MemberID)
		return 0
	}
	if code := g.validate(l.MemberID, l.InstanceID); code != 0 {
		return code
	}
	g.remove(l.MemberID)
	return 0
}

// CheckCommit is the error code (0 for none) of an OffsetCommit by
// memberID (and instanceID, when static) in generation. A commit with
// generation -1 and no member id (a simple consumer) is allowed only while
// the group has no members.
//
// As Kafka's validateOffsetCommit: any commit with a negative generation
// is accepted while the group is Empty; otherwise the member must be
// current (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID) and in this generation
// (ILLEGAL_GENERATION), and a commit while the group completes a rebalance
// gets REBALANCE_IN_PROGRESS.
func (g *Group) CheckCommit(memberID string, instanceID *string, generation int32) int16 {
	if g.state == Dead {
		return coordinatorNotAvailable
	}
	if generation < 0 && g.state == Empty {
		return 0
	}
	if generation >= 0 || memberID != "" || instanceID != nil {
		if code := g.validate(memberID, instanceID); code != 0 {
			return code
		}
		if generation != g.generation {
			return illegalGeneration
		}
	} else {
		return unknownMemberID
	}
	if g.state == CompletingRebalance {
		return rebalanceInProgress
	}
	return 0
}

// ExtendSession restarts memberID's session after an OffsetCommit that
// CheckCommit accepted: as Kafka, a commit keeps a classic member alive
// while the group is Stable or PreparingRebalance. Unknown members are
// ignored.
func (g *Group) ExtendSession(now time.Time, memberID string) {
	m, ok := g.members[memberID]
	if !ok || (g.state != Stable && g.state != PreparingRebalance) {
		return
	}
	m.resetSession(now)
}
