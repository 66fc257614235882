package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// recordSize is the size of every record's value; records have no key and
// no headers.
const recordSize = 100

// clientLogger logs the benchmark clients' warnings (more with -client-log).
var clientLogger kgo.Logger = kgo.BasicLogger(os.Stderr, kgo.LogLevelWarn, nil)

// createTopic creates topic with the given partitions (replication 1).
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

// producerOpts are the client options of the benchmark: linger 5 ms, 1 MiB
// batches, no compression (the values are random anyway) and the given acks.
// franz-go is idempotent by default but refuses idempotence without
// acks=all, so acks=1 runs disable it.
func producerOpts(addr, topic string, acks int) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.WithLogger(clientLogger),
		kgo.SeedBrokers(addr),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.ProducerBatchMaxBytes(1 << 20),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
	}
	if acks == 1 {
		return append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	}
	return append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
}

// produceResult is what one produce phase measured.
type produceResult struct {
	records  int64
	elapsed  time.Duration // first Produce call to last acknowledgement
	p50, p99 time.Duration // Produce call to promise, per record
}

// produce writes records as fast as the client takes them for d, then
// waits for every acknowledgement. Before the clock starts it writes one
// record per partition synchronously, so that connections, metadata and the
// producer id are in place; those warmup records are not counted here.
func produce(ctx context.Context, addr, topic string, acks int, partitions int32, d time.Duration) (produceResult, error) {
	cl, err := kgo.NewClient(producerOpts(addr, topic, acks)...)
	if err != nil {
		return produceResult{}, err
	}
	defer cl.Close()

	value := make([]byte, recordSize)
	rand.Read(value)
	for p := range partitions {
		r := &kgo.Record{Value: value, Partition: p}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			return produceResult{}, fmt.Errorf("warmup: %w", err)
		}
	}

	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, 1<<22) // guarded by mu
		firstErr  error                             // guarded by mu
	)
	start := time.Now()
	deadline := start.Add(d)
	for time.Now().Before(deadline) {
		r := &kgo.Record{Value: value}
		called := time.Now()
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			latency := time.Since(called)
			mu.Lock()
			latencies = append(latencies, latency)
			if err != nil && firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return produceResult{}, err
	}
	elapsed := time.Since(start)

	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return produceResult{}, firstErr
	}
	slices.Sort(latencies)
	return produceResult{
		records: int64(len(latencies)),
		elapsed: elapsed,
		p50:     quantile(latencies, 0.50),
		p99:     quantile(latencies, 0.99),
	}, nil
}

// quantile of sorted, by the nearest-rank method.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// consume reads topic from the start with a new client until it has seen
// want records, and returns how long that took (client creation included).
func consume(ctx context.Context, addr, topic string, want int64) (time.Duration, error) {
	start := time.Now()
	cl, err := kgo.NewClient(
		kgo.WithLogger(clientLogger),
		kgo.SeedBrokers(addr),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var got int64
	for got < want {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("consumed %d of %d records: %w", got, want, err)
		}
		if errs := fetches.Errors(); len(errs) > 0 {
			return 0, fmt.Errorf("fetch %s/%d: %w", errs[0].Topic, errs[0].Partition, errs[0].Err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if len(r.Value) == recordSize {
				got++
			}
		})
	}
	elapsed := time.Since(start)
	if got != want {
		return 0, fmt.Errorf("consumed %d records, want %d", got, want)
	}
	return elapsed, nil
}
