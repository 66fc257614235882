package broker

// Idempotent producers: a partition's memory of which batches each producer
// id has written, so that a retried batch is written once (KIP-98), with
// Kafka's rules (ProducerStateManager and ProducerAppendInfo in Kafka 3.x):
//
//   - Every batch with a producer id carries the producer's epoch and the
//     sequence number of its first record; sequences count records, per
//     partition, and wrap from MaxInt32 to 0.
//   - The table keeps, per producer id, its epoch and its last five batches
//     (first and last sequence, first and last offset). A batch whose epoch
//     and sequence range equal one of those five is a duplicate: it is
//     answered with the original's offsets and not written again.
//   - A batch of an older epoch is INVALID_PRODUCER_EPOCH.
//   - A batch of a newer epoch starts the producer over; its first sequence
//     must be 0 (OUT_OF_ORDER_SEQUENCE_NUMBER otherwise).
//   - A batch of the current epoch must continue the sequence exactly:
//     anything else (a gap, or an old batch that is no longer among the five)
//     is OUT_OF_ORDER_SEQUENCE_NUMBER.
//   - A producer id the partition has never seen is accepted whatever its
//     sequence, as Kafka does since KIP-360 (its state may have been removed
//     with the log's old segments); UNKNOWN_PRODUCER_ID is never returned.
//
// The table is a pure state machine: check says what to do with a batch,
// record and observe remember one. The I/O around it (appending under the
// table's lock, rebuilding from the log after a restart) is in produce.go and
// loadProducers below.
//
// After a restart the table is rebuilt from the tail of the log on the first
// idempotent produce to the partition: every batch with a producer id from
// the start of the last segment (or of the one before it, when the last is
// shorter than tailScanMinBytes) is observed in order. A producer whose last
// batches lie further back is treated as new (accepted whatever its
// sequence), so a retry across a restart is deduplicated as long as the
// original is in that tail. The bound is one or two segments
// (segment.bytes, 1 GiB by default) of reading, once per partition. Kafka
// instead snapshots producer state at every segment roll; Samsa will when
// transactions need it.

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/vfs"
	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/storage"
)

// producerBatchesKept is how many of a producer's last batches a partition
// remembers for duplicate detection: five, as Kafka (and the clients' limit
// of in-flight requests per connection for idempotence).
const producerBatchesKept = 5

// producerBatch is what a partition remembers of one written batch.
type producerBatch struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
	logAppendTime           int64 // -1 for CreateTime
}

// producerState is one producer id's state in one partition.
type producerState struct {
	epoch   int16
	batches []producerBatch // oldest first, at most producerBatchesKept
}

// producerTable is a partition's idempotent-producer state.
type producerTable struct {
	// mu is held by produce from the check of a batch with a producer id
	// through its append to the record of it, so that the two are atomic.
	// Lock order: producerTable.mu, then storage.Log's locks.
	mu     sync.Mutex
	loaded bool                     // rebuilt from the log; guarded by mu
	byID   map[int64]*producerState // guarded by mu
}

func newProducerTable() *producerTable {
	return &producerTable{byID: map[int64]*producerState{}}
}

// producerBatchInfo is the producer fields of an incoming batch.
type producerBatchInfo struct {
	producerID int64
	epoch      int16
	firstSeq   int32
	lastSeq    int32
}

// batchProducerInfo reads the producer fields of a batch header.
func batchProducerInfo(h record.Header) producerBatchInfo {
	return producerBatchInfo{
		producerID: h.ProducerID,
		epoch:      h.ProducerEpoch,
		firstSeq:   h.BaseSequence,
		lastSeq:    incrementSequence(h.BaseSequence, h.LastOffsetDelta),
	}
}

// incrementSequence adds n to a sequence number, wrapping past MaxInt32 to
// 0 as Kafka does.
func incrementSequence(seq, n int32) int32 {
	if seq > math.MaxInt32-n {
		return n - (math.MaxInt32 - seq) - 1
	}
	return seq + n
}

// inSequence reports whether next directly follows last.
func inSequence(last, next int32) bool {
	return int64(next) == int64(last)+1 || (next == 0 && last == math.MaxInt32)
}

