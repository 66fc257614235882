package storage

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/vfs"
	"github.com/samsa-io/samsa/record"
)

func TestAppendAssignsContiguousOffsets(t *testing.T) {
	e := newEnv(t)
	l := e.open(DefaultConfig(), false)
	defer l.Close()
	for i, n := range []int{1, 5, 3} {
		res := mustAppend(t, l, valueBatch(t, n, 1000, fmt.Sprint(i)))
		want := []int64{0, 1, 6}[i]
		if res.BaseOffset != want || res.LastOffset != want+int64(n)-1 {
			t.Fatalf("batch %d went to [%d,%d], want base %d", i, res.BaseOffset, res.LastOffset, want)
		}
	}
	if got := l.Offsets(); got != (Offsets{LogStart: 0, LogEnd: 9, HighWatermark: 9, LastStable: 9}) {
		t.Fatalf("offsets %+v", got)
	}
	recs := readRecords(t, l, 0)
	if got := offsetsOf(recs); !slices.Equal(got, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("offsets read %v", got)
	}
	if string(recs[3].Value) != "1-2" {
		t.Fatalf("record 3 = %q", recs[3].Value)
	}
}

func TestReadStartsWithBatchHoldingOffset(t *testing.T) {
	e := newEnv(t)
	l := e.open(smallConfig(), false)
	defer l.Close()
	for i := range 50 {
		mustAppend(t, l, valueBatch(t, 4, int64(i), "v"))
	}
	for _, off := range []int64{0, 1, 3, 4, 77, 199} {
		res, err := l.Read(nil, off, 1, 200)
		if err != nil {
			t.Fatal(err)
		}
		h, err := record.ParseHeader(res.Data)
		if err != nil {
			t.Fatal(err)
		}
		if h.BaseOffset > off || h.LastOffset() < off {
			t.Fatalf("read %d returned batch [%d,%d]", off, h.BaseOffset, h.LastOffset())
		}
		if h.Size() != len(res.Data) {
			t.Fatalf("maxBytes 1 must still return exactly one whole batch, got %d bytes for a %d-byte batch", len(res.Data), h.Size())
		}
	}
}

func TestReadHonoursMaxBytesAndUpTo(t *testing.T) {
	e := newEnv(t)
	l := e.open(DefaultConfig(), false)
	defer l.Close()
	var size int
	for range 10 {
		b := valueBatch(t, 2, 5, "x")
		size = len(b)
		mustAppend(t, l, b)
	}
	res, err := l.Read(nil, 0, 3*size+size/2, 20)
	if err != nil || len(res.Data) != 3*size {
		t.Fatalf("maxBytes 3.5 batches: %d bytes, err %v; want %d", len(res.Data), err, 3*size)
	}
	res, err = l.Read(nil, 0, 1<<20, 6)
	if err != nil || len(res.Data) != 3*size {
		t.Fatalf("upTo 6: %d bytes, err %v; want %d", len(res.Data), err, 3*size)
	}
	res, err = l.Read(nil, 20, 1<<20, 20)
	if err != nil || len(res.Data) != 0 {
		t.Fatalf("read at end: %d bytes, err %v", len(res.Data), err)
	}
	if _, err := l.Read(nil, 21, 1<<20, 21); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read past end: %v", err)
	}
}

