package storage

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/samsa-io/samsa/record"
)

func compactConfig() Config {
	cfg := smallConfig()
	cfg.Compact, cfg.Delete = true, false
	cfg.MinCleanableDirtyRatio = 0
	return cfg
}

// keyedLog appends rounds of writes to keys k0..k{keys-1}: in round r key
// k{i} gets value "r{r}" (a tombstone when del says so), one record per
// batch. It returns, per offset, the key and value written.
func keyedLog(t *testing.T, l *Log, e *testEnv, rounds, keys int, del func(round, key int) bool) map[int64]kv {
	return keyedLogPrefix(t, l, e, "k", rounds, keys, del)
}

func keyedLogPrefix(t *testing.T, l *Log, e *testEnv, prefix string, rounds, keys int, del func(round, key int) bool) map[int64]kv {
	t.Helper()
	written := map[int64]kv{}
	for r := range rounds {
		for k := range keys {
			w := kv{key: fmt.Sprintf("%s%d", prefix, k), value: fmt.Sprintf("r%d", r), ts: e.clock.Now().UnixMilli()}
			if del != nil && del(r, k) {
				w.tombstone, w.value = true, ""
			}
			res := mustAppend(t, l, batch(t, record.CodecNone, w))
			written[res.BaseOffset] = w
		}
	}
	return written
}

// contents maps offset to "key=value" ("key=<nil>" for tombstones).
func contents(t *testing.T, l *Log) map[int64]string {
	out := map[int64]string{}
	for _, r := range readRecords(t, l, l.Offsets().LogStart) {
		v := string(r.Value)
		if r.Value == nil {
			v = "<nil>"
		}
		out[r.Offset] = string(r.Key) + "=" + v
	}
	return out
}

// expectCompacted is the model: below end, the latest record per key (and
// tombstones only when keepTombstones); from end on, everything.
func expectCompacted(written map[int64]kv, end int64, keepTombstones bool) map[int64]string {
	latest := map[string]int64{}
	for off, w := range written {
		if off < end && off >= latest[w.key] {
			latest[w.key] = off
		}
	}
	out := map[int64]string{}
	for off, w := range written {
		v := w.value
		if w.tombstone {
			v = "<nil>"
		}
		switch {
		case off >= end:
			out[off] = w.key + "=" + v
		case latest[w.key] == off && (!w.tombstone || keepTombstones):
			out[off] = w.key + "=" + v
		}
	}
	return out
}

func TestCompactionKeepsLatestRecordPerKeyAtItsOffset(t *testing.T) {
	e := newEnv(t)
	l := e.open(compactConfig(), false)
	defer l.Close()
	written := keyedLog(t, l, e, 30, 7, nil)
	end := l.active().base
	if end == 0 {
		t.Fatal("test needs sealed segments")
	}
	stats, err := l.Compact(context.Background(), CompactOptions{})
	if err != nil || !stats.Compacted || stats.CleanedTo != end {
		t.Fatalf("compact: %+v, %v", stats, err)
	}
	want := expectCompacted(written, end, true)
	if got := contents(t, l); !maps.Equal(got, want) {
		t.Fatalf("after compaction:\n got %v\nwant %v", got, want)
	}
	// The same after a crash and recovery.
	e.crash()
	l2 := e.open(compactConfig(), false)
	defer l2.Close()
	if got := contents(t, l2); !maps.Equal(got, want) {
		t.Fatalf("after crash:\n got %v\nwant %v", got, want)
	}
	if got := l2.Offsets().LogEnd; got != int64(len(written)) {
		t.Fatalf("log end %d, want %d", got, len(written))
	}
}

