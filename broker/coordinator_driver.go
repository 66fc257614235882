package broker

// The plumbing that the group coordinator's driver (groups.go) and the
// transaction coordinator's driver (transactions.go) share. Each drives a
// pure state machine that keeps its state in a compacted internal topic
// (__consumer_offsets, __transaction_state), and each does so the same way:
//
//   - At start-up it creates the internal topic if it is absent
//     (ensureInternalTopic), then replays every partition of it into the
//     coordinator in the background (replayAll). Until that ends, requests
//     are answered COORDINATOR_LOAD_IN_PROGRESS; after close,
//     COORDINATOR_NOT_AVAILABLE (stateLocked).
//   - Every call into the coordinator is made under one mutex, and the
//     records it returns are appended to the internal topic under the same
//     mutex (appendToTopicLocked), so the log holds the changes in the
//     order the state machine made them. Outside the mutex the driver
//     waits until those records are durable (durable) and only then lets
//     anything depend on them; a reply whose records could not be written
//     is answered with an error.
//   - A request is matched to its reply by a token from a counter: the
//     handler registers a channel for its token (registerLocked), and a
//     reply may come from the call it made or from a later one (handOver).
//     The handler takes the reply at once (replyNow) or waits for it until
//     its context ends, the driver closes or the coordinator is thrown
//     away (awaitReply).
//   - A timer calls the driver's tick at the coordinator's Deadline
//     (rearmLocked).
//   - When records could not be appended, or do not become durable, the
//     coordinator's memory is ahead of its log: answered with an error, a
//     commit would still show, and a restart would lose it. So the driver
//     stops serving at once (appendToTopicLocked), answers the failed
//     output's replies with their error, and then throws the coordinator
//     away and loads a fresh one from the log as at start-up (rebuild):
//     handlers still waiting for a reply get COORDINATOR_NOT_AVAILABLE, and
//     requests COORDINATOR_LOAD_IN_PROGRESS until the load ends. A load
//     that fails leaves the coordinator not serving until a restart.
//
// coordDriver holds that plumbing. A driver embeds it, and keeps to itself
// what is its own: the coordinator's records, outputs and topics, and what
// it does once records are durable (replies; for transactions, markers).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group"
	"github.com/samsa-io/samsa/metadata"
	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/storage"
	"github.com/samsa-io/samsa/txn"
)

// internalSegmentBytes is the segment size of the coordinators' internal
// topics (100 MiB): Kafka's offsets.topic.segment.bytes and
// transaction.state.log.segment.bytes.
const internalSegmentBytes = 100 << 20

// minTickDelay is the least time between a call and the tick it arms: a
// deadline already past fires after this, so a coordinator that keeps
// reporting one cannot make the timer spin.
const minTickDelay = 10 * time.Millisecond

// loadReadBytes is how much of a partition one replay read asks for.
const loadReadBytes = 1 << 20

// coordinator is what coordDriver needs of a pure coordinator
// (*group.Coordinator, *txn.Coordinator).
type coordinator interface {
	// Deadline is when the coordinator next wants a Tick, if it does.
	Deadline() (time.Time, bool)
}

// coordOwner is the driver that embeds a coordDriver: what the plumbing
// calls back.
type coordOwner interface {
	// load replays the internal topic (replayAll) into the coordinator,
	// fresh and of the given incarnation, and then marks it loaded unless
	// a rebuild came meanwhile; loadLoop runs it in the background, at
	// start and after every rebuild, never two at a time.
	load(incarnation uint64)
	// setTopics gives the coordinator the image's topics; it runs on the
	// metadata's apply goroutine.
	setTopics(img *metadata.Image)
	// tick runs the coordinator's timers; the timer calls it.
	tick()
}

