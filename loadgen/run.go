package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Run runs the benchmark cfg describes and returns its result. It fails
// only when the run cannot start (a bad config, an unreachable cluster, a
// missing topic to consume); records that fail or go missing during the run
// are counted in the result (see [Result.Err]). Canceling ctx ends the run
// early with a result for what was done.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg}
	// Metadata is not cached for long: a topic just created must show.
	admCl, err := kgo.NewClient(append(r.clientOpts("samsa-bench-admin"), kgo.MetadataMinAge(10*time.Millisecond))...)
	if err != nil {
		return nil, ConfigError{err}
	}
	adm := kadm.NewClient(admCl)
	defer adm.Close()
	if err := r.prepare(ctx, adm); err != nil {
		return nil, err
	}
	switch cfg.Mode {
	case ModeProduce:
		r.runProduce(ctx)
	case ModeConsume:
		r.runConsume(ctx)
	case ModeE2E:
		r.runE2E(ctx)
	}
	return r.result(ctx), nil
}

// run is the state of one benchmark run.
type run struct {
	cfg Config // immutable

	// Set by prepare, then immutable.
	partitions   []int32
	created      bool
	startOffsets map[int32]int64 // where consumers begin
	target       int64           // consume: records to read; 0 means none to wait for

	start time.Time // set before workers start, then immutable

	produced      atomic.Int64 // records acknowledged
	producedBytes atomic.Int64
	consumed      atomic.Int64
	consumedBytes atomic.Int64
	failed        atomic.Int64 // records whose produce failed
	lastAck       atomic.Int64 // UnixNano of the last acknowledgement
	lastReceipt   atomic.Int64 // UnixNano of the last record read

	errMu    sync.Mutex
	firstErr error // guarded by errMu

	// Latencies: one recorder per producer (produce) or consumer (e2e).
	// The slice is set before workers start, then immutable.
	recorders []*recorder
}

// clientOpts are the options of every client the run makes.
func (r *run) clientOpts(clientID string) []kgo.Opt {
	return append([]kgo.Opt{kgo.SeedBrokers(r.cfg.Brokers...), kgo.ClientID(clientID)}, r.cfg.ClientOpts...)
}

// prepare finds or creates the topic and decides where reading starts.
func (r *run) prepare(ctx context.Context, adm *kadm.Client) error {
	topic := r.cfg.Topic
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("look up topic %q: %w", topic, err)
	}
	td := details[topic]
	switch {
	case td.Err == nil && len(td.Partitions) > 0:
	case td.Err != nil && !errors.Is(td.Err, kerr.UnknownTopicOrPartition):
		return fmt.Errorf("look up topic %q: %w", topic, td.Err)
	case r.cfg.Mode == ModeConsume:
		return fmt.Errorf("topic %q does not exist; write records to it first with 'samsa bench produce --topic %s'", topic, topic)
	default:
		resp, err := adm.CreateTopic(ctx, r.cfg.Partitions, r.cfg.ReplicationFactor, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %q: %w", topic, err)
		}
		r.created = err == nil
		if td, err = waitForTopic(ctx, adm, topic); err != nil {
			return err
		}
	}
	r.partitions = td.Partitions.Numbers()

	switch r.cfg.Mode {
	case ModeE2E:
		// Consumers start at today's end, so they read exactly what the
		// producers write.
		ends, err := listOffsets(ctx, adm.ListEndOffsets, topic)
		if err != nil {
			return err
		}
		r.startOffsets = ends
	case ModeConsume:
		starts, err := listOffsets(ctx, adm.ListStartOffsets, topic)
		if err != nil {
			return err
		}
		ends, err := listOffsets(ctx, adm.ListEndOffsets, topic)
		if err != nil {
			return err
		}
		r.startOffsets = starts
		r.target = r.cfg.Count
		if r.target == 0 {
			for p, end := range ends {
				r.target += end - starts[p]
			}
			if r.target == 0 && r.cfg.Duration == 0 {
				return fmt.Errorf("topic %q is empty; write records to it first with 'samsa bench produce --topic %s', or give --count or --duration to wait for them", topic, topic)
			}
		}
	}
	return nil
}

