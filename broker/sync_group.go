package broker

// SyncGroup (key 14), versions 0–5.
//
// After a JoinGroup, the leader sends the assignment and every member
// receives its own; a follower's response waits until the leader's
// assignment arrives (or the rebalance is abandoned), so the handler waits
// for the coordinator's reply. An empty group id is INVALID_GROUP_ID, and a
// v5+ request without the protocol type and name is
// INCONSISTENT_GROUP_PROTOCOL, as in Kafka. Generation and member checks
// (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS,
// FENCED_INSTANCE_ID for static members, v3+) are the coordinator's
// (package group/classic). The assignment is persisted in
// __consumer_offsets before any member receives it.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group"
)

func handleSyncGroup(b *Broker, ctx context.Context, r *request, req *kmsg.SyncGroupRequest) kmsg.Response {
	if req.Group == "" {
		return errorResponse(req, kerr.InvalidGroupID.Code)
	}
	if r.version >= 5 && (req.ProtocolType == nil || req.Protocol == nil) {
		return errorResponse(req, kerr.InconsistentGroupProtocol.Code)
	}
	return b.groups.call(ctx, r, req, true, func(c *group.Coordinator, call group.Call) group.Output {
		return c.SyncGroup(call, req)
	})
}
