//go:build unix

package storage

// Benchmarks of the partition log on the real filesystem. They write real
// files: point -storage.benchdir at a directory on the disk under test (not
// tmpfs). docs/benchmarks.md has the commands and the results.

import (
	"fmt"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/vfs"
	"github.com/samsa-io/samsa/record"
)

// BenchmarkAppend1MiB appends 1 MiB batches of 100-byte records to one log
// and, after each run, has dd write the same number of 1 MiB blocks to the
// same filesystem, reporting dd's rate and the log's share of it:
//
//   - nosync: flush.messages=MAX, no WaitDurable; against plain dd and dd
//     conv=fdatasync (one sync at the end).
//   - nosync-noroll: as nosync, with 2 GiB segments, so that the run does
//     not include a segment roll (and its background fsync).
//   - groupcommit: the default policy, WaitDurable after every append;
//     against dd oflag=dsync (a sync per block, the like-for-like case) and
//     dd conv=fdatasync.
//   - groupcommit-4appenders: as groupcommit, with 4 goroutines appending to
//     the same log, so that one fsync can cover several appends.
func BenchmarkAppend1MiB(b *testing.B) {
	batch := benchBatch(b, 1<<20, 100)
	b.Logf("batch: %d bytes, %d records", len(batch), mustHeader(b, batch).NumRecords)
	b.Run("nosync", func(b *testing.B) {
		benchAppend(b, batch, noSyncConfig(), 1, false, []ddVariant{{"dd"}, {"dd-fdatasync", "conv=fdatasync"}})
	})
	b.Run("nosync-noroll", func(b *testing.B) {
		// As nosync, with segments as large as allowed, so that a run of
		// up to 2 GiB never rolls (a roll has the sealed segment fsynced in
		// the background, while the appends go on).
		cfg := noSyncConfig()
		cfg.SegmentBytes = math.MaxInt32
		benchAppend(b, batch, cfg, 1, false, []ddVariant{{"dd"}, {"dd-fdatasync", "conv=fdatasync"}})
	})
	b.Run("groupcommit", func(b *testing.B) {
		benchAppend(b, batch, DefaultConfig(), 1, true, []ddVariant{{"dd-dsync", "oflag=dsync"}, {"dd-fdatasync", "conv=fdatasync"}})
	})
	b.Run("groupcommit-4appenders", func(b *testing.B) {
		benchAppend(b, batch, DefaultConfig(), 4, true, []ddVariant{{"dd-dsync", "oflag=dsync"}})
	})
}

// ddVariant is a metric name and dd's extra operands.
type ddVariant []string

func mustHeader(b testing.TB, batch []byte) record.Header {
	h, err := record.ParseHeader(batch)
	if err != nil {
		b.Fatal(err)
	}
	return h
}