// waitForTopic waits until a just created topic shows its partitions in
// the metadata.
func waitForTopic(ctx context.Context, adm *kadm.Client, topic string) (kadm.TopicDetail, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		details, err := adm.ListTopics(ctx, topic)
		if err == nil {
			if td := details[topic]; td.Err == nil && len(td.Partitions) > 0 {
				return td, nil
			}
		}
		select {
		case <-ctx.Done():
			return kadm.TopicDetail{}, fmt.Errorf("topic %q was created but its partitions did not appear: %w", topic, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// listOffsets lists one topic's start or end offsets by partition.
func listOffsets(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error), topic string) (map[int32]int64, error) {
	listed, err := list(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list offsets of %q: %w", topic, err)
	}
	out := make(map[int32]int64)
	listed.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// noteError counts a failed record, keeping the first error.
func (r *run) noteError(err error) {
	r.failed.Add(1)
	r.keepError(err)
}

// keepError keeps err if it is the run's first.
func (r *run) keepError(err error) {
	r.errMu.Lock()
	if r.firstErr == nil {
		r.firstErr = err
	}
	r.errMu.Unlock()
}

// newRecorders makes n latency recorders.
func (r *run) newRecorders(n int) {
	r.recorders = make([]*recorder, n)
	for i := range r.recorders {
		r.recorders[i] = newRecorder()
	}
}

// reportProgress calls cfg.Progress every interval until stop is closed.
func (r *run) reportProgress(stop <-chan struct{}) {
	if r.cfg.Progress == nil {
		return
	}
	interval := r.cfg.ProgressInterval
	if interval <= 0 {
		interval = DefaultProgressInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	hist := newHistogram()
	last := r.start
	var lastRecords, lastBytes int64
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			records, bytes := r.mainCount()
			hist.Reset()
			for _, rec := range r.recorders {
				rec.drainInterval(hist)
			}
			secs := now.Sub(last).Seconds()
			r.cfg.Progress(Snapshot{
				Mode:          r.cfg.Mode,
				Elapsed:       now.Sub(r.start),
				Produced:      r.produced.Load(),
				Consumed:      r.consumed.Load(),
				Errors:        r.failed.Load(),
				RecordsPerSec: float64(records-lastRecords) / secs,
				MBPerSec:      float64(bytes-lastBytes) / secs / mb,
				Latency:       summarize(hist),
			})
			last, lastRecords, lastBytes = now, records, bytes
		}
	}
}

// mainCount is the count the run's throughput is about: records
// acknowledged for produce, records read otherwise.
func (r *run) mainCount() (records, bytes int64) {
	if r.cfg.Mode == ModeProduce {
		return r.produced.Load(), r.producedBytes.Load()
	}
	return r.consumed.Load(), r.consumedBytes.Load()
}

// result gathers the run's numbers once every worker has stopped.
func (r *run) result(ctx context.Context) *Result {
	res := &Result{
		Mode:         r.cfg.Mode,
		Topic:        r.cfg.Topic,
		Partitions:   len(r.partitions),
		TopicCreated: r.created,
		RecordSize:   r.cfg.RecordSize,
		Acks:         r.cfg.Acks,
		Compression:  r.cfg.Compression,
		LingerMS:     float64(r.cfg.Linger) / float64(time.Millisecond),
		TargetRate:   r.cfg.Rate,
		Produced:     r.produced.Load(),
		Consumed:     r.consumed.Load(),
		Failed:       r.failed.Load(),
		Interrupted:  ctx.Err() != nil,
	}
	if r.cfg.Mode != ModeConsume {
		res.Producers = r.cfg.Producers
	}
	if r.cfg.Mode != ModeProduce {
		res.Consumers = r.consumers()
	}
	if r.firstErr != nil {
		res.FirstError = r.firstErr.Error()
	}
	if r.cfg.Mode == ModeE2E && !res.Interrupted {
		res.Missing = max(res.Produced-res.Consumed, 0)
	}
	res.Records, res.Bytes = r.mainCount()
	last := r.lastReceipt.Load()
	if r.cfg.Mode == ModeProduce {
		last = r.lastAck.Load()
	}
	if last != 0 {
		res.ElapsedSeconds = time.Unix(0, last).Sub(r.start).Seconds()
	}
	if res.ElapsedSeconds > 0 {
		res.RecordsPerSec = float64(res.Records) / res.ElapsedSeconds
		res.MBPerSec = float64(res.Bytes) / res.ElapsedSeconds / mb
	}
	if len(r.recorders) > 0 {
		h := newHistogram()
		for _, rec := range r.recorders {
			rec.mergeTotal(h)
		}
		res.Latency = summarize(h)
	}
	return res
}

// consumers is how many consumers read: at most one per partition.
func (r *run) consumers() int {
	return min(r.cfg.Consumers, max(len(r.partitions), 1))
}

// mb is the MB of MB/s, as kafka-producer-perf-test counts it.
const mb = 1 << 20
