package broker

// ConsumerGroupDescribe (key 69), versions 0–1.
//
// Describes KIP-848 consumer groups: the group epoch, the target
// assignment's epoch, the assignor, and each member with its epoch,
// subscription, current and target assignment. An empty group id is
// INVALID_GROUP_ID, as in Kafka; the rest, including GROUP_ID_NOT_FOUND for
// a group that does not exist or is a classic group, is the coordinator's
// (package group). Authorized operations are unknown (INT32_MIN) until ACLs
// exist. v1 adds each member's type (classic or consumer). Before __consumer_offsets is
// loaded every group is COORDINATOR_LOAD_IN_PROGRESS.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group"
)

func handleConsumerGroupDescribe(b *Broker, _ context.Context, r *request, req *kmsg.ConsumerGroupDescribeRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	for _, id := range req.Groups {
		var sg kmsg.ConsumerGroupDescribeResponseGroup
		code := kerr.InvalidGroupID.Code
		if id != "" {
			code = b.groups.read(func(c *group.Coordinator) {
				sg = c.ConsumerGroupDescribe(r.version, id, req.IncludeAuthorizedOperations)
			})
		}
		if code != 0 {
			sg = kmsg.NewConsumerGroupDescribeResponseGroup()
			sg.ErrorCode = code
		}
		sg.Group = id
		sg.AuthorizedOperations = unknownAuthorizedOps
		resp.Groups = append(resp.Groups, sg)
	}
	return resp
}
