// Command broker benchmarks `samsa serve` against franz-go's in-memory kfake
// broker, each run as a subprocess of its own so that its CPU time
// (/proc/<pid>/stat) and peak RSS (/proc/<pid>/status VmHWM) are the
// broker's alone. The load generator is a franz-go client in this process:
// 100-byte records, linger 5 ms, 1 MiB batches, for each partition count
// and acks setting; then a second client reads everything back from the
// start. Runs alternate between the brokers, round after round, and the
// report gives medians and the Samsa/kfake ratio.
//
// Run it from the module root (it builds both brokers with `go build`):
//
//	go run ./bench/broker -data-dir /work/benchdata
//
// The data directory must be on a real disk (not tmpfs) for Samsa's fsync
// to mean anything; each run's directory is removed after it. Results go to
// docs/benchmarks.md by hand; nothing here is asserted by a test.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// config is one benchmark configuration.
type config struct {
	Partitions int32
	Acks       int
}

func (c config) String() string { return fmt.Sprintf("p%d-acks%d", c.Partitions, c.Acks) }

// run is what one broker measured for one configuration in one round.
type run struct {
	Broker string
	Config config
	Round  int
	Load   string // /proc/loadavg when the run started

	Produced    int64
	ProduceTime time.Duration
	P50, P99    time.Duration
	ProduceCPU  time.Duration // broker CPU during the produce phase
	ConsumeTime time.Duration
	ConsumeCPU  time.Duration // broker CPU during the consume phase
	PeakRSS     int64         // VmHWM at the end of the run, bytes
	// Samsa's group commit during the produce phase (from /metrics):
	// rounds, logs covered summed over rounds, and time spent syncing.
	FlushRounds, FlushLogs int64
	FlushTime              time.Duration
	// RSS at the end of the run, split as /proc/<pid>/status does:
	// anonymous memory, and pages of mapped files.
	RSSAnon, RSSFile int64
}

// idle is a broker's memory at rest.
type idle struct {
	Broker      string
	Round       int
	RSSEmpty    int64 // VmRSS after start, no topics
	RSSTopic    int64 // VmRSS with one topic of 16 partitions
	PeakRSSIdle int64 // VmHWM at the end
}

type options struct {
	dataRoot   string
	logDir     string
	samsaBin   string
	kfakeBin   string
	rounds     int
	duration   time.Duration
	settle     time.Duration
	configs    []config
	brokers    []string
	profileDir string
	out        string
	skipIdle   bool
}

func main() {
	log.SetFlags(log.Ltime)
	var o options
	var partitions, acks, brokers string
	flag.StringVar(&o.dataRoot, "data-dir", "benchdata", "parent of the brokers' data directories (on a real disk, not tmpfs)")
	flag.StringVar(&o.samsaBin, "samsa", "", "samsa binary (default: go build ./cmd/samsa)")
	flag.StringVar(&o.kfakeBin, "kfake", "", "kfakeserver binary (default: go build ./bench/kfakeserver)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each round runs every configuration on every broker")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each produce phase writes")
	flag.DurationVar(&o.settle, "settle", 2*time.Second, "wait before reading an idle broker's RSS")
	flag.StringVar(&partitions, "partitions", "1,16", "partition counts")
	flag.StringVar(&acks, "acks", "1,-1", "acks settings (1 or -1)")
	flag.StringVar(&brokers, "brokers", "samsa,kfake", "brokers, in the order of the first round (alternated after)")
	flag.StringVar(&o.profileDir, "cpuprofile-dir", "", "save CPU profiles of Samsa's produce and consume phases here (from /debug/pprof); perturbs the numbers, so use on a separate run")
	flag.StringVar(&o.out, "out", "", "also write every run as JSON to this file")
	clientLog := flag.Bool("client-log", false, "log the benchmark clients at info level, not only warnings")
	flag.BoolVar(&o.skipIdle, "skip-idle", false, "skip the idle RSS measurement")
	flag.Parse()

	if *clientLog {
		clientLogger = kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, nil)
	}
	for _, p := range strings.Split(partitions, ",") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			log.Fatalf("bad -partitions %q", partitions)
		}
		for _, a := range strings.Split(acks, ",") {
			k, err := strconv.Atoi(a)
			if err != nil || (k != 1 && k != -1) {
				log.Fatalf("bad -acks %q", acks)
			}
			o.configs = append(o.configs, config{Partitions: int32(n), Acks: k})
		}
	}
	o.brokers = strings.Split(brokers, ",")
	if err := benchmark(o); err != nil {
		log.Fatal(err)
	}
}

