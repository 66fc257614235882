package broker

// The broker's glue around each partition's producer state (package
// txn/producers, Kafka's ProducerStateManager): loading it when the
// partition is opened, snapshotting it, and keeping the log's last stable
// offset in step with it.
//
//   - Loading (openProducerTable): the newest snapshot file of the
//     partition (storage's <offset>.snapshot) that decodes and lies within
//     [log start, log end] is read, and the log after it is scanned batch by
//     batch (Observe); with none, the whole log from its start. Snapshots
//     past the log end (a crash lost the log's tail) and older than the log
//     start (retention or DeleteRecords removed what they describe) are
//     deleted, as Kafka does; a corrupt one is ignored. The log's first
//     unstable offset is set from the ongoing transactions found.
//   - Snapshots are taken when the log rolls to a new segment (seen by the
//     first producer batch or marker in it) and on a clean shutdown, at
//     the log end: every producer batch below it is in the state, since
//     every append of one happens under producerTable.mu together with the
//     state's update. So after a crash only the batches after the newest
//     snapshot, about one segment, are read again; after a clean shutdown
//     none.
//   - Expiry: producer.id.expiration.ms (1 day) after its last batch or
//     marker, a producer with no ongoing transaction is forgotten (checked
//     every ten minutes, on appends). The time of a batch is the later of
//     its max timestamp (Kafka's choice) and the broker's clock at append
//     or at rebuild, so a producer whose clock lags is not forgotten early.
//   - Compaction asks the state whether a transactional batch was aborted
//     (storage.Log.SetTxnDiscard); the aborted transactions are kept in the
//     state and its snapshots (Kafka keeps them in .txnindex files) until
//     the log start passes their markers.

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/storage"
	"github.com/samsa-io/samsa/txn/producers"
)

// producerTable is a partition's producer state with its lock.
type producerTable struct {
	log    *storage.Log // immutable
	logger *slog.Logger // immutable

	// mu is held from the check of a batch with a producer id (or of a
	// marker) through its append to the state's update, so that the two
	// are atomic. Lock order: producerTable.mu, then storage.Log's locks.
	mu sync.Mutex
	// state is nil when it could not be loaded (loadErr says why); guarded
	// by mu.
	state   *producers.State
	loadErr error
	// snapBase is the segment base offset at the last snapshot, or
	// adoptBase; guarded by mu.
	snapBase int64
	// snapEnd is the log end up to which the state needs no log read at
	// the next open: that of the snapshot last written, or the log end at
	// open when opening read nothing; -1 when unknown. A clean shutdown
	// writes no snapshot where the log end is still there. Guarded by mu.
	snapEnd int64
}

// adoptBase is a snapBase that the first append replaces with its segment's
// base without a snapshot: the state was loaded with nothing to scan (an
// empty log, or a snapshot at the log end), so a later recovery reads no
// more than the active segment until the next roll, which snapshots. A
// new topic's ten thousand partitions then write no snapshot each on their
// first append.
const adoptBase = -2

// openProducerTable loads a partition's producer state (see the file
// comment). A failure is logged and kept: batches with a producer id then
// get KAFKA_STORAGE_ERROR.
func openProducerTable(l *storage.Log, logger *slog.Logger) *producerTable {
	pt := &producerTable{log: l, logger: logger, snapBase: -1, snapEnd: -1}
	st, scanned, err := loadProducerState(l, logger)
	if err != nil {
		logger.Error("loading producer state", "dir", l.Dir(), "err", err)
		pt.loadErr = err
		return pt
	}
	pt.state = st
	if !scanned {
		pt.snapBase = adoptBase
		pt.snapEnd = l.Offsets().LogEnd
	}
	pt.syncStableLocked()
	l.SetTxnDiscard(pt.aborted)
	return pt
}

