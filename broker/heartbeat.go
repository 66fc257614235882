package broker

// Heartbeat (key 12), versions 0–4.
//
// A classic group's member says it is alive, and learns whether a rebalance
// has begun (REBALANCE_IN_PROGRESS: rejoin). An empty group id is
// INVALID_GROUP_ID, as in Kafka; the generation and member checks
// (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID for static
// members, v3+) are the coordinator's (package group/classic). v4 changed
// nothing but the encoding (flexible versions).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group"
)

func handleHeartbeat(b *Broker, ctx context.Context, r *request, req *kmsg.HeartbeatRequest) kmsg.Response {
	if req.Group == "" {
		return errorResponse(req, kerr.InvalidGroupID.Code)
	}
	return b.groups.call(ctx, r, req, false, func(c *group.Coordinator, call group.Call) group.Output {
		return c.Heartbeat(call, req)
	})
}
