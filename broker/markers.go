package broker

// Transaction markers: the transaction driver (transactions.go) asks every
// partition of a transaction to write a commit or abort marker, a control
// batch (record.BuildMarker), once the coordinator has persisted the
// transaction's outcome. A marker ends the producer's transaction on the
// partition: the partition's producer state forgets it, and the last stable
// offset moves past it.

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/storage"
	"github.com/samsa-io/samsa/txn"
)

// writeMarkers writes m's marker to each of its partitions and waits until
// they are durable. It returns the partitions whose marker could not be
// written (a partition this broker does not hold, a failed log), which the
// coordinator treats as Kafka does a deleted partition.
func (b *Broker) writeMarkers(ctx context.Context, m txn.Markers) (failed []txn.TopicPartition) {
	type written struct {
		tp  txn.TopicPartition
		log *storage.Log
		end int64
	}
	var pending []written
	for _, tp := range m.Partitions {
		log, end, err := b.writeMarker(m, tp)
		if err != nil {
			b.logger.Warn("writing a transaction marker", "topic", tp.Topic, "partition", tp.Partition,
				"producer_id", m.ProducerID, "commit", m.Commit, "err", err)
			failed = append(failed, tp)
			continue
		}
		pending = append(pending, written{tp, log, end})
	}
	if len(pending) == 0 {
		return failed
	}
	logs, ends := make([]*storage.Log, len(pending)), make([]int64, len(pending))
	for i, w := range pending {
		logs[i], ends[i] = w.log, w.end
	}
	if err := storage.WaitDurableAll(logs, ends); err != nil {
		for _, w := range pending {
			if w.log.WaitDurable(w.end) != nil {
				failed = append(failed, w.tp)
			}
		}
	}
	_ = ctx
	return failed
}

// writeMarker appends one partition's marker; the batch is durable once its
// log is durable up to end.
func (b *Broker) writeMarker(m txn.Markers, tp txn.TopicPartition) (*storage.Log, int64, error) {
	part, ok := b.parts.get(tp.Topic, tp.Partition)
	if !ok {
		return nil, 0, fmt.Errorf("%w: %s-%d", kerr.UnknownTopicOrPartition, tp.Topic, tp.Partition)
	}
	leaderEpoch := int32(-1)
	if t := b.meta.Image().Topics[tp.Topic]; t != nil && int(tp.Partition) < len(t.Partitions) {
		leaderEpoch = t.Partitions[tp.Partition].LeaderEpoch
	}
	batch, err := record.BuildMarker(record.MarkerOptions{
		ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch,
		PartitionLeaderEpoch: leaderEpoch,
		Timestamp:            time.Now().UnixMilli(),
		Marker:               record.Marker{Commit: m.Commit, CoordinatorEpoch: m.CoordinatorEpoch},
	})
	if err != nil {
		return nil, 0, err
	}
	pt := part.producers
	pt.mu.Lock()
	defer pt.mu.Unlock()
	res, err := part.log.Append(batch)
	if err != nil {
		return nil, 0, err
	}
	return part.log, res.LastOffset + 1, nil
}