// loadProducerState reads the newest usable snapshot and the log after it;
// scanned reports whether there was any log after it to read.
func loadProducerState(l *storage.Log, logger *slog.Logger) (_ *producers.State, scanned bool, _ error) {
	offs := l.Offsets()
	snaps, err := l.Snapshots()
	if err != nil {
		return nil, false, err
	}
	var st *producers.State
	from := offs.LogStart
	for i := len(snaps) - 1; i >= 0; i-- {
		off := snaps[i]
		if off > offs.LogEnd || off < offs.LogStart {
			// Past the recovered log, or describing removed data.
			if err := l.RemoveSnapshot(off); err != nil {
				return nil, false, err
			}
			continue
		}
		if st != nil {
			continue
		}
		data, err := l.ReadSnapshot(off)
		if err == nil {
			var at int64
			st, at, err = producers.Decode(data, producers.DefaultExpiration)
			if err == nil && at != off {
				st, err = nil, fmt.Errorf("%w: snapshot file %d holds offset %d", producers.ErrCorruptSnapshot, off, at)
			}
		}
		if err != nil {
			logger.Warn("ignoring a producer state snapshot", "dir", l.Dir(), "offset", off, "err", err)
			continue
		}
		from = off
	}
	if st == nil {
		st = producers.New(producers.DefaultExpiration)
	}
	if err := scanProducerBatches(l, st, from, offs.LogEnd, time.Now().UnixMilli()); err != nil {
		return nil, false, err
	}
	st.ForgetAbortedBefore(offs.LogStart)
	return st, from < offs.LogEnd, nil
}

// scanProducerBatches observes every batch of l in [from, end).
func scanProducerBatches(l *storage.Log, st *producers.State, from, end, nowMs int64) error {
	var buf []byte
	for from < end {
		res, err := l.Read(buf[:0], from, 1<<20, end)
		if errors.Is(err, storage.ErrOffsetOutOfRange) && from < res.LogStart {
			from = res.LogStart // retention moved the start meanwhile
			continue
		}
		if err != nil {
			return err
		}
		buf = res.Data
		if len(buf) == 0 {
			break
		}
		for rest := buf; len(rest) > 0; {
			h, err := record.ParseHeader(rest)
			if err != nil || h.Size() > len(rest) {
				return fmt.Errorf("rebuilding producer state of %s: %w", l.Dir(), errors.Join(err, record.ErrCorrupt))
			}
			if err := st.Observe(h, rest[:h.Size()], nowMs); err != nil {
				return fmt.Errorf("rebuilding producer state of %s at offset %d: %w", l.Dir(), h.BaseOffset, err)
			}
			from = h.LastOffset() + 1
			rest = rest[h.Size():]
		}
	}
	return nil
}

// ready returns the state, or the error that kept it from loading. The
// caller holds mu.
func (pt *producerTable) ready() (*producers.State, error) {
	if pt.state == nil {
		return nil, fmt.Errorf("%w: producer state of %s could not be loaded: %w", kerr.KafkaStorageError, pt.log.Dir(), pt.loadErr)
	}
	return pt.state, nil
}

// appendedLocked is called, under mu, after every append of a batch with a
// producer id (data or marker): it expires old producers, forgets aborted
// transactions below the log start, and snapshots the state when the log
// has rolled.
func (pt *producerTable) appendedLocked(res storage.AppendResult) {
	pt.state.MaybeExpire(time.Now().UnixMilli())
	pt.state.ForgetAbortedBefore(res.LogStart) // retention or DeleteRecords passed them
	if pt.snapBase == adoptBase {
		pt.snapBase = res.SegmentBase
	}
	if res.SegmentBase == pt.snapBase {
		return
	}
	pt.snapshotLocked(res.LastOffset + 1)
	pt.snapBase = res.SegmentBase
}

// snapshotLocked writes the state as of end (every producer batch below
// end is in it). A failure is logged: the previous snapshot and the log
// still rebuild the state, with a longer scan. The caller holds mu.
func (pt *producerTable) snapshotLocked(end int64) {
	if pt.state == nil {
		return
	}
	if err := pt.log.WriteSnapshot(end, pt.state.Encode(end)); err != nil {
		if !errors.Is(err, storage.ErrClosed) {
			pt.logger.Warn("writing a producer state snapshot", "dir", pt.log.Dir(), "offset", end, "err", err)
		}
		return
	}
	pt.snapEnd = end
}

