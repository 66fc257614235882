package txn

// EndTxn (v0–v5): the producer commits or aborts its ongoing transaction.
// The outcome is persisted (PrepareCommit or PrepareAbort) and answered as
// soon as that record is durable, as Kafka does; the markers are written
// after, and MarkersWritten completes the transaction (CompleteCommit or
// CompleteAbort).
//
// A retried EndTxn is recognized by the state: the same outcome while it is
// still being written gets CONCURRENT_TRANSACTIONS (the client retries),
// once complete it gets NONE; the opposite outcome gets INVALID_TXN_STATE,
// and so does an EndTxn with no transaction (Empty).
//
// v5 (KIP-890 part 2, transaction version 2): every EndTxn bumps the
// producer epoch, and the reply carries the producer id and epoch to use
// next; when the epoch is exhausted the producer id changes (to the call's
// NewProducerID) once the transaction is complete. A retry of a v5 EndTxn
// carries the epoch before the bump. The coordinator remembers whether the
// last EndTxn was v5 and judges retries by that, as Kafka does.
//
// v0–v1 get INVALID_PRODUCER_EPOCH where later versions get
// PRODUCER_FENCED.

import (
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// EndTxn handles EndTxn: commit or abort; the reply comes once the outcome
// (PrepareCommit or PrepareAbort) is durable, and the Output's Markers ask
// for the markers; MarkersWritten completes the transaction.
func (c *Coordinator) EndTxn(call Call, req *kmsg.EndTxnRequest) Output {
	var out Output
	reply := func(code int16, id int64, epoch int16) {
		resp := kmsg.NewPtrEndTxnResponse()
		resp.Version = call.Version
		if code == kerr.ProducerFenced.Code && call.Version < 2 {
			code = kerr.InvalidProducerEpoch.Code
		}
		resp.ErrorCode = code
		if code != 0 {
			id, epoch = noProducer, noEpoch
		}
		resp.ProducerID, resp.ProducerEpoch = id, epoch
		out.Replies = append(out.Replies, Reply{Token: call.Token, Response: resp})
	}
	fail := func(code int16) { reply(code, noProducer, noEpoch) }

	if req.TransactionalID == "" {
		fail(kerr.InvalidRequest.Code)
		return out
	}
	t := c.lookup(req.TransactionalID)
	if t == nil {
		fail(kerr.InvalidProducerIDMapping.Code)
		return out
	}
	commit := req.Commit

	// A retry of a v5 EndTxn carries the epoch before its bump, or, when
	// the bump rotated the producer id, the previous id and its last
	// epoch.
	retryOfBump := t.v2 && int32(t.epoch) == int32(req.ProducerEpoch)+1
	retryOfRotation := t.v2 && t.previousProducerID == req.ProducerID &&
		req.ProducerEpoch == math.MaxInt16-1 && t.epoch == 0
	var validEpoch bool
	switch {
	case !t.v2 || t.state == stateOngoing || t.state == stateEmpty:
		validEpoch = req.ProducerEpoch == t.epoch
	case t.state.preparing():
		validEpoch = retryOfBump
	case t.state.complete():
		// Kafka fences an EndTxn at the current epoch here; it has no
		// transaction to end, and gets INVALID_TXN_STATE below.
		validEpoch = retryOfBump || retryOfRotation || req.ProducerEpoch == t.epoch
	}
	switch {
	case t.producerID != req.ProducerID && !retryOfRotation:
		fail(kerr.InvalidProducerIDMapping.Code)
		return out
	case !validEpoch:
		fail(kerr.ProducerFenced.Code)
		return out
	}
	sameOutcome := (commit && (t.state == statePrepareCommit || t.state == stateCompleteCommit)) ||
		(!commit && (t.state == statePrepareAbort || t.state == stateCompleteAbort))
	switch {
	case t.state == stateOngoing:
		if call.Version >= 5 && epochExhausted(t.epoch) && call.NewProducerID < 0 {
			fail(kerr.CoordinatorNotAvailable.Code)
			return out
		}
		c.prepare(t, commit, call, &out)
		// Answered once the outcome is durable (same Output), with the
		// producer id and epoch to use next (v5).
		id, epoch := t.producerID, t.epoch
		if t.nextProducerID != noProducer {
			id, epoch = t.nextProducerID, 0
		}
		reply(0, id, epoch)
	case t.state.complete() && t.v2 && req.ProducerEpoch == t.epoch && req.ProducerID == t.producerID:
		// No transaction since the last one completed.
		fail(kerr.InvalidTxnState.Code)
	case t.state.complete() && sameOutcome:
		reply(0, t.producerID, t.epoch)
	case t.state.preparing() && sameOutcome:
		fail(kerr.ConcurrentTransactions.Code)
	default:
		fail(kerr.InvalidTxnState.Code)
	}
	return out
}

// prepare ends t's ongoing transaction with a client's EndTxn: it persists
// the outcome and asks for the markers. v5 bumps the epoch (KIP-890 part
// 2), and arranges for a new producer id when the epoch is exhausted. A
// transaction without partitions completes at once (there are no markers to
// write).
func (c *Coordinator) prepare(t *transaction, commit bool, call Call, out *Output) {
	t.state = statePrepareAbort
	if commit {
		t.state = statePrepareCommit
	}
	t.v2 = call.Version >= 5
	if t.v2 {
		if epochExhausted(t.epoch) {
			t.nextProducerID = call.NewProducerID
		}
		t.lastEpoch = t.epoch
		if t.epoch < math.MaxInt16 { // only a corrupt log could hold MaxInt16 here
			t.epoch++
		}
	}
	t.updateMillis = call.Now.UnixMilli()
	c.commit(t, out)
	c.requestMarkers(t, call.Now, out)
}

// abort ends t's ongoing transaction on the coordinator's own account (a
// producer fenced by a new InitProducerId, or a transaction past its
// timeout): the epoch is bumped so that the old producer is fenced, as
// Kafka's PrepareEpochFence does, and the transaction is aborted.
func (c *Coordinator) abort(t *transaction, now time.Time, out *Output) {
	if t.epoch < math.MaxInt16 {
		t.epoch++
	}
	t.lastEpoch = noEpoch
	t.state = statePrepareAbort
	t.v2 = false
	t.nextProducerID = noProducer
	t.updateMillis = now.UnixMilli()
	c.commit(t, out)
	c.requestMarkers(t, now, out)
}
