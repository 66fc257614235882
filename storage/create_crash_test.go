package storage

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/samsa-io/samsa/internal/vfs"
	"github.com/samsa-io/samsa/record"
)

// A new log is created with three files: its segment's .log, its
// checkpoint and the broker's partition.metadata. The segment's index files
// come when first written (seal, close), and the checkpoint is written in
// place, with no temporary file and rename.
func TestCreateAllMakesThreeFilesPerLog(t *testing.T) {
	for _, syncfs := range []bool{true, false} {
		t.Run(fmt.Sprintf("syncfs=%v", syncfs), func(t *testing.T) {
			fs := &crashPoints{MemFS: vfs.NewCrashableMem()}
			s := openStoreBig(t, withSyncFS(fs, syncfs), newClock())
			defer s.Close()
			news := manyPartitions(10)
			fs.counting.Store(true)
			if _, err := s.CreateAll(news); err != nil {
				t.Fatal(err)
			}
			fs.counting.Store(false)
			if c, r := fs.creates.Load(), fs.renames.Load(); c != 3*int64(len(news)) || r != 0 {
				t.Errorf("CreateAll of %d logs created %d files and renamed %d, want %d and 0", len(news), c, r, 3*len(news))
			}
			want := []string{segmentName(0, logSuffix), checkpointName, "partition.metadata"}
			slices.Sort(want)
			for _, n := range news {
				names, err := fs.List(filepath.Join("/data", n.Partition.String()))
				if err != nil || !slices.Equal(names, want) {
					t.Fatalf("%s holds %v (%v), want %v", n.Partition, names, err, want)
				}
			}
		})
	}
}

// TestCreateAllSurvivesPowerLossAtEveryStep crashes a store at every
// filesystem operation from CreateAll on (keeping exactly what was synced,
// and, separately, a random part of what was not), through the first
// appends and syncs, the first rolls and their sealing, a DeleteRecords, a
// clean close and a clean reopen. After each crash the store must open,
// hold every partition CreateAll had returned with its partition.metadata,
// every record reported durable and no record never written, keep the log
// start DeleteRecords had moved, take appends, and never find a sealed
// segment's index missing or torn (it would have to rebuild it).
func TestCreateAllSurvivesPowerLossAtEveryStep(t *testing.T) {
	for _, syncfs := range []bool{true, false} {
		t.Run(fmt.Sprintf("syncfs=%v", syncfs), func(t *testing.T) {
			runCreateCrashScenario(t, syncfs)
		})
	}
}

const crashScenarioLogs = 4

// crashScenarioConfig has 4 KiB segments and an index entry every 256
// bytes.
func crashScenarioConfig() Config { return smallConfig() }

// scenarioValue is the value of the record at offset off of log p: about
// 900 bytes, so that a 4 KiB segment rolls every few batches.
func scenarioValue(p int, off int64) string {
	return fmt.Sprintf("p%d-o%d-%s", p, off, pad(900))
}

func scenarioBatch(t testing.TB, p int, off int64) []byte {
	return batch(t, record.CodecNone, kv{value: scenarioValue(p, off), ts: 1_000 + off})
}

