package broker

// The transaction coordinator's driver: the I/O around txn.Coordinator, a
// pure state machine, modelled on the group coordinator's (groups.go).
// Every call into the coordinator is made under one mutex, and the records
// it returns are appended to __transaction_state under the same mutex, so
// the log holds the changes in the order the state machine made them.
// Outside the mutex the driver waits until those records are durable; only
// then does it send the replies and start writing the markers the output
// asks for (a goroutine per Markers, broker/markers.go), and once they are
// written it reports so with MarkersWritten, under the mutex again. A
// marker written to a __consumer_offsets partition also settles the
// producer's pending transactional offsets in the group coordinator
// (txn_offset_commit.go) before the transaction is reported complete.
//
// Requests are matched to replies by a token, as in groups.go: a reply may
// come from the call itself or later (an InitProducerId that fences an
// ongoing transaction is answered once the abort markers are written). A
// timer calls Tick at the coordinator's Deadline (transaction timeouts,
// transactional id expiry). The coordinator learns the cluster's partitions
// at start and after every metadata change.
//
// At start-up the driver creates __transaction_state if it is absent and
// replays it in the background; until that ends transaction requests are
// answered COORDINATOR_LOAD_IN_PROGRESS. Loaded then writes the markers of
// the transactions that were being committed or aborted, as Kafka does
// after a coordinator fail-over; a transaction that was ongoing times out
// and aborts as usual.
//
// Producer ids come from the broker's allocator (init_producer_id.go),
// reserved before the mutex is taken: a reservation may write to the
// metadata log.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/metadata"
	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/storage"
	"github.com/samsa-io/samsa/txn"
)

// txnStateTopic is Kafka's internal topic of transaction state.
const txnStateTopic = "__transaction_state"

// txnDriver drives the transaction coordinator.
//
// Lock order: txnDriver.mu, then groups.mu (TxnOffsetCommit checks the
// transaction and appends its offsets under both, so that no marker can
// come between), then partitions.mu, then a partition's producer lock and
// its storage.Log's locks. Markers are written, and the group coordinator
// told of them, with no driver lock held.
type txnDriver struct {
	b       *Broker
	logger  *slog.Logger
	done    chan struct{}  // closed by close: waiting handlers give up
	loader  sync.WaitGroup // the replay
	writers sync.WaitGroup // goroutines writing markers

	mu         sync.Mutex
	coord      *txn.Coordinator                 // guarded by mu
	partitions int32                            // partitions of __transaction_state; immutable after newTxnDriver
	loaded     bool                             // replay finished; guarded by mu
	closed     bool                             // guarded by mu
	next       txn.Token                        // the last token handed out; guarded by mu
	waiting    map[txn.Token]chan kmsg.Response // replies due to handlers; guarded by mu
	topics     map[string]int32                 // partition counts last given to the coordinator; guarded by mu
	timer      *time.Timer                      // fires Tick; guarded by mu
	armedFor   time.Time                        // the deadline timer is set for; guarded by mu
	cancelMeta func()                           // stops metadata callbacks; set once in start
}

// newTxnDriver makes sure __transaction_state exists and returns a driver
// that has not loaded it yet.
func newTxnDriver(ctx context.Context, b *Broker, cfg txn.Config) (*txnDriver, error) {
	d := &txnDriver{
		b:       b,
		logger:  b.logger.With("component", "transactions"),
		done:    make(chan struct{}),
		waiting: map[txn.Token]chan kmsg.Response{},
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = txn.DefaultConfig().Partitions
	}
	n, err := b.ensureInternalTopic(ctx, txnStateTopic, cfg.Partitions, "uncompressed")
	if err != nil {
		return nil, err
	}
	if n != cfg.Partitions {
		d.logger.Warn("__transaction_state exists with another partition count than transaction.state.log.num.partitions; using the topic's",
			"partitions", n, "configured", cfg.Partitions)
		cfg.Partitions = n
	}
	d.partitions = n
	d.coord = txn.New(cfg)
	return d, nil
}

// start follows the metadata and begins loading in the background.
func (d *txnDriver) start() {
	d.cancelMeta = d.b.meta.OnChange(func(_, next *metadata.Image) { d.setTopics(next) })
	d.loader.Go(d.load)
}

// close stops the timer and the metadata callbacks, makes waiting handlers
// give up, and waits for the loader and the marker writers (which stop
// early: the broker's context is cancelled first).
func (d *txnDriver) close() {
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
	d.writers.Wait()
}

