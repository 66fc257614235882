package broker

// The transaction coordinator's driver: the I/O around txn.Coordinator, a
// pure state machine, on the plumbing it shares with the group
// coordinator's driver (coordinator_driver.go): calls under one mutex,
// records appended to __transaction_state under it, replies handed out
// once those records are durable, a timer at the coordinator's Deadline
// (transaction timeouts, transactional id expiry), and a replay of
// __transaction_state at start-up and whenever records failed (a rebuild),
// until which transaction requests are answered
// COORDINATOR_LOAD_IN_PROGRESS.
//
// What is the transaction coordinator's own: once an output's records are
// durable the driver also starts writing the markers it asks for (a
// goroutine per Markers, broker/markers.go), and once they are written it
// reports so with MarkersWritten, under the mutex again. A marker written
// to a __consumer_offsets partition also settles the producer's pending
// transactional offsets in the group coordinator (txn_offset_commit.go)
// before the transaction is reported complete. A reply may come from the
// call itself or later (an InitProducerId that fences an ongoing
// transaction is answered once the abort markers are written). The
// coordinator learns the cluster's partitions at start and after every
// metadata change. Loaded writes the markers of the transactions that were
// being committed or aborted, as Kafka does after a coordinator fail-over;
// a transaction that was ongoing times out and aborts as usual. After a
// rebuild, the markers the thrown-away coordinator asked for are written
// to the end (they follow a durable outcome) but reported to no one: the
// new coordinator read that outcome and writes them again, once they are
// all written (load), so that no marker of theirs comes after its own. A
// marker written twice changes nothing the second time: the producer has
// no transaction on the partition then, and the group coordinator applies
// markers idempotently.
//
// Producer ids come from the broker's allocator (init_producer_id.go),
// reserved before the mutex is taken: a reservation may write to the
// metadata log.

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/metadata"
	"github.com/samsa-io/samsa/record"
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
	coordDriver[*txn.Coordinator, txn.Token]

	writers sync.WaitGroup   // goroutines writing markers
	topics  map[string]int32 // partition counts last given to the coordinator; guarded by mu
}

// newTxnDriver makes sure __transaction_state exists and returns a driver
// that has not loaded it yet.
func newTxnDriver(ctx context.Context, b *Broker, cfg txn.Config) (*txnDriver, error) {
	if cfg.Partitions <= 0 {
		cfg.Partitions = txn.DefaultConfig().Partitions
	}
	n, err := b.ensureInternalTopic(ctx, txnStateTopic, "transaction.state.log.num.partitions", cfg.Partitions, "uncompressed")
	if err != nil {
		return nil, err
	}
	cfg.Partitions = n
	d := &txnDriver{}
	d.setup(b, d, "transactions", txnStateTopic, n, func() *txn.Coordinator { return txn.New(cfg) })
	return d, nil
}

// close stops the driver (coordDriver.close) and waits for the marker
// writers, which stop early: the broker's context is cancelled first.
func (d *txnDriver) close() {
	d.coordDriver.close()
	d.writers.Wait()
}

// load replays __transaction_state into the coordinator of incarnation.
// After a rebuild it first waits for the marker writers of the coordinator
// thrown away: a commit marker of theirs written after the new coordinator
// completed the transaction, and the producer began another, would end
// that one on the partition.
func (d *txnDriver) load(incarnation uint64) {
	d.writers.Wait()
	ok := d.replayAll(func(p int32, b batchInfo, key, value []byte) error {
		if b.control {
			return nil
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.coord.Replay(p, key, value)
	})
	if !ok {
		return
	}
	d.mu.Lock()
	if !d.fillingLocked(incarnation) {
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
	if d.closed || !d.loaded || maps.Equal(d.topics, topics) {
		return
	}
	d.topics = topics
	d.coord.SetTopics(topics)
}

// tick runs the coordinator's timers; the timer calls it.
func (d *txnDriver) tick() {
	d.mu.Lock()
	if d.stateLocked() != 0 {
		d.mu.Unlock()
		return
	}
	d.firedLocked()
	out := d.coord.Tick(time.Now())
	w := d.appendLocked(out.Records)
	d.rearmLocked()
	d.mu.Unlock()
	d.finish(out, w)
}

// appendLocked appends records to __transaction_state, per partition one
// batch (or more, if one would exceed max.message.bytes), in order.
func (d *txnDriver) appendLocked(recs []txn.Record) written {
	return d.appendToTopicLocked(coordRecords(recs), record.DefaultBuildOptions())
}

// finish carries out an Output whose records went to w: once they are
// durable it sends the replies and starts writing the markers. If they
// were not written (or are not durable) the replies carry an error, no
// marker is written, and the coordinator is rebuilt: the outcome of a
// transaction must be in the log before any marker (the rebuilt
// coordinator replays the log and decides again).
func (d *txnDriver) finish(out txn.Output, w written) {
	err := d.durable(w)
	if err == nil {
		for _, m := range out.Markers {
			d.writeMarkers(m, w.incarnation)
		}
	} else if len(out.Markers) > 0 {
		d.logger.Error("not writing transaction markers: their transaction's outcome is not durable", "err", err)
	}
	for _, r := range out.Replies {
		resp := r.Response
		if err != nil && resp != nil {
			setTxnError(resp, kerr.CoordinatorNotAvailable.Code)
		}
		d.handOver(r.Token, resp)
	}
	if err != nil {
		d.rebuild(w, err)
	}
}

// writeMarkers writes m's markers, asked for by the coordinator of
// incarnation, in the background and reports them written to it; markers
// written to __consumer_offsets partitions first settle the producer's
// transactional offsets in the group coordinator. On shutdown nothing is
// reported: the transaction is still PrepareCommit/PrepareAbort in the
// log, and the next start writes its markers again. Nor after a rebuild:
// the new coordinator writes them again itself; if it was rebuilt before
// they began, they are not written at all.
func (d *txnDriver) writeMarkers(m txn.Markers, incarnation uint64) {
	d.mu.Lock()
	if d.closed || d.incarnation != incarnation {
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
		if d.closed || d.incarnation != incarnation {
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
	tok, ch := d.registerLocked()
	out := f(d.coord, txn.Call{Now: time.Now(), Token: tok, Version: r.version, NewProducerID: pid})
	w := d.appendLocked(out.Records)
	d.rearmLocked()
	d.mu.Unlock()
	d.finish(out, w)
	return d.awaitReply(ctx, req, tok, ch, txnErrorResponse)
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
