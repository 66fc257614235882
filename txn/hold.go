package txn

// Adds held while the markers are written. A producer starts its next
// transaction as soon as EndTxn is answered, which is once the outcome is
// durable, and the markers of the transaction it ended are then usually
// still being written. Kafka answers that transaction's first
// AddPartitionsToTxn (or AddOffsetsToTxn) CONCURRENT_TRANSACTIONS, and the
// client retries after a backoff (20 ms in franz-go and the Java client):
// most of the time of a small transaction. The coordinator instead holds
// such an add, from the transaction's own producer id at its current
// epoch, until MarkersWritten completes the transaction, and handles it
// then, in the same Output. An add still held after holdLimit (markers that
// cannot be written) is answered CONCURRENT_TRANSACTIONS, as Kafka would
// have answered it at once. The batched form that brokers send (v4+) is
// never held.

import "time"

// holdLimit is how long an add waits for the markers of the transaction
// before it.
const holdLimit = time.Second

// heldAdd is an add waiting for markers: run handles it, into out.
type heldAdd struct {
	until time.Time
	call  Call
	run   func(call Call, out *Output)
}

// hold holds an add of producerID at epoch to the transaction of id, if
// that transaction's markers are being written; it reports whether it did.
func (c *Coordinator) hold(call Call, id string, producerID int64, epoch int16, run func(Call, *Output)) bool {
	t := c.lookup(id)
	if t == nil || t.producerID != producerID || t.epoch != epoch || !t.state.preparing() || t.markers == 0 || t.fencer != nil {
		return false
	}
	t.held = append(t.held, heldAdd{until: call.Now.Add(holdLimit), call: call, run: run})
	c.schedule(t)
	return true
}

// releaseHeld handles t's held adds, in the order they came, now that its
// transaction is complete.
func (c *Coordinator) releaseHeld(t *transaction, now time.Time, out *Output) {
	held := t.held
	t.held = nil
	for _, h := range held {
		h.call.Now = now
		h.run(h.call, out)
	}
}

// expireHeld answers t's adds held past their limit: its markers are still
// being written, so they get CONCURRENT_TRANSACTIONS.
func (c *Coordinator) expireHeld(t *transaction, now time.Time, out *Output) {
	kept := t.held[:0]
	for _, h := range t.held {
		if h.until.After(now) {
			kept = append(kept, h)
			continue
		}
		h.call.Now = now
		h.run(h.call, out)
	}
	clear(t.held[len(kept):])
	t.held = kept
}
