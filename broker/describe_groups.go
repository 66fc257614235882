package broker

// DescribeGroups (key 15), versions 0–5.
//
// Describes classic groups: state, protocol type and protocol, and each
// member with its client id and host, metadata and assignment (v4+: group
// instance id). The description is the coordinator's (package group),
// including what a group that does not exist, or a KIP-848 group, gets.
// v3+ may ask for authorized operations: unknown
// (INT32_MIN) until ACLs exist. Before __consumer_offsets is loaded every
// group is COORDINATOR_LOAD_IN_PROGRESS.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group"
)

func handleDescribeGroups(b *Broker, _ context.Context, r *request, req *kmsg.DescribeGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		var sg kmsg.DescribeGroupsResponseGroup
		code := b.groups.read(func(c *group.Coordinator) { sg = c.DescribeGroup(r.version, id) })
		if code != 0 {
			sg = kmsg.NewDescribeGroupsResponseGroup()
			sg.ErrorCode = code
		}
		sg.Group = id
		sg.AuthorizedOperations = unknownAuthorizedOps
		resp.Groups = append(resp.Groups, sg)
	}
	return resp
}