func runCreateCrashScenario(t *testing.T, syncfs bool) {
	fs := &crashPoints{MemFS: vfs.NewCrashableMem()}
	sfs := withSyncFS(fs, syncfs)
	c := newClock()
	open := func(fs vfs.FS, logger *slog.Logger) (*Store, error) {
		return OpenStore("/data", StoreOptions{
			FS: fs, Logger: logger, Now: c.Now,
			ConfigFor:         func(string) Config { return crashScenarioConfig() },
			RetentionInterval: -1, CleanerInterval: -1,
		})
	}
	news := manyPartitions(crashScenarioLogs)
	for i := range news {
		news[i].Config = crashScenarioConfig()
	}
	promise := func(p crashPromise) { fs.promise.Store(&p) }
	promise(crashPromise{})

	s, err := open(sfs, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	fs.recording.Store(true)
	logs, err := s.CreateAll(news)
	if err != nil {
		t.Fatal(err)
	}
	p := crashPromise{created: true}
	promise(p)
	appendAll := func(logs []*Log) {
		t.Helper()
		ends := make([]int64, len(logs))
		for i, l := range logs {
			res, err := l.Append(scenarioBatch(t, i, p.durable))
			if err != nil {
				t.Fatal(err)
			}
			ends[i] = res.LastOffset + 1
		}
		if err := WaitDurableAll(logs, ends); err != nil {
			t.Fatal(err)
		}
		p.durable++
		promise(p)
	}
	// The first append and sync, then enough to roll each log twice.
	for range 10 {
		appendAll(logs)
	}
	for _, l := range logs {
		waitSealed(l)
		if n := len(l.segs); n < 3 {
			t.Fatalf("%s has %d segments, want the scenario to roll it at least twice", l.Dir(), n)
		}
	}
	for _, l := range logs {
		if err := l.SetLogStartOffset(2); err != nil {
			t.Fatal(err)
		}
	}
	p.logStart = 2
	promise(p)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = open(sfs, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	if !s.WasCleanShutdown() {
		t.Fatal("the clean shutdown was not recorded")
	}
	logs = logs[:0]
	for _, n := range news {
		l, _ := s.Log(n.Partition)
		logs = append(logs, l)
	}
	appendAll(logs)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fs.recording.Store(false)

	points := fs.points
	t.Logf("%d crash points", len(points))
	if len(points) < 100 {
		t.Fatalf("only %d crash points: the scenario did not run as meant", len(points))
	}
	for _, cp := range points {
		rec := &recordingHandler{}
		s, err := open(withSyncFS(cp.fs, syncfs), slog.New(rec))
		if err != nil {
			t.Fatalf("after %s: open: %v", cp.op, err)
		}
		if err := checkCreateCrash(t, s, cp.fs, news, cp.promise, p.durable); err != nil {
			s.Close()
			t.Fatalf("after %s (promised %+v): %v", cp.op, cp.promise, err)
		}
		if msg := rec.find("rebuilding index"); msg != "" {
			s.Close()
			t.Fatalf("after %s: a trusted index was missing or torn: %s", cp.op, msg)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("after %s: close: %v", cp.op, err)
		}
	}
}

// checkCreateCrash checks a store opened after a crash against what was
// promised, appended (records per log) at most, and that each log takes an
// append.
func checkCreateCrash(t *testing.T, s *Store, fs *vfs.MemFS, news []NewLog, p crashPromise, appended int64) error {
	for i, n := range news {
		l, ok := s.Log(n.Partition)
		if !ok {
			if p.created {
				return fmt.Errorf("%s lost", n.Partition)
			}
			continue
		}
		if p.created {
			b, err := fs.ReadFile(filepath.Join(l.Dir(), "partition.metadata"))
			if want := n.Files["partition.metadata"]; err != nil || string(b) != string(want) {
				return fmt.Errorf("%s: partition.metadata %q, %v; want %q", n.Partition, b, err, want)
			}
		}
		off := l.Offsets()
		if off.LogStart < p.logStart || off.LogStart > off.LogEnd {
			return fmt.Errorf("%s: log start %d, want at least %d (and at most the end %d)", n.Partition, off.LogStart, p.logStart, off.LogEnd)
		}
		if off.LogEnd < p.durable || off.LogEnd > appended {
			return fmt.Errorf("%s: log end %d, want between the durable %d and the appended %d", n.Partition, off.LogEnd, p.durable, appended)
		}
		recs := readRecords(t, l, off.LogStart)
		if int64(len(recs)) != off.LogEnd-off.LogStart {
			return fmt.Errorf("%s: read %d records from %d, want up to the end %d", n.Partition, len(recs), off.LogStart, off.LogEnd)
		}
		for j, r := range recs {
			want := off.LogStart + int64(j)
			if r.Offset != want || string(r.Value) != scenarioValue(i, want) {
				return fmt.Errorf("%s: record %d at offset %d holds %.20q, want offset %d", n.Partition, j, r.Offset, r.Value, want)
			}
		}
		res, err := l.Append(scenarioBatch(t, i, off.LogEnd))
		if err == nil {
			err = l.WaitDurable(res.LastOffset + 1)
		}
		if err != nil {
			return fmt.Errorf("%s: append after the crash: %w", n.Partition, err)
		}
		if recs := readRecords(t, l, off.LogEnd); len(recs) != 1 || string(recs[0].Value) != scenarioValue(i, off.LogEnd) {
			return fmt.Errorf("%s: the append after the crash reads back as %d records", n.Partition, len(recs))
		}
	}
	return nil
}

// The active segment's index files are written first at seal or close, so
// a clean open may find them missing: it reads them as empty, rebuilds
// nothing, and indexes the segment from its batches.
func TestActiveSegmentWithoutIndexFilesOpensAsEmpty(t *testing.T) {
	e := newEnv(t)
	cfg := smallConfig()
	l := e.open(cfg, false)
	for i := range 5 {
		mustAppend(t, l, valueBatch(t, 20, int64(100+i), "r"))
	}
	if len(l.segs) != 1 {
		t.Fatalf("%d segments, want 1", len(l.segs))
	}
	if _, err := e.fs.Stat(l.segs[0].path(indexSuffix)); err == nil {
		t.Fatal("the active segment's offset index file exists before the first close")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	idx, err := e.fs.ReadFile(filepath.Join(e.dir, segmentName(0, indexSuffix)))
	if err != nil || len(idx) == 0 {
		t.Fatalf("close left an offset index of %d bytes (%v), want entries", len(idx), err)
	}
	tidx, _ := e.fs.ReadFile(filepath.Join(e.dir, segmentName(0, timeIndexSuffix)))
	for _, suffix := range []string{indexSuffix, timeIndexSuffix} {
		if err := e.fs.Remove(filepath.Join(e.dir, segmentName(0, suffix))); err != nil {
			t.Fatal(err)
		}
	}
	rec := &recordingHandler{}
	l, err = Open(e.dir, cfg, Options{FS: e.fs, Logger: slog.New(rec), Now: e.clock.Now, Clean: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if msg := rec.find("rebuilding index"); msg != "" {
		t.Errorf("a missing index of the active segment was rebuilt: %s", msg)
	}
	s := l.segs[0]
	if string(s.idx.buf) != string(idx) || string(s.tidx.buf) != string(tidx) {
		t.Errorf("indexes after the open: %d and %d bytes, want the %d and %d the appends made", len(s.idx.buf), len(s.tidx.buf), len(idx), len(tidx))
	}
	if n := len(readRecords(t, l, 0)); n != 100 {
		t.Fatalf("read %d records, want 100", n)
	}
	if off, ts, ok, err := l.MaxTimestamp(); err != nil || !ok || ts != 104 || off != 80 {
		t.Fatalf("max timestamp %d at %d (%v, %v), want 104 at 80", ts, off, ok, err)
	}
}

// A sealed segment always has both index files, so a missing one was lost:
// a clean open rebuilds both from the log, rather than take it for empty.
// A missing time index next to offset index entries in the active segment
// is lost too, and rebuilt.
func TestMissingIndexOfSealedSegmentIsRebuilt(t *testing.T) {
	const perBatch, batches = 20, 60
	for _, c := range []struct {
		name   string
		seg    func(l *Log) int // which segment loses the file
		suffix string
	}{
		{"sealed/.index", func(*Log) int { return 0 }, indexSuffix},
		{"sealed/.timeindex", func(*Log) int { return 0 }, timeIndexSuffix},
		{"active/.timeindex", func(l *Log) int { return len(l.segs) - 1 }, timeIndexSuffix},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := smallConfig()
			l := e.open(cfg, false)
			for i := range batches {
				mustAppend(t, l, valueBatch(t, perBatch, int64(1_000+i), "r"))
			}
			if len(l.segs) < 3 {
				t.Fatalf("%d segments, want at least 3", len(l.segs))
			}
			seg := c.seg(l)
			base := l.segs[seg].base
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(e.dir, segmentName(base, c.suffix))
			if b, err := e.fs.ReadFile(path); err != nil || len(b) == 0 {
				t.Fatalf("%s: %d bytes, %v; want entries", path, len(b), err)
			}
			if err := e.fs.Remove(path); err != nil {
				t.Fatal(err)
			}
			rec := &recordingHandler{}
			l, err := Open(e.dir, cfg, Options{FS: e.fs, Logger: slog.New(rec), Now: e.clock.Now, Clean: true})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if err := l.loadSegments(l.segs...); err != nil {
				t.Fatal(err)
			}
			if rec.find("rebuilding index") == "" {
				t.Error("the missing index was not rebuilt")
			}
			if _, err := e.fs.Stat(path); err != nil {
				t.Errorf("the rebuilt index has no file: %v", err)
			}
			if s := l.segs[seg]; s.tidx.len() == 0 {
				t.Errorf("segment %d has no time index entry after the open", base)
			}
			if n := len(readRecords(t, l, 0)); n != perBatch*batches {
				t.Fatalf("read %d records, want %d", n, perBatch*batches)
			}
			for i := range int64(batches) {
				off, _, ok, err := l.OffsetForTimestamp(1_000 + i)
				if err != nil || !ok || off != perBatch*i {
					t.Fatalf("offset for timestamp %d: %d (%v, %v), want %d", 1_000+i, off, ok, err, perBatch*i)
				}
			}
			last := int64(batches - 1)
			if off, ts, ok, err := l.MaxTimestamp(); err != nil || !ok || ts != 1_000+last || off != perBatch*last {
				t.Fatalf("max timestamp %d at %d (%v, %v), want %d at %d", ts, off, ok, err, 1_000+last, perBatch*last)
			}
		})
	}
}
