package broker_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/samsatest"
)

// TestEOSTransactionalProducerSurvivesCutConnections commits and aborts
// transactions with franz-go while the test tears its Produce,
// AddPartitionsToTxn and EndTxn requests, drops connections after the
// broker answered them (so the client sends them again), and cuts every
// connection at random moments. Every transaction must end as the client
// asked; read_committed then reads each committed record once, in order
// per partition, and nothing aborted; read_uncommitted reads no record
// twice.
func TestEOSTransactionalProducerSurvivesCutConnections(t *testing.T) {
	const (
		topic      = "eos-txn-cut"
		partitions = 3
		records    = 10 // per transaction
		minTxns    = 30
		maxTxns    = 300
		minCuts    = 3
	)
	seed := uint64(time.Now().UnixNano())
	t.Logf("cut schedule seed %d", seed)
	sb := samsatest.Start(t)
	makeTopic(t, clientFor(t, sb), topic, partitions, nil)

	cutter := newEOSCutter(seed, 8, 8)
	cutter.keys = map[int16]bool{int16(kmsg.Produce): true, int16(kmsg.AddPartitionsToTxn): true, int16(kmsg.EndTxn): true}
	cl := clientFor(t, sb,
		kgo.Dialer(cutter.dial),
		kgo.TransactionalID("eos-txn-cut"),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.MetadataMinAge(20*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }),
		kgo.RequestRetries(1<<30),
	)
	ctx, stopCutting := context.WithCancel(deadlineCtx(t))
	var cutting sync.WaitGroup
	cutting.Go(func() {
		rng := newEOSRand(seed + 1)
		for ctx.Err() == nil {
			eosPause(ctx, time.Duration(50+rng.IntN(250))*time.Millisecond)
			cutter.cutAll()
		}
	})

	committed := map[int]bool{} // transaction → committed (false: aborted)
	txn := 0
	for ; txn < minTxns || cutter.torn.Load() < minCuts || cutter.lost.Load() < minCuts; txn++ {
		if txn == maxTxns {
			t.Fatalf("too few cuts after %d transactions: %d torn, %d lost", txn, cutter.torn.Load(), cutter.lost.Load())
		}
		commit := txn%3 != 1
		if err := cl.BeginTransaction(); err != nil {
			t.Fatalf("transaction %d: begin: %v", txn, err)
		}
		var recs []*kgo.Record
		for i := range records {
			recs = append(recs, kgo.StringRecord(fmt.Sprintf("t%03d-r%d", txn, i)))
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("transaction %d: produce: %v", txn, err)
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("transaction %d: end (commit %v): %v", txn, commit, err)
		}
		committed[txn] = commit
	}
	stopCutting()
	cutting.Wait()
	t.Logf("%d transactions; %d requests torn, %d answered and lost, %d connections cut",
		txn, cutter.torn.Load(), cutter.lost.Load(), cutter.cuts.Load())

	waitStable(t, sb, topic)
	seen := map[string]int32{} // value → partition
	for p, recs := range eosReadPartitions(t, sb, topic, true) {
		last := -1
		for _, r := range recs {
			v := string(r.Value)
			n, _ := strconv.Atoi(strings.TrimPrefix(strings.Split(v, "-")[0], "t"))
			if !committed[n] {
				t.Fatalf("read_committed %d-%d: %s of aborted transaction %d", p, r.Offset, v, n)
			}
			if q, dup := seen[v]; dup {
				t.Fatalf("read_committed: %s in partition %d and at %d-%d", v, q, p, r.Offset)
			}
			if n < last {
				t.Fatalf("read_committed %d-%d: %s after a record of transaction %d", p, r.Offset, v, last)
			}
			seen[v], last = p, n
		}
	}
	for n, c := range committed {
		for i := range records {
			v := fmt.Sprintf("t%03d-r%d", n, i)
			if _, ok := seen[v]; c && !ok {
				t.Fatalf("read_committed: %s of committed transaction %d is missing", v, n)
			}
		}
	}
	all := map[string]bool{}
	for p, recs := range eosReadPartitions(t, sb, topic, false) {
		for _, r := range recs {
			if all[string(r.Value)] {
				t.Fatalf("read_uncommitted %d-%d: %s written twice", p, r.Offset, r.Value)
			}
			all[string(r.Value)] = true
		}
	}
	if len(all) != txn*records {
		t.Fatalf("read_uncommitted read %d records, want %d", len(all), txn*records)
	}
}
