package broker

// ConsumerGroupHeartbeat (key 68), versions 0–1.
//
// KIP-848's consumer protocol: one request to join a consumer group (member
// epoch 0), heartbeat (with the partitions the member owns), and leave
// (epoch -1, or -2 for a static member's temporary leave). The server
// computes the target assignment with its assignors ("uniform", "range")
// and hands each member its partitions incrementally, a partition moving
// only once its previous owner has given it up; the response carries the
// member's epoch, its assignment when it changed, and the heartbeat
// interval. All of that, and the validation of the request (INVALID_REQUEST,
// UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH, UNRELEASED_INSTANCE_ID,
// GROUP_MAX_SIZE_REACHED, UNSUPPORTED_ASSIGNOR), is the coordinator's
// (package group/consumer); the handler refuses only an empty group id
// (INVALID_REQUEST, as Kafka's validation does). v1 adds subscription by
// regex. The member's state is durable in
// __consumer_offsets before the response is sent.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group"
)

func handleConsumerGroupHeartbeat(b *Broker, ctx context.Context, r *request, req *kmsg.ConsumerGroupHeartbeatRequest) kmsg.Response {
	if req.Group == "" {
		resp := errorResponse(req, kerr.InvalidRequest.Code).(*kmsg.ConsumerGroupHeartbeatResponse)
		msg := "GroupId can't be empty."
		resp.ErrorMessage = &msg
		return resp
	}
	return b.groups.call(ctx, r, req, false, func(c *group.Coordinator, call group.Call) group.Output {
		return c.ConsumerGroupHeartbeat(call, req)
	})
}
