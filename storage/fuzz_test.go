package storage

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/samsa-io/samsa/internal/vfs"
	"github.com/samsa-io/samsa/record"
)

// go test ./storage -run TestFuzzSeedCorpus -update-corpus rewrites the
// seed corpus under testdata/fuzz from the corruption fixture. Crashers the
// fuzzer found stay there under their own names.
var updateCorpus = flag.Bool("update-corpus", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// fuzzFixture is a small log of two segments (the first sealed) with a
// dense index, cleanly closed: the files the fuzz targets start from.
type fuzzFixture struct {
	files   map[string][]byte // by file name
	bases   []int64
	records []record.Record // every record, in offset order
}

func newFuzzFixture(t testing.TB) *fuzzFixture {
	fs := vfs.NewCrashableMem()
	cfg := DefaultConfig()
	cfg.SegmentBytes = 700
	cfg.IndexIntervalBytes = 0
	dir := "/fuzz"
	l, err := Open(dir, cfg, Options{FS: fs, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	fx := &fuzzFixture{files: map[string][]byte{}}
	for i := range 8 {
		recs := make([]kv, 1+i%3)
		for j := range recs {
			recs[j] = kv{key: fmt.Sprint(j), value: fmt.Sprintf("fuzz-%d-%d", i, j), ts: recordTs(l.Offsets().LogEnd + int64(j))}
		}
		codec := record.CodecNone
		if i == 5 {
			codec = record.CodecSnappy
		}
		mustAppend(t, l, batch(t, codec, recs...))
	}
	fx.records = readRecords(t, l, 0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := fs.List(dir)
	for _, name := range names {
		data, err := fs.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		fx.files[name] = data
		if base, ok := parseSegmentName(name, logSuffix); ok {
			fx.bases = append(fx.bases, base)
		}
	}
	if len(fx.bases) != 2 {
		t.Fatalf("fuzz fixture has %d segments, want 2", len(fx.bases))
	}
	return fx
}

func (fx *fuzzFixture) file(base int64, suffix string) []byte {
	return fx.files[segmentName(base, suffix)]
}

// FuzzIndexCheck feeds arbitrary bytes as a segment's offset index and time
// index. The checks must not panic; when they pass, lookups return positions
// inside the log, monotonic in the offset or timestamp asked. Then the bytes
// replace the index files of the fixture's sealed or active segment, and
// the log, opened cleanly, must still read back every record and answer
// timestamp queries exactly: a damaged index is detected and rebuilt or
// bypassed, never trusted into a wrong answer.
func FuzzIndexCheck(f *testing.F) {
	fx := newFuzzFixture(f)
	for _, base := range fx.bases {
		f.Add(fx.file(base, indexSuffix), fx.file(base, timeIndexSuffix), base == fx.bases[1])
	}
	f.Add([]byte{}, []byte{}, false)
	f.Fuzz(func(t *testing.T, idx, tidx []byte, active bool) {
		checkIndexLookups(t, idx, tidx, int64(len(fx.file(fx.bases[0], logSuffix))))

		fs := vfs.NewCrashableMem()
		dir := "/fuzz"
		if err := fs.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range fx.files {
			if err := fs.WriteFile(filepath.Join(dir, name), data); err != nil {
				t.Fatal(err)
			}
		}
		base := fx.bases[0]
		if active {
			base = fx.bases[1]
		}
		fs.WriteFile(filepath.Join(dir, segmentName(base, indexSuffix)), idx)
		fs.WriteFile(filepath.Join(dir, segmentName(base, timeIndexSuffix)), tidx)
		cfg := DefaultConfig()
		cfg.IndexIntervalBytes = 0
		l, err := Open(dir, cfg, Options{FS: fs, Logger: quietLogger(), Clean: true})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer l.Close()
		if got := l.Offsets().LogEnd; got != int64(len(fx.records)) {
			t.Fatalf("log end %d, want %d", got, len(fx.records))
		}
		got := readRecords(t, l, 0)
		if len(got) != len(fx.records) {
			t.Fatalf("read %d records, want %d", len(got), len(fx.records))
		}
		for i, r := range got {
			if r.Offset != int64(i) || string(r.Value) != string(fx.records[i].Value) {
				t.Fatalf("record %d: offset %d value %q, want %q", i, r.Offset, r.Value, fx.records[i].Value)
			}
		}
		for i, r := range fx.records {
			off, ts, ok, err := l.OffsetForTimestamp(r.Timestamp)
			if err != nil || !ok || off != int64(i) || ts != r.Timestamp {
				t.Fatalf("OffsetForTimestamp(%d) = %d@%d ok=%v err=%v, want %d", r.Timestamp, off, ts, ok, err, i)
			}
		}
		last := fx.records[len(fx.records)-1]
		if off, ts, ok, err := l.MaxTimestamp(); err != nil || !ok || off != last.Offset || ts != last.Timestamp {
			t.Fatalf("MaxTimestamp = %d@%d ok=%v err=%v, want %d@%d", off, ts, ok, err, last.Offset, last.Timestamp)
		}
	})
}

// checkIndexLookups runs the index checks on arbitrary bytes and, when they
// pass, checks lookups.
func checkIndexLookups(t *testing.T, idx, tidx []byte, logSize int64) {
	x := offsetIndex{buf: idx}
	if x.check(logSize) == nil {
		rels := []uint32{0, 1, 1 << 31, 1<<32 - 1}
		for i := range x.len() {
			rel, _ := x.entry(i)
			rels = append(rels, rel-1, rel, rel+1)
		}
		slices.Sort(rels)
		prev := int64(0)
		for _, rel := range rels {
			pos := x.lookup(rel)
			if pos != 0 && pos >= logSize {
				t.Fatalf("offset index lookup(%d) = %d, past the log's %d bytes", rel, pos, logSize)
			}
			if pos < prev {
				t.Fatalf("offset index lookup(%d) = %d, below %d for a smaller offset", rel, pos, prev)
			}
			prev = pos
		}
	}
	y := timeIndex{buf: tidx}
	if y.check() == nil {
		tss := []int64{-1 << 63, -1, 0, 1<<63 - 1}
		for i := range y.len() {
			ts, _ := y.entry(i)
			tss = append(tss, ts-1, ts, ts+1)
		}
		slices.Sort(tss)
		prev := uint32(0)
		for _, ts := range tss {
			_, rel, _ := y.lookupEntry(ts)
			if rel < prev {
				t.Fatalf("time index lookup(%d) = %d, below %d for a smaller timestamp", ts, rel, prev)
			}
			prev = rel
		}
	}
}

// FuzzOpenSegment feeds arbitrary bytes as a segment's .log, with or
// without index files (taken from the fixture, so that they may disagree
// with the log), opened cleanly or after a crash. Open must not panic, and
// afterwards every batch a read returns must validate, offsets must grow,
// the timestamp queries must not panic, and an append must read back.
func FuzzOpenSegment(f *testing.F) {
	fx := newFuzzFixture(f)
	for _, base := range fx.bases {
		data := fx.file(base, logSuffix)
		for _, clean := range []bool{true, false} {
			f.Add(data, true, clean)
			f.Add(data, false, clean)
			f.Add(data[:len(data)/2], true, clean)
		}
	}
	f.Add([]byte{}, false, false)
	f.Fuzz(func(t *testing.T, data []byte, withIndex, clean bool) {
		fs := vfs.NewCrashableMem()
		dir := "/fuzz"
		if err := fs.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		name := segmentName(0, logSuffix)
		fs.WriteFile(filepath.Join(dir, name), data)
		if withIndex {
			fs.WriteFile(filepath.Join(dir, segmentName(0, indexSuffix)), fx.file(0, indexSuffix))
			fs.WriteFile(filepath.Join(dir, segmentName(0, timeIndexSuffix)), fx.file(0, timeIndexSuffix))
		}
		fs.WriteFile(filepath.Join(dir, checkpointName), checkpoint{}.encode())
		cfg := DefaultConfig()
		cfg.IndexIntervalBytes = 0
		l, err := Open(dir, cfg, Options{FS: fs, Logger: quietLogger(), Clean: clean})
		if err != nil {
			t.Fatalf("open: %v", err) // no I/O fails on MemFS: damage alone must not stop Open
		}
		defer l.Close()
		end := l.Offsets().LogEnd
		checkReadsValidate(t, l, end)
		for _, ts := range []int64{-1, 0, recordTs(0), recordTs(10), 1 << 62} {
			if _, _, _, err := l.OffsetForTimestamp(ts); err != nil && !isCorrupt(err) && !errors.Is(err, record.ErrInvalidRecord) {
				t.Fatalf("OffsetForTimestamp(%d): %v", ts, err)
			}
		}
		if _, _, _, err := l.MaxTimestamp(); err != nil && !isCorrupt(err) && !errors.Is(err, record.ErrInvalidRecord) {
			t.Fatalf("MaxTimestamp: %v", err)
		}
		b := batch(t, record.CodecNone, kv{key: "k", value: "appended", ts: 5})
		res, err := l.Append(b)
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		if res.BaseOffset != end {
			t.Fatalf("append went to %d, want the log end %d", res.BaseOffset, end)
		}
		got, err := l.Read(nil, res.BaseOffset, 1<<20, res.LastOffset+1)
		if err != nil || len(got.Data) != len(b) {
			t.Fatalf("read back the append: %d bytes, err %v", len(got.Data), err)
		}
	})
}

// checkReadsValidate reads from the start to end, skipping past a refused
// position, and checks that every batch returned validates and that offsets
// grow.
func checkReadsValidate(t *testing.T, l *Log, end int64) {
	prevLast, refused := int64(-1), 0
	for from, steps := l.Offsets().LogStart, 0; from < end; steps++ {
		if steps > 100_000 {
			t.Fatalf("reading does not progress at %d", from)
		}
		res, err := l.Read(nil, from, 1<<16, end)
		if err != nil {
			if !isCorrupt(err) {
				t.Fatalf("read at %d: %v", from, err)
			}
			// Try the next offsets a little, then give up: the end may
			// be far past the corrupt batch.
			if refused++; refused > 64 {
				return
			}
			from++
			continue
		}
		if len(res.Data) == 0 {
			return
		}
		for b := res.Data; len(b) > 0; {
			h, err := record.ParseHeader(b)
			if err != nil || h.Size() > len(b) {
				t.Fatalf("read at %d returned a partial batch: %v", from, err)
			}
			if _, err := record.Validate(b[:h.Size()], record.ValidateOptions{AllowCompacted: true}); err != nil {
				t.Fatalf("read at %d returned a bad batch: %v", from, err)
			}
			if h.BaseOffset <= prevLast || h.LastOffset() < from || h.BaseOffset >= end {
				t.Fatalf("read at %d returned [%d,%d] after %d (end %d)", from, h.BaseOffset, h.LastOffset(), prevLast, end)
			}
			prevLast = h.LastOffset()
			b = b[h.Size():]
		}
		from = prevLast + 1
	}
}

// TestFuzzSeedCorpus checks that the committed seed corpus is there, and
// with -update-corpus writes it.
func TestFuzzSeedCorpus(t *testing.T) {
	fx := newFuzzFixture(t)
	seeds := map[string]map[string][]any{
		"FuzzIndexCheck": {
			"sealed":         {fx.file(fx.bases[0], indexSuffix), fx.file(fx.bases[0], timeIndexSuffix), false},
			"active":         {fx.file(fx.bases[1], indexSuffix), fx.file(fx.bases[1], timeIndexSuffix), true},
			"sealed-swapped": {fx.file(fx.bases[1], indexSuffix), fx.file(fx.bases[1], timeIndexSuffix), false},
			"active-swapped": {fx.file(fx.bases[0], indexSuffix), fx.file(fx.bases[0], timeIndexSuffix), true},
			"empty":          {[]byte{}, []byte{}, false},
			"odd-sizes":      {[]byte{1, 2, 3}, []byte{4, 5, 6, 7, 8}, true},
		},
		"FuzzOpenSegment": {
			"sealed-clean":          {fx.file(fx.bases[0], logSuffix), true, true},
			"sealed-crash":          {fx.file(fx.bases[0], logSuffix), true, false},
			"sealed-no-index-clean": {fx.file(fx.bases[0], logSuffix), false, true},
			"active-crash":          {fx.file(fx.bases[1], logSuffix), false, false},
			"torn-clean":            {fx.file(fx.bases[0], logSuffix)[:300], true, true},
			"torn-crash":            {fx.file(fx.bases[0], logSuffix)[:300], false, false},
			"empty":                 {[]byte{}, true, true},
		},
	}
	for target, entries := range seeds {
		for name, args := range entries {
			path := filepath.Join("testdata", "fuzz", target, "seed-"+name)
			want := encodeCorpusEntry(args...)
			if *updateCorpus {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("seed corpus: %v (run with -update-corpus)", err)
			}
			if string(got) != string(want) {
				t.Fatalf("seed corpus %s is stale (run with -update-corpus)", path)
			}
		}
	}
}

// encodeCorpusEntry writes args in the "go test fuzz v1" format.
func encodeCorpusEntry(args ...any) []byte {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(v)))
		case bool:
			fmt.Fprintf(&b, "bool(%v)\n", v)
		default:
			panic(fmt.Sprintf("corpus: unsupported type %T", a))
		}
	}
	return []byte(b.String())
}
