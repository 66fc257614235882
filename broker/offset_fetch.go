package broker

// OffsetFetch (key 9), versions 0–9.
//
// Returns a group's committed offsets (with their metadata and, v5+,
// leader epochs) for the partitions asked for, or (v2+, null topics) for
// every partition the group has committed. v0–v7 ask for one group; v8+
// for a batch of groups, each answered on its own; the handler asks the
// coordinator group by group either way (package group). A partition with
// no committed offset gets offset -1 and no error. v2+ carry a group-level
// error (COORDINATOR_LOAD_IN_PROGRESS while __consumer_offsets loads, …);
// v0–v1, which have none, get it on every partition asked for. v7+ may
// require stable offsets (no pending transactional commit); v9 names the
// KIP-848 member and epoch asking (STALE_MEMBER_EPOCH, UNKNOWN_MEMBER_ID).

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group"
)

func handleOffsetFetch(b *Broker, _ context.Context, r *request, req *kmsg.OffsetFetchRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if r.version >= 8 {
		for _, rg := range req.Groups {
			resp.Groups = append(resp.Groups, b.offsetFetchGroup(r, rg, req.RequireStable))
		}
		return resp
	}

	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = req.Group
	if req.Topics != nil || r.version < 2 {
		rg.Topics = make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(req.Topics))
	}
	for _, rt := range req.Topics {
		gt := kmsg.NewOffsetFetchRequestGroupTopic()
		gt.Topic, gt.Partitions = rt.Topic, rt.Partitions
		rg.Topics = append(rg.Topics, gt)
	}
	sg := b.offsetFetchGroup(r, rg, req.RequireStable)
	if r.version < 2 && sg.ErrorCode != 0 {
		// No group-level error before v2: every partition asked for gets it.
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetFetchResponseTopic()
			st.Topic = rt.Topic
			for _, p := range rt.Partitions {
				sp := kmsg.NewOffsetFetchResponseTopicPartition()
				sp.Partition, sp.Offset, sp.LeaderEpoch, sp.ErrorCode = p, -1, -1, sg.ErrorCode
				sp.Metadata = new(string)
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
	resp.ErrorCode = sg.ErrorCode
	for _, gt := range sg.Topics {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = gt.Topic
		for _, gp := range gt.Partitions {
			sp := kmsg.NewOffsetFetchResponseTopicPartition()
			sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata, sp.ErrorCode = gp.Partition, gp.Offset, gp.LeaderEpoch, gp.Metadata, gp.ErrorCode
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// offsetFetchGroup answers one group.
func (b *Broker) offsetFetchGroup(r *request, rg kmsg.OffsetFetchRequestGroup, requireStable bool) kmsg.OffsetFetchResponseGroup {
	var sg kmsg.OffsetFetchResponseGroup
	code := b.groups.read(func(c *group.Coordinator) {
		sg = c.OffsetFetch(group.Call{Now: time.Now(), Version: r.version, ClientID: r.clientID, ClientHost: clientHost(r)}, rg, requireStable)
	})
	if code != 0 {
		sg = kmsg.NewOffsetFetchResponseGroup()
		sg.ErrorCode = code
	}
	sg.Group = rg.Group
	return sg
}
