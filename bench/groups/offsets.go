package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/broker"
)

const offsetsTopic = "committed"

// commitOne commits offset for partition 0 of offsetsTopic in groupID, as
// a simple consumer does (no member id, generation -1), with
// OffsetCommit v9.
func commitOne(ctx context.Context, cl *kgo.Client, groupID string, offset int64) error {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = groupID
	req.Generation = -1
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = offsetsTopic
	p := kmsg.NewOffsetCommitRequestTopicPartition()
	p.Partition = 0
	p.Offset = offset
	p.LeaderEpoch = -1
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return err
			}
		}
	}
	return nil
}

// setupOffsets starts a broker with the topic the commits name; reg, if
// not nil, gets the broker's metrics.
func setupOffsets(o options, reg prometheus.Registerer) (*runningBroker, *kgo.Client, error) {
	rb, err := startBroker(o, func(c *broker.Config) { c.Metrics = reg })
	if err != nil {
		return nil, nil, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(rb.addr()))
	if err != nil {
		rb.stop()
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, offsetsTopic); err != nil {
		cl.Close()
		rb.stop()
		return nil, nil, err
	}
	return rb, cl, nil
}

// heapInUse is the Go heap in use after two collections.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// rss is the process's resident set (VmRSS), in bytes.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// dirSize is the bytes of the files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += info.Size()
		}
		return nil
	})
	return n
}

// parallel runs fn(i) for i in [0, n) on workers goroutines; the first
// error wins.
func parallel(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || first.Load() != nil {
					return
				}
				if err := fn(i); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return err
	}
	return nil
}

func benchIdle(o options) error {
	reg := prometheus.NewRegistry()
	rb, cl, err := setupOffsets(o, reg)
	if err != nil {
		return err
	}
	defer rb.stop()
	defer cl.Close()
	ctx := context.Background()
	// Warm up: the connections, the first appends.
	if err := parallel(64, 16, func(i int) error { return commitOne(ctx, cl, fmt.Sprintf("warm-%d", i), 1) }); err != nil {
		return err
	}
	heap0, rss0, disk0 := heapInUse(), rss(), dirSize(filepath.Join(rb.dir, "logs"))
	start := time.Now()
	if err := parallel(o.idleGroups, 32, func(i int) error { return commitOne(ctx, cl, fmt.Sprintf("idle-%05d", i), int64(i)) }); err != nil {
		return err
	}
	took := time.Since(start)
	heap1, rss1, disk1 := heapInUse(), rss(), dirSize(filepath.Join(rb.dir, "logs"))
	if o.memProfile != "" {
		f, err := os.Create(o.memProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			return err
		}
	}
	n := float64(o.idleGroups)
	fmt.Printf("\n## idle: %d groups with one committed offset each and no members\n", o.idleGroups)
	fmt.Printf("committed in %s (32 in flight)\n", took.Round(time.Millisecond))
	fmt.Printf("Go heap in use: %.1f MiB -> %.1f MiB: %.0f bytes per group\n",
		mib(heap0), mib(heap1), (float64(heap1)-float64(heap0))/n)
	fmt.Printf("process RSS: %.1f MiB -> %.1f MiB: %.0f bytes per group\n",
		mib(rss0), mib(rss1), (float64(rss1)-float64(rss0))/n)
	fmt.Printf("partition logs on disk: %.1f MiB -> %.1f MiB: %.0f bytes per group\n",
		mib(uint64(disk0)), mib(uint64(disk1)), float64(disk1-disk0)/n)
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		for range 10 {
			reg.Gather()
		}
		pprof.StopCPUProfile()
	}
	scrapeStart := time.Now()
	families, err := reg.Gather()
	if err != nil {
		return err
	}
	scrape := time.Since(scrapeStart)
	samples := 0
	for _, f := range families {
		samples += len(f.GetMetric())
	}
	fmt.Printf("a scrape of the group metrics: %d samples in %s\n", samples, scrape.Round(time.Millisecond/10))
	return nil
}

func benchCommits(o options) error {
	rb, cl, err := setupOffsets(o, nil)
	if err != nil {
		return err
	}
	defer rb.stop()
	defer cl.Close()
	fmt.Printf("\n## commits: OffsetCommit v9, one partition, each committer on its own group, %s each\n", o.commitTime)
	for _, conc := range o.commitConc {
		ctx, cancel := context.WithTimeout(context.Background(), o.commitTime)
		var done atomic.Int64
		var failed atomic.Value
		var wg sync.WaitGroup
		start := time.Now()
		for w := range conc {
			wg.Go(func() {
				group := fmt.Sprintf("committer-%d-%d", conc, w)
				for i := int64(0); ctx.Err() == nil; i++ {
					if err := commitOne(ctx, cl, group, i); err != nil {
						if ctx.Err() == nil {
							failed.CompareAndSwap(nil, err)
						}
						return
					}
					done.Add(1)
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		cancel()
		if err, ok := failed.Load().(error); ok {
			return fmt.Errorf("%d committers: %w", conc, err)
		}
		fmt.Printf("%d committers: %d commits in %s: %.0f commits/s (load %s)\n",
			conc, done.Load(), elapsed.Round(time.Millisecond), float64(done.Load())/elapsed.Seconds(), loadAvg())
	}
	return nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