// load replays __transaction_state into the coordinator.
func (d *txnDriver) load() {
	start := time.Now()
	var records int
	for p := range d.partitions {
		part, ok := d.b.parts.get(txnStateTopic, p)
		if !ok {
			d.logger.Error("loading __transaction_state failed; transactions are not served", "partition", p, "err", "no log")
			return
		}
		n, err := readRecords(d.b.ctx, part.log, func(offset int64, key, value []byte) {
			d.mu.Lock()
			err := d.coord.Replay(p, key, value)
			d.mu.Unlock()
			if err != nil {
				d.logger.Warn("skipping a record of __transaction_state that does not replay",
					"partition", p, "offset", offset, "err", err)
			}
		})
		records += n
		if err != nil {
			if d.b.ctx.Err() == nil {
				d.logger.Error("loading __transaction_state failed; transactions are not served", "partition", p, "err", err)
			}
			return
		}
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	img := d.b.meta.Image()
	d.coord.SetCoordinatorEpoch(coordinatorEpoch(img))
	d.topics = partitionCounts(img)
	d.coord.SetTopics(d.topics)
	out := d.coord.Loaded(time.Now())
	d.loaded = true
	w := d.appendLocked(out.Records)
	d.rearmLocked()
	d.mu.Unlock()
	d.logger.Info("loaded __transaction_state", "partitions", d.partitions, "records", records,
		"took", time.Since(start).Round(time.Millisecond))
	d.finish(out, w)
}

// coordinatorEpoch is the epoch the coordinator writes into markers: the
// highest leader epoch of the __transaction_state partitions (Kafka uses
// the leader epoch of the transactional id's partition; one broker leads
// them all here, and the highest never goes back).
func coordinatorEpoch(img *metadata.Image) int32 {
	var epoch int32
	if t := img.Topics[txnStateTopic]; t != nil {
		for _, p := range t.Partitions {
			epoch = max(epoch, p.LeaderEpoch)
		}
	}
	return epoch
}

// partitionCounts is the partition count of every topic of the image.
func partitionCounts(img *metadata.Image) map[string]int32 {
	out := make(map[string]int32, len(img.Topics))
	for name, t := range img.Topics {
		out[name] = int32(len(t.Partitions))
	}
	return out
}

// setTopics gives the coordinator the image's partitions when they
// changed; it runs on the metadata's apply goroutine.
func (d *txnDriver) setTopics(img *metadata.Image) {
	topics := partitionCounts(img)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || !d.loaded || sameCounts(d.topics, topics) {
		return
	}
	d.topics = topics
	d.coord.SetTopics(topics)
}

func sameCounts(a, b map[string]int32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if n, ok := b[k]; !ok || n != v {
			return false
		}
	}
	return true
}

// tick runs the coordinator's timers; the timer calls it.
func (d *txnDriver) tick() {
	d.mu.Lock()
	if d.closed || !d.loaded {
		d.mu.Unlock()
		return
	}
	d.armedFor = time.Time{}
	out := d.coord.Tick(time.Now())
	w := d.appendLocked(out.Records)
	d.rearmLocked()
	d.mu.Unlock()
	d.finish(out, w)
}

// rearmLocked sets the timer for the coordinator's deadline.
func (d *txnDriver) rearmLocked() {
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
	d.timer = time.AfterFunc(max(time.Until(t), minTickDelay), d.tick)
}

// appendLocked appends records to __transaction_state, per partition one
// batch (or more, if one would exceed max.message.bytes), in order.
func (d *txnDriver) appendLocked(recs []txn.Record) written {
	var w written
	if len(recs) == 0 {
		return w
	}
	now := time.Now().UnixMilli()
	img := d.b.meta.Image()
	var order []int32
	byPartition := map[int32][]record.Record{}
	for _, r := range recs {
		if _, ok := byPartition[r.Partition]; !ok {
			order = append(order, r.Partition)
		}
		rs := byPartition[r.Partition]
		byPartition[r.Partition] = append(rs, record.Record{Offset: int64(len(rs)), Timestamp: now, Key: r.Key, Value: r.Value})
	}
	t := img.Topics[txnStateTopic]
	for _, p := range order {
		part, ok := d.b.parts.get(txnStateTopic, p)
		if !ok || t == nil || int(p) >= len(t.Partitions) {
			w.err = errors.Join(w.err, fmt.Errorf("%w: %s-%d does not exist", kerr.CoordinatorNotAvailable, txnStateTopic, p))
			continue
		}
		end, err := appendRecords(part.log, t.Partitions[p].LeaderEpoch, byPartition[p])
		if err != nil {
			w.err = errors.Join(w.err, fmt.Errorf("%s-%d: %w", txnStateTopic, p, err))
		}
		if end >= 0 {
			w.logs, w.ends = append(w.logs, part.log), append(w.ends, end)
		}
	}
	if w.err != nil && !d.closed {
		d.logger.Error("appending to __transaction_state failed", "err", w.err)
	}
	return w
}