// coordDriver is the plumbing of a coordinator's driver: C is the
// coordinator, T its reply token.
//
// Lock order: mu, then partitions.mu (read, to find a log), then a
// storage.Log's locks (appends). The owner's doc tells where other locks
// come in.
type coordDriver[C coordinator, T ~uint64] struct {
	b          *Broker
	logger     *slog.Logger
	owner      coordOwner     // immutable after setup
	newCoord   func() C       // an empty coordinator; immutable after setup
	topic      string         // the internal topic; immutable after setup
	partitions int32          // partitions of topic; immutable after setup
	done       chan struct{}  // closed by close: waiting handlers give up
	loader     sync.WaitGroup // loadLoop

	mu    sync.Mutex
	coord C // guarded by mu
	// incarnation counts the coordinators rebuild threw away: it tells
	// whether records (written.incarnation) came from the coordinator in
	// coord. Guarded by mu.
	incarnation uint64
	loaded      bool                     // coord may serve; guarded by mu
	loading     bool                     // loadLoop runs; guarded by mu
	closed      bool                     // guarded by mu
	next        T                        // the last token handed out; guarded by mu
	waiting     map[T]chan kmsg.Response // replies due to handlers; guarded by mu
	timer       *time.Timer              // fires owner.tick; guarded by mu
	armedFor    time.Time                // the deadline timer is set for; guarded by mu
	cancelMeta  func()                   // stops metadata callbacks; set once in start
}

// setup readies d to drive the coordinators newCoord makes (a fresh one
// for every load: at start, and after every rebuild), whose state is in
// the partitions of topic. The component names the driver in its logs.
func (d *coordDriver[C, T]) setup(b *Broker, owner coordOwner, component, topic string, partitions int32, newCoord func() C) {
	d.b = b
	d.logger = b.logger.With("component", component)
	d.owner = owner
	d.newCoord = newCoord
	d.topic = topic
	d.partitions = partitions
	d.done = make(chan struct{})
	d.coord = newCoord() // replaced by loadLoop's; never nil
	d.waiting = map[T]chan kmsg.Response{}
}

// ensureInternalTopic creates a coordinator's compacted internal topic
// (__consumer_offsets, __transaction_state) if it does not exist, and
// returns its partition count. An existing topic keeps its count, with a
// warning if that is not what partitions, from the broker config
// countConfig, asks for.
func (b *Broker) ensureInternalTopic(ctx context.Context, name, countConfig string, partitions int32, compression string) (int32, error) {
	n, err := b.createInternalTopic(ctx, name, partitions, compression)
	if err == nil && n != partitions {
		b.logger.Warn(name+" exists with another partition count than "+countConfig+"; using the topic's",
			"partitions", n, "configured", partitions)
	}
	return n, err
}

func (b *Broker) createInternalTopic(ctx context.Context, name string, partitions int32, compression string) (int32, error) {
	if t, ok := b.meta.Image().Topics[name]; ok {
		return int32(len(t.Partitions)), nil
	}
	t, err := b.createTopic(ctx, metadata.NewTopic{
		Name:              name,
		Partitions:        partitions,
		ReplicationFactor: 1,
		Configs: map[string]string{
			"cleanup.policy":   "compact",
			"compression.type": compression,
			"segment.bytes":    strconv.Itoa(internalSegmentBytes),
		},
	})
	if err != nil {
		if t, ok := b.meta.Image().Topics[name]; ok {
			return int32(len(t.Partitions)), nil
		}
		return 0, fmt.Errorf("create %s: %w", name, err)
	}
	return int32(len(t.Partitions)), nil
}

// start follows the metadata and begins loading in the background.
func (d *coordDriver[C, T]) start() {
	d.cancelMeta = d.b.meta.OnChange(func(_, next *metadata.Image) { d.owner.setTopics(next) })
	d.mu.Lock()
	d.startLoadingLocked()
	d.mu.Unlock()
}

// startLoadingLocked starts loadLoop unless it runs: then it loads again
// by itself if the coordinator was rebuilt meanwhile. One load at a time,
// so that no two replay into the same coordinator.
func (d *coordDriver[C, T]) startLoadingLocked() {
	if d.loading || d.closed {
		return
	}
	d.loading = true
	d.loader.Go(d.loadLoop)
}

