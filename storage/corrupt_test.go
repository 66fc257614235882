package storage

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/samsa-io/samsa/internal/vfs"
	"github.com/samsa-io/samsa/record"
)

// The corruption tests build one log of several small segments with a dense
// index, close it cleanly or crash it, damage its files through
// MemFS.WriteFile, and reopen it. Whatever the damage, Open must succeed (or
// fail with an error, never panic), and afterwards every read must return
// only valid batches holding the records that were appended at those
// offsets, or fail with an error wrapping record.ErrCorrupt. Each case also
// states what exactly must remain; see fate and the case builders.

// fate is what a case expects of one batch of the fixture after the damage.
type fate int

const (
	// kept: every read of its offsets returns it, byte for byte as
	// appended (but for the base offset and leader epoch, which the
	// broker sets).
	kept fate = iota
	// refused: every read of its offsets fails with record.ErrCorrupt.
	refused
	// cut: it lies at or past the log end.
	cut
	// refusedOrSkipped: a read of its offsets fails with record.ErrCorrupt
	// or returns a later batch (its bytes are gone from a trusted segment,
	// which cannot tell a lost tail from a compacted one).
	refusedOrSkipped
	// unknown: any outcome a reader can cope with: refused, skipped, cut,
	// or kept (with its records at offsets that may have moved).
	unknown
)

func (f fate) String() string {
	return [...]string{"kept", "refused", "cut", "refused-or-skipped", "unknown"}[f]
}

// fixtureBatch is one appended batch and where it lies on disk.
type fixtureBatch struct {
	base, last int64
	seg        int   // index of its segment
	pos        int64 // position in the segment's .log
	size       int64
	values     []string
	ts         []int64
}

// fixture is a log in a known state on a MemFS.
type fixture struct {
	fs      *vfs.MemFS
	dir     string
	cfg     Config
	clean   bool // closed cleanly (else crashed)
	bases   []int64
	sizes   []int64 // of each segment's .log
	batches []fixtureBatch
	end     int64
}

func (fx *fixture) path(seg int, suffix string) string {
	return filepath.Join(fx.dir, segmentName(fx.bases[seg], suffix))
}

func (fx *fixture) active() int { return len(fx.bases) - 1 }

// segBatches returns the indexes of the batches of segment seg.
func (fx *fixture) segBatches(seg int) []int {
	var out []int
	for i, b := range fx.batches {
		if b.seg == seg {
			out = append(out, i)
		}
	}
	return out
}

func corruptConfig() Config {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 1500
	cfg.IndexIntervalBytes = 0 // an index entry for every batch
	return cfg
}

// recordTs is the timestamp of the record at offset off: increasing, so
// that OffsetForTimestamp has one answer.
func recordTs(off int64) int64 { return 1_000 + 10*off }

