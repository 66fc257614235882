package broker

// LeaveGroup (key 13), versions 0–5.
//
// Members leave a classic group, which then rebalances without waiting for
// their sessions to expire. v0–v2 name one member by its member id; v3+ a
// batch of members, each by member id or group instance id (KIP-345), each
// answered on its own (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID); v5 adds a
// reason per member. The handler gives the coordinator a v0–v2 request as a
// batch of one, as Kafka does, and answers v0–v2 with that member's error
// as the top-level error. An empty group id is INVALID_GROUP_ID, as in
// Kafka.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group"
)

func handleLeaveGroup(b *Broker, ctx context.Context, r *request, req *kmsg.LeaveGroupRequest) kmsg.Response {
	if req.Group == "" {
		return errorResponse(req, kerr.InvalidGroupID.Code)
	}
	if r.version < 3 {
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = req.MemberID
		req.Members = []kmsg.LeaveGroupRequestMember{m}
	}
	resp := b.groups.call(ctx, r, req, false, func(c *group.Coordinator, call group.Call) group.Output {
		return c.LeaveGroup(call, req)
	})
	if lr, ok := resp.(*kmsg.LeaveGroupResponse); ok && r.version < 3 {
		if lr.ErrorCode == 0 && len(lr.Members) > 0 {
			lr.ErrorCode = lr.Members[0].ErrorCode
		}
		lr.Members = nil
	}
	return resp
}
