// Command compare runs the same workloads against Samsa, franz-go's
// in-memory kfake and NATS JetStream (file storage) on this machine, and
// reports medians, ratios and a chart: the comparison harness of issue 7.
//
// Each system runs as a subprocess of its own on loopback (`samsa serve`,
// bench/kfakeserver, bench/natsserver), started fresh for every sample, so
// that its CPU time (/proc/<pid>/stat), peak RSS (VmHWM) and open files
// (/proc/<pid>/fd) are its alone. The load comes from this process: package
// loadgen (the engine of `samsa bench`) with the same franz-go settings for
// Samsa and kfake, and the nearest JetStream equivalent for NATS
// (natsload.go documents the mapping). Runs are interleaved: every round
// runs each case on every system, the order of the systems rotating from
// round to round.
//
// One command, from the module root:
//
//	go run ./bench/compare -data-dir /work/benchdata-compare
//
// -workloads picks among the six (default 1,2,3); -acks runs each
// with acks=all (Samsa fsyncs before answering; NATS runs with
// sync_interval=always) and acks=1. -json prints the full report (every
// sample and the medians) as JSON instead of Markdown; -out and -svg write
// the JSON and the chart to files; -from-json renders a saved report again
// without running anything.
package main

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/samsa-io/samsa/loadgen"
)

type options struct {
	dataRoot        string
	work            string // this run's directory under dataRoot
	systems         []string
	workloads       []int
	acks            []string
	rounds          int
	duration        time.Duration
	linger          time.Duration
	natsMaxPending  int
	rateMB          float64
	scaleRateMB     float64
	scalePartitions []int32
	fanoutGroups    []int
	fanoutMB        float64
	prefillGB       []float64
	caseTimeout     time.Duration
	profileDir      string
	bins            binaries
}

