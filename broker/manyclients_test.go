package broker_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/samsatest"
)

// TestManyClientsProduceAndFetchWithoutLeaks runs 200 franz-go clients at
// once for 30 seconds (5 with -short). Each has its own connections (one
// for metadata, one for produce, one for fetch: about 600 in all), produces
// acks=-1 batches of keyed records to one of 20 partitions as fast as the
// broker acknowledges them, and consumes that partition, checking that its
// own records arrive once each and in order. Afterwards every acknowledged
// record has been consumed, and once the clients are closed the process's
// goroutines and open file descriptors return to what they were before the
// load; if they do not, the leftovers are listed.
func TestManyClientsProduceAndFetchWithoutLeaks(t *testing.T) {
	const (
		clients    = 200
		partitions = 20
		topic      = "many"
	)
	load := 30 * time.Second
	if testing.Short() {
		load = 5 * time.Second
	}
	sb := samsatest.Start(t, watchRefusals(t))

	// Set up and warm up with one client, so that what the broker keeps
	// open once a partition has been written and read (segment and index
	// files) is in the baseline.
	setup, err := kgo.NewClient(kgo.SeedBrokers(sb.Addr()), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), load+60*time.Second)
	defer cancel()
	adm := kadm.NewClient(setup)
	if res, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil || res.Err != nil {
		t.Fatal(err, res.Err)
	}
	for p := range int32(partitions) {
		if err := setup.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("warm-up")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		fetchOnce(t, setup, topic, p, 0, 1, 0)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	setup.Close()
	// The baseline: once the set-up client and its connections are gone.
	waitFor(t, 10*time.Second, "the set-up client's goroutines to end", func() bool {
		for k := range goroutineKinds() {
			if strings.Contains(k, "franz-go") || strings.Contains(k, "samsa/broker.(*conn)") {
				return false
			}
		}
		return true
	})
	baseGoroutines, baseFDs := goroutineKinds(), openFDs(t)

	// Start the clients, each consuming its partition from the end it has
	// now, then let them all produce until the load ends.
	lcs := make([]*loadClient, clients)
	for i := range lcs {
		p := int32(i % partitions)
		end, _ := ends.Lookup(topic, p)
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(sb.Addr()),
			kgo.DefaultProduceTopic(topic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(end.Offset)}}),
			kgo.FetchMaxWait(time.Second),
		)
		if err != nil {
			t.Fatal(err)
		}
		lcs[i] = &loadClient{cl: cl, id: i, partition: p, produced: make(chan struct{})}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := newFirstErrors()
	for _, lc := range lcs {
		wg.Go(func() { lc.produce(ctx, stop, errs) })
		wg.Go(func() { lc.consume(ctx, errs) })
	}
	timer := time.NewTimer(load)
	select {
	case <-timer.C:
	case <-errs.failed:
	}
	close(stop)
	wg.Wait()
	var acked int64
	for _, lc := range lcs {
		lc.cl.Close()
		acked += lc.acked.Load()
	}
	errs.report(t)
	if acked == 0 {
		t.Fatal("no record was acknowledged")
	}
	t.Logf("%d clients produced and consumed %d records in %v", clients, acked, load)

	waitForBaseline(t, baseGoroutines, baseFDs, 20*time.Second)
}

// loadClient is one client of the load: it produces records keyed
// "c<id>-<seq>" to its partition and consumes them back.
type loadClient struct {
	cl        *kgo.Client
	id        int
	partition int32
	acked     atomic.Int64  // records acknowledged, seq 0 … acked-1
	produced  chan struct{} // closed when produce returns; acked is final
}

// produce sends batches of 5 records, one after another, until stop.
func (lc *loadClient) produce(ctx context.Context, stop <-chan struct{}, errs *firstErrors) {
	defer close(lc.produced)
	value := []byte(strings.Repeat("v", 100))
	for {
		select {
		case <-stop:
			return
		default:
		}
		seq := lc.acked.Load()
		batch := make([]*kgo.Record, 5)
		for i := range batch {
			batch[i] = &kgo.Record{Partition: lc.partition, Key: fmt.Appendf(nil, "c%d-%d", lc.id, seq+int64(i)), Value: value}
		}
		if err := lc.cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			errs.add(fmt.Errorf("client %d: produce: %w", lc.id, err))
			return
		}
		lc.acked.Add(int64(len(batch)))
	}
}

// consume reads its partition until it has seen every record its producer
// had acknowledged when it stopped, checking they arrive once each, in
// order.
func (lc *loadClient) consume(ctx context.Context, errs *firstErrors) {
	prefix := fmt.Sprintf("c%d-", lc.id)
	var next int64 // the seq expected next
	pollCtx, cancelPoll := context.WithCancel(ctx)
	defer cancelPoll()
	go func() {
		<-lc.produced
		cancelPoll() // the poll below goes on with ctx
	}()
	for {
		finished := false
		select {
		case <-lc.produced:
			finished = true
		default:
		}
		if finished && next == lc.acked.Load() {
			return
		}
		poll := pollCtx
		if finished {
			poll = ctx
		}
		fs := lc.cl.PollFetches(poll)
		if ctx.Err() != nil {
			errs.add(fmt.Errorf("client %d: consumed %d of %d records: %w", lc.id, next, lc.acked.Load(), ctx.Err()))
			return
		}
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.Canceled) {
				errs.add(fmt.Errorf("client %d: fetch %s-%d: %w", lc.id, e.Topic, e.Partition, e.Err))
				return
			}
		}
		for _, r := range fs.Records() {
			seq, ok := strings.CutPrefix(string(r.Key), prefix)
			if !ok {
				continue
			}
			if n, err := strconv.ParseInt(seq, 10, 64); err != nil || n != next {
				errs.add(fmt.Errorf("client %d: record %q at offset %d, want seq %d", lc.id, r.Key, r.Offset, next))
				return
			}
			next++
		}
	}
}