// loadLoop loads a fresh coordinator (owner.load), and again as long as a
// rebuild threw away the one it loaded: that happens when the records it
// writes once loaded fail. A load that fails leaves the coordinator not
// serving; a half-filled coordinator is never loaded again, only replaced.
//
// The coordinator it replaces may have been told of markers
// (groups.txnMarker) since its load: those are in the log before the
// replay begins, so the replay reads them again.
func (d *coordDriver[C, T]) loadLoop() {
	for {
		d.mu.Lock()
		incarnation := d.incarnation
		d.coord = d.newCoord()
		d.mu.Unlock()
		d.owner.load(incarnation)
		d.mu.Lock()
		if d.closed || d.incarnation == incarnation {
			d.loading = false
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
	}
}

// fillingLocked reports whether the coordinator a load of incarnation
// fills is still the one to serve: the driver is open and no rebuild came
// since.
func (d *coordDriver[C, T]) fillingLocked(incarnation uint64) bool {
	return !d.closed && d.incarnation == incarnation
}

// close stops the timer and the metadata callbacks, makes waiting handlers
// give up, and waits for the loader.
func (d *coordDriver[C, T]) close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	if d.timer != nil {
		d.timer.Stop()
	}
	close(d.done)
	d.mu.Unlock()
	if d.cancelMeta != nil {
		d.cancelMeta()
	}
	d.loader.Wait()
}

// state is the error code of a coordinator that cannot serve (loading,
// closed), 0 when it can.
func (d *coordDriver[C, T]) state() int16 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stateLocked()
}

func (d *coordDriver[C, T]) stateLocked() int16 {
	switch {
	case d.closed:
		return kerr.CoordinatorNotAvailable.Code
	case !d.loaded:
		return kerr.CoordinatorLoadInProgress.Code
	}
	return 0
}

// read runs f on the loaded coordinator; it returns the error code for the
// coordinator's state (loading, closed) and does not run f then.
func (d *coordDriver[C, T]) read(f func(c C)) int16 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if code := d.stateLocked(); code != 0 {
		return code
	}
	f(d.coord)
	return 0
}

// replayAll reads every partition of the internal topic, from its log
// start to its end as they are now, and gives each record, with its batch,
// to replay, which takes mu itself. A record that does not replay is
// logged and skipped. It returns false if a partition could not be read:
// the coordinator must not serve then.
func (d *coordDriver[C, T]) replayAll(replay func(p int32, b batchInfo, key, value []byte) error) bool {
	start := time.Now()
	var records int
	for p := range d.partitions {
		n, err := d.replayPartition(p, replay)
		records += n
		if err != nil {
			if d.b.ctx.Err() == nil {
				d.logger.Error("loading "+d.topic+" failed; its coordinator does not serve", "partition", p, "err", err)
			}
			return false
		}
	}
	d.logger.Info("loaded "+d.topic, "partitions", d.partitions, "records", records,
		"took", time.Since(start).Round(time.Millisecond))
	return true
}

// replayPartition replays partition p from its log start to its end.
func (d *coordDriver[C, T]) replayPartition(p int32, replay func(p int32, b batchInfo, key, value []byte) error) (int, error) {
	part, ok := d.b.parts.get(d.topic, p)
	if !ok {
		return 0, fmt.Errorf("no log for %s-%d", d.topic, p)
	}
	return readBatchRecords(d.b.ctx, part.log, func(b batchInfo, offset int64, key, value []byte) {
		if err := replay(p, b, key, value); err != nil {
			d.logger.Warn("skipping a record of "+d.topic+" that does not replay",
				"partition", p, "offset", offset, "err", err)
		}
	})
}

// batchInfo is what a record's batch says about it.
type batchInfo struct {
	producerID             int64
	transactional, control bool
}

