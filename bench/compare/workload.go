package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/samsa-io/samsa/loadgen"
)

// caseSpec is one workload with one setting of its variable and of acks:
// what a single sample of one system measures.
type caseSpec struct {
	ID         string  `json:"id"` // "w4/p=100/acks=all"
	Workload   int     `json:"workload"`
	Acks       string  `json:"acks"` // "all" or "1"
	Partitions int32   `json:"partitions"`
	RecordSize int     `json:"record_size"`
	Producers  int     `json:"producers"`
	Consumers  int     `json:"consumers"`
	RateMB     float64 `json:"rate_mb_s,omitempty"`   // e2e target, MiB/s of values; 0: as fast as possible
	Groups     int     `json:"groups,omitempty"`      // workload 5
	FillBytes  int64   `json:"fill_bytes,omitempty"`  // workload 5 and 6: written before the measured part
	FillLabel  string  `json:"fill_label,omitempty"`  // "1GB"
	SkipSystem string  `json:"skip_system,omitempty"` // a system that cannot hold this case
	SkipReason string  `json:"skip_reason,omitempty"` // why
	Variable   string  `json:"variable,omitempty"`    // the workload's variable, for tables: "p=100"
	Note       string  `json:"note,omitempty"`        // anything the table should say
}

// topic is the topic (or NATS stream) every case writes.
const topic = "bench"

// workloadTitles name the six workloads.
var workloadTitles = map[int]string{
	1: "1. 100-byte records, 1 partition, 1 producer, as fast as possible; then 1 consumer reads it all",
	2: "2. 1 KiB records, 16 partitions, 4 producers + 4 consumers, as fast as possible",
	3: "3. Fixed rate, 1 KiB records, 16 partitions, 4 + 4: end-to-end latency (coordinated omission corrected)",
	4: "4. Scale: partitions at a fixed total rate, 1 KiB records, 4 + 4",
	5: "5. Fan-out: consumer groups reading the same topic (16 partitions, 1 KiB records)",
	6: "6. Data size: workload 2 on a topic pre-filled with retained data",
}

// buildCases expands the chosen workloads into cases.
func buildCases(o *options) []caseSpec {
	var cases []caseSpec
	for _, w := range o.workloads {
		for _, acks := range o.acks {
			base := caseSpec{Workload: w, Acks: acks, RecordSize: 1024, Partitions: 16, Producers: 4, Consumers: 4}
			add := func(c caseSpec) {
				c.ID = fmt.Sprintf("w%d/", w)
				if c.Variable != "" {
					c.ID += c.Variable + "/"
				}
				c.ID += "acks=" + acks
				cases = append(cases, c)
			}
			switch w {
			case 1:
				c := base
				c.RecordSize, c.Partitions, c.Producers, c.Consumers = 100, 1, 1, 1
				add(c)
			case 2:
				add(base)
			case 3:
				c := base
				c.RateMB = o.rateMB
				add(c)
			case 4:
				for _, p := range o.scalePartitions {
					c := base
					c.Partitions = p
					c.RateMB = o.scaleRateMB
					c.Variable = fmt.Sprintf("p=%d", p)
					add(c)
				}
			case 5:
				for _, g := range o.fanoutGroups {
					c := base
					c.Groups, c.Producers, c.Consumers = g, 1, 1
					c.FillBytes = int64(o.fanoutMB * mebibyte)
					c.Variable = fmt.Sprintf("groups=%d", g)
					add(c)
				}
			case 6:
				for _, gb := range o.prefillGB {
					c := base
					c.FillBytes = int64(gb * 1e9)
					c.FillLabel = fmt.Sprintf("%gGB", gb)
					c.Variable = c.FillLabel
					if gb > 8 {
						// kfake holds everything in memory (23 GiB here).
						c.SkipSystem, c.SkipReason = sysKfake, "kfake keeps all data in memory"
					}
					add(c)
				}
			}
		}
	}
	return cases
}

// sample is what one system measured for one case in one round.
type sample struct {
	Case    string             `json:"case"`
	System  string             `json:"system"`
	Round   int                `json:"round"`
	Order   int                `json:"order"` // position in the round's rotation, from 0
	Load    string             `json:"load"`  // /proc/loadavg at the start
	Metrics map[string]float64 `json:"metrics"`
	Results []*loadgen.Result  `json:"results,omitempty"` // the load runs, as loadgen reports them
	Error   string             `json:"error,omitempty"`
}

