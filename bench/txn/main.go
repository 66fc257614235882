// Command txn measures what exactly-once costs on `samsa serve`, run as a
// subprocess on a real disk:
//
//   - produce throughput of franz-go with idempotence on (its default) and
//     off (kgo.DisableIdempotentWrite), everything else equal: acks=all
//     (franz-go refuses idempotence without it), 100-byte records, linger
//     5 ms, 1 MiB batches, five produce requests in flight, one client
//     producing as fast as the broker acknowledges;
//   - transactions per second of small transactions (begin, 10 records
//     over the topic's partitions, commit), from one transactional producer
//     and from several in parallel, each with its own transactional id.
//
// The two produce modes alternate (the order swapped every round), as do
// the transaction runs; the report gives every run, the medians, and the
// idempotent/plain ratio.
//
// Run it from the module root:
//
//	go run ./bench/txn -data-dir /work/benchdata-txn
//
// The broker's data directory is created under -data-dir and removed at
// the end. Results go to docs/benchmarks.md by hand.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const recordSize = 100

type options struct {
	dataRoot    string
	samsaBin    string
	addr        string
	rounds      int
	duration    time.Duration
	txnDuration time.Duration
	partitions  int32
	parallel    []int
	txnRecords  int
	txnBackoff  time.Duration
}

func main() {
	var o options
	var parallel string
	flag.StringVar(&o.dataRoot, "data-dir", "", "directory for the broker's data (on a real disk); required unless -addr")
	flag.StringVar(&o.samsaBin, "samsa", "", "samsa binary (default: go build ./cmd/samsa)")
	flag.StringVar(&o.addr, "addr", "", "use the broker at this address instead of starting one")
	flag.IntVar(&o.rounds, "rounds", 5, "rounds; each runs every configuration once")
	flag.DurationVar(&o.duration, "duration", 8*time.Second, "length of each produce run; 0 skips them")
	flag.DurationVar(&o.txnDuration, "txn-duration", 8*time.Second, "length of each transaction run")
	var partitions int
	flag.IntVar(&partitions, "partitions", 6, "partitions of each topic")
	flag.StringVar(&parallel, "parallel", "1,4", "transactional producers running at once, per transaction run")
	flag.IntVar(&o.txnRecords, "txn-records", 10, "records per transaction")
	flag.DurationVar(&o.txnBackoff, "txn-backoff", 0, "franz-go's ConcurrentTransactionsBackoff (0: its default, 20 ms)")
	flag.Parse()
	o.partitions = int32(partitions)
	for _, f := range strings.Split(parallel, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			log.Fatalf("-parallel: %q is not a positive number", f)
		}
		o.parallel = append(o.parallel, n)
	}
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