// readBatchRecords calls fn for every record of l, with its batch, from
// its log start to its end as they are now. The key and value are fn's to
// keep; a nil value is a tombstone.
func readBatchRecords(ctx context.Context, l *storage.Log, fn func(b batchInfo, offset int64, key, value []byte)) (int, error) {
	offs := l.Offsets()
	offset, end := offs.LogStart, offs.LogEnd
	var buf, scratch []byte
	var it record.Iter
	n := 0
	for offset < end {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		res, err := l.Read(buf[:0], offset, loadReadBytes, end)
		if err != nil {
			return n, err
		}
		buf = res.Data
		data := res.Data
		if len(data) == 0 {
			break // nothing more below end (the tail was compacted away)
		}
		for len(data) > 0 {
			h, err := record.ParseHeader(data)
			if err != nil {
				return n, err
			}
			if h.Size() > len(data) {
				return n, fmt.Errorf("%w: a batch at offset %d runs past the read", record.ErrCorrupt, h.BaseOffset)
			}
			batch := data[:h.Size()]
			data = data[h.Size():]
			offset = h.LastOffset() + 1
			info := batchInfo{producerID: h.ProducerID, transactional: h.Attributes.Transactional(), control: h.Attributes.Control()}
			if err := it.Init(batch, scratch); err != nil {
				return n, err
			}
			for it.Next() {
				rec := it.Record()
				var value []byte
				if rec.Value != nil {
					value = bytes.Clone(rec.Value)
				}
				fn(info, rec.Offset, bytes.Clone(rec.Key), value)
				n++
			}
			if err := it.Err(); err != nil {
				return n, err
			}
			scratch = it.Buffer()
		}
	}
	return n, nil
}

// rearmLocked sets the timer for the coordinator's deadline.
func (d *coordDriver[C, T]) rearmLocked() {
	if d.closed {
		return
	}
	t, ok := d.coord.Deadline()
	if !ok {
		if d.timer != nil {
			d.timer.Stop()
		}
		d.armedFor = time.Time{}
		return
	}
	if d.timer != nil && t.Equal(d.armedFor) {
		return
	}
	if d.timer != nil {
		d.timer.Stop()
	}
	d.armedFor = t
	d.timer = time.AfterFunc(max(time.Until(t), minTickDelay), d.owner.tick)
}

// firedLocked notes that the timer has fired: the next rearmLocked sets it
// again even for the same deadline.
func (d *coordDriver[C, T]) firedLocked() {
	d.armedFor = time.Time{}
}

// coordRecord is one record for the internal topic. group.Record and
// txn.Record have the same fields, and convert to it (coordRecords).
type coordRecord struct {
	Partition  int32
	Key, Value []byte
}

// coordRecords is a coordinator's records as appendToTopicLocked takes
// them.
func coordRecords[R group.Record | txn.Record](recs []R) []coordRecord {
	out := make([]coordRecord, len(recs))
	for i, r := range recs {
		out[i] = coordRecord(r)
	}
	return out
}

// written is where an Output's records went: durable once every log is
// durable up to its end. err is set when a record could not be appended.
// incarnation is the coordinator's that made them (coordDriver).
type written struct {
	logs        []*storage.Log
	ends        []int64
	err         error
	incarnation uint64
}

