package broker

// DeleteRecords (key 21), versions 0–2.
//
// Moves the log start offset of partitions forward: records below it can no
// longer be read (a fetch there is OFFSET_OUT_OF_RANGE) and segments wholly
// below it are deleted. Offset -1 means the high watermark. An offset above
// the high watermark, or another negative one, is OFFSET_OUT_OF_RANGE; one
// at or below the current start changes nothing. The result is the new low
// watermark (the log start offset), durable when the response is sent. A
// compacted topic without the delete policy refuses with POLICY_VIOLATION,
// as in Kafka. An unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteRecords(b *Broker, ctx context.Context, r *request, req *kmsg.DeleteRecordsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			low, err := b.deleteRecords(rt.Topic, rp.Partition, rp.Offset)
			if err != nil {
				sp.ErrorCode = err.Code
			} else {
				sp.LowWatermark = low
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// deleteRecords moves a partition's log start offset to offset (-1: the
// high watermark) and returns the new start.
func (b *Broker) deleteRecords(topic string, partition int32, offset int64) (int64, *kerr.Error) {
	p, ok := b.parts.get(topic, partition)
	if !ok {
		return 0, kerr.UnknownTopicOrPartition
	}
	if cfg := p.log.Config(); cfg.Compact && !cfg.Delete {
		return 0, kerr.PolicyViolation
	}
	if offset == -1 {
		offset = p.log.Offsets().HighWatermark
	}
	if offset < 0 {
		return 0, kerr.OffsetOutOfRange
	}
	if err := p.log.SetLogStartOffset(offset); err != nil {
		b.logger.Debug("delete records refused", "topic", topic, "partition", partition, "offset", offset, "err", err)
		return 0, kafkaError(err)
	}
	return p.log.Offsets().LogStart, nil
}
