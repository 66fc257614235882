package broker_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/broker"
	"github.com/samsa-io/samsa/samsatest"
)

// eosKill is where and how a pipeline instance dies.
type eosKill struct {
	// afterTxns is how many transactions the instance commits first.
	afterTxns int
	// stage is the point of the next transaction where it dies:
	//   - "polled": records read, nothing written;
	//   - "produced": its output written and acknowledged, not committed;
	//   - "offsets-committed": its offsets committed in the transaction
	//     (TxnOffsetCommit answered), EndTxn not sent;
	//   - "end-sent": EndTxn written to the socket, its answer not read
	//     (the broker may commit the transaction or never see the request);
	//   - "ending": a random moment (delay) into End.
	stage string
	// cut kills by cutting its sockets and refusing to dial again, so the
	// broker hears nothing more from it (a crash); otherwise the client is
	// closed without End (it leaves the group, its transaction stays open).
	// The two stages seen from inside the client always cut.
	cut bool
	// delay is how long into End an "ending" kill strikes.
	delay time.Duration
}

func (k eosKill) String() string {
	how := "close"
	if k.cut {
		how = "cut"
	}
	return fmt.Sprintf("%s at %q of transaction %d (+%v)", how, k.stage, k.afterTxns+1, k.delay)
}

// eosPipeline is one instance of a consume-transform-produce loop with
// franz-go's GroupTransactSession: it reads the input topic in group
// eos-pipeline-g, writes "out-<value>" for each record to the output
// topic, and commits the offsets read in the same transaction.
type eosPipeline struct {
	session   *kgo.GroupTransactSession
	cutter    *eosCutter
	kill      *eosKill // nil: runs until closed
	ctx       context.Context
	cancel    context.CancelFunc
	txn       atomic.Int64 // the transaction under way, from 0
	committed atomic.Int64 // transactions committed
	dieOnce   sync.Once
	done      chan error // the loop's end
}

func startEOSPipeline(t *testing.T, sb *samsatest.Broker, in, out string, kill *eosKill, seed uint64) *eosPipeline {
	t.Helper()
	p := &eosPipeline{cutter: newEOSCutter(seed, 0, 0), kill: kill, done: make(chan error, 1)}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	var err error
	p.session, err = kgo.NewGroupTransactSession(
		kgo.SeedBrokers(sb.Addr()),
		kgo.Dialer(p.cutter.dial),
		kgo.WithHooks(p),
		kgo.TransactionalID("eos-pipeline-tx"),
		kgo.ConsumerGroup("eos-pipeline-g"),
		kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.SessionTimeout(2*time.Second), // a crashed instance holds up the next one's join this long
		kgo.HeartbeatInterval(200*time.Millisecond),
		kgo.RebalanceTimeout(10*time.Second),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.DefaultProduceTopic(out),
		kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }),
	)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer p.cancel()
		p.done <- p.run()
	}()
	return p
}

// die kills the instance as its kill says, once.
func (p *eosPipeline) die() {
	p.dieOnce.Do(func() {
		if p.kill.cut {
			p.cutter.kill()
			p.cancel()
			return
		}
		p.cancel()
		p.session.Close() // no End: the transaction stays open
	})
}

// dying reports whether the instance is to die at stage now.
func (p *eosPipeline) dying(stage string) bool {
	return p.kill != nil && p.kill.stage == stage && p.txn.Load() == int64(p.kill.afterTxns)
}

// OnBrokerRead is the hook of the "offsets-committed" stage.
func (p *eosPipeline) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil && key == int16(kmsg.TxnOffsetCommit) && p.dying("offsets-committed") {
		p.die()
	}
}

// OnBrokerWrite is the hook of the "end-sent" stage.
func (p *eosPipeline) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil && key == int16(kmsg.EndTxn) && p.dying("end-sent") {
		p.die()
	}
}

// run is the loop. With a kill it dies as the kill says and returns
// errEOSKilled; otherwise it runs until its session is closed.
func (p *eosPipeline) run() error {
	ctx, s := p.ctx, p.session
	for txn := int64(0); ; txn++ {
		p.txn.Store(txn)
		if err := s.Begin(); err != nil {
			return err
		}
		var fs kgo.Fetches
		for fs.NumRecords() == 0 {
			if fs = s.PollRecords(ctx, 10); fs.IsClientClosed() || ctx.Err() != nil {
				return p.stopped()
			}
			for _, e := range fs.Errors() {
				return fmt.Errorf("poll %s-%d: %w", e.Topic, e.Partition, e.Err)
			}
		}
		if p.dying("polled") {
			p.die()
			return errEOSKilled
		}
		var outs []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			outs = append(outs, &kgo.Record{Key: r.Key, Value: append([]byte("out-"), r.Value...)})
		})
		if err := s.ProduceSync(ctx, outs...).FirstErr(); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
		if p.dying("produced") {
			p.die()
			return errEOSKilled
		}
		if p.dying("ending") {
			go func() {
				time.Sleep(p.kill.delay) // a random moment inside End, not an event
				p.die()
			}()
		}
		committed, err := s.End(ctx, kgo.TryCommit)
		if ctx.Err() != nil {
			return p.stopped()
		}
		if err != nil {
			return fmt.Errorf("end: %w", err)
		}
		if committed {
			p.committed.Add(1)
		}
		if p.kill != nil && p.kill.stage == "ending" && txn == int64(p.kill.afterTxns) {
			<-ctx.Done() // End was quicker than the kill
			return p.stopped()
		}
	}
}

