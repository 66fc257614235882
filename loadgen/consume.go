package loadgen

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// idleCheckInterval is how often a run looks whether reading went idle.
const idleCheckInterval = 100 * time.Millisecond

// reading is what the consumers of a run share to know when to stop.
type reading struct {
	// limit is the count at which reading is complete: the consume
	// target, or in an e2e run what the producers got acknowledged (until
	// they finish: no limit). Consumers never count past a consume
	// target.
	limit   atomic.Int64
	capped  bool // immutable: the count stops at limit (consume)
	done    chan struct{}
	doneOne sync.Once
}

func newReading(limit int64, capped bool) *reading {
	rd := &reading{capped: capped, done: make(chan struct{})}
	rd.limit.Store(limit)
	return rd
}

// check ends reading once count reached the limit.
func (rd *reading) check(count int64) {
	if count >= rd.limit.Load() {
		rd.doneOne.Do(func() { close(rd.done) })
	}
}

// runConsume reads the topic from its start, for throughput.
func (r *run) runConsume(ctx context.Context) {
	limit, capped := r.target, true
	if limit == 0 {
		limit, capped = math.MaxInt64, false // wait for records until the duration ends
	}
	rd := newReading(limit, capped)
	r.start = time.Now()
	stopProgress := r.startProgress()
	defer stopProgress()

	readCtx, stopReading := context.WithCancel(ctx)
	wait := r.startConsumers(readCtx, rd)
	var deadline <-chan time.Time
	if r.cfg.Duration > 0 {
		t := time.NewTimer(r.cfg.Duration)
		defer t.Stop()
		deadline = t.C
	}
	// Without a duration, a topic holding fewer records than asked for
	// would be waited on for ever: give up when reading goes idle.
	idleFrom := r.start
	if r.cfg.Duration > 0 {
		idleFrom = time.Time{}
	}
	r.waitReading(ctx, rd, deadline, idleFrom)
	stopReading()
	wait()
}

// runE2E runs producers and consumers together and measures the time from
// each record's intended send time until a consumer has it.
func (r *run) runE2E(ctx context.Context) {
	r.newRecorders(r.consumers())
	rd := newReading(math.MaxInt64, false)
	r.start = time.Now()
	stopProgress := r.startProgress()
	defer stopProgress()

	readCtx, stopReading := context.WithCancel(ctx)
	wait := r.startConsumers(readCtx, rd)
	r.produceAll(ctx)
	// Now the count to read is known: everything acknowledged.
	rd.limit.Store(r.produced.Load())
	rd.check(r.consumed.Load())
	r.waitReading(ctx, rd, nil, time.Now())
	stopReading()
	wait()
}

// waitReading waits until reading is done, the deadline passes, ctx ends,
// or, if idleFrom is set, no record arrived for IdleTimeout since the later
// of idleFrom and the last record.
func (r *run) waitReading(ctx context.Context, rd *reading, deadline <-chan time.Time, idleFrom time.Time) {
	var idle <-chan time.Time
	if !idleFrom.IsZero() {
		t := time.NewTicker(idleCheckInterval)
		defer t.Stop()
		idle = t.C
	}
	for {
		select {
		case <-rd.done:
			return
		case <-deadline:
			return
		case <-ctx.Done():
			return
		case now := <-idle:
			last := time.Unix(0, r.lastReceipt.Load())
			if last.Before(idleFrom) {
				last = idleFrom
			}
			if now.Sub(last) >= r.cfg.IdleTimeout {
				return
			}
		}
	}
}

// startConsumers starts the consumers, each reading its round-robin share
// of the partitions from startOffsets, until ctx ends. The returned
// function waits for them to stop.
func (r *run) startConsumers(ctx context.Context, rd *reading) (wait func()) {
	shares := make([][]int32, r.consumers())
	for i, p := range r.partitions {
		shares[i%len(shares)] = append(shares[i%len(shares)], p)
	}
	var wg sync.WaitGroup
	for id, parts := range shares {
		var lat *recorder
		if r.cfg.Mode == ModeE2E {
			lat = r.recorders[id]
		}
		// The client is made here, not in the goroutine, so that it has
		// its start offsets before any producer sends.
		cl, err := kgo.NewClient(r.consumerOpts(id, parts)...)
		if err != nil {
			r.keepError(fmt.Errorf("consumer %d: %w", id, err))
			continue
		}
		wg.Go(func() {
			defer cl.Close()
			r.consume(ctx, cl, rd, lat)
		})
	}
	return wg.Wait
}

// consumerOpts are the client options of consumer id reading parts.
func (r *run) consumerOpts(id int, parts []int32) []kgo.Opt {
	offsets := make(map[int32]kgo.Offset, len(parts))
	for _, p := range parts {
		offsets[p] = kgo.NewOffset().At(r.startOffsets[p])
	}
	return append(r.clientOpts(fmt.Sprintf("samsa-bench-consumer-%d", id)),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.cfg.Topic: offsets}),
	)
}

// consume polls until ctx ends, counting records and, with lat set,
// recording each e2e record's latency from the send time in its value.
func (r *run) consume(ctx context.Context, cl *kgo.Client, rd *reading, lat *recorder) {
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		fetches.EachError(func(_ string, _ int32, err error) {
			r.keepError(fmt.Errorf("fetch: %w", err))
		})
		recs := fetches.Records()
		if len(recs) == 0 {
			continue
		}
		n := r.claim(rd, int64(len(recs)))
		var bytes int64
		for _, rec := range recs[:n] {
			bytes += int64(len(rec.Value))
			if lat != nil && len(rec.Value) >= stampSize {
				sent := int64(binary.BigEndian.Uint64(rec.Value))
				lat.record(now.Sub(time.Unix(0, sent)))
			}
		}
		r.consumedBytes.Add(bytes)
		storeMax(&r.lastReceipt, now.UnixNano())
		rd.check(r.consumed.Load())
	}
}

// claim adds up to n records to the consumed count, not past a consume
// target, and returns how many it added.
func (r *run) claim(rd *reading, n int64) int64 {
	if !rd.capped {
		r.consumed.Add(n)
		return n
	}
	for {
		cur := r.consumed.Load()
		take := min(n, rd.limit.Load()-cur)
		if take <= 0 {
			return 0
		}
		if r.consumed.CompareAndSwap(cur, cur+take) {
			return take
		}
	}
}
