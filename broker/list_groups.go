package broker

// ListGroups (key 16), versions 0–5.
//
// Lists the groups this broker coordinates (every group: Samsa runs one
// broker) with their protocol type, and (v4+) their state, filtered by
// state (v4+, KIP-518) and (v5+, KIP-848) by type ("classic",
// "consumer") when the filters are not empty. The list and the filtering
// are the coordinator's (package group). Before __consumer_offsets is loaded the answer is
// COORDINATOR_LOAD_IN_PROGRESS.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group"
)

func handleListGroups(b *Broker, _ context.Context, r *request, req *kmsg.ListGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	resp.ErrorCode = b.groups.read(func(c *group.Coordinator) {
		resp.Groups = c.ListGroups(r.version, req.StatesFilter, req.TypesFilter)
	})
	return resp
}