func benchAppend(b *testing.B, batch []byte, cfg Config, appenders int, wait bool, dds []ddVariant) {
	root := benchRoot(b)
	dir := partitionDir(root, 0)
	c := NewCommitter(CommitterOptions{FS: vfs.Default, Dir: root})
	l := openBench(b, dir, cfg, Options{Committer: c})
	// Append writes the base offset into the batch, so each appender has
	// its own copy, reused for all its appends.
	bufs := make([][]byte, appenders)
	for i := range bufs {
		bufs[i] = append([]byte(nil), batch...)
	}
	var maxLatency atomic.Int64 // ns, the slowest append (with its wait)
	appendOne := func(buf []byte) {
		start := time.Now()
		defer func() {
			d := int64(time.Since(start))
			for m := maxLatency.Load(); d > m && !maxLatency.CompareAndSwap(m, d); m = maxLatency.Load() {
			}
		}()
		res, err := l.Append(buf)
		if err != nil {
			b.Error(err)
			return
		}
		if wait {
			if err := l.WaitDurable(res.LastOffset + 1); err != nil {
				b.Error(err)
			}
		}
	}

	// The VM backs guest memory lazily: the first writer to touch fresh page
	// cache pages pays for it. Recycle as many pages as the run writes
	// first, so that the log and dd start alike.
	ddRate(b, root, b.N)

	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	syncAll()
	b.ResetTimer()
	start := time.Now()
	if appenders == 1 {
		for range b.N {
			appendOne(bufs[0])
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for _, buf := range bufs {
			wg.Go(func() {
				for next.Add(1) <= int64(b.N) && !b.Failed() {
					appendOne(buf)
				}
			})
		}
		wg.Wait()
	}
	elapsed := time.Since(start)
	b.StopTimer()

	b.ReportMetric(float64(maxLatency.Load())/1e6, "max-append-ms")
	if st := c.Stats(); st.Rounds > 0 {
		b.ReportMetric(float64(b.N)/float64(st.Rounds), "appends/fsync")
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
	for _, dd := range dds {
		rate := ddRate(b, root, b.N, dd[1:]...)
		reportVsDD(b, dd[0], int64(b.N)*int64(len(batch)), elapsed, rate)
	}
}

// BenchmarkAppendSmall appends 1 KiB batches without fsync: the steady
// state of the produce path, which must not allocate.
func BenchmarkAppendSmall(b *testing.B) {
	batch := benchBatch(b, 1<<10, 100)
	root := benchRoot(b)
	l := openBench(b, partitionDir(root, 0), noSyncConfig(), Options{})
	defer l.Close()
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := l.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRead reads a log of -storage.readmib MiB (256 by default) that
// is in the page cache, 1 MiB per Read into a reused buffer, from the start
// to the end and round again. Read checks every batch's CRC. The log is
// written once with 1 MiB batches and once with 16 KiB batches.
func BenchmarkRead(b *testing.B) {
	root := benchRoot(b)
	for i, batchSize := range []int{1 << 20, 16 << 10} {
		l := openBench(b, partitionDir(root, i), noSyncConfig(), Options{})
		batch := benchBatch(b, batchSize, 100)
		for range (*readLogMiB << 20) / len(batch) {
			if _, err := l.Append(batch); err != nil {
				b.Fatal(err)
			}
		}
		syncAll()
		b.Run(fmt.Sprintf("batch=%dKiB", batchSize>>10), func(b *testing.B) { benchRead(b, l) })
		l.Close()
	}
}

func benchRead(b *testing.B, l *Log) {
	end := l.Offsets().LogEnd
	dst := make([]byte, 0, 2<<20)
	first, err := l.Read(dst, 0, 1<<20, end)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(first.Data)))
	b.ReportAllocs()
	var off, total int64
	b.ResetTimer()
	for range b.N {
		res, err := l.Read(dst[:0], off, 1<<20, end)
		if err != nil {
			b.Fatal(err)
		}
		total += int64(len(res.Data))
		for data := res.Data; len(data) > 0; {
			h, err := record.ParseHeader(data)
			if err != nil {
				b.Fatal(err)
			}
			off = h.LastOffset() + 1
			data = data[h.Size():]
		}
		if off >= end {
			off = 0
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(total)/float64(b.N), "bytes/read")
}

// BenchmarkGroupCommit models a broker's acks=all produce path over many
// partitions: each wave appends one 1 KiB batch to every one of n logs that
// share a Committer, then waits until all n are durable, in one of two ways:
//
//   - each: n goroutines (one per partition, started once and reused) each
//     call WaitDurable for their log, as a producer per partition would;
//   - all: one call to WaitDurableAll for the n logs, as one produce request
//     for n partitions does (the broker's produce path).
//
// It compares an fsync per log, one after another (SyncFSThreshold 0),
// with one syncfs (SyncFSThreshold 1). ns/op is a whole wave; commit-ms/wave is the
// waiting part alone.
func BenchmarkGroupCommit(b *testing.B) {
	type mode struct {
		name      string
		threshold int
	}
	modes := []mode{{"fsync", 0}, {"syncfs", 1}}
	waits := []string{"each", "all"}
	for _, n := range []int{1, 4, 10, 100, 1000, 5000, 10000} {
		b.Run(fmt.Sprintf("partitions=%d", n), func(b *testing.B) {
			// A log holds one open file per segment (its .log), and these
			// logs have one segment each.
			raiseFileLimit(b, uint64(n+1024))
			root := benchRoot(b)
			for _, m := range modes {
				for _, w := range waits {
					b.Run(m.name+"/wait="+w, func(b *testing.B) { benchGroupCommit(b, root, n, m.threshold, 0, w == "all") })
				}
			}
		})
	}
	// syncfs writes back every dirty page of the filesystem, also those of
	// logs that do not fsync (flush.messages unset, Kafka's default). Here a
	// neighbouring no-fsync log on the same filesystem takes 64 MiB before
	// each wave (not timed).
	b.Run("partitions=100/neighbour=64MiB", func(b *testing.B) {
		root := benchRoot(b)
		for _, m := range modes {
			for _, w := range waits {
				b.Run(m.name+"/wait="+w, func(b *testing.B) { benchGroupCommit(b, root, 100, m.threshold, 64, w == "all") })
			}
		}
	})
}

func benchGroupCommit(b *testing.B, root string, n, threshold, neighbourMiB int, waitAll bool) {
	c := NewCommitter(CommitterOptions{FS: vfs.Default, Dir: root, SyncFSThreshold: threshold})
	logs := make([]*Log, n)
	batches := make([][]byte, n)
	batch := benchBatch(b, 1<<10, 100)
	for i := range logs {
		// Logs left by an earlier run were closed cleanly.
		logs[i] = openBench(b, partitionDir(root, i), DefaultConfig(), Options{Committer: c, Clean: true})
		batches[i] = append([]byte(nil), batch...)
	}
	defer func() {
		for _, l := range logs {
			l.Close()
		}
	}()
	var neighbour *Log
	var bigBatch []byte
	if neighbourMiB > 0 {
		neighbourDir := partitionDir(root, -1)
		os.RemoveAll(neighbourDir)
		neighbour = openBench(b, neighbourDir, noSyncConfig(), Options{})
		defer neighbour.Close()
		bigBatch = benchBatch(b, 1<<20, 100)
	}

	// Wave 0 is a warm-up, not timed: the first fsync of a new file also
	// commits its creation, which is set-up cost, not steady state.
	ends := make([]int64, n)
	var wait func(k int)
	if waitAll {
		wait = func(int) {
			if err := WaitDurableAll(logs, ends); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		// One waiter per partition, started once; starts[k] releases wave k.
		starts := make([]chan struct{}, b.N+1)
		for k := range starts {
			starts[k] = make(chan struct{})
		}
		var done sync.WaitGroup
		var failed atomic.Bool
		for i, l := range logs {
			go func() {
				for k := range b.N + 1 {
					<-starts[k]
					if err := l.WaitDurable(ends[i]); err != nil && !failed.Swap(true) {
						b.Error(err)
					}
					done.Done()
				}
			}()
		}
		wait = func(k int) {
			done.Add(n)
			close(starts[k])
			done.Wait()
		}
	}

	round := func(k int) time.Duration {
		if neighbour != nil {
			b.StopTimer()
			for range neighbourMiB {
				if _, err := neighbour.Append(bigBatch); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
		}
		for i, l := range logs {
			res, err := l.Append(batches[i])
			if err != nil {
				b.Fatal(err)
			}
			ends[i] = res.LastOffset + 1
		}
		start := time.Now()
		wait(k)
		return time.Since(start)
	}
	round(0)
	syncAll()
	before := c.Stats()
	var commit time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for k := range b.N {
		commit += round(k + 1)
	}
	b.StopTimer()
	st := c.Stats()
	rounds := st.Rounds - before.Rounds
	b.ReportMetric(commit.Seconds()*1e3/float64(b.N), "commit-ms/wave")
	b.ReportMetric(float64(rounds)/float64(b.N), "rounds/wave")
	b.ReportMetric(float64(st.LogsSynced-before.LogsSynced)/float64(max(rounds, 1)), "logs/round")
}

// BenchmarkGroupCommitRequests models the broker under a producer that
// keeps several acks=all requests in flight, each covering every partition:
// 5 goroutines each append one batch to each of the n logs and call
// WaitDurableAll, over and over. One op is one such request; ns/op is the
// time per request across all of them (lower is more throughput). It
// compares one syncfs per round with fdatasyncs issued in parallel (serial:
// one after another), one round at a time (pipeline=1) or the next round
// starting while one runs (pipeline=2), and with or without waiters
// starting the writeback of their data before they wait (writeback).
func BenchmarkGroupCommitRequests(b *testing.B) {
	type mode struct {
		name string
		opts CommitterOptions
	}
	modes := []mode{
		{"syncfs/pipeline=1", CommitterOptions{SyncFSThreshold: 1}},
		{"syncfs/pipeline=1/writeback", CommitterOptions{SyncFSThreshold: 1, Writeback: true}},
		{"syncfs/pipeline=2/writeback", CommitterOptions{SyncFSThreshold: 1, Pipeline: 2, Writeback: true}},
		{"fsync-serial/pipeline=1", CommitterOptions{}},
		{"fsync-parallel/pipeline=1", CommitterOptions{SyncParallelism: 32}},
		{"fsync-parallel/pipeline=1/writeback", CommitterOptions{SyncParallelism: 32, Writeback: true}},
		{"fsync-parallel/pipeline=2", CommitterOptions{SyncParallelism: 32, Pipeline: 2}},
		{"fsync-parallel/pipeline=2/writeback", CommitterOptions{SyncParallelism: 32, Pipeline: 2, Writeback: true}},
	}
	for _, n := range []int{16, 100} {
		for _, kib := range []int{32, 128} {
			b.Run(fmt.Sprintf("partitions=%d/batch=%dKiB", n, kib), func(b *testing.B) {
				root := benchRoot(b)
				for _, m := range modes {
					b.Run(m.name, func(b *testing.B) {
						opts := m.opts
						opts.FS, opts.Dir = vfs.Default, root
						benchGroupCommitRequests(b, root, NewCommitter(opts), n, kib<<10, 5)
					})
				}
			})
		}
	}
}

func benchGroupCommitRequests(b *testing.B, root string, c *Committer, n, batchBytes, requests int) {
	logs := make([]*Log, n)
	batch := benchBatch(b, batchBytes, 100)
	for i := range logs {
		logs[i] = openBench(b, partitionDir(root, i), DefaultConfig(), Options{Committer: c, Clean: true})
	}
	defer func() {
		for _, l := range logs {
			l.Close()
		}
	}()
	request := func(batches [][]byte, ends []int64) {
		for i, l := range logs {
			res, err := l.Append(batches[i])
			if err != nil {
				b.Error(err)
				return
			}
			ends[i] = res.LastOffset + 1
		}
		if err := WaitDurableAll(logs, ends); err != nil {
			b.Error(err)
		}
	}
	newBatches := func() [][]byte {
		bs := make([][]byte, n)
		for i := range bs {
			bs[i] = append([]byte(nil), batch...)
		}
		return bs
	}
	request(newBatches(), make([]int64, n)) // warm-up: creates the files
	syncAll()
	before := c.Stats()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.SetBytes(int64(n * batchBytes))
	b.ResetTimer()
	for range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batches, ends := newBatches(), make([]int64, n)
			for next.Add(1) <= int64(b.N) {
				request(batches, ends)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	st := c.Stats()
	rounds := st.Rounds - before.Rounds
	b.ReportMetric(float64(rounds)/float64(b.N), "rounds/request")
	b.ReportMetric((st.SyncTime-before.SyncTime).Seconds()*1e3/float64(max(rounds, 1)), "ms/round")
}

// BenchmarkReopen (with -storage.bigbench) writes 100 partitions of 100 MiB
// (10 GiB), closes them, and times opening all 100 again: trusting the
// clean shutdown (Clean: true) or recovering them (Clean: false), one after
// another or from 8 goroutines, with the page cache warm or dropped before
// each round (cold; needs root). Closing is not timed.
func BenchmarkReopen(b *testing.B) {
	if !*bigBench {
		b.Skip("writes 10 GiB; run with -storage.bigbench")
	}
	const partitions, perPartitionMiB = 100, 100
	root := benchRoot(b)
	batch := benchBatch(b, 1<<20, 100)
	start := time.Now()
	for i := range partitions {
		l := openBench(b, partitionDir(root, i), noSyncConfig(), Options{})
		for range (perPartitionMiB << 20) / len(batch) {
			if _, err := l.Append(batch); err != nil {
				b.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	}
	syncAll()
	b.Logf("wrote %d partitions of %d MiB in %v", partitions, perPartitionMiB, time.Since(start))
	canDrop := canDropCaches()
	for _, cache := range []string{"warm", "cold"} {
		for _, clean := range []bool{true, false} {
			for _, workers := range []int{1, 8} {
				name := fmt.Sprintf("clean=%v/cache=%s/workers=%d", clean, cache, workers)
				b.Run(name, func(b *testing.B) {
					if cache == "cold" && !canDrop {
						b.Skip("cannot drop the page cache (not root?)")
					}
					benchReopen(b, root, partitions, clean, workers, cache == "cold")
				})
			}
		}
	}
}

func benchReopen(b *testing.B, root string, partitions int, clean bool, workers int, cold bool) {
	logs := make([]*Log, partitions)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if cold {
			b.StopTimer()
			if !dropCaches() {
				b.Fatal("drop_caches failed")
			}
			b.StartTimer()
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < partitions; i = int(next.Add(1) - 1) {
					l, err := Open(partitionDir(root, i), DefaultConfig(), Options{Logger: quietLogger(), Clean: clean})
					if err != nil {
						b.Error(err)
						return
					}
					logs[i] = l
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		for i, l := range logs {
			if l != nil {
				if err := l.Close(); err != nil {
					b.Fatal(err)
				}
				logs[i] = nil
			}
		}
		b.StartTimer()
	}
}