// appendToTopicLocked appends records to the internal topic: per
// partition one batch built with opts (or more, if one would exceed
// max.message.bytes), in order. If one cannot be appended, the
// coordinator stops serving at once: its memory holds what the log does
// not, and no request may read it or build on it until rebuild replaces
// it.
func (d *coordDriver[C, T]) appendToTopicLocked(recs []coordRecord, opts record.BuildOptions) written {
	w := written{incarnation: d.incarnation}
	if len(recs) == 0 {
		return w
	}
	now := time.Now().UnixMilli()
	var order []int32
	byPartition := map[int32][]record.Record{}
	for _, r := range recs {
		if _, ok := byPartition[r.Partition]; !ok {
			order = append(order, r.Partition)
		}
		rs := byPartition[r.Partition]
		byPartition[r.Partition] = append(rs, record.Record{Offset: int64(len(rs)), Timestamp: now, Key: r.Key, Value: r.Value})
	}
	t := d.b.meta.Image().Topics[d.topic]
	for _, p := range order {
		part, ok := d.b.parts.get(d.topic, p)
		if !ok || t == nil || int(p) >= len(t.Partitions) {
			w.err = errors.Join(w.err, fmt.Errorf("%w: %s-%d does not exist", kerr.CoordinatorNotAvailable, d.topic, p))
			continue
		}
		o := opts
		o.PartitionLeaderEpoch = t.Partitions[p].LeaderEpoch
		end, err := appendCoordinatorRecords(part, o, byPartition[p])
		if err != nil {
			w.err = errors.Join(w.err, fmt.Errorf("%s-%d: %w", d.topic, p, err))
		}
		if end >= 0 {
			w.logs, w.ends = append(w.logs, part.log), append(w.ends, end)
		}
	}
	if w.err != nil && !d.closed {
		d.logger.Error("appending to "+d.topic+" failed", "err", w.err)
	}
	if w.err != nil {
		d.loaded = false
	}
	return w
}

// appendBuilt appends recs to l with appendTo, as few batches built with
// opts as max.message.bytes allows, and returns the end offset of what was
// appended (-1 for nothing).
func appendBuilt(l *storage.Log, appendTo func([]byte) (storage.AppendResult, error), opts record.BuildOptions, recs []record.Record) (int64, error) {
	batch, err := record.Build(opts, recs)
	if err != nil {
		return -1, err
	}
	if int64(len(batch)) > l.Config().MaxMessageBytes && len(recs) > 1 {
		half := len(recs) / 2
		end, err := appendBuilt(l, appendTo, opts, recs[:half])
		if err != nil {
			return end, err
		}
		second := make([]record.Record, len(recs)-half)
		for i, r := range recs[half:] {
			r.Offset = int64(i)
			second[i] = r
		}
		if end2, err := appendBuilt(l, appendTo, opts, second); end2 >= 0 || err != nil {
			return max(end, end2), err
		}
		return end, nil
	}
	res, err := appendTo(batch)
	if err != nil {
		return -1, err
	}
	return res.LastOffset + 1, nil
}

// durable waits until w is durable. The error is set when its records
// were not written, or are not durable; the caller then answers the
// replies of w's output with an error, and calls rebuild.
func (d *coordDriver[C, T]) durable(w written) error {
	err := w.err
	if err == nil && len(w.logs) > 0 {
		if err = storage.WaitDurableAll(w.logs, w.ends); err != nil && !errors.Is(err, storage.ErrClosed) {
			d.logger.Error(d.topic+" is not durable", "err", err)
		}
	}
	return err
}

// rebuild throws away the coordinator whose records w failed with err
// (durable's error) and loads a fresh one from the log in the background,
// as at start-up. It comes after the replies of w's output, so that those
// carry the error their owner gives the failure (appendErrorCode), not the
// one of abandoned handlers. A coordinator loaded after w's records were
// appended is left alone: it holds what the log holds (without records
// that failed to append; with those whose sync failed, which are in the
// log, and all a reader can know of them).
func (d *coordDriver[C, T]) rebuild(w written, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || w.incarnation != d.incarnation {
		return
	}
	d.logger.Warn("reloading "+d.topic+": the coordinator's memory is ahead of the log", "err", err)
	d.incarnation++
	d.loaded = false
	if d.timer != nil {
		d.timer.Stop() // the new coordinator arms it when loaded
	}
	d.armedFor = time.Time{}
	d.abandonWaitingLocked()
	d.startLoadingLocked()
}