func benchmark(o options) error {
	if err := os.MkdirAll(o.dataRoot, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp(o.dataRoot, "bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	o.logDir = work
	if o.samsaBin == "" || o.kfakeBin == "" {
		samsaBin, kfakeBin, err := buildBinaries(work)
		if err != nil {
			return err
		}
		o.samsaBin = cmp.Or(o.samsaBin, samsaBin)
		o.kfakeBin = cmp.Or(o.kfakeBin, kfakeBin)
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}
	log.Printf("data in %s; load average %s", work, loadAvg())

	var idles []idle
	if !o.skipIdle {
		for round := 1; round <= o.rounds; round++ {
			for _, b := range order(o.brokers, round) {
				m, err := measureIdle(o, b, round)
				if err != nil {
					return fmt.Errorf("idle %s: %w", b, err)
				}
				log.Printf("idle %s round %d: RSS %.1f MiB empty, %.1f MiB with 16 partitions", b, round, mib(m.RSSEmpty), mib(m.RSSTopic))
				idles = append(idles, m)
			}
		}
	}

	var runs []run
	for round := 1; round <= o.rounds; round++ {
		for _, c := range o.configs {
			for _, b := range order(o.brokers, round) {
				r, err := measure(o, b, c, round)
				if err != nil {
					return fmt.Errorf("%s %s round %d: %w", b, c, round, err)
				}
				log.Printf("%s %s round %d: produce %.0f rec/s (p50 %v p99 %v, %.2f CPU s/GB%s), consume %.0f rec/s (%.2f CPU s/GB), peak RSS %.0f MiB (at the end: anon %.0f MiB, file %.0f MiB); load %s",
					b, c, round, r.produceRate(), r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond),
					r.produceCPUPerGB(), r.flushSummary(), r.consumeRate(), r.consumeCPUPerGB(), mib(r.PeakRSS), mib(r.RSSAnon), mib(r.RSSFile), r.Load)
				runs = append(runs, r)
			}
		}
	}
	log.Printf("done; load average %s", loadAvg())

	if o.out != "" {
		b, err := json.MarshalIndent(struct {
			Idle []idle
			Runs []run
		}{idles, runs}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.out, b, 0o644); err != nil {
			return err
		}
	}
	report(os.Stdout, o, idles, runs)
	return nil
}

// order rotates brokers by round, so that no broker always runs first.
func order(brokers []string, round int) []string {
	k := (round - 1) % len(brokers)
	return append(append([]string(nil), brokers[k:]...), brokers[:k]...)
}

func start(o options, broker string) (*brokerProc, error) {
	switch broker {
	case "samsa":
		return startSamsa(o.samsaBin, o.logDir, o.logDir)
	case "kfake":
		return startKfake(o.kfakeBin, o.logDir)
	}
	return nil, fmt.Errorf("unknown broker %q", broker)
}

// measureIdle starts a broker, reads its RSS after settling, creates a topic
// of 16 partitions, and reads it again.
func measureIdle(o options, broker string, round int) (idle, error) {
	p, err := start(o, broker)
	if err != nil {
		return idle{}, err
	}
	defer p.stop()
	m := idle{Broker: broker, Round: round}
	time.Sleep(o.settle)
	if m.RSSEmpty, _, err = p.memory(); err != nil {
		return m, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := createTopic(ctx, p.addr, "idle", 16); err != nil {
		return m, err
	}
	time.Sleep(o.settle)
	m.RSSTopic, m.PeakRSSIdle, err = p.memory()
	return m, err
}

// measure runs one configuration on a fresh broker.
func measure(o options, broker string, c config, round int) (run, error) {
	r := run{Broker: broker, Config: c, Round: round, Load: loadAvg()}
	p, err := start(o, broker)
	if err != nil {
		return r, err
	}
	defer p.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const topic = "bench"
	if err := createTopic(ctx, p.addr, topic, c.Partitions); err != nil {
		return r, err
	}

	name := fmt.Sprintf("%s-%s-r%d", broker, c, round)
	cpu0, err := p.cpu()
	if err != nil {
		return r, err
	}
	flush0, err := p.flushStats()
	if err != nil {
		return r, err
	}
	profDone := p.profile(o, name+"-produce", o.duration)
	pr, err := produce(ctx, p.addr, topic, c.Acks, c.Partitions, o.duration)
	if err != nil {
		return r, fmt.Errorf("produce: %w", err)
	}
	<-profDone
	cpu1, err := p.cpu()
	if err != nil {
		return r, err
	}
	r.Produced, r.ProduceTime, r.P50, r.P99 = pr.records, pr.elapsed, pr.p50, pr.p99
	r.ProduceCPU = cpu1 - cpu0
	flush1, err := p.flushStats()
	if err != nil {
		return r, err
	}
	r.FlushRounds, r.FlushLogs, r.FlushTime = flush1.rounds-flush0.rounds, flush1.logs-flush0.logs, flush1.time-flush0.time

	want := pr.records + int64(c.Partitions) // the warmup records too
	if r.ConsumeTime, err = consume(ctx, p.addr, topic, want); err != nil {
		return r, fmt.Errorf("consume: %w", err)
	}
	cpu2, err := p.cpu()
	if err != nil {
		return r, err
	}
	r.ConsumeCPU = cpu2 - cpu1
	m, err := p.status("VmHWM", "RssAnon", "RssFile")
	if err != nil {
		return r, err
	}
	r.PeakRSS, r.RSSAnon, r.RSSFile = m["VmHWM"], m["RssAnon"], m["RssFile"]

	if o.profileDir != "" && p.httpAddr != "" {
		// The consume phase is too short to profile on its own: read
		// everything again, over and over, while the profile runs.
		window := o.duration / 2
		profDone := p.profile(o, name+"-consume", window)
		for deadline := time.Now().Add(window); time.Now().Before(deadline); {
			if _, err := consume(ctx, p.addr, topic, want); err != nil {
				return r, fmt.Errorf("consume (profiling): %w", err)
			}
		}
		<-profDone
	}
	return r, nil
}

// profile fetches a CPU profile of d from Samsa's /debug/pprof/profile into
// o.profileDir/name.pprof, if profiling was asked for; the channel is
// closed when it is saved.
func (p *brokerProc) profile(o options, name string, d time.Duration) <-chan struct{} {
	done := make(chan struct{})
	if o.profileDir == "" || p.httpAddr == "" {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		secs := max(1, int(d.Round(time.Second)/time.Second))
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.httpAddr, secs))
		if err != nil {
			log.Printf("profile %s: %v", name, err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(o.profileDir, name+".pprof"))
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

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
