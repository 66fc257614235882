package broker

// JoinGroup (key 11), versions 0–9.
//
// A member joins a classic group, or rejoins it for a rebalance; the
// response comes when the rebalance completes (every known member has
// rejoined, or the rebalance timeout has passed), so the handler waits for
// the coordinator's reply. An empty group id is INVALID_GROUP_ID, as in
// Kafka. The rest is the coordinator's (package group/classic): member ids
// required on first join (v4+, KIP-394: MEMBER_ID_REQUIRED with the id to
// use), protocol selection (INCONSISTENT_GROUP_PROTOCOL), session timeouts
// outside group.min/max.session.timeout.ms (INVALID_SESSION_TIMEOUT), static
// membership (v5+, group.instance.id, FENCED_INSTANCE_ID),
// group.max.size (GROUP_MAX_SIZE_REACHED), the protocol type and name in
// the response (v7+), and the join reason (v8+). v0 has no rebalance
// timeout: it is the session timeout. Before __consumer_offsets is loaded
// the answer is COORDINATOR_LOAD_IN_PROGRESS; a broker shutting down
// answers a waiting join COORDINATOR_NOT_AVAILABLE, which sends the client
// to find the coordinator again.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group"
)

func handleJoinGroup(b *Broker, ctx context.Context, r *request, req *kmsg.JoinGroupRequest) kmsg.Response {
	if req.Group == "" {
		return errorResponse(req, kerr.InvalidGroupID.Code)
	}
	if r.version == 0 {
		req.RebalanceTimeoutMillis = req.SessionTimeoutMillis
	}
	return b.groups.call(ctx, r, req, true, func(c *group.Coordinator, call group.Call) group.Output {
		return c.JoinGroup(call, req)
	})
}
