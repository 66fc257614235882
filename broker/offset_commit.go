package broker

// OffsetCommit (key 8), versions 0–9.
//
// Stores a group's committed offsets (and metadata strings) per partition,
// in __consumer_offsets: durable before the response is sent. As in
// Kafka's request handler, partitions of topics that do not exist, or
// partition numbers the topic does not have, are answered
// UNKNOWN_TOPIC_OR_PARTITION here and never reach the coordinator. The rest
// is the coordinator's (package group): a member of a classic group commits
// in its generation (v1+: ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
// REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID for static members, v7+), a
// KIP-848 member in its member epoch (v9: STALE_MEMBER_EPOCH), and a simple
// consumer (generation -1, no member id) while the group has no members;
// metadata longer than offset.metadata.max.bytes is
// OFFSET_METADATA_TOO_LARGE. v1's commit timestamp and v2–v4's retention
// time are accepted and ignored, as Kafka 3.x ignores them; v6+ carry the
// leader epoch of the committed offset. A commit too large for one batch of
// __consumer_offsets is INVALID_COMMIT_OFFSET_SIZE.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group"
)

func handleOffsetCommit(b *Broker, ctx context.Context, r *request, req *kmsg.OffsetCommitRequest) kmsg.Response {
	img := b.meta.Image()
	type tp struct {
		topic     string
		partition int32
	}
	unknown := map[tp]bool{}
	valid := *req
	valid.Topics = nil
	for _, rt := range req.Topics {
		t := img.Topics[rt.Topic]
		vt := rt
		vt.Partitions = nil
		for _, rp := range rt.Partitions {
			if t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
				unknown[tp{rt.Topic, rp.Partition}] = true
				continue
			}
			vt.Partitions = append(vt.Partitions, rp)
		}
		if len(vt.Partitions) > 0 {
			valid.Topics = append(valid.Topics, vt)
		}
	}
	if len(unknown) == 0 {
		return b.groups.call(ctx, r, req, false, func(c *group.Coordinator, call group.Call) group.Output {
			return c.OffsetCommit(call, req)
		})
	}

	results := map[tp]int16{}
	for k := range unknown {
		results[k] = kerr.UnknownTopicOrPartition.Code
	}
	if len(valid.Topics) > 0 {
		resp := b.groups.call(ctx, r, &valid, false, func(c *group.Coordinator, call group.Call) group.Output {
			return c.OffsetCommit(call, &valid)
		}).(*kmsg.OffsetCommitResponse)
		for _, st := range resp.Topics {
			for _, sp := range st.Partitions {
				if k := (tp{st.Topic, sp.Partition}); !unknown[k] {
					results[k] = sp.ErrorCode
				}
			}
		}
	}
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
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
