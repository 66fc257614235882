package storage

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"github.com/samsa-io/samsa/internal/vfs"
	"github.com/samsa-io/samsa/record"
)

var (
	crashSeed  = flag.Int64("crash.seed", -1, "run only this seed of TestCrashKeepsEveryDurableAppend")
	crashSeeds = flag.Int("crash.seeds", 1000, "number of seeds TestCrashKeepsEveryDurableAppend runs")
)

// TestCrashKeepsEveryDurableAppend appends, syncs, rolls and reopens at
// random, crashes the filesystem at a random moment (keeping a random part of
// what was not synced, as a real disk may), reopens, and checks that every
// append reported durable is there and intact, that offsets are contiguous,
// and that nothing that was never written appears. Each seed runs several
// crash cycles on the same log. A failing seed is printed; replay it with
// -crash.seed=N.
func TestCrashKeepsEveryDurableAppend(t *testing.T) {
	seeds := *crashSeeds
	if testing.Short() {
		seeds = 100
	}
	first := int64(0)
	if *crashSeed >= 0 {
		first, seeds = *crashSeed, 1
	}
	// Seeds run on every core; the lowest failing seed is reported.
	var (
		mu     sync.Mutex
		failed = int64(math.MaxInt64)
		reason error
		next   = first
	)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				mu.Lock()
				seed := next
				next++
				stop := seed >= first+int64(seeds) || seed > failed
				mu.Unlock()
				if stop {
					return
				}
				if err := crashSeedRun(t, seed); err != nil {
					mu.Lock()
					if seed < failed {
						failed, reason = seed, err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if reason != nil {
		t.Fatalf("seed %d: %v\nreplay: go test ./storage -run TestCrashKeepsEveryDurableAppend -crash.seed=%d", failed, reason, failed)
	}
}

// crashModel is what the test knows the log must hold.
type crashModel struct {
	values  []string // value of the record at each offset ever appended since the last recovery
	durable int64    // every offset below was reported durable
}

func crashSeedRun(t *testing.T, seed int64) error {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5a5a))
	fs := vfs.NewCrashableMem()
	cfg := DefaultConfig()
	cfg.SegmentBytes = int64(512 + rng.IntN(8192))
	cfg.IndexIntervalBytes = int64(rng.IntN(1024))
	opts := Options{FS: fs, Logger: quietLogger()}
	dir := "/data/t-0"
	var m crashModel
	for cycle := range 3 {
		l, err := Open(dir, cfg, opts)
		if err != nil {
			return fmt.Errorf("cycle %d: open: %w", cycle, err)
		}
		if err := m.check(l); err != nil {
			return fmt.Errorf("cycle %d after reopen: %w", cycle, err)
		}
		ops := 20 + rng.IntN(200)
		for op := range ops {
			switch p := rng.IntN(100); {
			case p < 70:
				if err := m.append(t, l, rng, fmt.Sprintf("s%d-c%d-o%d", seed, cycle, op)); err != nil {
					return err
				}
			case p < 90:
				end := l.Offsets().LogEnd
				if err := l.WaitDurable(end); err != nil {
					return fmt.Errorf("wait durable: %w", err)
				}
				m.durable = end
			case p < 95:
				if err := l.Roll(); err != nil {
					return fmt.Errorf("roll: %w", err)
				}
			default:
				// A clean close and reopen in the middle.
				if err := l.Close(); err != nil {
					return fmt.Errorf("close: %w", err)
				}
				m.durable = int64(len(m.values))
				if l, err = Open(dir, cfg, Options{FS: fs, Logger: quietLogger(), Clean: true}); err != nil {
					return fmt.Errorf("clean reopen: %w", err)
				}
				if err := m.check(l); err != nil {
					return fmt.Errorf("after clean reopen: %w", err)
				}
			}
		}
		// Power loss: the open log is abandoned.
		fs = fs.CrashClone(vfs.CrashOptions{Rand: rng})
		opts.FS = fs
	}
	l, err := Open(dir, cfg, opts)
	if err != nil {
		return fmt.Errorf("final open: %w", err)
	}
	defer l.Close()
	return m.check(l)
}

func (m *crashModel) append(t *testing.T, l *Log, rng *rand.Rand, tag string) error {
	n := 1 + rng.IntN(12)
	recs := make([]kv, n)
	for i := range recs {
		recs[i] = kv{key: fmt.Sprint(i), value: fmt.Sprintf("%s-r%d-%s", tag, i, pad(rng.IntN(200))), ts: int64(len(m.values) + i)}
	}
	// Codecs are covered elsewhere; the cheap ones keep 1,000 seeds fast
	// under the race detector, which defeats the codecs' encoder pools.
	codec := []record.Codec{record.CodecNone, record.CodecNone, record.CodecSnappy}[rng.IntN(3)]
	res, err := l.Append(batch(t, codec, recs...))
	if err != nil {
		return fmt.Errorf("append: %w", err)
	}
	if res.BaseOffset != int64(len(m.values)) {
		return fmt.Errorf("append got base offset %d, want %d", res.BaseOffset, len(m.values))
	}
	for _, r := range recs {
		m.values = append(m.values, r.value)
	}
	if rng.IntN(3) == 0 {
		if err := l.WaitDurable(res.LastOffset + 1); err != nil {
			return fmt.Errorf("wait durable: %w", err)
		}
		m.durable = res.LastOffset + 1
	}
	return nil
}

// check reads the whole log and compares it with the model, then trims the
// model to what survived (later appends reuse the lost offsets).
func (m *crashModel) check(l *Log) error {
	off := l.Offsets()
	if off.LogStart != 0 {
		return fmt.Errorf("log start %d, want 0", off.LogStart)
	}
	if off.LogEnd < m.durable {
		return fmt.Errorf("log end %d is below the durable end %d: acknowledged data lost", off.LogEnd, m.durable)
	}
	if off.LogEnd > int64(len(m.values)) {
		return fmt.Errorf("log end %d is past the %d records ever written", off.LogEnd, len(m.values))
	}
	next := int64(0)
	var buf []byte
	for next < off.LogEnd {
		res, err := l.Read(buf[:0], next, 64<<10, off.LogEnd)
		buf = res.Data
		if err != nil {
			return fmt.Errorf("read at %d: %w", next, err)
		}
		if len(res.Data) == 0 {
			return fmt.Errorf("read at %d returned nothing before the end %d", next, off.LogEnd)
		}
		for b := res.Data; len(b) > 0; {
			h, err := record.Validate(b[:min(len(b), mustSize(b))], record.ValidateOptions{VerifyRecords: true})
			if err != nil {
				return fmt.Errorf("batch at %d: %w", next, err)
			}
			recs, err := record.Records(b[:h.Size()])
			if err != nil {
				return err
			}
			for _, r := range recs {
				if r.Offset != next {
					return fmt.Errorf("offset %d where %d was expected: a gap", r.Offset, next)
				}
				if string(r.Value) != m.values[next] {
					return fmt.Errorf("offset %d holds %q, want %q", next, r.Value, m.values[next])
				}
				next++
			}
			b = b[h.Size():]
		}
	}
	m.values = m.values[:off.LogEnd]
	m.durable = off.LogEnd
	return nil
}

func mustSize(b []byte) int {
	h, err := record.ParseHeader(b)
	if err != nil {
		return len(b)
	}
	return h.Size()
}

func pad(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b)
}