// stopped is the loop's result once its context ended.
func (p *eosPipeline) stopped() error {
	if p.kill != nil {
		return errEOSKilled
	}
	return nil
}

var errEOSKilled = errors.New("killed by the test")

// TestEOSPipelineSurvivesKilledInstances runs a consume-transform-produce
// pipeline with franz-go's GroupTransactSession and kills its instance at
// random points of a transaction (after reading, after writing, inside
// End), by closing it without End or by cutting its sockets as a crash
// would, then starts another in its place. At the end the output read
// with read_committed holds every input record exactly once, and the
// group's committed offsets are the input's end.
func TestEOSPipelineSurvivesKilledInstances(t *testing.T) {
	const (
		in, out    = "eos-pipeline-in", "eos-pipeline-out"
		partitions = 3
		n          = 400
		kills      = 7
	)
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill schedule seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	sb := samsatest.Start(t, samsatest.WithConfig(func(c *broker.Config) {
		c.Groups.Classic.MinSessionTimeout = time.Second // Kafka's minimum is 6 s
		c.Groups.Classic.InitialRebalanceDelay = 10 * time.Millisecond
	}))
	admCl := clientFor(t, sb)
	makeTopic(t, admCl, in, partitions, nil)
	makeTopic(t, admCl, out, partitions, nil)
	ctx := deadlineCtx(t)

	feeder := clientFor(t, sb, kgo.DefaultProduceTopic(in))
	var inputs []*kgo.Record
	var want []string
	for i := range n {
		v := fmt.Sprintf("in-%04d", i)
		inputs = append(inputs, &kgo.Record{Key: []byte(v), Value: []byte(v)})
		want = append(want, "out-"+v)
	}
	if err := feeder.ProduceSync(ctx, inputs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var closing sync.WaitGroup // closes of dead instances
	t.Cleanup(closing.Wait)
	stages := []string{"polled", "produced", "offsets-committed", "end-sent", "ending"}
	for i := range kills {
		kill := &eosKill{
			afterTxns: rng.IntN(3),
			stage:     stages[i%len(stages)],
			cut:       i%2 == 1,
			delay:     time.Duration(rng.IntN(30)) * time.Millisecond,
		}
		if kill.stage == "offsets-committed" || kill.stage == "end-sent" {
			kill.cut = true
		}
		p := startEOSPipeline(t, sb, in, out, kill, seed+uint64(i))
		var err error
		select {
		case err = <-p.done:
		case <-ctx.Done():
			t.Fatalf("instance %d (to die by %v) still running: %v", i, kill, ctx.Err())
		}
		if !errors.Is(err, errEOSKilled) {
			t.Fatalf("instance %d (to die by %v): %v", i, kill, err)
		}
		t.Logf("instance %d: %d transactions committed, then %v", i, p.committed.Load(), kill)
		// A cut client's close cannot reach the broker; do not wait for
		// it. It follows die's close, if any: franz-go's Client.Close is
		// not safe to run twice at once (both close its fetch sessions).
		closing.Go(func() {
			p.dieOnce.Do(func() {})
			p.session.Close()
		})
	}

	// A last instance finishes the work.
	final := startEOSPipeline(t, sb, in, out, nil, seed+kills)
	adm := kadm.NewClient(admCl)
	ends, err := adm.ListEndOffsets(ctx, in)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	for caughtUp := false; !caughtUp; {
		select {
		case err := <-final.done:
			t.Fatalf("the last instance stopped: %v", err)
		case <-ctx.Done():
			t.Fatalf("the group's offsets never reached the input's end %v", describeOffsets(ends))
		case <-time.After(50 * time.Millisecond):
		}
		offsets, err := adm.FetchOffsets(ctx, "eos-pipeline-g")
		if err != nil {
			continue
		}
		caughtUp = true
		ends.Each(func(e kadm.ListedOffset) {
			if o, ok := offsets.Lookup(in, e.Partition); !ok || o.At != e.Offset {
				caughtUp = false
			}
		})
	}
	final.cancel()
	final.session.Close()
	<-final.done
	t.Logf("the last instance committed %d transactions", final.committed.Load())

	waitStable(t, sb, out)
	got := sortedValues(readAll(t, sb, out, true))
	if !slices.Equal(got, want) {
		counts := map[string]int{}
		for _, v := range got {
			counts[v]++
		}
		var missing, twice []string
		for _, v := range want {
			switch counts[v] {
			case 0:
				missing = append(missing, v)
			case 1:
			default:
				twice = append(twice, v)
			}
		}
		t.Fatalf("read_committed %s: %d records, want %d; missing %v; more than once %v", out, len(got), len(want), missing, twice)
	}
	// The kills after writing left aborted output behind: without it the
	// test would not have shown that aborted output stays hidden.
	if all := readAll(t, sb, out, false); len(all) <= len(want) {
		t.Fatalf("read_uncommitted %s: %d records, want more than the %d committed", out, len(all), len(want))
	}
}
