//go:build unix

package storage

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/samsa-io/samsa/record"
)

// Flags of the benchmarks in bench_test.go. See docs/benchmarks.md for how
// they are run.
var (
	benchDir = flag.String("storage.benchdir", "",
		"directory for benchmark files; it must be on the disk under test, not tmpfs (default: the test's temp dir)")
	bigBench = flag.Bool("storage.bigbench", false,
		"run the benchmarks that write gigabytes (reopen of 100 partitions holding 10 GB)")
	readLogMiB = flag.Int("storage.readmib", 256, "size in MiB of the log BenchmarkRead reads")
)

// benchRoot returns a fresh empty directory for one benchmark's files, on
// -storage.benchdir when set, removed when the benchmark ends.
func benchRoot(b *testing.B) string {
	b.Helper()
	if *benchDir == "" {
		return b.TempDir()
	}
	if err := os.MkdirAll(*benchDir, 0o755); err != nil {
		b.Fatal(err)
	}
	dir, err := os.MkdirTemp(*benchDir, "bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// benchBatch builds an uncompressed batch of records with valueLen-byte
// values, as many as fit in size bytes.
func benchBatch(b testing.TB, size, valueLen int) []byte {
	b.Helper()
	value := make([]byte, valueLen)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	ts := time.Now().UnixMilli()
	n := max(size/(valueLen+8), 1)
	for {
		recs := make([]record.Record, n)
		for i := range recs {
			recs[i] = record.Record{Offset: int64(i), Timestamp: ts, Value: value}
		}
		batch, err := record.Build(record.DefaultBuildOptions(), recs)
		if err != nil {
			b.Fatal(err)
		}
		if len(batch) <= size || n == 1 {
			return batch
		}
		n -= max((len(batch)-size)/(valueLen+8), 1)
	}
}

// noSyncConfig never fsyncs on append (Kafka's own default flush policy).
func noSyncConfig() Config {
	cfg := DefaultConfig()
	cfg.FlushMessages = 1<<63 - 1
	cfg.FlushInterval = -1
	return cfg
}

func openBench(b testing.TB, dir string, cfg Config, opts Options) *Log {
	b.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	l, err := Open(dir, cfg, opts)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// syncAll flushes every filesystem, so that the dirty pages one phase of a
// benchmark leaves do not slow the next one down.
func syncAll() { syscall.Sync() }

// ddRate writes mib MiB of zeros to a new file in dir with dd(1), in 1 MiB
// blocks, with the given extra operands (conv=fdatasync, oflag=dsync), and
// returns the rate in MB/s (10^6 bytes, as go test reports) measured around
// the dd process. The file is removed afterwards. It returns 0 when dd is
// missing.
func ddRate(b testing.TB, dir string, mib int, extra ...string) float64 {
	b.Helper()
	path, err := exec.LookPath("dd")
	if err != nil {
		return 0
	}
	f := filepath.Join(dir, "dd.out")
	args := append([]string{"if=/dev/zero", "of=" + f, "bs=1M", "count=" + strconv.Itoa(mib), "status=none"}, extra...)
	syncAll()
	start := time.Now()
	out, err := exec.Command(path, args...).CombinedOutput()
	elapsed := time.Since(start)
	if err != nil {
		b.Fatalf("dd %v: %v: %s", args, err, out)
	}
	if err := os.Remove(f); err != nil {
		b.Fatal(err)
	}
	syncAll()
	return float64(mib) * (1 << 20) / elapsed.Seconds() / 1e6
}

// reportVsDD reports dd's rate and the log's rate as a share of it, under
// metric names that carry the dd operands.
func reportVsDD(b *testing.B, name string, logBytes int64, logTime time.Duration, ddMBs float64) {
	if ddMBs == 0 {
		return
	}
	logMBs := float64(logBytes) / logTime.Seconds() / 1e6
	b.ReportMetric(ddMBs, name+"-MB/s")
	b.ReportMetric(logMBs/ddMBs, "log/"+name)
}

// raiseFileLimit makes sure the process may hold n open files, raising the
// soft (and, for root, the hard) limit when needed; it skips the benchmark
// when that is not allowed.
func raiseFileLimit(b *testing.B, n uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Skipf("getrlimit: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	want := lim
	want.Cur = n
	want.Max = max(lim.Max, n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		b.Skipf("needs %d open files, limit is %d/%d and cannot be raised: %v", n, lim.Cur, lim.Max, err)
	}
	b.Logf("raised RLIMIT_NOFILE from %d/%d to %d/%d", lim.Cur, lim.Max, want.Cur, want.Max)
}

// canDropCaches reports whether dropCaches may work, without dropping.
func canDropCaches() bool {
	f, err := os.OpenFile("/proc/sys/vm/drop_caches", os.O_WRONLY, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// dropCaches empties the page cache (root only); it reports whether it could.
func dropCaches() bool {
	syncAll()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0) == nil
}

func partitionDir(root string, i int) string {
	return filepath.Join(root, fmt.Sprintf("topic-%d", i))
}
