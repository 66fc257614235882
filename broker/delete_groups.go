package broker

// DeleteGroups (key 42), versions 0–2.
//
// Deletes groups with no members, and their committed offsets: tombstones
// in __consumer_offsets, durable before the response is sent. A group named
// twice is answered once, as in Kafka. Per group the coordinator (package
// group) decides: GROUP_ID_NOT_FOUND for a group that does not exist,
// NON_EMPTY_GROUP for one with members. v2 changed nothing but the encoding
// (flexible versions). Before __consumer_offsets is loaded every group is
// COORDINATOR_LOAD_IN_PROGRESS; if the tombstones cannot be written, each
// group whose deletion needed them is COORDINATOR_NOT_AVAILABLE.

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group"
)

func handleDeleteGroups(b *Broker, _ context.Context, _ *request, req *kmsg.DeleteGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	var ids []string
	for _, id := range req.Groups {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	codes := make([]int16, len(ids))
	wrote := make([]bool, len(ids))
	ran := false
	code := b.groups.write(func(c *group.Coordinator, now time.Time) []group.Record {
		ran = true
		var all []group.Record
		for i, id := range ids {
			var recs []group.Record
			codes[i], recs = c.DeleteGroup(now, id)
			wrote[i] = len(recs) > 0
			all = append(all, recs...)
		}
		return all
	})
	for i, id := range ids {
		sg := kmsg.NewDeleteGroupsResponseGroup()
		sg.Group, sg.ErrorCode = id, codes[i]
		if code != 0 && (!ran || sg.ErrorCode == 0 && wrote[i]) {
			sg.ErrorCode = code
		}
		resp.Groups = append(resp.Groups, sg)
	}
	return resp
}
