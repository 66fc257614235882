package broker

// OffsetForLeaderEpoch (key 23), versions 0–4.
//
// Answers, per partition, the end offset of a leader epoch: where the next
// epoch began, or the log end offset for the current epoch. Consumers use it
// after a leader change to check that the offset they consumed up to still
// exists (KIP-320); followers use it to truncate.
//
// A Samsa partition has one leader and so one epoch history entry: the
// current leader epoch from the metadata image (0 unless metadata raised
// it), taken to start at the log start offset. As Kafka's leader epoch cache
// answers for that history:
//   - the current epoch: that epoch and the log end offset;
//   - an older epoch: that epoch and the log start offset (where the only
//     known epoch begins);
//   - -1, or an epoch above the current one: epoch -1 and offset -1, no error.
//
// v2+ carries the client's current leader epoch, checked as Fetch does
// (FENCED_LEADER_EPOCH when it is older than the partition's,
// UNKNOWN_LEADER_EPOCH when newer, nothing when -1). v1 added the leader
// epoch to the response, v3 the replica id (-1 consumer, -2 debug, or a
// follower; all read the leader's log here), v4 flexible encoding.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetForLeaderEpoch(b *Broker, _ context.Context, r *request, req *kmsg.OffsetForLeaderEpochRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	img := b.meta.Image()
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		t := img.Topics[rt.Topic]
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			var part *partition
			ok := t != nil && rp.Partition >= 0 && int(rp.Partition) < len(t.Partitions)
			if ok {
				part, ok = b.parts.get(rt.Topic, rp.Partition)
			}
			if !ok {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			current := t.Partitions[rp.Partition].LeaderEpoch
			if r.version >= 2 {
				if err := checkLeaderEpoch(current, rp.CurrentLeaderEpoch); err != nil {
					sp.ErrorCode = errorCode(err)
					st.Partitions = append(st.Partitions, sp)
					continue
				}
			}
			offs := part.log.Offsets()
			switch {
			case rp.LeaderEpoch == current:
				sp.LeaderEpoch, sp.EndOffset = current, offs.LogEnd
			case rp.LeaderEpoch >= 0 && rp.LeaderEpoch < current:
				sp.LeaderEpoch, sp.EndOffset = rp.LeaderEpoch, offs.LogStart
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// checkLeaderEpoch compares the leader epoch a client believes current
// (KIP-320; -1 when it does not say) with the partition's, as Kafka does:
// an older one is FENCED_LEADER_EPOCH, a newer one UNKNOWN_LEADER_EPOCH.
func checkLeaderEpoch(partitionEpoch, clientEpoch int32) error {
	switch {
	case clientEpoch == -1 || clientEpoch == partitionEpoch:
		return nil
	case clientEpoch < partitionEpoch:
		return fmt.Errorf("%w: leader epoch %d is older than the partition's %d", kerr.FencedLeaderEpoch, clientEpoch, partitionEpoch)
	default:
		return fmt.Errorf("%w: leader epoch %d is newer than the partition's %d", kerr.UnknownLeaderEpoch, clientEpoch, partitionEpoch)
	}
}
