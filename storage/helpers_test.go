package storage

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/vfs"
	"github.com/samsa-io/samsa/record"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.UnixMilli(1_700_000_000_000)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testEnv holds what tests open logs with.
type testEnv struct {
	t     testing.TB
	fs    *vfs.MemFS
	clock *clock
	dir   string
}

func newEnv(t testing.TB) *testEnv {
	return &testEnv{t: t, fs: vfs.NewCrashableMem(), clock: newClock(), dir: "/data/topic-0"}
}

// crash replaces the filesystem with what a power loss now would leave.
// Logs open on the old one are abandoned, not closed.
func (e *testEnv) crash() {
	e.fs = e.fs.CrashClone(vfs.CrashOptions{})
}

func (e *testEnv) options(clean bool) Options {
	return Options{FS: e.fs, Logger: quietLogger(), Now: e.clock.Now, Clean: clean}
}

func (e *testEnv) open(cfg Config, clean bool) *Log {
	e.t.Helper()
	l, err := Open(e.dir, cfg, e.options(clean))
	if err != nil {
		e.t.Fatalf("open: %v", err)
	}
	return l
}

// smallConfig rolls segments often and indexes densely.
func smallConfig() Config {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 4096
	cfg.IndexIntervalBytes = 256
	return cfg
}

// kv is a record for tests: key, value and timestamp.
type kv struct {
	key, value string
	ts         int64
	tombstone  bool
}

// batch builds a batch of the given records (offsets from 0).
func batch(t testing.TB, codec record.Codec, recs ...kv) []byte {
	t.Helper()
	opts := record.DefaultBuildOptions()
	opts.Codec = codec
	rs := make([]record.Record, len(recs))
	for i, r := range recs {
		rs[i] = record.Record{Offset: int64(i), Timestamp: r.ts, Value: []byte(r.value)}
		if r.key != "" {
			rs[i].Key = []byte(r.key)
		}
		if r.tombstone {
			rs[i].Value = nil
		}
	}
	b, err := record.Build(opts, rs)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return b
}

// valueBatch builds a batch of n records whose values name their index.
func valueBatch(t testing.TB, n int, ts int64, tag string) []byte {
	recs := make([]kv, n)
	for i := range recs {
		recs[i] = kv{value: fmt.Sprintf("%s-%d", tag, i), ts: ts}
	}
	return batch(t, record.CodecNone, recs...)
}

func mustAppend(t testing.TB, l *Log, b []byte) AppendResult {
	t.Helper()
	res, err := l.Append(b)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if err := l.WaitDurable(res.LastOffset + 1); err != nil {
		t.Fatalf("wait durable: %v", err)
	}
	return res
}

// readAll reads every record from offset from to the log end, batch by
// batch, and returns them.
func readRecords(t testing.TB, l *Log, from int64) []record.Record {
	t.Helper()
	var out []record.Record
	for {
		res, err := l.Read(nil, from, 1<<20, l.Offsets().LogEnd)
		if err != nil {
			t.Fatalf("read at %d: %v", from, err)
		}
		if len(res.Data) == 0 {
			return out
		}
		for b := res.Data; len(b) > 0; {
			h, err := record.ParseHeader(b)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			recs, err := record.Records(b[:h.Size()])
			if err != nil {
				t.Fatalf("records: %v", err)
			}
			for _, r := range recs {
				if r.Offset >= from {
					out = append(out, r)
				}
			}
			from = h.LastOffset() + 1
			b = b[h.Size():]
		}
	}
}

func offsetsOf(recs []record.Record) []int64 {
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.Offset
	}
	return out
}

// waitSealed waits until the background sealer has fsynced every rolled
// segment and recorded the recovery point.
func waitSealed(l *Log) { l.sealers.Wait() }
