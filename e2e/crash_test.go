package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/time/rate"
)

const (
	crashTopic      = "crash"
	crashPartitions = 3
	// maxInFlight bounds the records produced and not yet acknowledged or
	// failed, and recordsPerSecond paces them: a steady load, and a log
	// small enough to read back whole after every restart.
	maxInFlight      = 512
	recordsPerSecond = 2000
)

// TestKill9UnderLoadLosesNoAcknowledgedRecord kills the broker with SIGKILL
// at random moments while an idempotent producer writes with acks=all, and
// after every restart checks that every acknowledged record is in the log
// exactly once, at the offset it was acknowledged with, with the offsets of
// each partition contiguous from 0. Records that were sent but never
// acknowledged may be there or not, but at most once.
//
// The kill moments come from a seeded RNG; SAMSA_CRASH_SEED=<seed> replays
// a run's schedule (the timing of the load itself cannot be replayed).
func TestKill9UnderLoadLosesNoAcknowledgedRecord(t *testing.T) {
	kills := 10
	if testing.Short() {
		kills = 3
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SAMSA_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("SAMSA_CRASH_SEED: %v", err)
		}
	}
	t.Logf("kill schedule seed %d (replay with SAMSA_CRASH_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	bp := newBrokerProcess(t)
	bp.start()

	adm, err := kgo.NewClient(kgo.SeedBrokers(bp.kafkaAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	created, err := kadm.NewClient(adm).CreateTopic(waitCtx(t, 30*time.Second), crashPartitions, 1, nil, crashTopic)
	if err == nil {
		err = created.Err
	}
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}

	led := newLedger()
	stopProducing := startProducer(t, bp.kafkaAddr, led, clientLog(t))

	for i := range kills {
		// Kill only once this run has acknowledged something, so that
		// every kill interrupts a broker under load.
		led.waitAcked(t, led.acked()+100, 60*time.Second)
		delay := time.Duration(rng.Int64N(int64(800*time.Millisecond))) + 20*time.Millisecond
		t.Logf("kill %d after %v (%d records acknowledged so far)", i+1, delay, led.acked())
		<-time.After(delay) // the kill moment is the point, not an event to wait for
		bp.kill()
		bp.start()
		verifyLog(t, bp.kafkaAddr, led.snapshot())
		if t.Failed() {
			t.FailNow()
		}
	}

	led.waitAcked(t, led.acked()+100, 60*time.Second)
	sent := stopProducing()
	final := led.snapshot()
	verifyLog(t, bp.kafkaAddr, final)
	t.Logf("%d records sent, %d acknowledged, %d failed", sent, final.count, final.failed)
	if final.failed > 0 {
		t.Errorf("%d records failed (first: %v); an idempotent producer with unlimited retries should see none",
			final.failed, final.firstErr)
	}
	if err := bp.stop(20 * time.Second); err != nil {
		t.Errorf("clean shutdown after the crashes: %v", err)
	}
}

// clientLog is the producer's debug log, in a file whose end goes to the
// test log when the test fails.
func clientLog(t *testing.T) kgo.Logger {
	path := filepath.Join(t.TempDir(), "client.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(path)
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			if len(lines) > 100 {
				lines = lines[len(lines)-100:]
			}
			t.Logf("producer log (last %d lines of %s):\n%s", len(lines), path, strings.Join(lines, "\n"))
		}
	})
	return kgo.BasicLogger(f, kgo.LogLevelDebug, nil)
}

// ledger records what the broker acknowledged: partition → offset → the
// sequence number the record's value encodes.
type ledger struct {
	mu       sync.Mutex
	offsets  [crashPartitions]map[int64]int64 // guarded by mu
	count    int                              // guarded by mu
	failed   int                              // guarded by mu
	firstErr error                            // guarded by mu
	changed  chan struct{}                    // guarded by mu; closed and replaced on every change
}

func newLedger() *ledger {
	l := &ledger{changed: make(chan struct{})}
	for p := range l.offsets {
		l.offsets[p] = map[int64]int64{}
	}
	return l
}

func (l *ledger) record(r *kgo.Record, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed++
		if l.firstErr == nil {
			l.firstErr = err
		}
	} else {
		seq, perr := strconv.ParseInt(string(r.Value), 10, 64)
		if perr != nil {
			panic(perr)
		}
		l.offsets[r.Partition][r.Offset] = seq
		l.count++
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *ledger) acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count
}

// waitAcked waits until n records are acknowledged.
func (l *ledger) waitAcked(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		count, failed, changed := l.count, l.failed, l.changed
		l.mu.Unlock()
		if count >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("only %d of %d records acknowledged after %v (%d failed)", count, n, timeout, failed)
		}
	}
}

