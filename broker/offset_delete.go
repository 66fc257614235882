package broker

// OffsetDelete (key 47), version 0.
//
// Deletes a group's committed offsets for some partitions: tombstones in
// __consumer_offsets, durable before the response is sent. An empty group
// id is INVALID_GROUP_ID, and partitions of topics that do not exist, or
// that the topic does not have, are UNKNOWN_TOPIC_OR_PARTITION, answered
// here as Kafka's request handler does. The rest is the coordinator's
// (package group): GROUP_ID_NOT_FOUND for a group that does not exist,
// GROUP_SUBSCRIBED_TO_TOPIC for partitions of topics the group's members
// still consume, NON_EMPTY_GROUP when that cannot be told. A group-level
// error from the coordinator is the whole answer, as in Kafka.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group"
)

func handleOffsetDelete(b *Broker, ctx context.Context, r *request, req *kmsg.OffsetDeleteRequest) kmsg.Response {
	if req.Group == "" {
		return errorResponse(req, kerr.InvalidGroupID.Code)
	}
	img := b.meta.Image()
	type tp struct {
		topic     string
		partition int32
	}
	results := map[tp]int16{}
	valid := *req
	valid.Topics = nil
	for _, rt := range req.Topics {
		t := img.Topics[rt.Topic]
		vt := rt
		vt.Partitions = nil
		for _, rp := range rt.Partitions {
			if t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
				results[tp{rt.Topic, rp.Partition}] = kerr.UnknownTopicOrPartition.Code
				continue
			}
			vt.Partitions = append(vt.Partitions, rp)
		}
		if len(vt.Partitions) > 0 {
			valid.Topics = append(valid.Topics, vt)
		}
	}
	if len(results) == 0 {
		return b.groups.call(ctx, r, req, false, func(c *group.Coordinator, call group.Call) group.Output {
			return c.OffsetDelete(call, req)
		})
	}
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if len(valid.Topics) > 0 {
		got := b.groups.call(ctx, r, &valid, false, func(c *group.Coordinator, call group.Call) group.Output {
			return c.OffsetDelete(call, &valid)
		}).(*kmsg.OffsetDeleteResponse)
		if got.ErrorCode != 0 {
			return got
		}
		for _, st := range got.Topics {
			for _, sp := range st.Partitions {
				k := tp{st.Topic, sp.Partition}
				if _, ok := results[k]; !ok {
					results[k] = sp.ErrorCode
				}
			}
		}
	}
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = rp.Partition
			code, ok := results[tp{rt.Topic, rp.Partition}]
			if !ok {
				code = kerr.UnknownServerError.Code
			}
			sp.ErrorCode = code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