// runner runs cases against fresh servers.
type runner struct {
	o    *options
	bins binaries
}

// run measures case c on a fresh server of system; a failure is kept in the
// sample, not returned, so that one bad run does not lose the others.
func (rn *runner) run(c caseSpec, system string, round, order int) sample {
	s := sample{Case: c.ID, System: system, Round: round, Order: order, Load: loadAvg(), Metrics: map[string]float64{}}
	if err := rn.measure(c, system, round, &s); err != nil {
		s.Error = err.Error()
	}
	return s
}

func (rn *runner) measure(c caseSpec, system string, round int, s *sample) error {
	srv, err := newServer(rn.bins, system, rn.o.work, c.Acks == "all")
	if err != nil {
		return err
	}
	defer srv.stop()
	startTime, err := srv.start()
	if err != nil {
		return err
	}
	s.Metrics["start_s"] = startTime.Seconds()
	ctx, cancel := context.WithTimeout(context.Background(), rn.o.caseTimeout)
	defer cancel()
	d := newDriver(srv, rn.o.natsMaxPending)

	began := time.Now()
	if err := d.createTopic(ctx, topic, c.Partitions); err != nil {
		return err
	}
	s.Metrics["create_topic_s"] = time.Since(began).Seconds()

	cfg := loadgen.DefaultConfig()
	cfg.Topic = topic
	cfg.Partitions = c.Partitions
	cfg.RecordSize = c.RecordSize
	cfg.Acks = c.Acks
	cfg.Producers = c.Producers
	cfg.Consumers = c.Consumers
	cfg.Linger = rn.o.linger

	// phase runs cfg and keeps its result and the server's CPU time.
	phase := func(name string, cfg loadgen.Config) (*loadgen.Result, float64, error) {
		u0 := srv.usage()
		prof := rn.profile(srv, fmt.Sprintf("%s-%s-r%d-%s", system, strings.ReplaceAll(c.ID, "/", "_"), round, name), cfg)
		runCtx := ctx
		if cfg.Rate > 0 && cfg.Duration > 0 {
			// At a target rate loadgen sends rate × duration records
			// however long that takes; a system that cannot keep up
			// would stretch the run without end. Stop it after twice
			// the duration (plus time to drain): it sent fewer records,
			// and its MB/s says so.
			var cancel context.CancelFunc
			runCtx, cancel = context.WithTimeout(ctx, 2*cfg.Duration+45*time.Second)
			defer cancel()
		}
		res, err := d.run(runCtx, cfg)
		<-prof
		u1 := srv.usage()
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", name, err)
		}
		s.Results = append(s.Results, res)
		if err := res.Err(); err != nil {
			return res, 0, fmt.Errorf("%s: %w", name, err)
		}
		return res, (u1.cpu - u0.cpu).Seconds(), nil
	}
	perGB := func(cpu float64, bytes int64) float64 {
		if bytes == 0 {
			return 0
		}
		return cpu / (float64(bytes) / 1e9)
	}
	latency := func(prefix string, l *loadgen.Latency) {
		if l != nil {
			s.Metrics[prefix+"p50_ms"] = l.P50
			s.Metrics[prefix+"p99_ms"] = l.P99
			s.Metrics[prefix+"p999_ms"] = l.P999
		}
	}
	// fill writes c.FillBytes as fast as the system takes them with the
	// given acks, not measured but timed.
	fill := func(acks string) error {
		f := cfg
		f.Mode = loadgen.ModeProduce
		f.Acks = acks
		f.Producers = 2
		f.Count = c.FillBytes / int64(c.RecordSize)
		began := time.Now()
		res, _, err := phase("fill", f)
		if err != nil {
			return err
		}
		s.Metrics["fill_s"] = time.Since(began).Seconds()
		s.Metrics["fill_mb_s"] = res.MBPerSec
		// A fill at acks=1 outruns the disk and leaves gigabytes dirty in
		// the page cache: wait until they are written (sync(2)), so that
		// the measured phase meets retained data, not the fill's writeback.
		began = time.Now()
		syscall.Sync()
		s.Metrics["settle_s"] = time.Since(began).Seconds()
		return nil
	}

	switch c.Workload {
	case 1:
		p := cfg
		p.Mode = loadgen.ModeProduce
		p.Duration = rn.o.duration
		res, cpu, err := phase("produce", p)
		if err != nil {
			return err
		}
		s.Metrics["produce_mb_s"] = res.MBPerSec
		s.Metrics["produce_rec_s"] = res.RecordsPerSec
		s.Metrics["produce_cpu_s_gb"] = perGB(cpu, res.Bytes)
		latency("produce_", res.Latency)
		rd := cfg
		rd.Mode = loadgen.ModeConsume
		res, cpu, err = phase("consume", rd)
		if err != nil {
			return err
		}
		s.Metrics["consume_mb_s"] = res.MBPerSec
		s.Metrics["consume_rec_s"] = res.RecordsPerSec
		s.Metrics["consume_cpu_s_gb"] = perGB(cpu, res.Bytes)
	case 2, 3, 4, 6:
		if c.Workload == 6 {
			if err := fill("1"); err != nil {
				return err
			}
		}
		e := cfg
		e.Mode = loadgen.ModeE2E
		e.Duration = rn.o.duration
		if c.RateMB > 0 {
			e.Rate = c.RateMB * mebibyte / float64(c.RecordSize)
		}
		res, cpu, err := phase("e2e", e)
		if err != nil {
			return err
		}
		s.Metrics["e2e_mb_s"] = res.MBPerSec
		s.Metrics["e2e_rec_s"] = res.RecordsPerSec
		s.Metrics["cpu_s_gb"] = perGB(cpu, res.Bytes)
		latency("e2e_", res.Latency)
	case 5:
		// The fill is not measured and reading does not depend on how the
		// records were acknowledged: fill at acks=1, so that NATS with a
		// sync per write does not take minutes over it.
		if err := fill("1"); err != nil {
			return err
		}
		rd := cfg
		rd.Mode = loadgen.ModeConsume
		u0 := srv.usage()
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			bytes int64
			errs  []error
		)
		began := time.Now()
		for g := range c.Groups {
			wg.Go(func() {
				res, err := d.run(ctx, rd)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					err = res.Err()
					s.Results = append(s.Results, res)
					bytes += res.Bytes
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("group %d: %w", g, err))
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(began)
		u1 := srv.usage()
		if len(errs) > 0 {
			return errs[0]
		}
		s.Metrics["fanout_mb_s"] = float64(bytes) / elapsed.Seconds() / mebibyte
		s.Metrics["consume_cpu_s_gb"] = perGB((u1.cpu - u0.cpu).Seconds(), bytes)
	}

	if rss, err := srv.peakRSS(); err == nil {
		s.Metrics["peak_rss_mib"] = float64(rss) / mebibyte
	}
	if n, err := srv.openFiles(); err == nil {
		s.Metrics["open_files"] = float64(n)
	}
	if c.Workload == 4 && system != sysKfake {
		// Restart after SIGKILL: until the topic is usable again.
		srv.kill()
		began := time.Now()
		if _, err := srv.start(); err != nil {
			return fmt.Errorf("restart: %w", err)
		}
		if err := d.createTopic(ctx, topic, c.Partitions); err != nil {
			return fmt.Errorf("after restart: %w", err)
		}
		s.Metrics["restart_s"] = time.Since(began).Seconds()
	}
	return nil
}

// profile saves a CPU profile of Samsa over cfg's duration from
// /debug/pprof, when -cpuprofile-dir is set and the phase has a duration;
// the channel is closed when it is saved.
func (rn *runner) profile(srv *server, name string, cfg loadgen.Config) <-chan struct{} {
	done := make(chan struct{})
	if rn.o.profileDir == "" || srv.httpAddr == "" || cfg.Duration <= 0 {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		secs := max(1, int(cfg.Duration/time.Second))
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", srv.httpAddr, secs))
		if err != nil {
			log.Printf("profile %s: %v", name, err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(rn.o.profileDir, name+".pprof"))
		if err != nil {
			log.Printf("profile %s: %v", name, err)
			return
		}
		defer f.Close()
		if _, err := io.Copy(f, resp.Body); err != nil {
			log.Printf("profile %s: %v", name, err)
		}
	}()
	return done
}
