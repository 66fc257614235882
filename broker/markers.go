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

// writeMarkers writes m's marker to each of its partitions, waits until
// they are durable, and then moves each partition's last stable offset. It
// returns the partitions whose marker could not be written (a partition
// this broker does not hold, a failed log, a marker the partition's
// producer state refuses as fenced), which the coordinator treats as Kafka
// does a deleted partition. ctx is not consulted: a marker once appended is
// waited for, so that the LSO moves.
func (b *Broker) writeMarkers(_ context.Context, m txn.Markers) (failed []txn.TopicPartition) {
	type appended struct { // a marker, durable once log is up to end
		tp  txn.TopicPartition
		log *storage.Log
		end int64
	}
	var pending []appended
	for _, tp := range m.Partitions {
		log, end, err := b.writeMarker(m, tp)
		if err != nil {
			b.logger.Warn("writing a transaction marker", "topic", tp.Topic, "partition", tp.Partition,
				"producer_id", m.ProducerID, "commit", m.Commit, "err", err)
			failed = append(failed, tp)
			continue
		}
		pending = append(pending, appended{tp, log, end})
	}
	if len(pending) == 0 {
		return failed
	}
	logs, ends := make([]*storage.Log, len(pending)), make([]int64, len(pending))
	for i, w := range pending {
		logs[i], ends[i] = w.log, w.end
	}
	err := storage.WaitDurableAll(logs, ends)
	for _, w := range pending {
		if err != nil && w.log.WaitDurable(w.end) != nil {
			failed = append(failed, w.tp)
			continue
		}
		b.markerDurable(w.tp)
	}
	return failed
}

// writeMarker appends one partition's marker (appendMarker); the batch is
// durable once its log is durable up to end.
func (b *Broker) writeMarker(m txn.Markers, tp txn.TopicPartition) (*storage.Log, int64, error) {
	part, ok := b.parts.get(tp.Topic, tp.Partition)
	if !ok {
		return nil, 0, fmt.Errorf("%w: %s-%d", kerr.UnknownTopicOrPartition, tp.Topic, tp.Partition)
	}
	leaderEpoch := int32(-1)
	if t := b.meta.Image().Topics[tp.Topic]; t != nil && int(tp.Partition) < len(t.Partitions) {
		leaderEpoch = t.Partitions[tp.Partition].LeaderEpoch
	}
	end, err := part.appendMarker(m, leaderEpoch, time.Now().UnixMilli())
	return part.log, end, err
}

// appendMarker appends a marker for m to the partition and ends the
// producer's transaction in its producer state; it returns the log end
// after it. A marker the state refuses (an older producer epoch:
// INVALID_PRODUCER_EPOCH; an older coordinator epoch:
// TRANSACTION_COORDINATOR_FENCED) is not written. The last stable offset
// moves later, once the marker is durable (markerDurable).
func (part *partition) appendMarker(m txn.Markers, leaderEpoch int32, ts int64) (int64, error) {
	marker := record.Marker{Commit: m.Commit, CoordinatorEpoch: m.CoordinatorEpoch}
	batch, err := record.BuildMarker(record.MarkerOptions{
		ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch,
		PartitionLeaderEpoch: leaderEpoch,
		Timestamp:            ts,
		Marker:               marker,
	})
	if err != nil {
		return 0, err
	}
	pt := part.producers
	pt.mu.Lock()
	defer pt.mu.Unlock()
	st, err := pt.ready()
	if err != nil {
		return 0, err
	}
	if err := st.CheckMarker(m.ProducerID, m.ProducerEpoch, marker); err != nil {
		return 0, err
	}
	res, err := part.log.Append(batch)
	if err != nil {
		return 0, err
	}
	st.ApplyMarker(m.ProducerID, m.ProducerEpoch, marker, res.BaseOffset, ts)
	pt.appendedLocked(res)
	return res.LastOffset + 1, nil
}

// markerDurable moves a partition's last stable offset after its marker
// is durable: a read_committed consumer never sees a transaction's data as
// committed before the marker that commits it would survive a crash.
func (b *Broker) markerDurable(tp txn.TopicPartition) {
	part, ok := b.parts.get(tp.Topic, tp.Partition)
	if !ok {
		return
	}
	part.producers.syncStable()
}
