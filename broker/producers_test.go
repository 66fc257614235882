package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/vfs"
	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/storage"
	"github.com/samsa-io/samsa/txn"
)

// txnEnv is one partition on a crashable filesystem, opened as the broker
// opens it (a log and its producer table), without the rest of a broker.
type txnEnv struct {
	t    *testing.T
	fs   *vfs.MemFS
	cfg  storage.Config
	part *partition
	// verified records the coordinator checks asked for; verifyCode is
	// their answer.
	verified   []int64
	verifyCode int16
}

const txnEnvDir = "/data/t-0"

func newTxnEnv(t *testing.T, cfg storage.Config) *txnEnv {
	e := &txnEnv{t: t, fs: vfs.NewCrashableMem(), cfg: cfg}
	e.open()
	return e
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (e *txnEnv) open() {
	e.t.Helper()
	l, err := storage.Open(txnEnvDir, e.cfg, storage.Options{FS: e.fs, Logger: quiet()})
	if err != nil {
		e.t.Fatal(err)
	}
	e.part = &partition{tp: storage.TopicPartition{Topic: "t"}, log: l, producers: openProducerTable(l, quiet())}
	if e.part.producers.loadErr != nil {
		e.t.Fatal(e.part.producers.loadErr)
	}
}

// crash drops everything not synced and reopens.
func (e *txnEnv) crash() {
	e.fs = e.fs.CrashClone(vfs.CrashOptions{})
	e.open()
}

// restart snapshots and closes cleanly, and reopens.
func (e *txnEnv) restart() {
	if sn, ok := e.part.producers.shutdownSnapshot(); ok {
		if err := sn.Log.WriteSnapshot(sn.Offset, sn.Data); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := e.part.log.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open()
}

func (e *txnEnv) inTransaction(pid int64, _ int16, _ txn.TopicPartition) int16 {
	e.verified = append(e.verified, pid)
	return e.verifyCode
}

// batchOpts describes a batch to produce.
type batchOpts struct {
	pid   int64
	epoch int16
	seq   int32
	n     int
	txn   bool
	key   string // records' keys are key-0, key-1, …; "" for "b"
}

func buildProducerBatch(t *testing.T, o batchOpts) []byte {
	t.Helper()
	opts := record.DefaultBuildOptions()
	opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence, opts.Transactional = o.pid, o.epoch, o.seq, o.txn
	if o.pid < 0 {
		opts.ProducerEpoch, opts.BaseSequence = -1, -1
	}
	if o.key == "" {
		o.key = "b"
	}
	recs := make([]record.Record, max(o.n, 1))
	for i := range recs {
		k := fmt.Appendf(nil, "%s-%d", o.key, i)
		recs[i] = record.Record{Offset: int64(i), Timestamp: 1000, Key: k, Value: []byte("value")}
	}
	b, err := record.Build(opts, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// produce offers a batch as a Produce request would, waits until it is
// durable, and returns where it went.
func (e *txnEnv) produce(o batchOpts) produced {
	e.t.Helper()
	b := buildProducerBatch(e.t, o)
	h, err := checkProduceBatch(11, b)
	if err != nil {
		return produced{err: err}
	}
	var res produced
	if h.ProducerID < 0 {
		r, err := e.part.log.Append(b)
		res = produced{baseOffset: r.BaseOffset, err: err, end: r.LastOffset + 1}
	} else {
		res = e.part.produceWithProducerID(h, b, e.inTransaction)
	}
	if res.err == nil {
		if err := e.part.log.WaitDurable(res.end); err != nil {
			e.t.Fatal(err)
		}
	}
	return res
}

func (e *txnEnv) mustProduce(o batchOpts) int64 {
	e.t.Helper()
	res := e.produce(o)
	if res.err != nil {
		e.t.Fatalf("produce %+v: %v", o, res.err)
	}
	return res.baseOffset
}

// marker writes a marker as writeMarkers does for one partition, and
// returns its offset.
func (e *txnEnv) marker(pid int64, epoch int16, commit bool) (int64, error) {
	e.t.Helper()
	end, err := e.part.appendMarker(txn.Markers{ProducerID: pid, ProducerEpoch: epoch, Commit: commit}, -1, 2000)
	if err != nil {
		return 0, err
	}
	if err := e.part.log.WaitDurable(end); err != nil {
		e.t.Fatal(err)
	}
	e.part.producers.syncStable()
	return end - 1, nil
}

func (e *txnEnv) mustMarker(pid int64, epoch int16, commit bool) int64 {
	e.t.Helper()
	off, err := e.marker(pid, epoch, commit)
	if err != nil {
		e.t.Fatal(err)
	}
	return off
}

func (e *txnEnv) lso() int64 { return e.part.log.Offsets().LastStable }

func (e *txnEnv) expectErr(o batchOpts, want *kerr.Error) {
	e.t.Helper()
	if res := e.produce(o); !errors.Is(res.err, want) {
		e.t.Fatalf("produce %+v: %v, want %v", o, res.err, want)
	}
}

func (e *txnEnv) expectDuplicate(o batchOpts, at int64) {
	e.t.Helper()
	end := e.part.log.Offsets().LogEnd
	res := e.produce(o)
	if res.err != nil || res.baseOffset != at || e.part.log.Offsets().LogEnd != end {
		e.t.Fatalf("retry %+v: at %d (%v), log end %d→%d; want the original at %d, nothing written",
			o, res.baseOffset, res.err, end, e.part.log.Offsets().LogEnd, at)
	}
}

func smallSegments() storage.Config {
	cfg := storage.DefaultConfig()
	cfg.SegmentBytes = 1024
	return cfg
}

func segmentCount(t *testing.T, fs vfs.FS) int {
	names, err := fs.List(txnEnvDir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range names {
		if filepath.Ext(name) == ".log" {
			n++
		}
	}
	return n
}

// A producer whose last batch lies many segments back is still
// deduplicated after a crash: the state comes from snapshots, not from a
// bounded tail of the log.
func TestProducerStateSurvivesACrashAcrossManySegments(t *testing.T) {
	e := newTxnEnv(t, smallSegments())
	first := batchOpts{pid: 7, seq: 0, n: 3}
	at := e.mustProduce(first)
	txnStart := e.mustProduce(batchOpts{pid: 8, seq: 0, n: 2, txn: true})
	for i := range 100 {
		e.mustProduce(batchOpts{pid: 9, seq: int32(i * 2), n: 2})
	}
	if n := segmentCount(t, e.fs); n < 5 {
		t.Fatalf("only %d segments; the test needs many", n)
	}
	if snaps, _ := e.part.log.Snapshots(); len(snaps) == 0 {
		t.Fatal("no snapshot after rolls")
	}
	if got := e.lso(); got != txnStart {
		t.Fatalf("LSO %d during the transaction, want %d", got, txnStart)
	}
	e.crash()
	e.expectDuplicate(first, at)
	e.expectErr(batchOpts{pid: 7, seq: 4, n: 1}, kerr.OutOfOrderSequenceNumber)
	e.mustProduce(batchOpts{pid: 7, seq: 3, n: 1})
	// The ongoing transaction survived: the LSO still stops at it, and the
	// producer may not write outside it.
	if got := e.lso(); got != txnStart {
		t.Fatalf("LSO %d after the crash, want %d", got, txnStart)
	}
	e.expectErr(batchOpts{pid: 8, seq: 2, n: 1}, kerr.InvalidTxnState)
	e.verified = nil
	e.mustProduce(batchOpts{pid: 8, seq: 2, n: 1, txn: true})
	if len(e.verified) != 0 {
		t.Fatalf("a batch of an ongoing transaction was verified again: %v", e.verified)
	}
	e.mustMarker(8, 0, true)
	if got, end := e.lso(), e.part.log.Offsets().LogEnd; got != end {
		t.Fatalf("LSO %d after the commit, want the log end %d", got, end)
	}
}

// With no snapshot at all (say all were lost), the state is rebuilt from
// the whole log.
func TestProducerStateRebuiltWithoutSnapshots(t *testing.T) {
	e := newTxnEnv(t, smallSegments())
	first := batchOpts{pid: 7, seq: 0, n: 3}
	at := e.mustProduce(first)
	for i := range 20 {
		e.mustProduce(batchOpts{pid: 9, seq: int32(i), n: 1})
	}
	snaps, _ := e.part.log.Snapshots()
	for _, s := range snaps {
		if err := e.part.log.RemoveSnapshot(s); err != nil {
			t.Fatal(err)
		}
	}
	e.crash()
	e.expectDuplicate(first, at)
}

// A corrupt snapshot is ignored: the state comes from an older one or the
// log, and deduplication still holds.
func TestCorruptSnapshotIsIgnored(t *testing.T) {
	e := newTxnEnv(t, storage.DefaultConfig())
	first := batchOpts{pid: 7, seq: 0, n: 3}
	at := e.mustProduce(first)
	txnStart := e.mustProduce(batchOpts{pid: 8, seq: 0, n: 1, txn: true})
	e.restart() // a clean shutdown's snapshot at the log end
	end := e.part.log.Offsets().LogEnd
	snaps, _ := e.part.log.Snapshots()
	if !slices.Contains(snaps, end) {
		t.Fatalf("snapshots %v, want one at the log end %d", snaps, end)
	}
	name := filepath.Join(txnEnvDir, fmt.Sprintf("%020d.snapshot", end))
	data, err := e.part.log.ReadSnapshot(end)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	f, err := e.fs.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	f.Sync()
	f.Close()
	e.fs.SyncDir(txnEnvDir)
	// And a snapshot past the log end (the log lost its tail) is dropped.
	if err := e.part.log.WriteSnapshot(end+100, []byte("from the future")); err != nil {
		t.Fatal(err)
	}
	e.crash()
	e.expectDuplicate(first, at)
	if got := e.lso(); got != txnStart {
		t.Fatalf("LSO %d, want %d", got, txnStart)
	}
	if snaps, _ := e.part.log.Snapshots(); slices.Contains(snaps, end+100) {
		t.Fatalf("the snapshot past the log end was kept: %v", snaps)
	}
}

// The LSO stops at the earliest ongoing transaction and moves with markers;
// the aborted transactions are listed for the ranges they overlap.
func TestLastStableOffsetAndAbortedTransactions(t *testing.T) {
	e := newTxnEnv(t, storage.DefaultConfig())
	e.mustProduce(batchOpts{pid: -1})                              // 0
	a := e.mustProduce(batchOpts{pid: 1, seq: 0, n: 2, txn: true}) // 1-2
	if got := e.lso(); got != a {
		t.Fatalf("LSO %d, want %d", got, a)
	}
	b := e.mustProduce(batchOpts{pid: 2, seq: 0, n: 1, txn: true}) // 3
	e.mustProduce(batchOpts{pid: -1})                              // 4
	if got := e.lso(); got != a {
		t.Fatalf("LSO %d with two transactions, want %d", got, a)
	}
	if len(e.verified) != 2 {
		t.Fatalf("coordinator asked about %v, want both producers' first batches", e.verified)
	}
	abortA := e.mustMarker(1, 0, false) // 5
	if got := e.lso(); got != b {
		t.Fatalf("LSO %d after A's abort, want B's start %d", got, b)
	}
	commitB := e.mustMarker(2, 0, true) // 6
	if got, end := e.lso(), e.part.log.Offsets().LogEnd; got != end || commitB != 6 {
		t.Fatalf("LSO %d after B's commit, want %d", got, end)
	}
	c := e.mustProduce(batchOpts{pid: 1, seq: 2, n: 1, txn: true}) // 7
	abortC := e.mustMarker(1, 0, false)                            // 8
	for _, tc := range []struct {
		from, upTo int64
		want       []int64 // first offsets
	}{
		{0, 9, []int64{a, c}},
		{0, 1, nil},
		{0, 2, []int64{a}},
		{abortA, 9, []int64{a, c}},
		{abortA + 1, 9, []int64{c}},
		{abortA + 1, c, nil},
		{abortC + 1, 9, nil},
	} {
		var got []int64
		for _, at := range e.part.producers.abortedTransactions(tc.from, tc.upTo) {
			if at.ProducerID != 1 {
				t.Fatalf("aborted transaction of producer %d", at.ProducerID)
			}
			got = append(got, at.FirstOffset)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("aborted in [%d, %d): %v, want %v", tc.from, tc.upTo, got, tc.want)
		}
	}
	// The aborted list survives a restart (snapshot) and a crash (rebuilt).
	e.restart()
	if got := e.part.producers.abortedTransactions(0, 9); len(got) != 2 {
		t.Fatalf("after restart: %v", got)
	}
	e.crash()
	if got := e.part.producers.abortedTransactions(0, 9); len(got) != 2 {
		t.Fatalf("after crash: %v", got)
	}
}

func TestTransactionalProduceErrors(t *testing.T) {
	e := newTxnEnv(t, storage.DefaultConfig())
	// The coordinator says the partition is not in the transaction.
	e.verifyCode = kerr.InvalidTxnState.Code
	e.expectErr(batchOpts{pid: 1, seq: 0, txn: true}, kerr.InvalidTxnState)
	// Its retriable errors become NOT_ENOUGH_REPLICAS, as in Kafka.
	e.verifyCode = kerr.ConcurrentTransactions.Code
	e.expectErr(batchOpts{pid: 1, seq: 0, txn: true}, kerr.NotEnoughReplicas)
	e.verifyCode = kerr.ProducerFenced.Code
	e.expectErr(batchOpts{pid: 1, seq: 0, txn: true}, kerr.ProducerFenced)
	if end := e.part.log.Offsets().LogEnd; end != 0 {
		t.Fatalf("refused batches were written: log end %d", end)
	}
	e.verifyCode = 0
	e.mustProduce(batchOpts{pid: 1, epoch: 1, seq: 0, txn: true})
	e.expectErr(batchOpts{pid: 1, epoch: 0, seq: 1, txn: true}, kerr.InvalidProducerEpoch)
	e.expectErr(batchOpts{pid: 1, epoch: 1, seq: 1}, kerr.InvalidTxnState)
	// A marker of an older epoch is refused and not written.
	end := e.part.log.Offsets().LogEnd
	if _, err := e.marker(1, 0, true); !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("marker of an old epoch: %v", err)
	}
	if e.part.log.Offsets().LogEnd != end {
		t.Fatal("a refused marker was written")
	}
	// A transactional batch without a producer id is not a batch.
	if _, err := checkProduceBatch(11, buildProducerBatch(t, batchOpts{pid: -1, txn: true})); !errors.Is(err, record.ErrInvalidRecord) {
		t.Fatalf("transactional batch without a producer id: %v", err)
	}
}

// A marker written while a batch was being verified voids the
// verification: the batch is refused rather than starting a transaction
// the coordinator does not know.
func TestMarkerDuringVerificationRefusesTheBatch(t *testing.T) {
	e := newTxnEnv(t, storage.DefaultConfig())
	e.mustProduce(batchOpts{pid: 1, seq: 0, txn: true})
	e.mustMarker(1, 0, false)
	b := buildProducerBatch(t, batchOpts{pid: 1, seq: 1, txn: true})
	h, _ := checkProduceBatch(11, b)
	res := e.part.produceWithProducerID(h, b, func(pid int64, epoch int16, tp txn.TopicPartition) int16 {
		// The coordinator answers yes, but the transaction then ends.
		if _, err := e.part.appendMarker(txn.Markers{ProducerID: 1, ProducerEpoch: 0}, -1, 0); err != nil {
			t.Fatal(err)
		}
		return 0
	})
	if !errors.Is(res.err, kerr.InvalidTxnState) {
		t.Fatalf("batch verified across a marker: %v", res.err)
	}
}

// Compaction stops at the LSO (an ongoing transaction's data stays),
// drops aborted data, and keeps markers.
func TestCompactionAndTransactions(t *testing.T) {
	cfg := smallSegments()
	cfg.Compact = true
	cfg.MinCleanableDirtyRatio = 0.01
	e := newTxnEnv(t, cfg)
	e.mustProduce(batchOpts{pid: 1, seq: 0, n: 2, txn: true, key: "aborted"})
	abortAt := e.mustMarker(1, 0, false)
	e.mustProduce(batchOpts{pid: 2, seq: 0, n: 2, txn: true, key: "committed"})
	commitAt := e.mustMarker(2, 0, true)
	ongoing := e.mustProduce(batchOpts{pid: 3, seq: 0, n: 2, txn: true, key: "ongoing"})
	for i := range 20 {
		e.mustProduce(batchOpts{pid: -1, key: fmt.Sprintf("plain%d", i)})
	}
	if err := e.part.log.Roll(); err != nil {
		t.Fatal(err)
	}
	st, err := e.part.log.Compact(context.Background(), storage.CompactOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.CleanedTo > ongoing {
		t.Fatalf("compaction went to %d, past the ongoing transaction at %d", st.CleanedTo, ongoing)
	}
	kinds := map[int64]string{}
	res, err := e.part.log.Read(nil, 0, 1<<20, e.part.log.Offsets().LogEnd)
	for off := int64(0); err == nil && len(res.Data) > 0; {
		for b := res.Data; len(b) > 0; {
			h, _ := record.ParseHeader(b)
			kind := "data"
			if h.Attributes.Control() {
				kind = "marker"
			}
			if h.NumRecords > 0 {
				kinds[h.BaseOffset] = kind
			}
			off = h.LastOffset() + 1
			b = b[h.Size():]
		}
		res, err = e.part.log.Read(nil, off, 1<<20, e.part.log.Offsets().LogEnd)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := kinds[0]; ok {
		t.Fatalf("aborted data kept: %v", kinds)
	}
	if kinds[abortAt] != "marker" || kinds[commitAt] != "marker" {
		t.Fatalf("markers not kept: %v", kinds)
	}
	if kinds[abortAt+1] != "data" || kinds[ongoing] != "data" {
		t.Fatalf("committed or ongoing data removed: %v", kinds)
	}
}

// A read_committed fetch stops at the LSO and lists the aborted
// transactions of the range it read.
func TestReadCommittedFetchStopsAtTheLSO(t *testing.T) {
	e := newTxnEnv(t, storage.DefaultConfig())
	aborted := e.mustProduce(batchOpts{pid: 1, seq: 0, n: 2, txn: true}) // 0-1
	e.mustMarker(1, 0, false)                                            // 2
	e.mustProduce(batchOpts{pid: -1, n: 3})                              // 3-5
	ongoing := e.mustProduce(batchOpts{pid: 2, seq: 0, n: 2, txn: true}) // 6-7
	e.mustProduce(batchOpts{pid: -1, n: 1})                              // 8
	read := func(from int64, committed bool) (int64, []int64) {
		t.Helper()
		ft := &fetchTarget{name: "t", part: e.part, pos: fetchPosition{fetchOffset: from, maxBytes: 1 << 20}}
		var total int64
		var firsts []int64
		for ft.pos.fetchOffset < e.part.log.Offsets().LogEnd {
			rd := readPartition(make([]byte, 0, 1<<16), ft, 12, 1<<20, committed)
			if rd.err != nil {
				t.Fatal(rd.err)
			}
			if rd.sec.Len() == 0 {
				break
			}
			for _, a := range abortedInRead(ft, rd) {
				firsts = append(firsts, a.FirstOffset)
			}
			data, err := rd.sec.AppendTo(nil)
			rd.sec.Release()
			if err != nil {
				t.Fatal(err)
			}
			for b := data; len(b) > 0; {
				h, _ := record.ParseHeader(b)
				total = h.LastOffset() + 1
				b = b[h.Size():]
			}
			ft.pos.fetchOffset = total
		}
		return total, firsts
	}
	if end, firsts := read(0, true); end != ongoing || !slices.Equal(firsts, []int64{aborted}) {
		t.Fatalf("read_committed from 0: up to %d, aborted %v; want up to %d, aborted [%d]", end, firsts, ongoing, aborted)
	}
	if end, firsts := read(3, true); end != ongoing || len(firsts) != 0 {
		t.Fatalf("read_committed from 3: up to %d, aborted %v", end, firsts)
	}
	if end, _ := read(0, false); end != 9 {
		t.Fatalf("read_uncommitted read up to %d, want 9", end)
	}
	e.mustMarker(2, 0, true)
	if end, _ := read(0, true); end != 10 {
		t.Fatalf("read_committed after the commit read up to %d, want 10", end)
	}
}

// A producer-state snapshot is written when the log rolls, and on the first
// append after opening only when the opening read log data after the newest
// snapshot: a new log, or one reopened with a snapshot at its end, writes
// none until it rolls.
func TestFirstAppendSnapshotsOnlyAfterAScan(t *testing.T) {
	e := newTxnEnv(t, storage.DefaultConfig())
	snapshots := func() []int64 {
		t.Helper()
		snaps, err := e.part.log.Snapshots()
		if err != nil {
			t.Fatal(err)
		}
		return snaps
	}
	e.mustProduce(batchOpts{pid: 7, seq: 0, n: 3})
	if s := snapshots(); len(s) != 0 {
		t.Fatalf("a new log's first append wrote snapshots %v", s)
	}
	e.restart() // a snapshot at the log end
	end := e.part.log.Offsets().LogEnd
	e.mustProduce(batchOpts{pid: 7, seq: 3, n: 1})
	if s := snapshots(); !slices.Equal(s, []int64{end}) {
		t.Fatalf("snapshots %v after reopening at a snapshot and appending, want only the shutdown's %d", s, end)
	}
	// After a crash the state is rebuilt from the snapshot and the batch
	// after it; the next append snapshots, and so does the first after a
	// roll.
	newest := func(what string) {
		t.Helper()
		s := snapshots()
		if end := e.part.log.Offsets().LogEnd; len(s) == 0 || s[len(s)-1] != end {
			t.Fatalf("snapshots %v %s, want one at the log end %d", s, what, end)
		}
	}
	e.crash()
	e.mustProduce(batchOpts{pid: 7, seq: 4, n: 1})
	newest("after a crash that left a batch to scan")
	if err := e.part.log.Roll(); err != nil {
		t.Fatal(err)
	}
	e.mustProduce(batchOpts{pid: 7, seq: 5, n: 1})
	newest("after a roll")
}

// A clean shutdown snapshots a partition only when the next open would
// otherwise read its log: not a new empty log, nor one whose end has not
// moved since its snapshot was written or read, so that idle partitions
// write nothing at each shutdown.
func TestShutdownSnapshotsOnlyWhereTheLogMoved(t *testing.T) {
	e := newTxnEnv(t, storage.DefaultConfig())
	due := func() bool {
		t.Helper()
		_, ok := e.part.producers.shutdownSnapshot()
		return ok
	}
	if due() {
		t.Fatal("a new empty log wants a shutdown snapshot")
	}
	e.mustProduce(batchOpts{pid: 7, seq: 0, n: 3})
	if !due() {
		t.Fatal("no shutdown snapshot after an append")
	}
	e.restart()
	if due() {
		t.Fatal("reopened at its snapshot with nothing appended, the log wants another")
	}
	e.restart()
	e.mustProduce(batchOpts{pid: 7, seq: 3, n: 1})
	e.crash() // the state is rebuilt by reading the last batch
	if !due() {
		t.Fatal("no shutdown snapshot after a crash that left a batch to read")
	}
	e.restart()
	if due() {
		t.Fatal("a log at its snapshot after the shutdown wants another")
	}
	// An append in a new segment snapshots at the log end (the first
	// after an open adopts its segment instead): that snapshot serves the
	// shutdown too.
	for seq := int32(4); seq < 6; seq++ {
		if err := e.part.log.Roll(); err != nil {
			t.Fatal(err)
		}
		e.mustProduce(batchOpts{pid: 7, seq: seq, n: 1})
	}
	if due() {
		t.Fatal("the roll's snapshot at the log end did not count")
	}
}