// firstErrors keeps the first errors of many goroutines.
type firstErrors struct {
	failed chan struct{} // closed at the first error

	mu   sync.Mutex
	errs []error // guarded by mu: the first ten
	n    int     // guarded by mu: all of them
}

func newFirstErrors() *firstErrors { return &firstErrors{failed: make(chan struct{})} }

func (fe *firstErrors) add(err error) {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	if fe.n == 0 {
		close(fe.failed)
	}
	fe.n++
	if len(fe.errs) < 10 {
		fe.errs = append(fe.errs, err)
	}
}

func (fe *firstErrors) report(t *testing.T) {
	t.Helper()
	fe.mu.Lock()
	defer fe.mu.Unlock()
	for _, err := range fe.errs {
		t.Error(err)
	}
	if fe.n > len(fe.errs) {
		t.Errorf("and %d more errors", fe.n-len(fe.errs))
	}
	if fe.n > 0 {
		t.FailNow()
	}
}

// waitForBaseline waits until there are no more goroutines and open file
// descriptors than in the baseline. If there still are at the deadline, it
// fails listing the kinds there are more of.
func waitForBaseline(t *testing.T, baseGoroutines, baseFDs map[string]int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		goroutines, fds := goroutineKinds(), openFDs(t)
		if total(goroutines) <= total(baseGoroutines) && total(fds) <= total(baseFDs) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d goroutines, %d before the load; %d open files, %d before", total(goroutines), total(baseGoroutines), total(fds), total(baseFDs))
			for _, g := range surplus(goroutines, baseGoroutines) {
				t.Errorf("goroutines left over: %s", g)
			}
			for _, fd := range surplus(fds, baseFDs) {
				t.Errorf("files left open: %s", fd)
			}
			t.FailNow()
		}
		time.Sleep(50 * time.Millisecond) // between checks of the condition
	}
}

// waitFor waits until cond holds, failing the test if it does not within
// the time given.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond) // between checks of the condition
	}
}

func total(kinds map[string]int) int {
	n := 0
	for _, c := range kinds {
		n += c
	}
	return n
}

// surplus lists the kinds there are more of in now than in base, those
// with the most extra first, at most 20.
func surplus(now, base map[string]int) []string {
	kinds := slices.Collect(maps.Keys(now))
	kinds = slices.DeleteFunc(kinds, func(k string) bool { return now[k] <= base[k] })
	slices.SortFunc(kinds, func(a, b string) int {
		return cmp.Or(cmp.Compare(now[b]-base[b], now[a]-base[a]), cmp.Compare(a, b))
	})
	var out []string
	for _, k := range kinds[:min(len(kinds), 20)] {
		out = append(out, fmt.Sprintf("%d more (%d, was %d) of:\n%s", now[k]-base[k], now[k], base[k], k))
	}
	return out
}

var (
	frameArgs   = regexp.MustCompile(`\([^()]*\)$`)
	frameDetail = regexp.MustCompile(` \+0x[0-9a-f]+$| in goroutine \d+$`)
)

// goroutineKinds counts the goroutines other than the caller's and the
// broker's idle workers (at most maxIdleWorkers of them, kept on purpose)
// by their stack: function names and lines, without arguments, ids or
// waiting times.
func goroutineKinds() map[string]int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	kinds := map[string]int{}
	for i, g := range strings.Split(strings.TrimSpace(string(buf)), "\n\n") {
		if i == 0 || idleWorker(g) {
			continue // the caller; a worker kept for the next request (workers.go)
		}
		var key strings.Builder
		for _, l := range strings.Split(g, "\n")[1:] { // after "goroutine N [state]:"
			l = frameDetail.ReplaceAllString(l, "")
			if !strings.HasPrefix(l, "\t") {
				l = frameArgs.ReplaceAllString(l, "") // function(args), not file:line
			}
			key.WriteString(l + "\n")
		}
		kinds[key.String()]++
	}
	return kinds
}

// openFDs counts the process's open file descriptors by what they point to
// (sockets and pipes without their inode numbers). It skips the test where
// /proc/self/fd does not exist.
func openFDs(t *testing.T) map[string]int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("counting open files needs /proc/self/fd: %v", err)
	}
	kinds := map[string]int{}
	for _, e := range entries {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the directory's own descriptor, closed by now
		}
		if i := strings.Index(target, ":["); i > 0 {
			target = target[:i]
		}
		kinds[target]++
	}
	return kinds
}

// idleWorker reports whether the goroutine whose stack is g is a worker
// waiting for a task: its innermost frame (runtime.Stack leaves out the
// runtime's) is the worker loop itself, with no task above it.
func idleWorker(g string) bool {
	lines := strings.Split(g, "\n") // "goroutine N [state]:", then function and file lines
	return len(lines) > 1 && strings.HasPrefix(lines[1], "github.com/samsa-io/samsa/broker.(*workers).loop(")
}
