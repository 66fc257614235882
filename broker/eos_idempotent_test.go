package broker_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/samsatest"
)

// TestEOSIdempotentProducerSurvivesCutConnections produces keyed records
// with franz-go's idempotent producer (acks=all) while the test tears
// Produce requests, drops connections after the broker answered, and cuts
// every connection at random moments. Every record must be acknowledged,
// and each partition must hold each of its records exactly once, in the
// order produced, at the offset it was acknowledged with.
func TestEOSIdempotentProducerSurvivesCutConnections(t *testing.T) {
	const (
		topic      = "eos-idem-cut"
		partitions = 4
		keys       = 40
		n          = 2000 // records per round
		minCuts    = 3
		maxRounds  = 10
	)
	seed := uint64(time.Now().UnixNano())
	t.Logf("cut schedule seed %d", seed)
	sb := samsatest.Start(t)
	makeTopic(t, clientFor(t, sb), topic, partitions, nil)

	cutter := newEOSCutter(seed, 8, 8)
	cl := clientFor(t, sb,
		kgo.Dialer(cutter.dial),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.MaxBufferedRecords(400),
		kgo.ProducerBatchMaxBytes(600),
		kgo.MetadataMinAge(20*time.Millisecond), // a cut triggers a refresh the retry waits for
		kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }),
		kgo.RecordRetries(1<<30),
		kgo.RequestRetries(1<<30),
	)

	// Cut every connection now and then, whatever it is doing.
	ctx, stopCutting := context.WithCancel(deadlineCtx(t))
	var cutting sync.WaitGroup
	cutting.Go(func() {
		rng := newEOSRand(seed + 1)
		for ctx.Err() == nil {
			eosPause(ctx, time.Duration(20+rng.IntN(180))*time.Millisecond)
			cutter.cutAll()
		}
	})

	type ack struct {
		partition int32
		offset    int64
		err       error
	}
	// Produce in rounds of n records until both kinds of cut have
	// happened a few times: the test proves nothing without them.
	var acks []ack
	for round := 0; cutter.torn.Load() < minCuts || cutter.lost.Load() < minCuts; round++ {
		if round == maxRounds {
			t.Fatalf("too few cuts after %d records: %d torn, %d lost", len(acks), cutter.torn.Load(), cutter.lost.Load())
		}
		first := len(acks)
		acks = append(acks, make([]ack, n)...)
		var acked sync.WaitGroup
		for i := first; i < len(acks); i++ {
			r := &kgo.Record{Key: fmt.Appendf(nil, "key-%02d", i%keys), Value: []byte(strconv.Itoa(i))}
			acked.Add(1)
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				acks[i] = ack{r.Partition, r.Offset, err}
				acked.Done()
			})
		}
		acked.Wait()
	}
	stopCutting()
	cutting.Wait()
	t.Logf("%d Produce requests torn, %d answered and lost, %d connections cut",
		cutter.torn.Load(), cutter.lost.Load(), cutter.cuts.Load())

	for i, a := range acks {
		if a.err != nil {
			t.Fatalf("record %d failed: %v", i, a.err)
		}
	}
	got := eosReadPartitions(t, sb, topic, false)
	where := map[int]int64{} // record → where it is: partition<<32 | offset
	total := 0
	for p, recs := range got {
		last := -1
		for i, r := range recs {
			v, err := strconv.Atoi(string(r.Value))
			if err != nil || r.Offset != int64(i) {
				t.Fatalf("partition %d offset %d (record %d of it): value %q", p, r.Offset, i, r.Value)
			}
			if prev, dup := where[v]; dup {
				t.Fatalf("record %d is at %d-%d and at %d-%d", v, prev>>32, prev&(1<<32-1), p, r.Offset)
			}
			if v <= last {
				t.Fatalf("partition %d offset %d: record %d after record %d", p, r.Offset, v, last)
			}
			last = v
			where[v] = int64(p)<<32 | r.Offset
			total++
		}
	}
	for i, a := range acks {
		if w, ok := where[i]; !ok || w != int64(a.partition)<<32|a.offset {
			t.Fatalf("record %d acknowledged at %d-%d; found at %d-%d (%v)", i, a.partition, a.offset, w>>32, w&(1<<32-1), ok)
		}
	}
	if total != len(acks) {
		t.Fatalf("%d records in the log, want %d", total, len(acks))
	}
}

// eosReadPartitions reads every partition of topic from offset 0 until its
// end as of now (the high watermark, or the last stable offset with
// readCommitted) and returns the records by partition, in offset order.
// Records of aborted transactions and control records are not returned;
// a partition's read ends when a poll of two seconds brings nothing more
// below its end (only markers or aborted data remain).
func eosReadPartitions(t *testing.T, sb *samsatest.Broker, topic string, readCommitted bool) map[int32][]*kgo.Record {
	t.Helper()
	ctx := deadlineCtx(t)
	adm := kadm.NewClient(clientFor(t, sb))
	var ends kadm.ListedOffsets
	var err error
	if readCommitted {
		ends, err = adm.ListCommittedOffsets(ctx, topic)
	} else {
		ends, err = adm.ListEndOffsets(ctx, topic)
	}
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	end := map[int32]int64{}
	from := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		end[o.Partition] = o.Offset
		from[o.Partition] = kgo.NewOffset().At(0)
	})
	level := kgo.ReadUncommitted()
	if readCommitted {
		level = kgo.ReadCommitted()
	}
	cl := clientFor(t, sb, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchIsolationLevel(level), kgo.FetchMaxWait(200*time.Millisecond))
	got := map[int32][]*kgo.Record{}
	for p := range end {
		got[p] = nil
	}
	reached := func() bool {
		for p, e := range end {
			if n := len(got[p]); e > 0 && (n == 0 || got[p][n-1].Offset < e-1) {
				return false
			}
		}
		return true
	}
	for !reached() {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v", topic, ctx.Err())
		}
		quiet := false
		for _, e := range fs.Errors() {
			if e.Err == context.DeadlineExceeded {
				quiet = true
				continue
			}
			t.Fatalf("fetch %s-%d: %v", e.Topic, e.Partition, e.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < end[r.Partition] {
				got[r.Partition] = append(got[r.Partition], r)
			}
		})
		if quiet && fs.NumRecords() == 0 {
			break
		}
	}
	return got
}