type ledgerSnapshot struct {
	offsets  [crashPartitions]map[int64]int64
	count    int
	failed   int
	firstErr error
}

func (l *ledger) snapshot() ledgerSnapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := ledgerSnapshot{count: l.count, failed: l.failed, firstErr: l.firstErr}
	for p, m := range l.offsets {
		s.offsets[p] = make(map[int64]int64, len(m))
		for o, seq := range m {
			s.offsets[p][o] = seq
		}
	}
	return s
}

// startProducer produces records whose values are increasing sequence
// numbers, record n to partition n % crashPartitions, until the returned
// function is called; it then waits for every record sent to be
// acknowledged or failed and returns how many were sent.
func startProducer(t *testing.T, addr string, led *ledger, logger kgo.Logger) (stop func() int64) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.WithLogger(logger),
		// Find the restarted broker soon, not after the default 5 s.
		kgo.MetadataMinAge(50*time.Millisecond),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var sent int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		inFlight := make(chan struct{}, maxInFlight)
		pace := rate.NewLimiter(recordsPerSecond, 50)
		for seq := int64(0); ; seq++ {
			if pace.Wait(ctx) != nil {
				return
			}
			select {
			case inFlight <- struct{}{}:
			case <-ctx.Done():
				return
			}
			r := &kgo.Record{
				Topic:     crashTopic,
				Partition: int32(seq % crashPartitions),
				Value:     fmt.Appendf(nil, "%012d", seq),
			}
			sent++
			// Not ctx: stopping must not abandon records already sent.
			cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
				led.record(r, err)
				<-inFlight
			})
		}
	}()
	var once sync.Once
	stop = func() int64 {
		once.Do(func() {
			cancel()
			<-done
			fctx, fcancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer fcancel()
			if err := cl.Flush(fctx); err != nil {
				t.Errorf("flush: %v", err)
			}
			cl.Close()
		})
		return sent
	}
	t.Cleanup(func() { stop() })
	return stop
}

// verifyLog reads every partition from offset 0 to its end and checks the
// records against the acknowledgements in s.
func verifyLog(t *testing.T, addr string, s ledgerSnapshot) {
	t.Helper()
	ctx := waitCtx(t, 60*time.Second)
	admCl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	ends, err := kadm.NewClient(admCl).ListEndOffsets(ctx, crashTopic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	start := map[int32]kgo.Offset{}
	end := map[int32]int64{}
	for p := range int32(crashPartitions) {
		o, ok := ends.Lookup(crashTopic, p)
		if !ok {
			t.Fatalf("no end offset for partition %d", p)
		}
		start[p] = kgo.NewOffset().At(0)
		end[p] = o.Offset
	}

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{crashTopic: start}),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := make([][]*kgo.Record, crashPartitions)
	for p := range got {
		got[p] = make([]*kgo.Record, 0, end[int32(p)])
	}
	remaining := func() bool {
		for p := range got {
			if int64(len(got[p])) < end[int32(p)] {
				return true
			}
		}
		return false
	}
	for remaining() {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consuming: %v (have %d/%d/%d of %v)", ctx.Err(), len(got[0]), len(got[1]), len(got[2]), end)
		}
		for _, fe := range fetches.Errors() {
			t.Fatalf("fetch %s-%d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		fetches.EachRecord(func(r *kgo.Record) { got[r.Partition] = append(got[r.Partition], r) })
	}

	errs := 0
	errorf := func(format string, args ...any) {
		if errs++; errs <= 10 {
			t.Errorf(format, args...)
		}
	}
	for p, recs := range got {
		last := int64(-1)
		for i, r := range recs {
			if r.Offset != int64(i) {
				errorf("partition %d: record %d has offset %d: offsets are not contiguous from 0", p, i, r.Offset)
				break
			}
			seq, err := strconv.ParseInt(string(r.Value), 10, 64)
			if err != nil || seq%crashPartitions != int64(p) {
				errorf("partition %d offset %d: value %q was not produced to this partition", p, r.Offset, r.Value)
				continue
			}
			if seq <= last {
				errorf("partition %d offset %d: sequence %d after %d: a duplicate or out of order", p, r.Offset, seq, last)
			}
			last = seq
		}
		for o, seq := range s.offsets[p] {
			switch {
			case o >= int64(len(recs)):
				errorf("partition %d: acknowledged record %d at offset %d is missing (log ends at %d)", p, seq, o, len(recs))
			case string(recs[o].Value) != fmt.Sprintf("%012d", seq):
				errorf("partition %d offset %d: acknowledged record %d, found %q", p, o, seq, recs[o].Value)
			}
		}
	}
	if errs > 10 {
		t.Errorf("... and %d more", errs-10)
	}
	t.Logf("verified %d acknowledged records; log ends %v", s.count, end)
}
