package broker

// ListOffsets (key 2), versions 1–9.
//
// Answers, per partition, an offset for a timestamp:
//   - -2 (earliest) and -4 (earliest local, v8+): the log start offset. With
//     no tiered storage the two are the same, as in Kafka.
//   - -1 (latest): the high watermark, or for READ_COMMITTED (v2+) the last
//     stable offset; a replica id other than -1 gets the log end offset.
//   - -3 (max timestamp, v7+, KIP-734): the first record with the largest
//     timestamp, and that timestamp.
//   - -5 (latest tiered, v9+, KIP-1005): offset -1 and leader epoch -1, which
//     is what Kafka answers for a topic without remote storage.
//   - any other value: the first record whose timestamp is at or after it,
//     and its timestamp; offset -1 and timestamp -1 when there is none (or it
//     lies past what the isolation level may see), as in Kafka.
//
// A special timestamp the request's version does not know is
// UNSUPPORTED_VERSION, a partition named twice is INVALID_REQUEST, and the
// client's current leader epoch (v4+) is checked as Fetch does. The
// response's leader epoch (v4+) is the partition's current one for -2, -4 and
// -1, and that of the batch holding the record found otherwise. v5 changed
// errors only (OFFSET_NOT_AVAILABLE, which a single leader never needs), v6
// made the encoding flexible. Timestamps and offsets of earliest and latest
// are -1 and the offset, as Kafka.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/metadata"
	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/storage"
)

// ListOffsets' special timestamps, with the first version that knows each.
const (
	listLatest       = -1
	listEarliest     = -2
	listMaxTimestamp = -3 // v7+
	listEarliestLoc  = -4 // v8+
	listLatestTiered = -5 // v9+
)

func handleListOffsets(b *Broker, _ context.Context, r *request, req *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	img := b.meta.Image()
	type tp struct {
		topic string
		p     int32
	}
	seen := map[tp]int{}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			seen[tp{rt.Topic, rp.Partition}]++
		}
	}
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			var err error
			if seen[tp{rt.Topic, rp.Partition}] > 1 {
				err = fmt.Errorf("%w: partition %s-%d is listed more than once", kerr.InvalidRequest, rt.Topic, rp.Partition)
			} else {
				err = b.listOffset(img, r.version, req, rt.Topic, &rp, &sp)
			}
			if err != nil {
				sp.ErrorCode = errorCode(err)
				sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			}
			if r.version < 4 {
				sp.LeaderEpoch = -1
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// listOffset answers one partition into sp.
func (b *Broker) listOffset(img *metadata.Image, version int16, req *kmsg.ListOffsetsRequest, topic string,
	rp *kmsg.ListOffsetsRequestTopicPartition, sp *kmsg.ListOffsetsResponseTopicPartition) error {
	if need := timestampMinVersion(rp.Timestamp); version < need {
		return fmt.Errorf("%w: timestamp %d needs ListOffsets v%d", kerr.UnsupportedVersion, rp.Timestamp, need)
	}
	t := img.Topics[topic]
	if t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
		return fmt.Errorf("%w: %s-%d", kerr.UnknownTopicOrPartition, topic, rp.Partition)
	}
	part, ok := b.parts.get(topic, rp.Partition)
	if !ok {
		return fmt.Errorf("%w: %s-%d is not ready on this broker", kerr.UnknownTopicOrPartition, topic, rp.Partition)
	}
	epoch := t.Partitions[rp.Partition].LeaderEpoch
	if version >= 4 {
		if err := checkLeaderEpoch(epoch, rp.CurrentLeaderEpoch); err != nil {
			return err
		}
	}
	l := part.log
	offs := l.Offsets()
	visible := offs.LogEnd // what the requester may see
	if req.ReplicaID == -1 {
		visible = offs.HighWatermark
		if req.IsolationLevel == 1 {
			visible = offs.LastStable
		}
	}
	sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
	switch rp.Timestamp {
	case listEarliest, listEarliestLoc:
		sp.Offset, sp.LeaderEpoch = offs.LogStart, epoch
		return nil
	case listLatest:
		sp.Offset, sp.LeaderEpoch = visible, epoch
		return nil
	case listLatestTiered:
		return nil
	}
	var offset, ts int64
	var found bool
	var err error
	if rp.Timestamp == listMaxTimestamp {
		offset, ts, found, err = l.MaxTimestamp()
	} else {
		offset, ts, found, err = l.OffsetForTimestamp(rp.Timestamp)
	}
	if err != nil || !found || offset >= visible {
		return err
	}
	sp.Offset, sp.Timestamp, sp.LeaderEpoch = offset, ts, batchLeaderEpoch(l, offset, visible)
	return nil
}

// timestampMinVersion is the first ListOffsets version that knows a special
// timestamp.
func timestampMinVersion(ts int64) int16 {
	switch ts {
	case listMaxTimestamp:
		return 7
	case listEarliestLoc:
		return 8
	case listLatestTiered:
		return 9
	}
	return 0
}

// batchLeaderEpoch returns the partition leader epoch written in the batch
// that holds offset, -1 when it cannot be read.
func batchLeaderEpoch(l *storage.Log, offset, upTo int64) int32 {
	res, err := l.Read(nil, offset, 1, upTo)
	if err != nil {
		return -1
	}
	h, err := record.ParseHeader(res.Data)
	if err != nil || h.PartitionLeaderEpoch < 0 {
		return -1
	}
	return h.PartitionLeaderEpoch
}
