package txn

// InitProducerId with a transactional id (v0–v5). An id without a
// transactional id is the idempotent producer's, which the broker serves
// without the coordinator.
//
// A new id gets a fresh producer id at epoch 0. A known idle one (Empty,
// CompleteCommit, CompleteAbort) gets its epoch bumped, or a fresh producer
// id once the epoch is exhausted. An ongoing transaction is fenced: its
// epoch is bumped and it is aborted; the reply waits for the abort markers
// and then bumps the epoch once more for the new producer (Kafka answers
// CONCURRENT_TRANSACTIONS at that point and lets the client retry, which
// ends the same way). While a transaction is being committed or aborted
// the answer is CONCURRENT_TRANSACTIONS: the client retries.
//
// v3+ (KIP-360): a producer recovering from an error sends its producer id
// and epoch. The id must be the current one (or, after a rotation, the
// previous one with its exhausted epoch), and the epoch the current one
// (bumped) or the previous one (a retry of a bump whose reply was lost,
// answered with the current epoch); anything else is PRODUCER_FENCED
// (INVALID_PRODUCER_EPOCH before v4).

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerID handles InitProducerId v0–v5 with a transactional id:
// a new id gets call.NewProducerID at epoch 0; a known one gets its epoch
// bumped (aborting an ongoing transaction first, whose reply then waits for
// the markers); KIP-360's producer id and epoch in the request let a
// producer recover from a failed transaction.
func (c *Coordinator) InitProducerID(call Call, req *kmsg.InitProducerIDRequest) Output {
	var out Output
	reply := func(code int16) {
		out.Replies = append(out.Replies, initReply(call, code, noProducer, noEpoch))
	}
	switch {
	case req.TransactionalID == nil || *req.TransactionalID == "":
		reply(kerr.InvalidRequest.Code)
		return out
	case req.TransactionTimeoutMillis <= 0 ||
		time.Duration(req.TransactionTimeoutMillis)*time.Millisecond > c.cfg.MaxTimeout:
		reply(kerr.InvalidTransactionTimeout.Code)
		return out
	}
	p := pendingInit{call: call, transactionalID: *req.TransactionalID, timeoutMillis: req.TransactionTimeoutMillis}
	if req.Version >= 3 {
		switch {
		case req.ProducerID == noProducer && req.ProducerEpoch == noEpoch:
		case req.ProducerID == noProducer || req.ProducerEpoch == noEpoch:
			reply(kerr.InvalidRequest.Code)
			return out
		default:
			p.expected = &producerEpoch{req.ProducerID, req.ProducerEpoch}
		}
	}
	c.initProducerID(p, &out)
	return out
}

// initReply is an InitProducerId response.
func initReply(call Call, code int16, id int64, epoch int16) Reply {
	resp := kmsg.NewPtrInitProducerIDResponse()
	resp.Version = call.Version
	if code == kerr.ProducerFenced.Code && call.Version < 4 {
		code = kerr.InvalidProducerEpoch.Code // older clients do not know PRODUCER_FENCED
	}
	resp.ErrorCode = code
	resp.ProducerID = id
	resp.ProducerEpoch = epoch
	return Reply{Token: call.Token, Response: resp}
}

// initProducerID runs a valid InitProducerId, now or after the markers of
// the transaction it fenced.
func (c *Coordinator) initProducerID(p pendingInit, out *Output) {
	call := p.call
	now := call.Now.UnixMilli()
	reply := func(code int16) {
		out.Replies = append(out.Replies, initReply(call, code, noProducer, noEpoch))
	}
	t := c.lookup(p.transactionalID)
	created := t == nil
	if created {
		if call.NewProducerID < 0 {
			reply(kerr.CoordinatorNotAvailable.Code)
			return
		}
		// As Kafka: a new id starts at no epoch, and the bump below makes
		// it 0.
		t = &transaction{
			id:                 p.transactionalID,
			producerID:         call.NewProducerID,
			previousProducerID: noProducer,
			nextProducerID:     noProducer,
			epoch:              noEpoch,
			lastEpoch:          noEpoch,
			timeoutMillis:      p.timeoutMillis,
			state:              stateEmpty,
			partitions:         make(map[TopicPartition]struct{}),
			startMillis:        -1,
			updateMillis:       now,
		}
	}
	if t.fencer != nil {
		reply(kerr.ConcurrentTransactions.Code)
		return
	}
	if e := p.expected; e != nil {
		// Kafka's isValidProducerId: a just-created id, the current
		// producer id, or the previous one with its exhausted epoch (a
		// retry of a rotation whose reply was lost).
		valid := t.epoch == noEpoch || e.id == t.producerID ||
			(e.id == t.previousProducerID && epochExhausted(e.epoch))
		if !valid {
			reply(kerr.ProducerFenced.Code)
			return
		}
	}
	switch {
	case t.state.preparing():
		reply(kerr.ConcurrentTransactions.Code)
		return

	case t.state == stateOngoing:
		// Fence the producer and abort its transaction; answer once the
		// abort is complete.
		f := p
		t.fencer = &f
		c.abort(t, call.Now, out)
		return

	case t.state.idle():
		if epochExhausted(t.epoch) && (p.expected == nil || p.expected.epoch == t.epoch) {
			if call.NewProducerID < 0 || call.NewProducerID == t.producerID {
				reply(kerr.CoordinatorNotAvailable.Code)
				return
			}
			last := noEpoch
			if p.expected != nil {
				last = t.epoch
			}
			t.previousProducerID = t.producerID
			c.setProducerID(t, call.NewProducerID)
			t.epoch, t.lastEpoch = 0, last
		} else {
			next, last := t.epoch+1, noEpoch
			if e := p.expected; e != nil {
				switch {
				case t.epoch == noEpoch || e.epoch == t.epoch:
					// The producer continues after an error: bump.
					last = t.epoch
				case e.epoch == t.lastEpoch:
					// A retry of a bump whose reply was lost.
					next, last = t.epoch, t.lastEpoch
				default:
					reply(kerr.ProducerFenced.Code)
					return
				}
			}
			t.previousProducerID = t.producerID
			t.epoch, t.lastEpoch = next, last
		}
		t.state = stateEmpty
		t.nextProducerID = noProducer
		t.timeoutMillis = p.timeoutMillis
		clear(t.partitions)
		t.startMillis = -1
		t.updateMillis = now
		t.v2 = false
		if created {
			c.put(t)
		}
		c.commit(t, out)
		out.Replies = append(out.Replies, initReply(call, 0, t.producerID, t.epoch))
		return
	}
	// Dead and PrepareEpochFence are never held: an expired id is removed,
	// and a fence goes straight to PrepareAbort.
	reply(kerr.UnknownServerError.Code)
}
