package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samsa-io/samsa/loadgen"
)

// The mapping of the Kafka workloads onto JetStream:
//
//   - A topic is a stream of the same name with file storage, one replica,
//     no limits, and subjects "<topic>.>"; partition p is the subject
//     "<topic>.<p>". The partition count is kept in the stream's metadata.
//   - A producer is a connection of its own publishing asynchronously
//     (PublishMsgAsync) with at most -nats-max-pending publishes awaiting
//     their PubAck, the counterpart of franz-go's pipelined batches; it
//     sends to the partitions' subjects round-robin, one message each.
//     A publish counts once its PubAck arrived: JetStream acknowledges
//     after the write (and, with -sync-always, after its fsync).
//   - A consumer is an ephemeral pull consumer without acks (AckNone; the
//     counterpart of a Kafka consumer that assigns partitions itself and
//     commits nothing) read with Consume and nats.go's default pull sizes,
//     filtering its round-robin share of the partitions' subjects, or
//     "<topic>.>" when it reads them all.
//   - Timestamps, pacing at a target rate (coordinated omission) and the
//     latency histograms work as in package loadgen: the first 8 bytes of
//     every value are the intended send time. A producer that has fallen
//     behind its target rate stops sending once twice the duration has
//     passed, as the harness makes the Kafka producers do.
const (
	natsMaxPending   = 4000 // nats.go's default for async publishes; -nats-max-pending
	natsFlushTimeout = 30 * time.Second
	natsPartitionKey = "partitions"
	natsIdleTimeout  = 10 * time.Second
	natsStampSize    = 8
	mebibyte         = 1 << 20 // loadgen's MB
)

type natsDriver struct {
	addr       string
	maxPending int // async publishes awaiting their PubAck, per producer
}

func (d natsDriver) connect(name string) (*nats.Conn, error) {
	return nats.Connect("nats://"+d.addr, nats.Name(name), nats.MaxReconnects(-1))
}

func (d natsDriver) createTopic(ctx context.Context, topic string, partitions int32) error {
	nc, err := d.connect("compare-admin")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:      topic,
		Subjects:  []string{topic + ".>"},
		Storage:   jetstream.FileStorage,
		Replicas:  1,
		Retention: jetstream.LimitsPolicy,
		Discard:   jetstream.DiscardOld,
		Metadata:  map[string]string{natsPartitionKey: strconv.Itoa(int(partitions))},
	})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return nil
	}
	return err
}

// natsRun is the state of one run against JetStream.
type natsRun struct {
	d          natsDriver
	cfg        loadgen.Config
	partitions int
	subjects   []string // by partition
	start      time.Time

	produced, producedBytes atomic.Int64
	consumed, consumedBytes atomic.Int64
	failed                  atomic.Int64
	lastAck, lastReceipt    atomic.Int64 // UnixNano

	errMu    sync.Mutex
	firstErr error // guarded by errMu

	recorders []*latencyRecorder // one per producer (produce) or consumer (e2e)
}