// check decides what to do with an incoming batch: write it (nil, nil), or
// answer it as the duplicate of a batch already written (dup), or refuse it
// (err, a *kerr.Error wrapped with a message). It changes nothing.
func (t *producerTable) check(b producerBatchInfo) (dup *producerBatch, err error) {
	st, ok := t.byID[b.producerID]
	if !ok {
		return nil, nil // a producer new to this partition: any sequence (KIP-360)
	}
	if b.epoch == st.epoch {
		for i := range st.batches {
			if st.batches[i].firstSeq == b.firstSeq && st.batches[i].lastSeq == b.lastSeq {
				d := st.batches[i]
				return &d, nil
			}
		}
	}
	switch {
	case b.epoch < st.epoch:
		return nil, fmt.Errorf("%w: producer %d epoch %d is older than the current epoch %d",
			kerr.InvalidProducerEpoch, b.producerID, b.epoch, st.epoch)
	case b.epoch > st.epoch:
		if b.firstSeq != 0 {
			return nil, fmt.Errorf("%w: producer %d starts epoch %d at sequence %d, not 0",
				kerr.OutOfOrderSequenceNumber, b.producerID, b.epoch, b.firstSeq)
		}
		return nil, nil
	}
	if len(st.batches) == 0 {
		return nil, nil
	}
	last := st.batches[len(st.batches)-1].lastSeq
	if !inSequence(last, b.firstSeq) {
		return nil, fmt.Errorf("%w: producer %d sent sequence %d, expected %d",
			kerr.OutOfOrderSequenceNumber, b.producerID, b.firstSeq, incrementSequence(last, 1))
	}
	return nil, nil
}

// record remembers a batch that was written.
func (t *producerTable) record(b producerBatchInfo, written producerBatch) {
	st, ok := t.byID[b.producerID]
	if !ok {
		st = &producerState{epoch: b.epoch}
		t.byID[b.producerID] = st
	}
	if b.epoch != st.epoch {
		st.epoch = b.epoch
		st.batches = st.batches[:0]
	}
	if len(st.batches) == producerBatchesKept {
		copy(st.batches, st.batches[1:])
		st.batches = st.batches[:producerBatchesKept-1]
	}
	st.batches = append(st.batches, written)
}

// observe remembers a batch read back from the log (rebuilding after a
// restart): as record, without checks, for any batch with a producer id.
func (t *producerTable) observe(h record.Header) {
	if h.ProducerID < 0 || h.Attributes.Control() {
		return
	}
	logAppendTime := int64(-1)
	if h.Attributes.LogAppendTime() {
		logAppendTime = h.MaxTimestamp
	}
	b := batchProducerInfo(h)
	t.record(b, producerBatch{
		firstSeq: b.firstSeq, lastSeq: b.lastSeq,
		firstOffset: h.BaseOffset, lastOffset: h.LastOffset(),
		logAppendTime: logAppendTime,
	})
}

// tailScanMinBytes: when the last segment holds less than this, the scan
// that rebuilds producer state starts one segment earlier, so that a roll
// just before a restart does not hide the batches before it.
const tailScanMinBytes = 1 << 20

// loadProducers rebuilds t from the tail of l (see the file comment), once.
// The caller holds t.mu.
func loadProducers(t *producerTable, fs vfs.FS, l *storage.Log) error {
	if t.loaded {
		return nil
	}
	offs := l.Offsets()
	from := max(tailScanStart(fs, l.Dir(), offs.LogEnd), offs.LogStart)
	var buf []byte
	for from < offs.LogEnd {
		res, err := l.Read(buf[:0], from, 1<<20, offs.LogEnd)
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
			t.observe(h)
			from = h.LastOffset() + 1
			rest = rest[h.Size():]
		}
	}
	t.loaded = true
	return nil
}

// tailScanStart returns the base offset of the log's last segment below end
// (or of the one before it, when the last is small), from the segment file
// names (<20-digit base offset>.log, storage's documented on-disk format);
// 0 when they cannot be listed.
func tailScanStart(fs vfs.FS, dir string, end int64) int64 {
	names, err := fs.List(dir)
	if err != nil {
		return 0
	}
	type seg struct {
		base int64
		name string
	}
	var segs []seg // ascending: List is sorted and names are zero-padded
	for _, name := range names {
		digits, ok := strings.CutSuffix(name, ".log")
		if !ok || len(digits) != 20 {
			continue
		}
		base, err := strconv.ParseInt(digits, 10, 64)
		if err != nil || base > end {
			continue
		}
		segs = append(segs, seg{base, name})
	}
	switch len(segs) {
	case 0:
		return 0
	case 1:
		return segs[0].base
	}
	last := segs[len(segs)-1]
	if fi, err := fs.Stat(filepath.Join(dir, last.name)); err == nil && fi.Size() >= tailScanMinBytes {
		return last.base
	}
	return segs[len(segs)-2].base
}