// finish carries out an Output whose records went to w: once they are
// durable it sends the replies and starts writing the markers. If they
// were not written (or are not durable) the replies carry an error and no
// marker is written: the outcome of a transaction must be in the log
// before any marker (a restart replays the log and decides again).
func (d *txnDriver) finish(out txn.Output, w written) {
	err := w.err
	if err == nil && len(w.logs) > 0 {
		if err = storage.WaitDurableAll(w.logs, w.ends); err != nil && !errors.Is(err, storage.ErrClosed) {
			d.logger.Error("__transaction_state is not durable", "err", err)
		}
	}
	if err == nil {
		for _, m := range out.Markers {
			d.writeMarkers(m)
		}
	} else if len(out.Markers) > 0 {
		d.logger.Error("not writing transaction markers: their transaction's outcome is not durable", "err", err)
	}
	for _, r := range out.Replies {
		resp := r.Response
		if err != nil && resp != nil {
			setTxnError(resp, kerr.CoordinatorNotAvailable.Code)
		}
		d.mu.Lock()
		ch, ok := d.waiting[r.Token]
		delete(d.waiting, r.Token)
		d.mu.Unlock()
		if ok {
			ch <- resp // buffered: one reply per token
		}
	}
}

// writeMarkers writes m's markers in the background and reports them
// written to the coordinator; markers written to __consumer_offsets
// partitions first settle the producer's transactional offsets in the
// group coordinator. On shutdown nothing is reported: the transaction is
// still PrepareCommit/PrepareAbort in the log, and the next start writes
// its markers again.
func (d *txnDriver) writeMarkers(m txn.Markers) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.writers.Add(1)
	d.mu.Unlock()
	go func() {
		defer d.writers.Done()
		failed := d.b.writeMarkers(d.b.ctx, m)
		if d.b.ctx.Err() != nil {
			return
		}
		for _, tp := range m.Partitions {
			if tp.Topic == offsetsTopic && !containsPartition(failed, tp) {
				d.b.groups.txnMarker(tp.Partition, m.ProducerID, m.Commit)
			}
		}
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return
		}
		out := d.coord.MarkersWritten(time.Now(), m.ID, failed)
		w := d.appendLocked(out.Records)
		d.rearmLocked()
		d.mu.Unlock()
		d.finish(out, w)
	}()
}

func containsPartition(tps []txn.TopicPartition, tp txn.TopicPartition) bool {
	for _, x := range tps {
		if x == tp {
			return true
		}
	}
	return false
}

// call runs f on the coordinator with a new token and waits for the reply
// to that token, which may come from f's Output or from a later one. A
// producer id is reserved first when newProducerID is set. If the reply
// does not come before the request's context ends or the broker shuts
// down, the request gets an error response.
func (d *txnDriver) call(ctx context.Context, r *request, req kmsg.Request, newProducerID bool,
	f func(c *txn.Coordinator, call txn.Call) txn.Output) kmsg.Response {
	if code := d.state(); code != 0 {
		return txnErrorResponse(req, code)
	}
	pid := int64(-1)
	if newProducerID {
		id, err := d.b.producerIDs.allocate(ctx, d.b.meta, d.b.cfg.NodeID)
		if err != nil {
			d.logger.Error("allocating a producer id", "err", err)
			return txnErrorResponse(req, kerr.CoordinatorNotAvailable.Code)
		}
		pid = id
	}
	d.mu.Lock()
	if code := d.stateLocked(); code != 0 {
		d.mu.Unlock()
		return txnErrorResponse(req, code)
	}
	d.next++
	tok := d.next
	ch := make(chan kmsg.Response, 1)
	d.waiting[tok] = ch
	out := f(d.coord, txn.Call{Now: time.Now(), Token: tok, Version: r.version, NewProducerID: pid})
	w := d.appendLocked(out.Records)
	d.rearmLocked()
	d.mu.Unlock()
	d.finish(out, w)

	select {
	case resp := <-ch:
		return d.checkReply(req, resp)
	case <-ctx.Done():
	case <-d.done:
	}
	d.forget(tok)
	select {
	case resp := <-ch: // delivered meanwhile
		return d.checkReply(req, resp)
	default:
		return txnErrorResponse(req, kerr.CoordinatorNotAvailable.Code)
	}
}