func (d natsDriver) run(ctx context.Context, cfg loadgen.Config) (*loadgen.Result, error) {
	r := &natsRun{d: d, cfg: cfg}
	nc, err := d.connect("compare-admin")
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	stream, err := js.Stream(ctx, cfg.Topic)
	if errors.Is(err, jetstream.ErrStreamNotFound) && cfg.Mode != loadgen.ModeConsume {
		if err = d.createTopic(ctx, cfg.Topic, cfg.Partitions); err == nil {
			stream, err = js.Stream(ctx, cfg.Topic)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("stream %q: %w", cfg.Topic, err)
	}
	info := stream.CachedInfo()
	r.partitions, _ = strconv.Atoi(info.Config.Metadata[natsPartitionKey])
	r.partitions = max(r.partitions, 1)
	for p := range r.partitions {
		r.subjects = append(r.subjects, cfg.Topic+"."+strconv.Itoa(p))
	}

	switch cfg.Mode {
	case loadgen.ModeProduce:
		r.newRecorders(cfg.Producers)
		r.start = time.Now()
		r.produceAll(ctx)
	case loadgen.ModeConsume:
		target := cfg.Count
		if target == 0 {
			target = int64(info.State.Msgs)
		}
		r.start = time.Now()
		stop, err := r.startConsumers(ctx, jetstream.DeliverAllPolicy, target, nil)
		if err != nil {
			return nil, err
		}
		r.waitReading(ctx, target, cfg.Duration, r.start)
		stop()
	case loadgen.ModeE2E:
		r.newRecorders(r.consumers())
		r.start = time.Now()
		stop, err := r.startConsumers(ctx, jetstream.DeliverNewPolicy, 0, r.recorders)
		if err != nil {
			return nil, err
		}
		r.produceAll(ctx)
		r.waitReading(ctx, r.produced.Load(), 0, time.Now())
		stop()
	}
	return r.result(ctx), nil
}

func (r *natsRun) consumers() int { return min(r.cfg.Consumers, r.partitions) }

func (r *natsRun) newRecorders(n int) {
	r.recorders = make([]*latencyRecorder, n)
	for i := range r.recorders {
		r.recorders[i] = newLatencyRecorder()
	}
}

func (r *natsRun) keepError(err error) {
	r.errMu.Lock()
	if r.firstErr == nil {
		r.firstErr = err
	}
	r.errMu.Unlock()
}

// produceAll runs the producers, each sending its share of the count or
// until the duration is over, and waits for their acknowledgements.
func (r *natsRun) produceAll(ctx context.Context) {
	var deadline time.Time
	if r.cfg.Duration > 0 {
		deadline = r.start.Add(r.cfg.Duration)
	}
	var wg sync.WaitGroup
	for id := range r.cfg.Producers {
		n := int64(-1)
		if r.cfg.Count > 0 {
			n = r.cfg.Count / int64(r.cfg.Producers)
			if int64(id) < r.cfg.Count%int64(r.cfg.Producers) {
				n++
			}
		}
		wg.Go(func() { r.producer(ctx, id, n, deadline) })
	}
	wg.Wait()
}

func (r *natsRun) producer(ctx context.Context, id int, n int64, deadline time.Time) {
	nc, err := r.d.connect(fmt.Sprintf("compare-producer-%d", id))
	if err != nil {
		r.keepError(err)
		return
	}
	defer nc.Close()
	var lat *latencyRecorder
	if r.cfg.Mode == loadgen.ModeProduce {
		lat = r.recorders[id]
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(r.d.maxPending),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) {
			now := time.Now()
			r.produced.Add(1)
			r.producedBytes.Add(int64(len(m.Data)))
			storeMax(&r.lastAck, now.UnixNano())
			if lat != nil && len(m.Data) >= natsStampSize {
				lat.record(now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(m.Data)))))
			}
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			r.failed.Add(1)
			r.keepError(err)
		}),
	)
	if err != nil {
		r.keepError(err)
		return
	}
	payload := make([]byte, max(r.cfg.RecordSize, natsStampSize))
	rng := rand.New(rand.NewPCG(uint64(id), 0x5a45a))
	for i := range payload {
		payload[i] = 'A' + byte(rng.IntN(26))
	}
	rate := r.cfg.Rate / float64(r.cfg.Producers)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for k := int64(0); n < 0 || k < n; k++ {
		intended := time.Now()
		if rate > 0 {
			intended = r.start.Add(time.Duration(float64(k) * float64(time.Second) / rate))
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
		if rate > 0 && !deadline.IsZero() && time.Since(deadline) > r.cfg.Duration {
			// Too far behind the target rate: stop sending, as a Kafka
			// phase does (see runner.measure).
			break
		}
		value := make([]byte, len(payload))
		copy(value, payload)
		binary.BigEndian.PutUint64(value, uint64(intended.UnixNano()))
		subject := r.subjects[int((k*int64(r.cfg.Producers)+int64(id))%int64(len(r.subjects)))]
		if _, err := js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: value}, jetstream.WithStallWait(natsFlushTimeout)); err != nil {
			r.failed.Add(1)
			r.keepError(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(natsFlushTimeout):
		r.keepError(fmt.Errorf("producer %d: %d publishes unacknowledged after %v", id, js.PublishAsyncPending(), natsFlushTimeout))
	}
}

// startConsumers starts one ordered consumer per share of the partitions;
// each stops counting at limit (0: no limit). The returned function stops
// them.
func (r *natsRun) startConsumers(ctx context.Context, deliver jetstream.DeliverPolicy, limit int64, recs []*latencyRecorder) (stop func(), err error) {
	nc, err := r.d.connect("compare-consumers")
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	shares := make([][]string, r.consumers())
	for p, subject := range r.subjects {
		shares[p%len(shares)] = append(shares[p%len(shares)], subject)
	}
	var ccs []jetstream.ConsumeContext
	stop = func() {
		for _, cc := range ccs {
			cc.Stop()
		}
		nc.Close()
	}
	for id, share := range shares {
		if len(shares) == 1 {
			share = []string{r.cfg.Topic + ".>"}
		}
		var lat *latencyRecorder
		if recs != nil {
			lat = recs[id]
		}
		cons, err := js.CreateConsumer(ctx, r.cfg.Topic, jetstream.ConsumerConfig{
			FilterSubjects:    share,
			DeliverPolicy:     deliver,
			AckPolicy:         jetstream.AckNonePolicy,
			InactiveThreshold: time.Minute,
		})
		if err != nil {
			stop()
			return nil, fmt.Errorf("consumer %d: %w", id, err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			now := time.Now()
			if limit > 0 {
				if r.consumed.Add(1) > limit {
					r.consumed.Add(-1)
					return
				}
			} else {
				r.consumed.Add(1)
			}
			data := m.Data()
			r.consumedBytes.Add(int64(len(data)))
			storeMax(&r.lastReceipt, now.UnixNano())
			if lat != nil && len(data) >= natsStampSize {
				lat.record(now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(data)))))
			}
		}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			r.keepError(fmt.Errorf("consumer %d: %w", id, err))
		}))
		if err != nil {
			stop()
			return nil, fmt.Errorf("consumer %d: %w", id, err)
		}
		ccs = append(ccs, cc)
	}
	return stop, nil
}

