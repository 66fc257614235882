package txn

// Markers and completion. Once a transaction's outcome is persisted
// (PrepareCommit/PrepareAbort) the coordinator asks the driver to write a
// marker to each of its partitions (Output.Markers); MarkersWritten reports
// them durable, and the transaction completes (CompleteCommit or
// CompleteAbort, persisted). A partition whose marker could not be written
// (a deleted topic) is dropped from the transaction, as Kafka drops it:
// nothing can read a marker there.

import (
	"time"
)

// requestMarkers asks for the markers of t's outcome; a transaction with no
// partitions has none to write and completes at once.
func (c *Coordinator) requestMarkers(t *transaction, now time.Time, out *Output) {
	if len(t.partitions) == 0 {
		c.complete(t, now, out)
		return
	}
	c.lastMarkers++
	t.markers = c.lastMarkers
	c.inflight[t.markers] = t.id
	out.Markers = append(out.Markers, Markers{
		ID:               t.markers,
		ProducerID:       t.producerID,
		ProducerEpoch:    t.epoch,
		Commit:           t.state == statePrepareCommit,
		CoordinatorEpoch: c.coordinatorEpoch,
		Partitions:       t.sortedPartitions(),
	})
}

// MarkersWritten reports that the markers of id are durable on every
// partition (failed lists partitions whose marker could not be written,
// e.g. deleted topics, which Kafka skips). The transaction completes; an
// InitProducerId that fenced it is answered now. An unknown id (already
// reported, or from before a restart) changes nothing.
func (c *Coordinator) MarkersWritten(now time.Time, id uint64, failed []TopicPartition) Output {
	var out Output
	txnID, ok := c.inflight[id]
	if !ok {
		return out
	}
	delete(c.inflight, id)
	t := c.lookup(txnID)
	if t == nil || t.markers != id || !t.state.preparing() {
		return out
	}
	c.complete(t, now, &out)
	return out
}

// complete moves t from PrepareCommit/PrepareAbort to
// CompleteCommit/CompleteAbort and persists it; after an EndTxn v5 that
// exhausted the epoch the next producer id takes over, at epoch 0. The
// InitProducerId that fenced t, if any, is run again now, and then the adds
// held for t's markers (hold.go).
func (c *Coordinator) complete(t *transaction, now time.Time, out *Output) {
	if t.markers != 0 {
		delete(c.inflight, t.markers)
		t.markers = 0
	}
	if t.state == statePrepareCommit {
		t.state = stateCompleteCommit
	} else {
		t.state = stateCompleteAbort
	}
	if t.v2 {
		t.previousProducerID = t.producerID
		t.lastEpoch = t.epoch
		if t.nextProducerID != noProducer {
			c.setProducerID(t, t.nextProducerID)
			t.epoch = 0
		}
	}
	t.nextProducerID = noProducer
	clear(t.partitions)
	t.updateMillis = now.UnixMilli()
	c.commit(t, out)
	if f := t.fencer; f != nil {
		t.fencer = nil
		f.call.Now = now
		c.initProducerID(*f, out)
	}
	c.releaseHeld(t, now, out)
}
