package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	txnCrashTopic      = "txn-crash"
	txnCrashPartitions = 3
	// txnRecords is the number of records of every transaction, record i
	// to partition i % txnCrashPartitions.
	txnRecords = 6
	// txnTimeout is the producers' transaction.timeout.ms: a transaction
	// left open by a crash aborts this long after it began.
	txnTimeout = 3 * time.Second
)

// TestKill9DuringTransactions kills the broker with SIGKILL in the middle
// of transactions and checks what it holds after each restart:
//   - a transaction open (records written, no EndTxn) at the kill times
//     out and aborts;
//   - a transaction whose commit was acknowledged just before the kill is
//     committed (its markers written by the restarted coordinator);
//   - a producer committing transactions in a loop is killed at random
//     moments: every acknowledged transaction is there, and every
//     transaction is there whole or not at all;
//
// and after each restart the last stable offset of every partition
// reaches its high watermark. A read_committed consumer started before
// the first kill keeps reading across the restarts without stalling and
// ends with exactly what a fresh one reads.
//
// SAMSA_CRASH_SEED=<seed> replays the kill moments of a run.
func TestKill9DuringTransactions(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SAMSA_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("SAMSA_CRASH_SEED: %v", err)
		}
	}
	t.Logf("kill schedule seed %d (replay with SAMSA_CRASH_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	loopKills := 3
	if testing.Short() {
		loopKills = 1
	}

	bp := newBrokerProcess(t)
	bp.start()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(bp.kafkaAddr), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	created, err := adm.CreateTopic(waitCtx(t, 30*time.Second), txnCrashPartitions, 1, nil, txnCrashTopic)
	if err == nil {
		err = created.Err
	}
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	watcher := startTxnReader(t, bp.kafkaAddr)
	logger := clientLog(t)

	// An open transaction at the kill: it aborts after the restart.
	open := newTxnProducer(t, bp.kafkaAddr, "crash-open", logger)
	ctx := waitCtx(t, 30*time.Second)
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := open.ProduceSync(ctx, txnBatch("open", 0)...).FirstErr(); err != nil {
		t.Fatalf("produce in the open transaction: %v", err)
	}
	bp.kill()
	bp.start()
	open.Close()
	waitTxnState(t, adm, "crash-open", "CompleteAbort")
	waitStable(t, adm)

	// A commit acknowledged just before the kill: it completes.
	commit := newTxnProducer(t, bp.kafkaAddr, "crash-commit", logger)
	ctx = waitCtx(t, 30*time.Second)
	if err := commit.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := commit.ProduceSync(ctx, txnBatch("commit", 0)...).FirstErr(); err != nil {
		t.Fatalf("produce in the committed transaction: %v", err)
	}
	if err := commit.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit: %v", err)
	}
	bp.kill()
	bp.start()
	commit.Close()
	waitTxnState(t, adm, "crash-commit", "CompleteCommit")
	waitStable(t, adm)

	// Transactions in a loop, the broker killed at random moments.
	var acked []string // transactions whose commit was acknowledged
	for i := range loopKills {
		loop := startTxnLoop(t, bp.kafkaAddr, fmt.Sprintf("loop%d", i), logger)
		loop.waitCommitted(t, 3)
		delay := time.Duration(rng.Int64N(int64(300*time.Millisecond))) + 10*time.Millisecond
		<-time.After(delay) // the kill moment is the point, not an event to wait for
		t.Logf("kill %d after %v (%d transactions of this run committed)", i+1, delay, len(loop.committed()))
		bp.kill()
		bp.start()
		acked = append(acked, loop.stop()...)
		waitStable(t, adm)
	}

	// One last transaction marks the end of every partition.
	last := newTxnProducer(t, bp.kafkaAddr, "crash-last", logger)
	ctx = waitCtx(t, 30*time.Second)
	if err := last.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var ends []*kgo.Record
	for p := range int32(txnCrashPartitions) {
		ends = append(ends, &kgo.Record{Topic: txnCrashTopic, Partition: p, Value: []byte("end")})
	}
	if err := last.ProduceSync(ctx, ends...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := last.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	last.Close()
	waitStable(t, adm)

	fresh := startTxnReader(t, bp.kafkaAddr)
	got := fresh.wait(t)
	checkTxnLog(t, got, acked)
	if seen := watcher.wait(t); !equalByPartition(seen, got) {
		t.Errorf("the consumer that read across the restarts read\n%v\na fresh one reads\n%v", seen, got)
	}
	if err := bp.stop(20 * time.Second); err != nil {
		t.Errorf("clean shutdown after the crashes: %v", err)
	}
}

