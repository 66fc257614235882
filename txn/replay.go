package txn

// Start-up: the records of the __transaction_state partitions this broker
// leads are replayed in log order, then Loaded finishes what was in flight.

import (
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Replay applies one record read back from __transaction_state at start-up,
// in log order; a nil value is a tombstone. Keys of unknown versions are
// skipped, as Kafka skips them; a known record that does not decode is an
// error (the log is corrupt), and changes nothing.
//
// A record holds the whole state of its id, so the last one wins. Kafka
// never persists Dead (it writes a tombstone) nor PrepareEpochFence (a
// fence is persisted as PrepareAbort); should they appear, Dead forgets
// the id and PrepareEpochFence is read as PrepareAbort.
func (c *Coordinator) Replay(partition int32, key, value []byte) error {
	v, ok := keyVersion(key)
	if !ok || v != txnKeyVersion {
		return nil
	}
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(key); err != nil {
		return &errCorrupt{"transaction metadata key", err}
	}
	if value == nil {
		if t := c.lookup(k.TransactionalID); t != nil {
			c.remove(t)
		}
		return nil
	}
	t, err := decodeValue(k.TransactionalID, value)
	if err != nil {
		return &errCorrupt{"transaction metadata value", err}
	}
	switch t.state {
	case stateDead:
		if old := c.lookup(t.id); old != nil {
			c.remove(old)
		}
		return nil
	case statePrepareEpochFence:
		t.state = statePrepareAbort
	}
	if old := c.lookup(t.id); old != nil {
		c.remove(old)
	}
	c.put(t)
	return nil
}

// Loaded ends replay: transactions found in PrepareCommit/PrepareAbort have
// their markers written again (the Output's Markers), as Kafka does after
// a coordinator fail-over; ongoing transactions keep the timeout counted
// from their start.
func (c *Coordinator) Loaded(now time.Time) Output {
	var out Output
	ids := make([]string, 0, len(c.txns))
	for id := range c.txns {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, strings.Compare)
	for _, id := range ids {
		t := c.txns[id]
		if t.state.preparing() && t.markers == 0 {
			c.requestMarkers(t, now, &out)
		}
		c.schedule(t)
	}
	return out
}