func TestCompactionDropsTombstonesAfterDeleteRetention(t *testing.T) {
	e := newEnv(t)
	cfg := compactConfig()
	cfg.DeleteRetention = time.Hour
	l := e.open(cfg, false)
	defer l.Close()
	// Round 5 deletes k0 and k3.
	written := keyedLog(t, l, e, 6, 5, func(r, k int) bool { return r == 5 && (k == 0 || k == 3) })
	keyedLog(t, l, e, 8, 0, nil)
	l.Roll()
	end := l.active().base
	if _, err := l.Compact(context.Background(), CompactOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := contents(t, l), expectCompacted(written, end, true); !maps.Equal(got, want) {
		t.Fatalf("first pass must keep tombstones:\n got %v\nwant %v", got, want)
	}
	// Within delete.retention.ms another pass keeps them.
	e.clock.Advance(30 * time.Minute)
	more := keyedLogPrefix(t, l, e, "x", 1, 2, nil)
	l.Roll()
	maps.Copy(written, more)
	if _, err := l.Compact(context.Background(), CompactOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := contents(t, l); got[mustOffset(t, written, "k0", true)] != "k0=<nil>" {
		t.Fatalf("tombstone removed before delete.retention.ms: %v", got)
	}
	// After it, the next pass removes them.
	e.clock.Advance(31 * time.Minute)
	more = keyedLogPrefix(t, l, e, "y", 1, 2, nil)
	l.Roll()
	maps.Copy(written, more)
	if _, err := l.Compact(context.Background(), CompactOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := contents(t, l), expectCompacted(written, l.active().base, false); !maps.Equal(got, want) {
		t.Fatalf("tombstones past delete.retention.ms:\n got %v\nwant %v", got, want)
	}
}

func mustOffset(t *testing.T, written map[int64]kv, key string, tombstone bool) int64 {
	for off, w := range written {
		if w.key == key && w.tombstone == tombstone {
			return off
		}
	}
	t.Fatalf("no record %s", key)
	return 0
}

func TestCompactionHonoursMinCompactionLag(t *testing.T) {
	e := newEnv(t)
	cfg := compactConfig()
	cfg.MinCompactionLag = time.Hour
	l := e.open(cfg, false)
	defer l.Close()
	old := keyedLog(t, l, e, 10, 3, nil)
	l.Roll()
	oldEnd := l.active().base
	e.clock.Advance(2 * time.Hour)
	young := keyedLog(t, l, e, 10, 3, nil)
	l.Roll()
	stats, err := l.Compact(context.Background(), CompactOptions{})
	if err != nil || stats.CleanedTo != oldEnd {
		t.Fatalf("compaction must stop where records younger than the lag begin (%d): %+v %v", oldEnd, stats, err)
	}
	maps.Copy(old, young)
	if got, want := contents(t, l), expectCompacted(old, oldEnd, true); !maps.Equal(got, want) {
		t.Fatalf("\n got %v\nwant %v", got, want)
	}
}

func TestCompactionWaitsForDirtyRatio(t *testing.T) {
	e := newEnv(t)
	cfg := compactConfig()
	cfg.MinCleanableDirtyRatio = 0.5
	l := e.open(cfg, false)
	defer l.Close()
	keyedLog(t, l, e, 40, 1000, nil)[0] = kv{}
	l.Roll()
	if s, err := l.Compact(context.Background(), CompactOptions{}); err != nil || !s.Compacted {
		t.Fatalf("all dirty: %+v %v", s, err)
	}
	// A little new data is far below half of the log.
	keyedLog(t, l, e, 1, 3, nil)
	l.Roll()
	if s, err := l.Compact(context.Background(), CompactOptions{}); err != nil || s.Compacted {
		t.Fatalf("dirty ratio below 0.5 must not compact: %+v %v", s, err)
	}
}

func TestCompactionWithBoundedKeyMapConverges(t *testing.T) {
	e := newEnv(t)
	l := e.open(compactConfig(), false)
	defer l.Close()
	written := keyedLog(t, l, e, 12, 40, nil)
	end := l.active().base
	passes := 0
	for {
		// Room for 25 keys: each pass covers a part of the dirty range.
		s, err := l.Compact(context.Background(), CompactOptions{MaxKeyMapBytes: 25 * keyMapEntryBytes})
		if err != nil {
			t.Fatal(err)
		}
		if !s.Compacted {
			break
		}
		passes++
		if s.CleanedTo <= s.DirtyStart {
			t.Fatalf("pass %d made no progress: %+v", passes, s)
		}
		if passes > 100 {
			t.Fatal("no convergence")
		}
	}
	if passes < 2 {
		t.Fatalf("a 25-key map over 40 keys must need several passes, took %d", passes)
	}
	// Each pass removes what its range supersedes; together they leave at
	// least the full model, and nothing the full model lacks except records
	// superseded across passes, which a final unbounded pass removes.
	if _, err := l.Compact(context.Background(), CompactOptions{}); err != nil {
		t.Fatal(err)
	}
	got := contents(t, l)
	want := expectCompacted(written, end, true)
	for off, v := range want {
		if got[off] != v {
			t.Fatalf("offset %d: got %q want %q", off, got[off], v)
		}
	}
}

func TestCompactionKeepsControlBatchesAndAsksAboutTransactions(t *testing.T) {
	e := newEnv(t)
	l := e.open(compactConfig(), false)
	defer l.Close()
	opts := record.DefaultBuildOptions()
	opts.ProducerID, opts.ProducerEpoch, opts.Transactional = 7, 0, true
	txn, err := record.Build(opts, []record.Record{{Key: []byte("k"), Value: []byte("in-txn"), Timestamp: 1}})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, txn)
	opts.Control = true
	marker, err := record.Build(opts, []record.Record{{Key: []byte{0, 0, 0, 0}, Value: []byte{0, 0, 0, 0, 0, 0}, Timestamp: 1}})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, marker)
	if got := l.Offsets().LastStable; got != 0 {
		t.Fatalf("last stable offset %d during the transaction, want 0", got)
	}
	l.SetFirstUnstable(-1) // what the log's owner does on seeing the marker
	mustAppend(t, l, batch(t, record.CodecNone, kv{key: "k", value: "plain", ts: 2}))
	l.Roll()
	var asked []int64
	_, err = l.Compact(context.Background(), CompactOptions{DiscardBatch: func(h record.Header) bool {
		asked = append(asked, h.BaseOffset)
		return h.ProducerID == 7 && !h.Attributes.Control()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(asked, 0) {
		t.Fatalf("DiscardBatch not asked about the transactional batch: %v", asked)
	}
	res, err := l.Read(nil, 0, 1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for b := res.Data; len(b) > 0; {
		h, _ := record.ParseHeader(b)
		kinds = append(kinds, fmt.Sprintf("%d:control=%v", h.BaseOffset, h.Attributes.Control()))
		b = b[h.Size():]
	}
	if want := []string{"1:control=true", "2:control=false"}; !slices.Equal(kinds, want) {
		t.Fatalf("batches after compaction %v, want %v", kinds, want)
	}
}

func TestCompactionSwapIsRecoveredAfterCrash(t *testing.T) {
	// Build the same log twice; compact one; put its compacted segment into
	// the other as an unfinished .swap, as a crash between renames leaves it.
	build := func() (*testEnv, *Log, map[int64]kv) {
		e := newEnv(t)
		l := e.open(compactConfig(), false)
		return e, l, keyedLog(t, l, e, 40, 4, nil)
	}
	ea, la, written := build()
	end := la.active().base
	if len(la.segs) < 3 {
		t.Fatal("test needs sealed segments")
	}
	if _, err := la.Compact(context.Background(), CompactOptions{}); err != nil {
		t.Fatal(err)
	}
	first := la.segs[0].path(logSuffix)
	compacted, err := ea.fs.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	la.Close()

	eb, lb, _ := build()
	lb.Close()
	swap := filepath.Join(eb.dir, segmentName(0, swapSuffix))
	if err := eb.fs.WriteFile(swap, compacted); err != nil {
		t.Fatal(err)
	}
	lb = eb.open(compactConfig(), false)
	defer lb.Close()
	got := contents(t, lb)
	want := expectCompacted(written, end, true)
	for off, v := range want {
		if off < lb.segs[1].base && got[off] != v {
			t.Fatalf("first segment after swap recovery: offset %d = %q, want %q", off, got[off], v)
		}
	}
	if names, _ := eb.fs.List(eb.dir); slices.Contains(names, segmentName(0, swapSuffix)) {
		t.Fatalf("swap file left behind: %v", names)
	}
}

func TestReadsRunDuringCompaction(t *testing.T) {
	e := newEnv(t)
	l := e.open(compactConfig(), false)
	defer l.Close()
	keyedLog(t, l, e, 30, 5, nil)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 1)
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			for off := int64(0); off < l.Offsets().LogEnd; {
				res, err := l.Read(nil, off, 4096, l.Offsets().LogEnd)
				if err != nil {
					errs <- err
					return
				}
				if len(res.Data) == 0 {
					break
				}
				var last int64
				for b := res.Data; len(b) > 0; {
					h, err := record.Validate(b[:mustSize(b)], record.ValidateOptions{VerifyRecords: true, AllowCompacted: true})
					if err != nil {
						errs <- err
						return
					}
					last = h.LastOffset()
					b = b[h.Size():]
				}
				off = last + 1
			}
		}
	})
	for range 5 {
		keyedLog(t, l, e, 3, 5, nil)
		if _, err := l.Compact(context.Background(), CompactOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("reader: %v", err)
	default:
	}
}

func TestCompactedBatchesSurviveFullRecoveryAndRecompaction(t *testing.T) {
	e := newEnv(t)
	l := e.open(compactConfig(), false)
	// Batches of 5 records over 7 keys: compaction drops some records of a
	// batch and keeps others, leaving batches with fewer records than offsets.
	written := map[int64]kv{}
	for b := range 60 {
		recs := make([]kv, 5)
		for i := range recs {
			recs[i] = kv{key: fmt.Sprintf("k%d", (b*5+i)%7), value: fmt.Sprintf("b%d-%d", b, i), ts: 1}
		}
		res := mustAppend(t, l, batch(t, record.CodecLZ4, recs...))
		for i, r := range recs {
			written[res.BaseOffset+int64(i)] = r
		}
	}
	end := l.active().base
	for range 2 { // the second pass reads batches the first rewrote
		if _, err := l.Compact(context.Background(), CompactOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	want := expectCompacted(written, end, true)
	if got := contents(t, l); !maps.Equal(got, want) {
		t.Fatalf("after compaction:\n got %v\nwant %v", got, want)
	}
	// Without a checkpoint recovery validates every batch of every segment.
	e.crash()
	if err := e.fs.Remove(filepath.Join(e.dir, checkpointName)); err != nil {
		t.Fatal(err)
	}
	l2 := e.open(compactConfig(), false)
	defer l2.Close()
	if got := contents(t, l2); !maps.Equal(got, want) {
		t.Fatalf("after full recovery:\n got %v\nwant %v", got, want)
	}
	if got := l2.Offsets().LogEnd; got != 300 {
		t.Fatalf("log end %d, want 300", got)
	}
}

func TestCompactionKeepsEachSegmentsLastBatchEmptied(t *testing.T) {
	e := newEnv(t)
	l := e.open(compactConfig(), false)
	defer l.Close()
	// Every batch is later superseded: only an empty last batch per
	// segment may remain below the active segment.
	keyedLog(t, l, e, 200, 1, nil)
	mustAppend(t, l, batch(t, record.CodecNone, kv{key: "k0", value: "final", ts: 1}))
	l.Roll()
	if len(l.segs) < 4 {
		t.Fatal("test needs several sealed segments")
	}
	if _, err := l.Compact(context.Background(), CompactOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, s := range l.segs[:len(l.segs)-2] { // the last sealed one holds "final"
		res, err := l.Read(nil, s.base, 1<<20, l.segs[i+1].base)
		if err != nil {
			t.Fatal(err)
		}
		var last record.Header
		for b := res.Data; len(b) > 0; {
			last, _ = record.ParseHeader(b)
			b = b[last.Size():]
		}
		if last.LastOffset()+1 != l.segs[i+1].base || last.NumRecords != 0 {
			t.Fatalf("segment %d: last batch [%d,%d] with %d records; want an empty batch ending at %d",
				s.base, last.BaseOffset, last.LastOffset(), last.NumRecords, l.segs[i+1].base-1)
		}
	}
	if got := contents(t, l); len(got) != 1 {
		t.Fatalf("records left: %v", got)
	}
}