// txnBatch is the records of one transaction: "<name>-t<txn>-r<i>".
func txnBatch(name string, txn int) []*kgo.Record {
	var out []*kgo.Record
	for i := range txnRecords {
		out = append(out, &kgo.Record{
			Topic:     txnCrashTopic,
			Partition: int32(i % txnCrashPartitions),
			Value:     fmt.Appendf(nil, "%s-t%d-r%d", name, txn, i),
		})
	}
	return out
}

func newTxnProducer(t *testing.T, addr, id string, logger kgo.Logger) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.WithLogger(logger),
		kgo.TransactionalID(id),
		kgo.TransactionTimeout(txnTimeout),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MetadataMinAge(50*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// txnLoop commits transactions of txnBatch(name, n) for n = 0, 1, … until
// stopped, recording those whose commit was acknowledged.
type txnLoop struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	acked   []string      // "<name>-t<n>"; guarded by mu
	changed chan struct{} // closed and replaced on every commit; guarded by mu
	err     error         // the loop's end; guarded by mu
}

func startTxnLoop(t *testing.T, addr, name string, logger kgo.Logger) *txnLoop {
	l := &txnLoop{
		cl:      newTxnProducer(t, addr, "crash-loop", logger),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	var ctx context.Context
	ctx, l.cancel = context.WithCancel(context.Background())
	go func() {
		defer close(l.done)
		err := l.run(ctx, name)
		l.mu.Lock()
		l.err = err
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
	}()
	return l
}

func (l *txnLoop) run(ctx context.Context, name string) error {
	for n := 0; ctx.Err() == nil; n++ {
		if err := l.cl.BeginTransaction(); err != nil {
			return err
		}
		if err := l.cl.ProduceSync(ctx, txnBatch(name, n)...).FirstErr(); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
		if err := l.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		l.mu.Lock()
		l.acked = append(l.acked, fmt.Sprintf("%s-t%d", name, n))
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
	}
	return ctx.Err()
}

func (l *txnLoop) committed() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.acked...)
}

// waitCommitted waits until n transactions are committed.
func (l *txnLoop) waitCommitted(t *testing.T, n int) {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		count, err, changed := len(l.acked), l.err, l.changed
		l.mu.Unlock()
		if count >= n {
			return
		}
		if err != nil {
			t.Fatalf("the transaction loop stopped after %d commits: %v", count, err)
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("only %d of %d transactions committed", count, n)
		}
	}
}

// stop ends the loop (its producer is probably broken by the kill) and
// returns the transactions whose commit was acknowledged.
func (l *txnLoop) stop() []string {
	l.cancel()
	<-l.done
	l.cl.Close()
	return l.committed()
}