func TestSegmentsRollAndKeepOffsets(t *testing.T) {
	e := newEnv(t)
	l := e.open(smallConfig(), false)
	for i := range 100 {
		mustAppend(t, l, valueBatch(t, 3, int64(i), "roll-a-little-longer-value-to-fill-segments"))
	}
	names, _ := e.fs.List(e.dir)
	var logs []string
	for _, n := range names {
		if strings.HasSuffix(n, ".log") {
			logs = append(logs, n)
		}
	}
	if len(logs) < 5 {
		t.Fatalf("expected several segments with segment.bytes=4096, got %v", logs)
	}
	if logs[0] != "00000000000000000000.log" {
		t.Fatalf("first segment %q", logs[0])
	}
	for _, name := range logs {
		base, ok := parseSegmentName(name, logSuffix)
		if !ok {
			t.Fatalf("bad name %q", name)
		}
		st, err := e.fs.Stat(filepath.Join(e.dir, name))
		if err != nil || st.Size() > 4096 {
			t.Fatalf("segment %d: size %d, err %v", base, st.Size(), err)
		}
	}
	if got := len(readRecords(t, l, 0)); got != 300 {
		t.Fatalf("read %d records, want 300", got)
	}
	l.Close()
	l = e.open(smallConfig(), true)
	defer l.Close()
	if got := offsetsOf(readRecords(t, l, 150)); len(got) != 150 || got[0] != 150 || got[149] != 299 {
		t.Fatalf("after reopen read %d records from 150", len(got))
	}
}

func TestSegmentRollsBySegmentMs(t *testing.T) {
	e := newEnv(t)
	cfg := DefaultConfig()
	cfg.SegmentAge = time.Minute
	l := e.open(cfg, false)
	defer l.Close()
	mustAppend(t, l, valueBatch(t, 1, 1_000, "a"))
	mustAppend(t, l, valueBatch(t, 1, 30_000, "b"))
	mustAppend(t, l, valueBatch(t, 1, 62_000, "c"))
	if n := len(l.segs); n != 2 {
		t.Fatalf("%d segments, want 2 (roll when a batch is over segment.ms after the first)", n)
	}
	if l.segs[1].base != 2 {
		t.Fatalf("second segment base %d", l.segs[1].base)
	}
}