// abandonWaitingLocked answers every handler still waiting for a reply:
// the coordinator that would have given it is gone. Closing its channel
// is the answer: COORDINATOR_NOT_AVAILABLE (received). Kafka's clients
// (Java, librdkafka, franz-go, sarama) all treat it as NOT_COORDINATOR:
// look the coordinator up again and retry, which finds this broker
// loading (COORDINATOR_LOAD_IN_PROGRESS: retry after a backoff). It is
// not NOT_COORDINATOR because this broker still is the coordinator, and
// it is what a handler already gets when the driver closes.
func (d *coordDriver[C, T]) abandonWaitingLocked() {
	for tok, ch := range d.waiting {
		close(ch)
		delete(d.waiting, tok)
	}
}

// registerLocked hands out a new token and the channel its reply will
// come on.
func (d *coordDriver[C, T]) registerLocked() (T, <-chan kmsg.Response) {
	d.next++
	ch := make(chan kmsg.Response, 1) // buffered: one reply per token
	d.waiting[d.next] = ch
	return d.next, ch
}

// handOver gives resp to the handler of the request with tok, if it still
// waits.
func (d *coordDriver[C, T]) handOver(tok T, resp kmsg.Response) {
	d.mu.Lock()
	ch, ok := d.waiting[tok]
	delete(d.waiting, tok)
	d.mu.Unlock()
	if ok {
		ch <- resp
	}
}

func (d *coordDriver[C, T]) forget(tok T) {
	d.mu.Lock()
	delete(d.waiting, tok)
	d.mu.Unlock()
}

// errorResponder is a request's response with an error code on everything
// it answers (errorResponse, txnErrorResponse).
type errorResponder func(req kmsg.Request, code int16) kmsg.Response

// replyNow is the response to req, from the reply to tok that came with
// the call: a coordinator that gave none has a bug, and req is answered
// UNKNOWN_SERVER_ERROR.
func (d *coordDriver[C, T]) replyNow(req kmsg.Request, tok T, ch <-chan kmsg.Response, errorResponse errorResponder) kmsg.Response {
	select {
	case resp, ok := <-ch:
		return d.received(req, resp, ok, errorResponse)
	default:
		d.forget(tok)
		d.logger.Error("the coordinator gave no reply", "api", kmsg.NameForKey(req.Key()))
		return errorResponse(req, kerr.UnknownServerError.Code)
	}
}

// awaitReply is the response to req, from the reply to tok, which may come
// from a later call. If it does not come before ctx ends, the driver
// closes or the coordinator is rebuilt, req is answered
// COORDINATOR_NOT_AVAILABLE.
func (d *coordDriver[C, T]) awaitReply(ctx context.Context, req kmsg.Request, tok T, ch <-chan kmsg.Response, errorResponse errorResponder) kmsg.Response {
	select {
	case resp, ok := <-ch:
		return d.received(req, resp, ok, errorResponse)
	case <-ctx.Done():
	case <-d.done:
	}
	d.forget(tok)
	select {
	case resp, ok := <-ch: // delivered (or abandoned) meanwhile
		return d.received(req, resp, ok, errorResponse)
	default:
		return errorResponse(req, kerr.CoordinatorNotAvailable.Code)
	}
}

// received is the response to req from what its channel gave: the reply,
// or, if the channel was closed (abandonWaitingLocked), none.
func (d *coordDriver[C, T]) received(req kmsg.Request, resp kmsg.Response, ok bool, errorResponse errorResponder) kmsg.Response {
	if !ok {
		return errorResponse(req, kerr.CoordinatorNotAvailable.Code)
	}
	return d.checkReply(req, resp, errorResponse)
}

// checkReply makes sure a reply is a response to req.
func (d *coordDriver[C, T]) checkReply(req kmsg.Request, resp kmsg.Response, errorResponse errorResponder) kmsg.Response {
	if resp == nil || resp.Key() != req.Key() {
		d.logger.Error("the coordinator replied with the wrong response", "api", kmsg.NameForKey(req.Key()))
		return errorResponse(req, kerr.UnknownServerError.Code)
	}
	resp.SetVersion(req.GetVersion())
	return resp
}