// buildFixture appends 30 batches (every fifth compressed) to a log with
// small segments and closes it cleanly, or abandons it as a power loss
// would.
func buildFixture(t testing.TB, clean bool) *fixture {
	t.Helper()
	fx := &fixture{fs: vfs.NewCrashableMem(), dir: "/data/corrupt-0", cfg: corruptConfig(), clean: clean}
	l, err := Open(fx.dir, fx.cfg, Options{FS: fx.fs, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		n := 1 + i%4
		recs := make([]kv, n)
		fb := fixtureBatch{base: fx.end, last: fx.end + int64(n) - 1}
		for j := range recs {
			off := fx.end + int64(j)
			recs[j] = kv{key: fmt.Sprint(j), value: fmt.Sprintf("batch-%02d-record-%d-%s", i, j, pad(20)), ts: recordTs(off)}
			fb.values = append(fb.values, recs[j].value)
			fb.ts = append(fb.ts, recs[j].ts)
		}
		codec := record.CodecNone
		if i%5 == 4 {
			codec = record.CodecZstd
		}
		mustAppend(t, l, batch(t, codec, recs...))
		fx.batches = append(fx.batches, fb)
		fx.end = fb.last + 1
	}
	if clean {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	} else {
		// Sealed segments are below the recovery point once the background
		// sealer is done with them: the cases rely on it.
		waitSealed(l)
		fx.fs = fx.fs.CrashClone(vfs.CrashOptions{})
	}
	// Find where each batch went.
	names, err := fx.fs.List(fx.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if base, ok := parseSegmentName(name, logSuffix); ok {
			fx.bases = append(fx.bases, base)
		}
	}
	if len(fx.bases) < 4 {
		t.Fatalf("fixture has %d segments, want at least 4", len(fx.bases))
	}
	next := 0
	for seg := range fx.bases {
		data, err := fx.fs.ReadFile(fx.path(seg, logSuffix))
		if err != nil {
			t.Fatal(err)
		}
		fx.sizes = append(fx.sizes, int64(len(data)))
		for pos := 0; pos < len(data); {
			h, err := record.ParseHeader(data[pos:])
			if err != nil {
				t.Fatalf("fixture segment %d at %d: %v", seg, pos, err)
			}
			b := &fx.batches[next]
			if h.BaseOffset != b.base {
				t.Fatalf("fixture batch %d has base %d, want %d", next, h.BaseOffset, b.base)
			}
			b.seg, b.pos, b.size = seg, int64(pos), int64(h.Size())
			pos += h.Size()
			next++
		}
	}
	if next != len(fx.batches) {
		t.Fatalf("found %d batches on disk, appended %d", next, len(fx.batches))
	}
	return fx
}

// corruptCase is one kind of damage and what must remain after it.
type corruptCase struct {
	name   string
	damage func(t testing.TB, fs *vfs.MemFS)
	// end is the log end the reopened log must have, or -1 when it cannot
	// be known (a base offset, which no CRC covers, was changed).
	end   int64
	fates []fate // one per fixture batch
	// unanchored are the values of a batch whose base offset was changed:
	// they may turn up at other offsets.
	unanchored []string
}

func allFates(fx *fixture, f fate) []fate {
	fates := make([]fate, len(fx.batches))
	for i := range fates {
		fates[i] = f
	}
	return fates
}

func flipAt(path string, pos int64, mask byte) func(testing.TB, *vfs.MemFS) {
	return func(t testing.TB, fs *vfs.MemFS) {
		data, err := fs.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		data[pos] ^= mask
		if err := fs.WriteFile(path, data); err != nil {
			t.Fatal(err)
		}
	}
}

func cutAt(path string, n int64) func(testing.TB, *vfs.MemFS) {
	return func(t testing.TB, fs *vfs.MemFS) {
		data, err := fs.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := fs.WriteFile(path, data[:n]); err != nil {
			t.Fatal(err)
		}
	}
}

// removeFiles removes the files that exist of paths (the active segment's
// index files exist only once written: at close, not before a crash).
func removeFiles(paths ...string) func(testing.TB, *vfs.MemFS) {
	return func(t testing.TB, fs *vfs.MemFS) {
		for _, p := range paths {
			if err := fs.Remove(p); err != nil && !errors.Is(err, notExist) {
				t.Fatal(err)
			}
		}
		if err := fs.SyncDir(filepath.Dir(paths[0])); err != nil {
			t.Fatal(err)
		}
	}
}

// badBatchCase states what must remain after batch k was made invalid (its
// CRC, or its framing, no longer checks):
//   - in the active segment after a crash, recovery validates every batch:
//     it cuts the log at k, whose base offset becomes the log end;
//   - in the active segment after a clean close, only the batches after the
//     last index entry are validated (the last one, with a dense index): a
//     bad last batch is cut likewise, a bad one before it is left in place;
//   - in a sealed segment, below the recovery point, nothing is rescanned:
//     reads of k fail with ErrCorrupt, and the batches before and after it
//     (the index reaches each of them) stay readable.
func badBatchCase(fx *fixture, k int, name string, damage func(testing.TB, *vfs.MemFS)) corruptCase {
	c := corruptCase{name: name, damage: damage, end: fx.end, fates: allFates(fx, kept)}
	b := fx.batches[k]
	lastOfSeg := k == len(fx.batches)-1 || fx.batches[k+1].seg != b.seg
	if b.seg == fx.active() && (!fx.clean || lastOfSeg) {
		c.end = b.base
		for i := k; i < len(fx.batches); i++ {
			c.fates[i] = cut
		}
		return c
	}
	c.fates[k] = refused
	return c
}

// logFlipCase classifies a flipped byte of a segment's .log by the header
// field it hits.
func logFlipCase(fx *fixture, seg int, pos int64, mask byte) corruptCase {
	k := -1
	for _, i := range fx.segBatches(seg) {
		if b := fx.batches[i]; pos >= b.pos && pos < b.pos+b.size {
			k = i
		}
	}
	b := fx.batches[k]
	at := pos - b.pos
	name := fmt.Sprintf("seg%d/log/flip@%d(batch%d+%d)^%#x", seg, pos, k, at, mask)
	damage := flipAt(fx.path(seg, logSuffix), pos, mask)
	switch {
	case at < 8:
		// The base offset lies outside the CRC: the batch may be taken for
		// one at other offsets (as a compacted log may have gaps), refused,
		// or cut; the batches before it stay.
		c := corruptCase{name: name + "/base-offset", damage: damage, end: -1, fates: allFates(fx, kept), unanchored: b.values}
		for i := k; i < len(fx.batches); i++ {
			c.fates[i] = unknown
		}
		return c
	case at >= 12 && at < 16:
		// The partition leader epoch lies outside the CRC too, and nothing
		// checks it: the batch is served with the changed epoch.
		return corruptCase{name: name + "/leader-epoch", damage: damage, end: fx.end, fates: allFates(fx, kept)}
	default:
		// Length, magic, CRC, and everything the CRC covers.
		return badBatchCase(fx, k, name, damage)
	}
}

// logCutCase states what must remain after a segment's .log is cut to n
// bytes:
//   - the active segment (after a crash or a clean close) ends at the last
//     whole batch; the log end is the base offset of the first batch cut;
//   - a sealed segment is trusted: the batches wholly below n stay, the one
//     n tears is refused, and those after it are refused or skipped; the
//     log end and the later segments do not change.
func logCutCase(fx *fixture, seg int, n int64) corruptCase {
	c := corruptCase{name: fmt.Sprintf("seg%d/log/cut@%d", seg, n), damage: cutAt(fx.path(seg, logSuffix), n), end: fx.end, fates: allFates(fx, kept)}
	for _, i := range fx.segBatches(seg) {
		b := fx.batches[i]
		switch {
		case b.pos+b.size <= n:
		case seg == fx.active():
			if c.end == fx.end {
				c.end = b.base
			}
			c.fates[i] = cut
		case b.pos < n:
			c.fates[i] = refused
		default:
			c.fates[i] = refusedOrSkipped
		}
	}
	return c
}

// intactCase is for damage that loses no data: a damaged or missing index
// or checkpoint is detected and rebuilt (or, for the checkpoint, every
// segment is recovered), and every record stays readable.
func intactCase(fx *fixture, name string, damage func(testing.TB, *vfs.MemFS)) corruptCase {
	return corruptCase{name: name, damage: damage, end: fx.end, fates: allFates(fx, kept)}
}

// cutLengths returns the lengths to cut a file of size bytes to: 0, a few
// bytes, mid-header, every batch boundary and a little past it, and one
// short of the end.
func cutLengths(fx *fixture, seg int) []int64 {
	ns := []int64{0, 1, 8, 12, 30, record.HeaderSize - 1, record.HeaderSize}
	for _, i := range fx.segBatches(seg) {
		b := fx.batches[i]
		ns = append(ns, b.pos, b.pos+1, b.pos+record.HeaderSize/2, b.pos+record.HeaderSize, b.pos+b.size-1)
	}
	var out []int64
	seen := map[int64]bool{}
	for _, n := range ns {
		if n < fx.sizes[seg] && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// headerPositions are the offsets within a batch of a byte of each header
// field (both ends of the wide ones), and of its records.
var headerPositions = []int64{
	0, 7, // base offset
	8, 11, // length
	12, 15, // partition leader epoch
	16,     // magic
	17, 20, // crc
	21, 22, // attributes
	23, 26, // last offset delta
	27, 34, // base timestamp
	35, 42, // max timestamp
	43, 50, // producer id
	51, 53, 57, 60, // producer epoch, base sequence, record count
	61, 70, // records
}

// corruptCases builds the table for a fixture: for the first, a middle and
// the active segment, flipped bytes in the first, a middle and the last
// batch, cuts at many lengths, and damage to every index file and to the
// checkpoint.
func corruptCases(fx *fixture) []corruptCase {
	var cases []corruptCase
	segs := []int{0, len(fx.bases) / 2, fx.active()}
	for _, seg := range segs {
		bs := fx.segBatches(seg)
		for _, k := range []int{bs[0], bs[len(bs)/2], bs[len(bs)-1]} {
			b := fx.batches[k]
			for _, at := range append(headerPositions, b.size-1) {
				for _, mask := range []byte{0x01, 0xff} {
					cases = append(cases, logFlipCase(fx, seg, b.pos+at, mask))
				}
			}
		}
		for _, n := range cutLengths(fx, seg) {
			cases = append(cases, logCutCase(fx, seg, n))
		}
		for _, suffix := range []string{indexSuffix, timeIndexSuffix} {
			p := fx.path(seg, suffix)
			data, _ := fx.fs.ReadFile(p)
			for pos := range int64(len(data)) {
				for _, mask := range []byte{0x01, 0x80, 0xff} {
					cases = append(cases, intactCase(fx, fmt.Sprintf("seg%d/%s/flip@%d^%#x", seg, suffix, pos, mask), flipAt(p, pos, mask)))
				}
			}
			for n := range int64(len(data)) {
				cases = append(cases, intactCase(fx, fmt.Sprintf("seg%d/%s/cut@%d", seg, suffix, n), cutAt(p, n)))
			}
			if _, err := fx.fs.Stat(p); err == nil {
				cases = append(cases, intactCase(fx, fmt.Sprintf("seg%d/%s/deleted", seg, suffix), removeFiles(p)))
			}
		}
		cases = append(cases, intactCase(fx, fmt.Sprintf("seg%d/both-indexes-deleted", seg),
			removeFiles(fx.path(seg, indexSuffix), fx.path(seg, timeIndexSuffix))))
	}
	cp := filepath.Join(fx.dir, checkpointName)
	data, _ := fx.fs.ReadFile(cp)
	for pos := range int64(len(data)) {
		cases = append(cases, intactCase(fx, fmt.Sprintf("checkpoint/flip@%d", pos), flipAt(cp, pos, 0x01)))
	}
	for n := range int64(len(data)) {
		cases = append(cases, intactCase(fx, fmt.Sprintf("checkpoint/cut@%d", n), cutAt(cp, n)))
	}
	cases = append(cases, intactCase(fx, "checkpoint/deleted", removeFiles(cp)))
	var all []string
	for seg := range fx.bases {
		all = append(all, fx.path(seg, indexSuffix), fx.path(seg, timeIndexSuffix))
	}
	cases = append(cases, intactCase(fx, "every-index-deleted", removeFiles(all...)))
	cases = append(cases, intactCase(fx, "every-index-and-checkpoint-deleted", removeFiles(append(all, cp)...)))
	return cases
}

func TestCorruptionIsDetectedAndContained(t *testing.T) {
	for _, clean := range []bool{true, false} {
		fx := buildFixture(t, clean)
		mode := map[bool]string{true: "clean", false: "crash"}[clean]
		for _, c := range corruptCases(fx) {
			t.Run(mode+"/"+c.name, func(t *testing.T) { runCorruptCase(t, fx, c) })
		}
	}
}

// TestCorruptionSweepEveryLogByte flips every byte of a sealed and of the
// active segment, one at a time, and checks each outcome as
// TestCorruptionIsDetectedAndContained does.
func TestCorruptionSweepEveryLogByte(t *testing.T) {
	step := int64(1)
	if testing.Short() {
		step = 7
	}
	for _, clean := range []bool{true, false} {
		fx := buildFixture(t, clean)
		mode := map[bool]string{true: "clean", false: "crash"}[clean]
		for _, seg := range []int{1, fx.active()} {
			for pos := int64(0); pos < fx.sizes[seg]; pos += step {
				c := logFlipCase(fx, seg, pos, 0xff)
				t.Run(mode+"/"+c.name, func(t *testing.T) { runCorruptCase(t, fx, c) })
			}
		}
	}
}

// runCorruptCase damages a copy of the fixture, reopens it in the fixture's
// mode, and checks what remains: offsets, reads of every batch, a read of
// the whole log, OffsetForTimestamp, MaxTimestamp, and an append read back;
// then reopens it once more, cleanly, and checks that the append stayed.
func runCorruptCase(t *testing.T, fx *fixture, c corruptCase) {
	fs := fx.fs.CrashClone(vfs.CrashOptions{})
	c.damage(t, fs)
	opts := Options{FS: fs, Logger: corruptLogger(t), Clean: fx.clean}
	l, err := Open(fx.dir, fx.cfg, opts)
	if err != nil {
		t.Fatalf("open after damage: %v", err)
	}
	v := &corruptVerifier{t: t, fx: fx, c: c, l: l}
	v.checkOffsets()
	v.checkEachBatch()
	v.checkWholeLog()
	v.checkTimestamps()
	end, want := v.checkAppend()
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	opts.Clean = true
	if l, err = Open(fx.dir, fx.cfg, opts); err != nil {
		t.Fatalf("clean reopen: %v", err)
	}
	defer l.Close()
	if got := l.Offsets().LogEnd; got != end {
		t.Fatalf("clean reopen: log end %d, want %d", got, end)
	}
	res, err := l.Read(nil, end-1, 1, end)
	if err != nil || !bytes.Equal(res.Data, want) {
		t.Fatalf("clean reopen: read of the appended batch: %d bytes, err %v", len(res.Data), err)
	}
}

type corruptVerifier struct {
	t  *testing.T
	fx *fixture
	c  corruptCase
	l  *Log
}

// batchAt returns the fixture batch holding offset off, or -1.
func (v *corruptVerifier) batchAt(off int64) int {
	for i, b := range v.fx.batches {
		if off >= b.base && off <= b.last {
			return i
		}
	}
	return -1
}

func (v *corruptVerifier) checkOffsets() {
	v.t.Helper()
	off := v.l.Offsets()
	if off.LogStart != 0 {
		v.t.Fatalf("log start %d, want 0", off.LogStart)
	}
	if v.c.end >= 0 && off.LogEnd != v.c.end {
		v.t.Fatalf("log end %d, want %d", off.LogEnd, v.c.end)
	}
	for i, f := range v.c.fates {
		b := v.fx.batches[i]
		if f == cut && off.LogEnd > b.base {
			v.t.Fatalf("batch %d [%d,%d] must be cut, but the log ends at %d", i, b.base, b.last, off.LogEnd)
		}
		if f == kept && off.LogEnd <= b.last {
			v.t.Fatalf("batch %d [%d,%d] must be kept, but the log ends at %d", i, b.base, b.last, off.LogEnd)
		}
	}
}

// checkBatches checks data returned by a read at offset from: whole valid
// batches, in offset order, the first holding or following from, none at or
// past upTo, every record the one appended at its offset (or one whose base
// offset was changed). It returns the batch headers.
func (v *corruptVerifier) checkBatches(data []byte, from, upTo int64) []record.Header {
	v.t.Helper()
	var hs []record.Header
	prevLast := from - 1
	for len(data) > 0 {
		h, err := record.ParseHeader(data)
		if err != nil || h.Size() > len(data) {
			v.t.Fatalf("read at %d returned a partial batch (%d bytes left): %v", from, len(data), err)
		}
		if _, err := record.Validate(data[:h.Size()], record.ValidateOptions{VerifyRecords: true}); err != nil {
			v.t.Fatalf("read at %d returned a corrupt batch at %d: %v", from, h.BaseOffset, err)
		}
		if h.LastOffset() <= prevLast && len(hs) == 0 {
			v.t.Fatalf("read at %d returned a batch [%d,%d] before it", from, h.BaseOffset, h.LastOffset())
		}
		if len(hs) > 0 && h.BaseOffset <= prevLast {
			v.t.Fatalf("read at %d returned batch [%d,%d] after one ending at %d", from, h.BaseOffset, h.LastOffset(), prevLast)
		}
		if h.BaseOffset >= upTo {
			v.t.Fatalf("read at %d up to %d returned a batch at %d", from, upTo, h.BaseOffset)
		}
		recs, err := record.Records(data[:h.Size()])
		if err != nil {
			v.t.Fatal(err)
		}
		for _, r := range recs {
			if slices.Contains(v.c.unanchored, string(r.Value)) {
				continue
			}
			i := v.batchAt(r.Offset)
			if i < 0 {
				v.t.Fatalf("read at %d returned offset %d, never appended, value %q", from, r.Offset, r.Value)
			}
			b := v.fx.batches[i]
			if want := b.values[r.Offset-b.base]; string(r.Value) != want {
				v.t.Fatalf("read at %d returned %q at offset %d, want %q", from, r.Value, r.Offset, want)
			}
			if want := b.ts[r.Offset-b.base]; r.Timestamp != want {
				v.t.Fatalf("read at %d returned timestamp %d at offset %d, want %d", from, r.Timestamp, r.Offset, want)
			}
		}
		hs = append(hs, h)
		prevLast = h.LastOffset()
		data = data[h.Size():]
	}
	return hs
}

// read reads with Read and with ReadSection (then the section's bytes),
// which must agree: same batches, or both a corruption error. ReadSection
// goes first, so that a batch it has not checked yet is checked by it.
func (v *corruptVerifier) read(off int64, maxBytes int, upTo int64) (ReadResult, error) {
	v.t.Helper()
	sec, offs, serr := v.l.ReadSection(off, maxBytes, upTo, nil)
	var data []byte
	if serr == nil {
		data, serr = sec.AppendTo(nil)
		sec.Release()
	}
	res, err := v.l.Read(nil, off, maxBytes, upTo)
	if (err == nil) != (serr == nil) || isCorrupt(err) != isCorrupt(serr) || !bytes.Equal(res.Data, data) || offs != res.Offsets {
		v.t.Fatalf("read at %d: Read gives %d bytes, err %v; ReadSection %d bytes, err %v", off, len(res.Data), err, len(data), serr)
	}
	return res, err
}

func isCorrupt(err error) bool { return errors.Is(err, record.ErrCorrupt) }

// checkEachBatch reads at the first and last offset of every batch below
// the log end, one batch at a time, and compares with its fate.
func (v *corruptVerifier) checkEachBatch() {
	v.t.Helper()
	end := v.l.Offsets().LogEnd
	for i, b := range v.fx.batches {
		for _, off := range []int64{b.base, b.last} {
			if off >= end {
				continue
			}
			res, err := v.read(off, 1, end)
			if err != nil {
				if !isCorrupt(err) {
					v.t.Fatalf("read at %d (batch %d, %s): %v, want nil or a corruption error", off, i, v.c.fates[i], err)
				}
				if f := v.c.fates[i]; f == kept {
					v.t.Fatalf("read at %d (batch %d, must be kept): %v", off, i, err)
				}
				continue
			}
			hs := v.checkBatches(res.Data, off, end)
			switch f := v.c.fates[i]; {
			case len(hs) == 0 && f != unknown:
				v.t.Fatalf("read at %d (batch %d, %s) returned nothing before the end %d", off, i, f, end)
			case f == kept && (hs[0].BaseOffset != b.base || hs[0].LastOffset() != b.last):
				v.t.Fatalf("read at %d (batch %d, kept) returned [%d,%d], want [%d,%d]",
					off, i, hs[0].BaseOffset, hs[0].LastOffset(), b.base, b.last)
			case f == refused:
				v.t.Fatalf("read at %d (batch %d, refused) returned [%d,%d]", off, i, hs[0].BaseOffset, hs[0].LastOffset())
			case f == refusedOrSkipped && hs[0].BaseOffset <= b.last:
				v.t.Fatalf("read at %d (batch %d, %s) returned [%d,%d]", off, i, f, hs[0].BaseOffset, hs[0].LastOffset())
			}
		}
	}
}

// checkWholeLog reads from the start to the end in large reads, skipping
// past a refused batch to the next one, and checks that every kept batch
// was read.
func (v *corruptVerifier) checkWholeLog() {
	v.t.Helper()
	end := v.l.Offsets().LogEnd
	read := map[int64]bool{}
	from := int64(0)
	for steps := 0; from < end; steps++ {
		if steps > 10_000 {
			v.t.Fatalf("whole-log read does not progress at %d", from)
		}
		res, err := v.read(from, 4096, end)
		if err != nil {
			if !isCorrupt(err) {
				v.t.Fatalf("read at %d: %v", from, err)
			}
			// Go on after the batch that holds from, or the next one.
			next := int64(-1)
			for _, b := range v.fx.batches {
				if b.base > from {
					next = b.base
					break
				}
			}
			if next < 0 {
				break
			}
			from = next
			continue
		}
		hs := v.checkBatches(res.Data, from, end)
		if len(hs) == 0 {
			break
		}
		for _, h := range hs {
			for o := h.BaseOffset; o <= h.LastOffset(); o++ {
				read[o] = true
			}
		}
		from = hs[len(hs)-1].LastOffset() + 1
	}
	for i, b := range v.fx.batches {
		if v.c.fates[i] == kept && !read[b.base] {
			v.t.Fatalf("whole-log read missed batch %d [%d,%d]", i, b.base, b.last)
		}
	}
}

// checkTimestamps asks OffsetForTimestamp for each record's timestamp and
// one below it, and MaxTimestamp. When every batch is kept the answers must
// be exact; otherwise an answer must name a record that holds that
// timestamp, or be a corruption error.
func (v *corruptVerifier) checkTimestamps() {
	v.t.Helper()
	end := v.l.Offsets().LogEnd
	exact := v.c.unanchored == nil
	for i, f := range v.c.fates {
		if f != kept && !(f == cut && v.fx.batches[i].base >= end) {
			exact = false
		}
	}
	// want returns the first kept record at or after ts.
	want := func(ts int64) (int64, int64, bool) {
		for _, b := range v.fx.batches {
			for j, rts := range b.ts {
				if off := b.base + int64(j); off < end && rts >= ts {
					return off, rts, true
				}
			}
		}
		return 0, 0, false
	}
	check := func(what string, off, ts int64, ok bool, err error, wantOff, wantTs int64, wantOk bool, minTs int64) {
		v.t.Helper()
		switch {
		case err != nil:
			if exact || !isCorrupt(err) {
				v.t.Fatalf("%s: %v", what, err)
			}
		case exact && (ok != wantOk || off != wantOff || ts != wantTs):
			v.t.Fatalf("%s = %d@%d ok=%v, want %d@%d ok=%v", what, off, ts, ok, wantOff, wantTs, wantOk)
		case ok && ts < minTs, ok && off >= end && v.c.unanchored == nil:
			// With a base offset changed, OffsetForTimestamp may still name
			// an offset past the end: its scan (timestamp.go) does not
			// bound batch offsets by the segment's, as Read does.
			v.t.Fatalf("%s = %d@%d: outside the log (end %d) or too old", what, off, ts, end)
		case ok && v.c.unanchored == nil && recordTs(off) != ts:
			v.t.Fatalf("%s = %d@%d: that offset's timestamp is %d", what, off, ts, recordTs(off))
		}
	}
	for _, b := range v.fx.batches {
		for _, ts := range []int64{b.ts[0] - 1, b.ts[0], b.ts[len(b.ts)-1]} {
			off, gotTs, ok, err := v.l.OffsetForTimestamp(ts)
			wOff, wTs, wOk := want(ts)
			check(fmt.Sprintf("OffsetForTimestamp(%d)", ts), off, gotTs, ok, err, wOff, wTs, wOk, ts)
		}
	}
	off, ts, ok, err := v.l.OffsetForTimestamp(recordTs(v.fx.end))
	check("OffsetForTimestamp(past the end)", off, ts, ok, err, 0, 0, false, recordTs(v.fx.end))

	wOff, wTs, wOk := int64(0), int64(0), false
	if end > 0 {
		wOff, wTs, wOk = end-1, recordTs(end-1), true
	}
	off, ts, ok, err = v.l.MaxTimestamp()
	check("MaxTimestamp", off, ts, ok, err, wOff, wTs, wOk, 0)
}

// checkAppend appends a batch and reads it back. It returns the new log end
// and the batch as stored.
func (v *corruptVerifier) checkAppend() (int64, []byte) {
	v.t.Helper()
	end := v.l.Offsets().LogEnd
	b := batch(v.t, record.CodecNone, kv{key: "k", value: "after-the-damage", ts: recordTs(v.fx.end + 100)})
	res, err := v.l.Append(b)
	if err != nil {
		v.t.Fatalf("append: %v", err)
	}
	if err := v.l.WaitDurable(res.LastOffset + 1); err != nil {
		v.t.Fatalf("wait durable: %v", err)
	}
	if res.BaseOffset != end {
		v.t.Fatalf("append went to %d, want the log end %d", res.BaseOffset, end)
	}
	got, err := v.read(res.BaseOffset, 1<<20, res.LastOffset+1)
	if err != nil || !bytes.Equal(got.Data, b) {
		v.t.Fatalf("read back the append: %d bytes, err %v", len(got.Data), err)
	}
	return res.LastOffset + 1, b
}

func corruptLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, nil))
	}
	return quietLogger()
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