func TestAppendRejectsBadBatchesAndWritesNothing(t *testing.T) {
	e := newEnv(t)
	cfg := DefaultConfig()
	cfg.MaxMessageBytes = 2000
	cfg.TimestampAfterMax = time.Hour
	l := e.open(cfg, false)
	defer l.Close()
	mustAppend(t, l, valueBatch(t, 1, e.clock.Now().UnixMilli(), "ok"))
	sizeBefore := l.Size()

	flipped := valueBatch(t, 2, 1, "x")
	flipped[len(flipped)-1] ^= 0xff
	future := valueBatch(t, 1, e.clock.Now().Add(2*time.Hour).UnixMilli(), "late")
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"crc", flipped, record.ErrCorrupt},
		{"truncated", valueBatch(t, 2, 1, "x")[:70], record.ErrCorrupt},
		{"too large", batch(t, record.CodecNone, kv{value: strings.Repeat("z", 3000)}), ErrMessageTooLarge},
		{"future timestamp", future, ErrInvalidTimestamp},
		{"garbage", []byte("definitely not a record batch, but long enough to have a header......"), record.ErrCorrupt},
	}
	for _, c := range cases {
		if _, err := l.Append(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
	if l.Size() != sizeBefore || l.Offsets().LogEnd != 1 {
		t.Fatalf("rejected batches changed the log: size %d->%d, end %d", sizeBefore, l.Size(), l.Offsets().LogEnd)
	}
}

func TestCompactedLogRejectsRecordsWithoutKey(t *testing.T) {
	e := newEnv(t)
	cfg := DefaultConfig()
	cfg.Compact, cfg.Delete = true, false
	l := e.open(cfg, false)
	defer l.Close()
	if _, err := l.Append(batch(t, record.CodecNone, kv{key: "k", value: "v"}, kv{value: "no key"})); !errors.Is(err, record.ErrInvalidRecord) {
		t.Fatalf("keyless record on a compacted log: %v", err)
	}
	mustAppend(t, l, batch(t, record.CodecZstd, kv{key: "k", value: "v"}))
}

func TestLogAppendTimeStampsBatches(t *testing.T) {
	e := newEnv(t)
	cfg := DefaultConfig()
	cfg.LogAppendTime = true
	l := e.open(cfg, false)
	defer l.Close()
	res := mustAppend(t, l, valueBatch(t, 3, 5, "t"))
	now := e.clock.Now().UnixMilli()
	if res.LogAppendTime != now {
		t.Fatalf("LogAppendTime %d, want %d", res.LogAppendTime, now)
	}
	for _, r := range readRecords(t, l, 0) {
		if r.Timestamp != now {
			t.Fatalf("record %d timestamp %d, want %d", r.Offset, r.Timestamp, now)
		}
	}
}

func TestEveryCodecRoundTrips(t *testing.T) {
	e := newEnv(t)
	l := e.open(DefaultConfig(), false)
	defer l.Close()
	codecs := []record.Codec{record.CodecNone, record.CodecGzip, record.CodecSnappy, record.CodecLZ4, record.CodecZstd}
	for _, c := range codecs {
		mustAppend(t, l, batch(t, c, kv{key: c.String(), value: strings.Repeat(c.String(), 100), ts: 9}))
	}
	recs := readRecords(t, l, 0)
	for i, c := range codecs {
		if string(recs[i].Key) != c.String() || string(recs[i].Value) != strings.Repeat(c.String(), 100) {
			t.Fatalf("codec %v: got key %q", c, recs[i].Key)
		}
	}
}

func TestOffsetForTimestampAndMaxTimestamp(t *testing.T) {
	e := newEnv(t)
	l := e.open(smallConfig(), false)
	defer l.Close()
	// Timestamps 100, 110, ... with one out-of-order peak at offset 41.
	for i := range 60 {
		ts := int64(100 + 10*i)
		if i == 41 {
			ts = 5000
		}
		mustAppend(t, l, batch(t, record.CodecNone, kv{value: "v", ts: ts}))
	}
	for _, c := range []struct{ ts, off, at int64 }{
		{0, 0, 100}, {100, 0, 100}, {101, 1, 110}, {505, 41, 5000}, {500, 40, 500}, {690, 41, 5000}, {4000, 41, 5000},
	} {
		off, ts, ok, err := l.OffsetForTimestamp(c.ts)
		if err != nil || !ok || off != c.off || ts != c.at {
			t.Errorf("OffsetForTimestamp(%d) = %d@%d ok %v err %v, want %d@%d", c.ts, off, ts, ok, err, c.off, c.at)
		}
	}
	if _, _, ok, _ := l.OffsetForTimestamp(5001); ok {
		t.Errorf("no record is newer than 5000")
	}
	off, ts, ok, err := l.MaxTimestamp()
	if err != nil || !ok || off != 41 || ts != 5000 {
		t.Fatalf("MaxTimestamp = %d@%d ok %v err %v", off, ts, ok, err)
	}
	// After a clean reopen the sealed segments answer from their indexes.
	l.Close()
	l = e.open(smallConfig(), true)
	defer l.Close()
	if off, _, ok, _ := l.OffsetForTimestamp(505); !ok || off != 41 {
		t.Fatalf("after reopen OffsetForTimestamp(505) = %d", off)
	}
}

func TestOffsetForTimestampWithinABatch(t *testing.T) {
	e := newEnv(t)
	l := e.open(DefaultConfig(), false)
	defer l.Close()
	mustAppend(t, l, batch(t, record.CodecLZ4, kv{value: "a", ts: 10}, kv{value: "b", ts: 20}, kv{value: "c", ts: 30}))
	off, ts, ok, err := l.OffsetForTimestamp(15)
	if err != nil || !ok || off != 1 || ts != 20 {
		t.Fatalf("got %d@%d ok %v err %v, want offset 1", off, ts, ok, err)
	}
}

func TestRetentionByTime(t *testing.T) {
	e := newEnv(t)
	cfg := smallConfig()
	cfg.Retention = time.Hour
	l := e.open(cfg, false)
	defer l.Close()
	now := e.clock.Now().UnixMilli()
	old := now - 2*time.Hour.Milliseconds()
	for range 40 {
		mustAppend(t, l, valueBatch(t, 3, old, "old"))
	}
	oldEnd := l.Offsets().LogEnd
	l.Roll()
	for range 5 {
		mustAppend(t, l, valueBatch(t, 3, now, "new"))
	}
	if _, err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if got := l.Offsets().LogStart; got != oldEnd {
		t.Fatalf("log start %d after time retention, want %d (every old segment gone, every new one kept)", got, oldEnd)
	}
	if got := offsetsOf(readRecords(t, l, oldEnd)); len(got) != 15 || got[0] != oldEnd {
		t.Fatalf("kept offsets %v", got)
	}
	// All expired, the active segment included: the log empties but keeps its end.
	e.clock.Advance(3 * time.Hour)
	end := l.Offsets().LogEnd
	if _, err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if got := l.Offsets(); got.LogStart != end || got.LogEnd != end {
		t.Fatalf("after everything expired: %+v, want start = end = %d", got, end)
	}
	mustAppend(t, l, valueBatch(t, 1, e.clock.Now().UnixMilli(), "after"))
	if got := offsetsOf(readRecords(t, l, end)); !slices.Equal(got, []int64{end}) {
		t.Fatalf("append after full expiry: %v", got)
	}
}

func TestRetentionByBytes(t *testing.T) {
	e := newEnv(t)
	cfg := smallConfig()
	cfg.RetentionBytes = 3 * 4096
	l := e.open(cfg, false)
	defer l.Close()
	now := e.clock.Now().UnixMilli()
	for range 600 {
		mustAppend(t, l, valueBatch(t, 2, now, "b"))
	}
	if _, err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	size := l.Size()
	first := l.segs[0]
	if size-first.size.Load() >= cfg.RetentionBytes {
		t.Fatalf("log of %d bytes could lose its first segment (%d) and still hold retention.bytes", size, first.size.Load())
	}
	if size < cfg.RetentionBytes {
		t.Fatalf("retention deleted too much: %d bytes left, limit %d", size, cfg.RetentionBytes)
	}
	start := l.Offsets().LogStart
	if start != first.base || start == 0 {
		t.Fatalf("log start %d, first segment %d", start, first.base)
	}
	if got := readRecords(t, l, start); int64(len(got)) != 1200-start {
		t.Fatalf("read %d records from %d", len(got), start)
	}
}

func TestSetLogStartOffsetHidesAndDeletes(t *testing.T) {
	e := newEnv(t)
	l := e.open(smallConfig(), false)
	for i := range 100 {
		mustAppend(t, l, valueBatch(t, 2, int64(i), "d"))
	}
	segsBefore := len(l.segs)
	if err := l.SetLogStartOffset(101); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Read(nil, 100, 100, 200); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the new start: %v", err)
	}
	if len(l.segs) >= segsBefore || l.segs[0].base > 101 {
		t.Fatalf("segments below the start not deleted: %d -> %d, first base %d", segsBefore, len(l.segs), l.segs[0].base)
	}
	if got := readRecords(t, l, 101); len(got) != 99 || got[0].Offset != 101 {
		t.Fatalf("read from new start: %d records", len(got))
	}
	if err := l.SetLogStartOffset(201); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("start past the high watermark: %v", err)
	}
	// The start survives a crash.
	e.crash()
	l = e.open(smallConfig(), false)
	defer l.Close()
	if got := l.Offsets().LogStart; got != 101 {
		t.Fatalf("log start after reopen %d", got)
	}
}