// waitTxnState polls DescribeTransactions until id is in state.
func waitTxnState(t *testing.T, adm *kadm.Client, id, state string) {
	t.Helper()
	ctx := waitCtx(t, 30*time.Second)
	var last kadm.DescribedTransaction
	for ctx.Err() == nil {
		described, err := adm.DescribeTransactions(ctx, id)
		if err == nil {
			if last = described[id]; last.State == state {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("transaction %s is %+v, want %s", id, last, state)
}

// waitStable polls until the last stable offset of every partition is its
// high watermark: no transaction is left open.
func waitStable(t *testing.T, adm *kadm.Client) {
	t.Helper()
	ctx := waitCtx(t, 30*time.Second)
	var lso, hwm kadm.ListedOffsets
	for ctx.Err() == nil {
		var err1, err2 error
		lso, err1 = adm.ListCommittedOffsets(ctx, txnCrashTopic)
		hwm, err2 = adm.ListEndOffsets(ctx, txnCrashTopic)
		if err1 == nil && err2 == nil && lso.Error() == nil && hwm.Error() == nil {
			stable := true
			hwm.Each(func(o kadm.ListedOffset) {
				if l, _ := lso.Lookup(txnCrashTopic, o.Partition); l.Offset != o.Offset {
					stable = false
				}
			})
			if stable {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("last stable offsets %v never reached the high watermarks %v", offsetsOf(lso), offsetsOf(hwm))
}

func offsetsOf(l kadm.ListedOffsets) string {
	var b strings.Builder
	l.Each(func(o kadm.ListedOffset) { fmt.Fprintf(&b, "%d:%d ", o.Partition, o.Offset) })
	return b.String()
}

// txnReader reads every partition with read_committed from offset 0, in
// the background, until it has read each partition's "end" record.
type txnReader struct {
	cancel context.CancelFunc
	done   chan struct{}
	got    [txnCrashPartitions][]string // written by the reader until done
	err    error                        // written by the reader until done
}

func startTxnReader(t *testing.T, addr string) *txnReader {
	t.Helper()
	from := map[int32]kgo.Offset{}
	for p := range int32(txnCrashPartitions) {
		from[p] = kgo.NewOffset().At(0)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{txnCrashTopic: from}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.MetadataMinAge(50*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
	)
	if err != nil {
		t.Fatal(err)
	}
	r := &txnReader{done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	t.Cleanup(func() {
		cancel()
		<-r.done
		cl.Close()
	})
	go func() {
		defer close(r.done)
		ended := 0
		for ended < txnCrashPartitions {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				r.err = ctx.Err()
				return
			}
			// Fetch errors across a restart are not fatal: the client
			// retries them.
			fs.EachRecord(func(rec *kgo.Record) {
				r.got[rec.Partition] = append(r.got[rec.Partition], string(rec.Value))
				if string(rec.Value) == "end" {
					ended++
				}
			})
		}
	}()
	return r
}

// wait returns what the reader read once it has read every partition's end.
func (r *txnReader) wait(t *testing.T) [txnCrashPartitions][]string {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(60 * time.Second):
		r.cancel()
		<-r.done
	}
	if r.err != nil {
		t.Fatalf("a read_committed consumer stalled (%v); it read %v", r.err, r.got)
	}
	return r.got
}

func equalByPartition(a, b [txnCrashPartitions][]string) bool {
	for p := range a {
		if strings.Join(a[p], ",") != strings.Join(b[p], ",") {
			return false
		}
	}
	return true
}

// checkTxnLog checks what read_committed reads: nothing of the open
// transaction, the acknowledged commit, every acknowledged transaction of
// the loops, every transaction whole or not at all, each record once, and
// each partition's records of one producer in the order written.
func checkTxnLog(t *testing.T, got [txnCrashPartitions][]string, acked []string) {
	t.Helper()
	records := map[string][]string{} // transaction → its records read
	seen := map[string]bool{}
	for p, values := range got {
		if n := len(values); n == 0 || values[n-1] != "end" {
			t.Fatalf("partition %d: %v does not end with the last transaction", p, values)
		}
		lastOf := map[string]int{} // producer name → the last transaction read here
		for _, v := range values[:len(values)-1] {
			if seen[v] {
				t.Errorf("partition %d: %s read twice", p, v)
			}
			seen[v] = true
			// <name>-t<txn>-r<i>
			parts := strings.Split(v, "-")
			if len(parts) != 3 {
				t.Fatalf("partition %d: unexpected record %q", p, v)
			}
			name, txn := parts[0], parts[0]+"-"+parts[1]
			records[txn] = append(records[txn], v)
			n, _ := strconv.Atoi(strings.TrimPrefix(parts[1], "t"))
			if prev, ok := lastOf[name]; ok && n < prev {
				t.Errorf("partition %d: %s after transaction %d of %s", p, v, prev, name)
			}
			lastOf[name] = n
		}
	}
	if len(records["open-t0"]) > 0 {
		t.Errorf("records of the transaction open at the kill are visible: %v", records["open-t0"])
	}
	if len(records["commit-t0"]) != txnRecords {
		t.Errorf("the transaction committed before the kill has %v, want all %d records", records["commit-t0"], txnRecords)
	}
	for _, txn := range acked {
		if len(records[txn]) != txnRecords {
			t.Errorf("acknowledged transaction %s: read %v, want all %d records", txn, records[txn], txnRecords)
		}
	}
	for txn, recs := range records {
		if len(recs) != txnRecords {
			t.Errorf("transaction %s is partly visible: %v", txn, recs)
		}
	}
	t.Logf("%d transactions visible, %d of the loops' acknowledged", len(records), len(acked))
}