// shutdownSnapshot is the snapshot of the state at the log end, for a
// clean shutdown; ok is false when there is none to write: no state, or
// nothing for the next open to read (snapEnd). Without that check every
// idle partition would write one at every shutdown.
func (pt *producerTable) shutdownSnapshot() (_ storage.Snapshot, ok bool) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	end := pt.log.Offsets().LogEnd
	if pt.state == nil || end == pt.snapEnd {
		return storage.Snapshot{}, false
	}
	return storage.Snapshot{Log: pt.log, Offset: end, Data: pt.state.Encode(end)}, true
}

// syncStable is syncStableLocked with mu taken.
func (pt *producerTable) syncStable() {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	pt.syncStableLocked()
}

// syncStableLocked tells the log the first offset of its earliest ongoing
// transaction, which bounds its last stable offset. The caller holds mu.
func (pt *producerTable) syncStableLocked() {
	if pt.state == nil {
		return
	}
	if off, ok := pt.state.FirstUnstable(); ok {
		pt.log.SetFirstUnstable(off)
	} else {
		pt.log.SetFirstUnstable(-1)
	}
}

// aborted tells compaction whether a transactional batch was aborted.
func (pt *producerTable) aborted(h record.Header) bool {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return pt.state != nil && pt.state.IsAborted(h.ProducerID, h.BaseOffset)
}

// abortedTransactions lists, for Fetch with read_committed, the aborted
// transactions that overlap data read from offset from up to upTo.
func (pt *producerTable) abortedTransactions(from, upTo int64) []kmsg.FetchResponseTopicPartitionAbortedTransaction {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.state == nil {
		return nil
	}
	var out []kmsg.FetchResponseTopicPartitionAbortedTransaction
	for _, a := range pt.state.Aborted(from, upTo) {
		at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
		at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
		out = append(out, at)
	}
	return out
}

// appendWithProducerState appends a batch that a coordinator built (a
// TxnOffsetCommit's transactional offsets) under the partition's producer
// lock, and records it in the producer state as a batch read back from the
// log is (no sequence checks: the coordinator is not a client, as Kafka's
// AppendOrigin.COORDINATOR), so that the producer's transaction on the
// partition is known until its marker.
func (part *partition) appendWithProducerState(batch []byte) (storage.AppendResult, error) {
	h, err := record.ParseHeader(batch)
	if err != nil {
		return storage.AppendResult{}, err
	}
	if h.ProducerID < 0 {
		return part.log.Append(batch)
	}
	pt := part.producers
	pt.mu.Lock()
	defer pt.mu.Unlock()
	st, err := pt.ready()
	if err != nil {
		return storage.AppendResult{}, err
	}
	res, err := part.log.Append(batch)
	if err != nil {
		return res, err
	}
	record.SetBaseOffset(batch, res.BaseOffset) // Append wrote it; Observe reads it from here
	h.BaseOffset = res.BaseOffset
	if err := st.Observe(h, batch, time.Now().UnixMilli()); err != nil {
		return res, err
	}
	pt.appendedLocked(res)
	return res, nil
}

// snapshotProducers snapshots every partition's producer state at its log
// end, all at once (storage.Store.WriteSnapshots): a clean shutdown, after
// the last append. A failure is logged: the snapshots before and the log
// still rebuild the state, with a longer scan.
func (b *Broker) snapshotProducers() {
	b.parts.mu.RLock()
	snaps := make([]storage.Snapshot, 0, len(b.parts.byTP))
	for _, p := range b.parts.byTP {
		if sn, ok := p.producers.shutdownSnapshot(); ok {
			snaps = append(snaps, sn)
		}
	}
	b.parts.mu.RUnlock()
	if err := b.store.WriteSnapshots(snaps); err != nil {
		b.logger.Warn("writing producer state snapshots at shutdown", "snapshots", len(snaps), "err", err)
	}
}