func run(o options) error {
	addr := o.addr
	pid := 0 // the broker's, for its CPU time; 0 when not ours
	if addr == "" {
		if o.dataRoot == "" {
			return errors.New("-data-dir is required (or -addr)")
		}
		stop, a, p, err := startSamsa(o)
		if err != nil {
			return err
		}
		defer stop()
		addr, pid = a, p
	}
	ctx := context.Background()
	fmt.Printf("load average at start: %s\n", loadavg())

	// Warm up: a produce run whose result is dropped.
	if o.duration > 0 {
		if _, err := produceRun(ctx, addr, "warmup", o.partitions, 2*time.Second, true); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}

	rates := map[string][]float64{} // configuration → records/s or transactions/s, per round
	cpu := map[bool][]float64{}     // idempotent → broker CPU µs per 1000 records, per round
	var order []string
	note := func(name string, v float64) {
		if _, ok := rates[name]; !ok {
			order = append(order, name)
		}
		rates[name] = append(rates[name], v)
	}
	for round := 1; round <= o.rounds; round++ {
		modes := []bool{true, false}
		if round%2 == 0 {
			slices.Reverse(modes)
		}
		if o.duration <= 0 {
			modes = nil
		}
		for _, idem := range modes {
			name := modeName(idem)
			cpu0 := cpuTime(pid)
			res, err := produceRun(ctx, addr, fmt.Sprintf("produce-%s-r%d", name, round), o.partitions, o.duration, idem)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round, name, err)
			}
			perK := float64((cpuTime(pid) - cpu0).Microseconds()) / float64(res.records) * 1000
			rate := float64(res.records) / res.elapsed.Seconds()
			note("produce "+name, rate)
			cpu[idem] = append(cpu[idem], perK)
			fmt.Printf("round %d  produce %-10s %9.0f records/s  %6.1f MB/s  broker CPU %4.0f µs/1000 records  (load %s)\n",
				round, name, rate, rate*recordSize/1e6, perK, loadavg())
		}
		par := slices.Clone(o.parallel)
		if round%2 == 0 {
			slices.Reverse(par)
		}
		for _, n := range par {
			res, err := txnRun(ctx, addr, fmt.Sprintf("txn-p%d-r%d", n, round), o, n)
			if err != nil {
				return fmt.Errorf("round %d, %d transactional producers: %w", round, n, err)
			}
			rate := float64(res.txns) / res.elapsed.Seconds()
			note(fmt.Sprintf("transactions x%d", n), rate)
			fmt.Printf("round %d  %d transactional producer(s)  %7.0f transactions/s  p50 %v  p99 %v  (load %s)\n",
				round, n, rate, res.p50.Round(time.Microsecond), res.p99.Round(time.Microsecond), loadavg())
		}
	}

	fmt.Printf("\nmedians over %d rounds (load average at end: %s)\n", o.rounds, loadavg())
	for _, name := range order {
		unit := "records/s"
		if strings.HasPrefix(name, "transactions") {
			unit = "transactions/s"
		}
		fmt.Printf("  %-24s %9.0f %s   runs %s\n", name, median(rates[name]), unit, formatRuns(rates[name]))
	}
	if o.duration <= 0 {
		return nil
	}
	// Each round's two runs are neighbours in time: their ratio drifts
	// less with the machine's other load than the medians do.
	var paired []float64
	idems, plains := rates["produce "+modeName(true)], rates["produce "+modeName(false)]
	for i := range idems {
		paired = append(paired, idems[i]/plains[i])
	}
	ratio := median(paired)
	verdict := "idempotence costs less than 5%"
	if ratio < 0.95 {
		verdict = "idempotence costs MORE than 5%"
	}
	fmt.Printf("  idempotent / plain: %.3f of the medians; %.3f median of the rounds' ratios (%s)\n",
		median(idems)/median(plains), ratio, verdict)
	if pid != 0 {
		fmt.Printf("  broker CPU per 1000 records: idempotent %.0f µs, plain %.0f µs (medians)\n", median(cpu[true]), median(cpu[false]))
	}
	return nil
}

func modeName(idempotent bool) string {
	if idempotent {
		return "idempotent"
	}
	return "plain"
}

type produceResult struct {
	records int64
	elapsed time.Duration
}

// produceRun produces 100-byte records to a new topic for d, then waits
// for every record to be acknowledged; the rate counts all of them over
// the whole time.
func produceRun(ctx context.Context, addr, topic string, partitions int32, d time.Duration, idempotent bool) (produceResult, error) {
	if err := createTopic(ctx, addr, topic, partitions); err != nil {
		return produceResult{}, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.ProducerBatchMaxBytes(1 << 20),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(100_000),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
	}
	if !idempotent {
		// Five in flight, as the idempotent producer has (its default
		// without idempotence is one).
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(5))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return produceResult{}, err
	}
	defer cl.Close()
	value := make([]byte, recordSize)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	var acked atomic.Int64
	var firstErr atomic.Value
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			firstErr.CompareAndSwap(nil, err)
			return
		}
		acked.Add(1)
	}
	start := time.Now()
	for deadline := start.Add(d); time.Now().Before(deadline); {
		for range 1000 {
			cl.Produce(ctx, &kgo.Record{Value: value}, done)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return produceResult{}, err
	}
	elapsed := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		return produceResult{}, err
	}
	return produceResult{records: acked.Load(), elapsed: elapsed}, nil
}

type txnResult struct {
	txns     int64
	elapsed  time.Duration
	p50, p99 time.Duration // per transaction, begin to commit acknowledged
}