func main() {
	log.SetFlags(log.Ltime)
	var o options
	var systems, workloads, acks, scaleParts, groups, prefill string
	flag.StringVar(&o.dataRoot, "data-dir", "benchdata-compare", "parent of the systems' data directories (a real disk, not tmpfs)")
	flag.StringVar(&systems, "systems", "samsa,kfake,nats", "systems, in the order of the first round (rotated after)")
	flag.StringVar(&workloads, "workloads", "1,2,3", "workloads of issue 7 to run (1-6)")
	flag.StringVar(&acks, "acks", "all,1", "acks settings: all (-1) and/or 1")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each runs every case on every system")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each measured phase sends")
	flag.DurationVar(&o.linger, "linger", loadgen.DefaultLinger, "Kafka producers' linger (franz-go ProducerLinger; loadgen's default is Kafka 4.0's 5ms)")
	flag.IntVar(&o.natsMaxPending, "nats-max-pending", natsMaxPending, "NATS producers' async publishes awaiting acks (nats.go's default)")
	flag.Float64Var(&o.rateMB, "rate-mb", 50, "workload 3: target rate, MiB/s of record values")
	flag.Float64Var(&o.scaleRateMB, "scale-rate-mb", 10, "workload 4: total rate, MiB/s of record values")
	flag.StringVar(&scaleParts, "scale-partitions", "1,100,1000,10000", "workload 4: partition counts")
	flag.StringVar(&groups, "fanout-groups", "1,4,16", "workload 5: numbers of consumer groups")
	flag.Float64Var(&o.fanoutMB, "fanout-mb", 256, "workload 5: MiB written before the groups read")
	flag.StringVar(&prefill, "prefill-gb", "1", "workload 6: GB (10^9 bytes) of retained data, comma-separated (e.g. 1,50)")
	flag.DurationVar(&o.caseTimeout, "case-timeout", 15*time.Minute, "give up on one sample after this long")
	flag.StringVar(&o.profileDir, "cpuprofile-dir", "", "save CPU profiles of Samsa's measured phases here (perturbs the numbers: use a separate run)")
	flag.StringVar(&o.bins.samsa, "samsa", "", "samsa binary (default: go build ./cmd/samsa)")
	flag.StringVar(&o.bins.kfake, "kfake", "", "kfakeserver binary (default: go build ./bench/kfakeserver)")
	flag.StringVar(&o.bins.nats, "nats", "", "natsserver binary (default: go build ./bench/natsserver)")
	jsonOut := flag.Bool("json", false, "print the report as JSON instead of Markdown")
	outPath := flag.String("out", "", "also write the JSON report to this file")
	svgPath := flag.String("svg", "", "write the chart (SVG) to this file")
	mdPath := flag.String("md", "", "also write the Markdown report to this file")
	selfProfile := flag.String("harness-cpuprofile", "", "write a CPU profile of this process (the load generators) to this file")
	fromJSON := flag.String("from-json", "", "render a saved JSON report (-out) instead of running")
	flag.Parse()

	if *selfProfile != "" {
		f, err := os.Create(*selfProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}

	var rep *report
	if *fromJSON != "" {
		b, err := os.ReadFile(*fromJSON)
		if err != nil {
			log.Fatal(err)
		}
		rep = new(report)
		if err := json.Unmarshal(b, rep); err != nil {
			log.Fatalf("%s: %v", *fromJSON, err)
		}
	} else {
		var err error
		o.systems = splitList(systems)
		for _, s := range o.systems {
			if s != sysSamsa && s != sysKfake && s != sysNATS {
				log.Fatalf("unknown system %q: use samsa, kfake, nats", s)
			}
		}
		if o.workloads, err = parseInts[int](workloads, 1, 6); err != nil {
			log.Fatalf("-workloads: %v", err)
		}
		if o.scalePartitions, err = parseInts[int32](scaleParts, 1, 100000); err != nil {
			log.Fatalf("-scale-partitions: %v", err)
		}
		if o.fanoutGroups, err = parseInts[int](groups, 1, 256); err != nil {
			log.Fatalf("-fanout-groups: %v", err)
		}
		for _, a := range splitList(acks) {
			switch a {
			case "all", "-1":
				o.acks = append(o.acks, "all")
			case "1":
				o.acks = append(o.acks, "1")
			default:
				log.Fatalf("-acks: %q: use all or 1", a)
			}
		}
		for _, g := range splitList(prefill) {
			v, err := strconv.ParseFloat(g, 64)
			if err != nil || v <= 0 {
				log.Fatalf("-prefill-gb: bad %q", g)
			}
			o.prefillGB = append(o.prefillGB, v)
		}
		if rep, err = benchmark(&o); err != nil {
			log.Fatal(err)
		}
	}

	rep.summarize()
	if *outPath != "" {
		if err := writeFile(*outPath, rep.writeJSON); err != nil {
			log.Fatal(err)
		}
	}
	if *svgPath != "" {
		if err := writeFile(*svgPath, rep.writeSVG); err != nil {
			log.Fatal(err)
		}
	}
	if *mdPath != "" {
		if err := writeFile(*mdPath, rep.writeMarkdown); err != nil {
			log.Fatal(err)
		}
	}
	var err error
	if *jsonOut {
		err = rep.writeJSON(os.Stdout)
	} else {
		err = rep.writeMarkdown(os.Stdout)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// benchmark runs every case on every system, round after round.
func benchmark(o *options) (*report, error) {
	if err := os.MkdirAll(o.dataRoot, 0o755); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(o.dataRoot, "compare-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	o.work = work
	var missing []string
	for _, s := range o.systems {
		if (s == sysSamsa && o.bins.samsa == "") || (s == sysKfake && o.bins.kfake == "") || (s == sysNATS && o.bins.nats == "") {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		built, err := buildBinaries(work, missing)
		if err != nil {
			return nil, err
		}
		o.bins.samsa = cmp.Or(o.bins.samsa, built.samsa)
		o.bins.kfake = cmp.Or(o.bins.kfake, built.kfake)
		o.bins.nats = cmp.Or(o.bins.nats, built.nats)
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return nil, err
		}
	}

	rep := &report{
		Machine:  describeMachine(o.dataRoot),
		Started:  time.Now().UTC(),
		LoadFrom: loadAvg(),
		Settings: settings{
			Systems: o.systems, Rounds: o.rounds, DurationS: o.duration.Seconds(),
			LingerMS:       float64(o.linger) / float64(time.Millisecond),
			NATSMaxPending: o.natsMaxPending,
			Args:           os.Args[1:],
		},
	}
	rep.Cases = buildCases(o)
	rn := &runner{o: o}
	rn.bins = o.bins
	log.Printf("%d cases × %d systems × %d rounds; data in %s; load average %s", len(rep.Cases), len(o.systems), o.rounds, work, rep.LoadFrom)
	for round := 1; round <= o.rounds; round++ {
		for _, c := range rep.Cases {
			for i, system := range rotate(o.systems, round) {
				if system == c.SkipSystem {
					continue
				}
				s := rn.run(c, system, round, i)
				rep.Samples = append(rep.Samples, s)
				log.Printf("round %d %s %s: %s", round, c.ID, system, s.oneLine())
			}
		}
	}
	rep.Finished = time.Now().UTC()
	rep.LoadTo = loadAvg()
	return rep, nil
}

// rotate starts the list at a different system every round.
func rotate(systems []string, round int) []string {
	k := (round - 1) % len(systems)
	return append(append([]string(nil), systems[k:]...), systems[:k]...)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseInts[T int | int32](s string, lo, hi int) ([]T, error) {
	var out []T
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < lo || n > hi {
			return nil, fmt.Errorf("bad %q: want %d to %d", f, lo, hi)
		}
		out = append(out, T(n))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return out, nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// describeMachine records what the numbers were measured on.
func describeMachine(dataRoot string) machine {
	m := machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		m.Memory = strings.Join(strings.Fields(line)[1:], " ")
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("findmnt", "-n", "-o", "SOURCE,FSTYPE", "-T", dataRoot).Output(); err == nil {
		m.DataFS = strings.Join(strings.Fields(string(out)), " ")
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}
