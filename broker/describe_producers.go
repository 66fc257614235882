package broker

// DescribeProducers (key 61), version 0 (flexible).
//
// The active producers of each partition (KIP-664), from the partition's
// producer state (producers.go): per producer id its epoch, the last
// sequence it wrote (-1 when its last batch is not known, e.g. only a
// marker), the timestamp of its last batch or marker, the coordinator
// epoch of its last marker, and the first offset of its ongoing
// transaction on the partition (-1 for none). As in Kafka: a topic that
// does not exist is UNKNOWN_TOPIC_OR_PARTITION for each partition asked,
// and so is a partition the topic does not have; a producer state that
// could not be loaded is KAFKA_STORAGE_ERROR.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/txn/producers"
)

func handleDescribeProducers(b *Broker, _ context.Context, _ *request, req *kmsg.DescribeProducersRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	img := b.meta.Image()
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		_, topicExists := img.Topics[rt.Topic]
		for _, p := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = p
			part, ok := b.parts.get(rt.Topic, p)
			if !topicExists || !ok {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				msg := fmt.Sprintf("%s-%d does not exist", rt.Topic, p)
				sp.ErrorMessage = &msg
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			active, err := part.producers.describe()
			if err != nil {
				sp.ErrorCode = errorCode(err)
				msg := err.Error()
				sp.ErrorMessage = &msg
			}
			for _, pr := range active {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch = pr.ID, int32(pr.Epoch)
				ap.LastSequence = -1
				if n := len(pr.Batches); n > 0 {
					ap.LastSequence = pr.Batches[n-1].LastSeq
				}
				ap.LastTimestamp, ap.CoordinatorEpoch = pr.LastTimestamp, pr.CoordinatorEpoch
				ap.CurrentTxnStartOffset = pr.TxnFirstOffset
				sp.ActiveProducers = append(sp.ActiveProducers, ap)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// describe returns a copy of every producer's state in the partition, by
// id.
func (pt *producerTable) describe() ([]producers.Producer, error) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	st, err := pt.ready()
	if err != nil {
		return nil, err
	}
	return st.Producers(), nil
}