// txnRun runs n transactional producers at once for o.txnDuration, each
// committing transactions of o.txnRecords records to a new topic.
func txnRun(ctx context.Context, addr, topic string, o options, n int) (txnResult, error) {
	if err := createTopic(ctx, addr, topic, o.partitions); err != nil {
		return txnResult{}, err
	}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		firstErr  error
		wg        sync.WaitGroup
	)
	value := make([]byte, recordSize)
	start := time.Now()
	deadline := start.Add(o.txnDuration)
	for i := range n {
		wg.Go(func() {
			lat, err := txnProducer(ctx, addr, topic, fmt.Sprintf("%s-%d", topic, i), o, value, deadline)
			mu.Lock()
			defer mu.Unlock()
			latencies = append(latencies, lat...)
			if err != nil && firstErr == nil {
				firstErr = err
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return txnResult{}, firstErr
	}
	slices.Sort(latencies)
	res := txnResult{txns: int64(len(latencies)), elapsed: elapsed}
	if len(latencies) > 0 {
		res.p50 = latencies[len(latencies)/2]
		res.p99 = latencies[len(latencies)*99/100]
	}
	return res, nil
}

// txnProducer commits transactions until deadline and returns how long
// each took.
func txnProducer(ctx context.Context, addr, topic, id string, o options, value []byte, deadline time.Time) ([]time.Duration, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.DefaultProduceTopic(topic),
		kgo.TransactionalID(id),
		kgo.ProducerLinger(0),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
	}
	if o.txnBackoff > 0 {
		opts = append(opts, kgo.ConcurrentTransactionsBackoff(o.txnBackoff))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	recs := make([]*kgo.Record, o.txnRecords)
	var out []time.Duration
	for time.Now().Before(deadline) {
		t0 := time.Now()
		if err := cl.BeginTransaction(); err != nil {
			return out, err
		}
		for i := range recs {
			recs[i] = &kgo.Record{Value: value}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return out, fmt.Errorf("produce: %w", err)
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return out, fmt.Errorf("commit: %w", err)
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}

func createTopic(ctx context.Context, addr, topic string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic)
	if err != nil {
		return err
	}
	return resp.Err
}

// startSamsa builds samsa if needed and runs `samsa serve` on a new
// directory under o.dataRoot; stop ends it with SIGTERM and removes the
// directory (and the binary it built).
func startSamsa(o options) (stop func(), addr string, pid int, err error) {
	if err := os.MkdirAll(o.dataRoot, 0o755); err != nil {
		return nil, "", 0, err
	}
	dir, err := os.MkdirTemp(o.dataRoot, "samsa-")
	if err != nil {
		return nil, "", 0, err
	}
	cleanup := []func(){func() { os.RemoveAll(dir) }}
	undo := func() {
		for _, f := range slices.Backward(cleanup) {
			f()
		}
	}
	bin := o.samsaBin
	if bin == "" {
		bin = filepath.Join(dir, "samsa-bin")
		if out, err := exec.Command("go", "build", "-o", bin, "./cmd/samsa").CombinedOutput(); err != nil {
			undo()
			return nil, "", 0, fmt.Errorf("go build ./cmd/samsa: %v\n%s", err, out)
		}
	}
	addr, httpAddr := freeAddr(), freeAddr()
	logf, err := os.Create(filepath.Join(dir, "samsa.log"))
	if err != nil {
		undo()
		return nil, "", 0, err
	}
	cmd := exec.Command(bin, "serve", "--data-dir", filepath.Join(dir, "data"),
		"--kafka-addr", addr, "--http-addr", httpAddr, "--auto-create-topics=false", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		undo()
		return nil, "", 0, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	cleanup = append(cleanup, func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	for ready := time.Now().Add(60 * time.Second); ; {
		if resp, err := http.Get("http://" + httpAddr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(logf.Name())
			undo()
			return nil, "", 0, fmt.Errorf("samsa exited while starting:\n%s", b)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(ready) {
			undo()
			return nil, "", 0, errors.New("samsa not ready after 60 s")
		}
	}
	fmt.Printf("samsa serve on %s, data in %s\n", addr, dir)
	return undo, addr, cmd.Process.Pid, nil
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// cpuTime is the user and system CPU time of process pid so far
// (/proc/<pid>/stat, in USER_HZ = 100 ticks a second); 0 for pid 0.
func cpuTime(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis. utime and stime are fields 14 and 15.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// loadavg is the first three fields of /proc/loadavg.
func loadavg() string {
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

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func formatRuns(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, strconv.FormatFloat(x, 'f', 0, 64))
	}
	return strings.Join(parts, " ")
}