// waitReading waits until want records were read, d passed (if set), ctx
// ended, or nothing arrived for natsIdleTimeout since idleFrom.
func (r *natsRun) waitReading(ctx context.Context, want int64, d time.Duration, idleFrom time.Time) {
	var deadline <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			return
		case now := <-tick.C:
			if r.consumed.Load() >= want {
				return
			}
			last := time.Unix(0, r.lastReceipt.Load())
			if last.Before(idleFrom) {
				last = idleFrom
			}
			if now.Sub(last) >= natsIdleTimeout {
				return
			}
		}
	}
}

func (r *natsRun) result(ctx context.Context) *loadgen.Result {
	res := &loadgen.Result{
		Mode:        r.cfg.Mode,
		Topic:       r.cfg.Topic,
		Partitions:  r.partitions,
		RecordSize:  r.cfg.RecordSize,
		Acks:        r.cfg.Acks,
		Compression: "none",
		TargetRate:  r.cfg.Rate,
		Produced:    r.produced.Load(),
		Consumed:    r.consumed.Load(),
		Failed:      r.failed.Load(),
		Interrupted: ctx.Err() != nil,
	}
	if r.cfg.Mode != loadgen.ModeConsume {
		res.Producers = r.cfg.Producers
	}
	if r.cfg.Mode != loadgen.ModeProduce {
		res.Consumers = r.consumers()
	}
	if r.firstErr != nil {
		res.FirstError = r.firstErr.Error()
	}
	if r.cfg.Mode == loadgen.ModeE2E {
		res.Missing = max(res.Produced-res.Consumed, 0)
	}
	last := r.lastReceipt.Load()
	res.Records, res.Bytes = res.Consumed, r.consumedBytes.Load()
	if r.cfg.Mode == loadgen.ModeProduce {
		last = r.lastAck.Load()
		res.Records, res.Bytes = res.Produced, r.producedBytes.Load()
	}
	if last != 0 {
		res.ElapsedSeconds = time.Unix(0, last).Sub(r.start).Seconds()
	}
	if res.ElapsedSeconds > 0 {
		res.RecordsPerSec = float64(res.Records) / res.ElapsedSeconds
		res.MBPerSec = float64(res.Bytes) / res.ElapsedSeconds / mebibyte
	}
	if len(r.recorders) > 0 {
		h := newHistogram()
		for _, rec := range r.recorders {
			rec.mergeInto(h)
		}
		res.Latency = summarize(h)
	}
	return res
}

// latencyRecorder is one worker's latency histogram, in microseconds as
// loadgen keeps them (1 µs to 1 h, 3 significant digits).
type latencyRecorder struct {
	mu   sync.Mutex
	hist *hdrhistogram.Histogram // guarded by mu
}

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)
}

func newLatencyRecorder() *latencyRecorder { return &latencyRecorder{hist: newHistogram()} }

func (l *latencyRecorder) record(d time.Duration) {
	us := min(max(int64(d/time.Microsecond), 1), int64(time.Hour/time.Microsecond))
	l.mu.Lock()
	_ = l.hist.RecordValue(us) // within range
	l.mu.Unlock()
}

func (l *latencyRecorder) mergeInto(h *hdrhistogram.Histogram) {
	l.mu.Lock()
	h.Merge(l.hist)
	l.mu.Unlock()
}

// summarize reads h's percentiles in milliseconds, as loadgen does.
func summarize(h *hdrhistogram.Histogram) *loadgen.Latency {
	if h.TotalCount() == 0 {
		return nil
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return &loadgen.Latency{
		Count: h.TotalCount(),
		Mean:  h.Mean() / 1000,
		P50:   ms(h.ValueAtPercentile(50)),
		P95:   ms(h.ValueAtPercentile(95)),
		P99:   ms(h.ValueAtPercentile(99)),
		P999:  ms(h.ValueAtPercentile(99.9)),
		Max:   ms(h.Max()),
	}
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