func TestTruncateTo(t *testing.T) {
	e := newEnv(t)
	l := e.open(smallConfig(), false)
	for range 100 {
		mustAppend(t, l, valueBatch(t, 2, 7, "t"))
	}
	end, err := l.TruncateTo(51) // inside the batch [50,51]
	if err != nil || end != 50 {
		t.Fatalf("TruncateTo(51) = %d, %v; want 50", end, err)
	}
	if got := offsetsOf(readRecords(t, l, 0)); len(got) != 50 || got[49] != 49 {
		t.Fatalf("after truncation read %d records", len(got))
	}
	res := mustAppend(t, l, valueBatch(t, 1, 8, "after"))
	if res.BaseOffset != 50 {
		t.Fatalf("append after truncation got offset %d", res.BaseOffset)
	}
	l.Close()
	l = e.open(smallConfig(), false)
	defer l.Close()
	if got := l.Offsets().LogEnd; got != 51 {
		t.Fatalf("end after reopen %d, want 51", got)
	}
	if _, err := l.TruncateTo(0); err != nil || l.Offsets().LogEnd != 0 {
		t.Fatalf("truncate to 0: %v, end %d", err, l.Offsets().LogEnd)
	}
}

func TestFlushMessagesSyncsAfterThatManyRecords(t *testing.T) {
	e := newEnv(t)
	cfg := DefaultConfig()
	cfg.FlushMessages = 10
	l := e.open(cfg, false)
	defer l.Close()
	for range 4 {
		if _, err := l.Append(valueBatch(t, 2, 1, "f")); err != nil { // 8 records: below flush.messages
			t.Fatal(err)
		}
	}
	if err := l.WaitDurable(8); err != nil { // a relaxed policy does not wait
		t.Fatal(err)
	}
	before := e.fs.CrashClone(vfs.CrashOptions{})
	if _, err := l.Append(valueBatch(t, 2, 1, "f")); err != nil { // 10 records: flushed
		t.Fatal(err)
	}
	after := e.fs.CrashClone(vfs.CrashOptions{})
	for _, c := range []struct {
		fs   *vfs.MemFS
		want int64
	}{{before, 0}, {after, 10}} {
		l2, err := Open(e.dir, cfg, Options{FS: c.fs, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		if got := l2.Offsets().LogEnd; got != c.want {
			t.Errorf("after a crash: end %d, want %d", got, c.want)
		}
		l2.Close()
	}
}

func TestFlushMsSyncsInTheBackground(t *testing.T) {
	e := newEnv(t)
	cfg := DefaultConfig()
	cfg.FlushMessages = math.MaxInt64
	cfg.FlushInterval = time.Millisecond
	l := e.open(cfg, false)
	defer l.Close()
	if _, err := l.Append(valueBatch(t, 3, 1, "ms")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for l.committer.Stats().Rounds == 0 {
		if time.Now().After(deadline) {
			t.Fatal("flush.ms never flushed")
		}
		time.Sleep(time.Millisecond)
	}
	l2, err := Open(e.dir, cfg, Options{FS: e.fs.CrashClone(vfs.CrashOptions{}), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if got := l2.Offsets().LogEnd; got != 3 {
		t.Fatalf("after the timed flush and a crash: end %d, want 3", got)
	}
}

func TestLogHoldsOneOpenFilePerSegment(t *testing.T) {
	openFDs := func() int {
		fds, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("needs /proc/self/fd")
		}
		return len(fds)
	}
	dir := filepath.Join(t.TempDir(), "fd-0")
	opts := Options{FS: vfs.Default, Logger: quietLogger()}
	l, err := Open(dir, smallConfig(), opts)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		mustAppend(t, l, valueBatch(t, 3, 1, "fd-test-value-padding"))
	}
	segments := len(l.segs)
	l.Close()
	before := openFDs()
	opts.Clean = true
	l, err = Open(dir, smallConfig(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	readRecords(t, l, 0) // loads every sealed segment's indexes
	mustAppend(t, l, valueBatch(t, 1, 1, "more"))
	if got := openFDs() - before; got != segments && got != len(l.segs) {
		t.Fatalf("%d files open for a log of %d segments, want one each", got, len(l.segs))
	}
}

func TestReadAllocatesNothingWithAReusedBuffer(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts are not meaningful under coverage or the race detector")
	}
	e := newEnv(t)
	l := e.open(smallConfig(), false)
	defer l.Close()
	for range 50 {
		mustAppend(t, l, valueBatch(t, 4, 1, "alloc"))
	}
	buf := make([]byte, 0, 64<<10)
	allocs := testing.AllocsPerRun(100, func() {
		res, err := l.Read(buf[:0], 77, 4096, 200)
		if err != nil || len(res.Data) == 0 {
			t.Fatalf("read: %v", err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Read allocates %.1f times per call with a reused buffer", allocs)
	}
}