// state is the error code of a coordinator that cannot serve (loading,
// closed), 0 when it can.
func (d *txnDriver) state() int16 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stateLocked()
}

func (d *txnDriver) stateLocked() int16 {
	switch {
	case d.closed:
		return kerr.CoordinatorNotAvailable.Code
	case !d.loaded:
		return kerr.CoordinatorLoadInProgress.Code
	}
	return 0
}

// checkReply makes sure a reply is a response to req.
func (d *txnDriver) checkReply(req kmsg.Request, resp kmsg.Response) kmsg.Response {
	if resp == nil || resp.Key() != req.Key() {
		d.logger.Error("the transaction coordinator replied with the wrong response", "api", kmsg.NameForKey(req.Key()))
		return txnErrorResponse(req, kerr.UnknownServerError.Code)
	}
	resp.SetVersion(req.GetVersion())
	return resp
}

func (d *txnDriver) forget(tok txn.Token) {
	d.mu.Lock()
	delete(d.waiting, tok)
	d.mu.Unlock()
}

// read runs f on the loaded coordinator; it returns the error code for the
// coordinator's state (loading, closed) and does not run f then.
func (d *txnDriver) read(f func(c *txn.Coordinator)) int16 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if code := d.stateLocked(); code != 0 {
		return code
	}
	f(d.coord)
	return 0
}

// inTransaction is the error code (0 for none) of checking that producerID
// at epoch has added tp to its ongoing transaction (KIP-890's verification
// of a transactional write).
func (d *txnDriver) inTransaction(producerID int64, epoch int16, tp txn.TopicPartition) int16 {
	var code int16
	if c := d.read(func(c *txn.Coordinator) { code = c.InTransaction(producerID, epoch, tp) }); c != 0 {
		return c
	}
	return code
}

// txnErrorResponse is req's response with code on everything it answers.
func txnErrorResponse(req kmsg.Request, code int16) kmsg.Response {
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	switch req := req.(type) {
	case *kmsg.AddPartitionsToTxnRequest:
		resp := resp.(*kmsg.AddPartitionsToTxnResponse)
		if req.Version < 4 {
			resp.Topics = addPartitionsErrors(req.Topics, code)
		} else {
			resp.ErrorCode = code // v4+ answers the whole batch at the top level
		}
		return resp
	case *kmsg.TxnOffsetCommitRequest:
		resp.(*kmsg.TxnOffsetCommitResponse).Topics = txnOffsetCommitErrors(req, code)
		return resp
	}
	setTxnError(resp, code)
	return resp
}

// addPartitionsErrors answers every partition of a v0–v3 AddPartitionsToTxn
// with code.
func addPartitionsErrors(topics []kmsg.AddPartitionsToTxnRequestTopic, code int16) []kmsg.AddPartitionsToTxnResponseTopic {
	var out []kmsg.AddPartitionsToTxnResponseTopic
	for _, rt := range topics {
		st := kmsg.NewAddPartitionsToTxnResponseTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			sp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			sp.Partition, sp.ErrorCode = p, code
			st.Partitions = append(st.Partitions, sp)
		}
		out = append(out, st)
	}
	return out
}

// setTxnError puts an error code on a transaction response in place of
// what it answered.
func setTxnError(resp kmsg.Response, code int16) {
	switch resp := resp.(type) {
	case *kmsg.InitProducerIDResponse:
		resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = code, -1, -1
	case *kmsg.AddPartitionsToTxnResponse:
		resp.ErrorCode = code
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = code
			}
		}
		if resp.Version >= 4 {
			resp.Transactions = nil
		}
	case *kmsg.AddOffsetsToTxnResponse:
		resp.ErrorCode = code
	case *kmsg.EndTxnResponse:
		resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = code, -1, -1
	case *kmsg.TxnOffsetCommitResponse:
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = code
			}
		}
	case *kmsg.ListTransactionsResponse:
		resp.ErrorCode = code
		resp.TransactionStates = nil
	}
}
