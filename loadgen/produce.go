package loadgen

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// flushTimeout bounds the wait for records still in flight when producing
// ends.
const flushTimeout = 30 * time.Second

// runProduce sends records and measures send-to-acknowledgement latency.
func (r *run) runProduce(ctx context.Context) {
	r.newRecorders(r.cfg.Producers)
	r.start = time.Now()
	stopProgress := r.startProgress()
	defer stopProgress()
	r.produceAll(ctx)
}

// startProgress starts progress reports and returns the function that
// stops them and waits until the last report returned.
func (r *run) startProgress() func() {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { r.reportProgress(stop) })
	return func() {
		close(stop)
		wg.Wait()
	}
}

// produceAll runs the producers until each has sent its share of the count
// or the duration is over, and their records are acknowledged.
func (r *run) produceAll(ctx context.Context) {
	var deadline time.Time
	if r.cfg.Duration > 0 {
		deadline = r.start.Add(r.cfg.Duration)
	}
	var wg sync.WaitGroup
	for id := range r.cfg.Producers {
		n := int64(-1) // no count: until the deadline
		if r.cfg.Count > 0 {
			n = r.cfg.Count / int64(r.cfg.Producers)
			if int64(id) < r.cfg.Count%int64(r.cfg.Producers) {
				n++
			}
			if n == 0 {
				continue
			}
		}
		wg.Go(func() { r.producer(ctx, id, n, deadline) })
	}
	wg.Wait()
}

// producer sends n records (n < 0: until deadline) at its share of the
// target rate. Each record's Timestamp is its intended send time, which the
// acknowledgement is measured from; e2e records carry it in their value too.
func (r *run) producer(ctx context.Context, id int, n int64, deadline time.Time) {
	cl, err := kgo.NewClient(r.producerOpts(id)...)
	if err != nil {
		r.noteError(fmt.Errorf("producer %d: %w", id, err))
		return
	}
	defer cl.Close()

	var lat *recorder
	if r.cfg.Mode == ModeProduce {
		lat = r.recorders[id]
	}
	// An e2e record carries its own copy of the value, stamped with its
	// send time; records and values are reused once acknowledged, so
	// that the load generator's garbage does not compete with the broker
	// for the machine.
	stamped := r.cfg.Mode == ModeE2E
	var free sync.Pool
	promise := func(rec *kgo.Record, err error) {
		now := time.Now()
		if err != nil {
			r.noteError(err)
		} else {
			r.produced.Add(1)
			r.producedBytes.Add(int64(len(rec.Value)))
			storeMax(&r.lastAck, now.UnixNano())
			if lat != nil {
				lat.record(now.Sub(rec.Timestamp))
			}
		}
		if stamped {
			*rec = kgo.Record{Value: rec.Value}
			free.Put(rec)
		}
	}

	// Records already handed to the client are seen through even when
	// ctx is canceled; canceling only stops new ones.
	produceCtx := context.WithoutCancel(ctx)
	payload := newPayload(r.cfg.RecordSize, uint64(id))
	perProducerRate := r.cfg.Rate / float64(r.cfg.Producers)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for k := int64(0); n < 0 || k < n; k++ {
		intended := time.Now()
		if perProducerRate > 0 {
			intended = r.start.Add(time.Duration(float64(k) * float64(time.Second) / perProducerRate))
			if wait := time.Until(intended); wait > 0 {
				timer.Reset(wait)
				select {
				case <-ctx.Done():
				case <-timer.C:
				}
			}
		}
		if ctx.Err() != nil || (!deadline.IsZero() && !intended.Before(deadline)) {
			break
		}
		rec := &kgo.Record{Value: payload}
		if stamped {
			if v, ok := free.Get().(*kgo.Record); ok {
				rec = v
			} else {
				rec.Value = slices.Clone(payload)
			}
			binary.BigEndian.PutUint64(rec.Value, uint64(intended.UnixNano()))
		}
		rec.Timestamp = intended
		cl.Produce(produceCtx, rec, promise)
	}
	flushCtx, cancel := context.WithTimeout(produceCtx, flushTimeout)
	defer cancel()
	if err := cl.Flush(flushCtx); err != nil {
		r.keepError(fmt.Errorf("producer %d: records still unacknowledged after %v: %w", id, flushTimeout, err))
	}
}

// producerOpts are producer id's client options.
func (r *run) producerOpts(id int) []kgo.Opt {
	opts := r.clientOpts(fmt.Sprintf("samsa-bench-producer-%d", id))
	acks, _ := acksOpt(r.cfg.Acks)                // validated
	codec, _ := compressionOpt(r.cfg.Compression) // validated
	opts = append(opts, acks...)
	return append(opts,
		codec,
		kgo.DefaultProduceTopic(r.cfg.Topic),
		kgo.ProducerLinger(r.cfg.Linger),
	)
}

// newPayload is a value of size random upper-case letters, as
// kafka-producer-perf-test sends: compressible about as much as text.
func newPayload(size int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x5a45a))
	b := make([]byte, size)
	for i := range b {
		b[i] = 'A' + byte(rng.IntN(26))
	}
	return b
}

// storeMax sets v to x when x is larger.
func storeMax(v *atomic.Int64, x int64) {
	for {
		cur := v.Load()
		if x <= cur || v.CompareAndSwap(cur, x) {
			return
		}
	}
}
