package txn

// AddPartitionsToTxn (v0–v5) and AddOffsetsToTxn (v0–v4): partitions join
// the producer's transaction before it writes to them. The first partition
// starts the transaction (Empty/Complete* → Ongoing, start time now); each
// change is persisted, since the markers must reach every partition even
// after a fail-over.
//
// v0–v3 carry one transaction (the client's form). v4+ carry a batch of
// transactions and come from brokers (KIP-890 part 1): a transaction with
// VerifyOnly is only checked (is every partition in it?), and the answer is
// per partition.
//
// Errors, per transaction: INVALID_PRODUCER_ID_MAPPING for an unknown
// transactional id or another producer id, PRODUCER_FENCED for another
// epoch (INVALID_PRODUCER_EPOCH before v2), CONCURRENT_TRANSACTIONS while
// the previous transaction's markers are being written (for the
// transaction's own producer only after holding the add for a while:
// hold.go). With SetTopics,
// a partition that does not exist gets UNKNOWN_TOPIC_OR_PARTITION and the
// others of its transaction OPERATION_NOT_ATTEMPTED.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// offsetsTopic is the internal topic of consumer group offsets.
const offsetsTopic = "__consumer_offsets"

// AddPartitionsToTxn handles AddPartitionsToTxn v0–v5 (v4+: batches of
// transactions, and the verify-only form that brokers use, KIP-890).
func (c *Coordinator) AddPartitionsToTxn(call Call, req *kmsg.AddPartitionsToTxnRequest) Output {
	var out Output
	if call.Version < 4 && c.hold(call, req.TransactionalID, req.ProducerID, req.ProducerEpoch,
		func(call Call, out *Output) { c.addPartitions(call, req, out) }) {
		return out
	}
	c.addPartitions(call, req, &out)
	return out
}

// addPartitions handles an AddPartitionsToTxn that is not held, into out.
func (c *Coordinator) addPartitions(call Call, req *kmsg.AddPartitionsToTxnRequest, out *Output) {
	resp := kmsg.NewPtrAddPartitionsToTxnResponse()
	resp.Version = call.Version
	if call.Version < 4 {
		codes := c.addTransaction(call, req.TransactionalID, req.ProducerID, req.ProducerEpoch,
			partitionsOf(req.Topics), false, out)
		for _, rt := range req.Topics {
			t := kmsg.NewAddPartitionsToTxnResponseTopic()
			t.Topic = rt.Topic
			for _, p := range rt.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition = p
				rp.ErrorCode = codes[TopicPartition{rt.Topic, p}]
				t.Partitions = append(t.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, t)
		}
	} else {
		for _, rtx := range req.Transactions {
			var tps []TopicPartition
			for _, rt := range rtx.Topics {
				for _, p := range rt.Partitions {
					tps = append(tps, TopicPartition{rt.Topic, p})
				}
			}
			codes := c.addTransaction(call, rtx.TransactionalID, rtx.ProducerID, rtx.ProducerEpoch,
				tps, rtx.VerifyOnly, out)
			tx := kmsg.NewAddPartitionsToTxnResponseTransaction()
			tx.TransactionalID = rtx.TransactionalID
			for _, rt := range rtx.Topics {
				t := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
				t.Topic = rt.Topic
				for _, p := range rt.Partitions {
					rp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
					rp.Partition = p
					rp.ErrorCode = codes[TopicPartition{rt.Topic, p}]
					t.Partitions = append(t.Partitions, rp)
				}
				tx.Topics = append(tx.Topics, t)
			}
			resp.Transactions = append(resp.Transactions, tx)
		}
	}
	out.Replies = append(out.Replies, Reply{Token: call.Token, Response: resp})
}

func partitionsOf(topics []kmsg.AddPartitionsToTxnRequestTopic) []TopicPartition {
	var tps []TopicPartition
	for _, rt := range topics {
		for _, p := range rt.Partitions {
			tps = append(tps, TopicPartition{rt.Topic, p})
		}
	}
	return tps
}

// AddOffsetsToTxn handles AddOffsetsToTxn: the group's __consumer_offsets
// partition joins the transaction; groupPartition is that partition.
func (c *Coordinator) AddOffsetsToTxn(call Call, req *kmsg.AddOffsetsToTxnRequest, groupPartition int32) Output {
	var out Output
	add := func(call Call, out *Output) {
		tp := TopicPartition{offsetsTopic, groupPartition}
		codes := c.addTransaction(call, req.TransactionalID, req.ProducerID, req.ProducerEpoch,
			[]TopicPartition{tp}, false, out)
		resp := kmsg.NewPtrAddOffsetsToTxnResponse()
		resp.Version = call.Version
		resp.ErrorCode = codes[tp]
		out.Replies = append(out.Replies, Reply{Token: call.Token, Response: resp})
	}
	if !c.hold(call, req.TransactionalID, req.ProducerID, req.ProducerEpoch, add) {
		add(call, &out)
	}
	return out
}

// addTransaction adds tps to (or, verifyOnly, checks them against) the
// transaction of id, returning each partition's error code.
func (c *Coordinator) addTransaction(call Call, id string, producerID int64, epoch int16,
	tps []TopicPartition, verifyOnly bool, out *Output) map[TopicPartition]int16 {
	codes := make(map[TopicPartition]int16, len(tps))
	all := func(code int16) map[TopicPartition]int16 {
		if code == kerr.ProducerFenced.Code && call.Version < 2 {
			code = kerr.InvalidProducerEpoch.Code
		}
		for _, tp := range tps {
			codes[tp] = code
		}
		return codes
	}
	if id == "" {
		return all(kerr.InvalidRequest.Code)
	}
	if c.topics != nil {
		unknown := false
		for _, tp := range tps {
			if tp.Topic == offsetsTopic {
				continue
			}
			if n, ok := c.topics[tp.Topic]; !ok || tp.Partition < 0 || tp.Partition >= n {
				codes[tp] = kerr.UnknownTopicOrPartition.Code
				unknown = true
			}
		}
		if unknown {
			for _, tp := range tps {
				if codes[tp] == 0 {
					codes[tp] = kerr.OperationNotAttempted.Code
				}
			}
			return codes
		}
	}
	t := c.lookup(id)
	if code := c.check(t, producerID, epoch); code != 0 {
		return all(code)
	}
	if verifyOnly {
		for _, tp := range tps {
			if _, ok := t.partitions[tp]; !ok {
				codes[tp] = kerr.TransactionAbortable.Code
			}
		}
		return codes
	}
	added := false
	for _, tp := range tps {
		if _, ok := t.partitions[tp]; !ok {
			added = true
		}
	}
	if t.state == stateOngoing && !added {
		return all(0) // already in: nothing to persist
	}
	now := call.Now.UnixMilli()
	if t.state.idle() {
		t.startMillis = now
	}
	t.state = stateOngoing
	for _, tp := range tps {
		t.partitions[tp] = struct{}{}
	}
	t.updateMillis = now
	c.commit(t, out)
	return all(0)
}

// check is the coordinator's verdict on a producer that acts within the
// transaction of t: 0 when it may.
func (c *Coordinator) check(t *transaction, producerID int64, epoch int16) int16 {
	switch {
	case t == nil || t.producerID != producerID:
		return kerr.InvalidProducerIDMapping.Code
	case t.epoch != epoch:
		return kerr.ProducerFenced.Code
	case t.state.preparing() || t.fencer != nil:
		return kerr.ConcurrentTransactions.Code
	}
	return 0
}

// InTransaction reports whether producerID at epoch has partition in its
// ongoing transaction (the broker's check before a transactional produce,
// KIP-890 part 1); the error code says why not (0 when it has). The code is
// the one Produce (v3–v11) answers, translated as Kafka translates the
// coordinator's verdict for producers: INVALID_PRODUCER_ID_MAPPING for a
// producer id that has no transactional id here, INVALID_PRODUCER_EPOCH
// for a fenced epoch, INVALID_TXN_STATE for a partition not in the
// transaction, NOT_ENOUGH_REPLICAS (retriable, no metadata refresh) while
// the previous transaction's markers are being written.
func (c *Coordinator) InTransaction(producerID int64, epoch int16, tp TopicPartition) int16 {
	t := c.byProducer[producerID]
	switch code := c.check(t, producerID, epoch); code {
	case 0:
	case kerr.ProducerFenced.Code:
		return kerr.InvalidProducerEpoch.Code
	case kerr.ConcurrentTransactions.Code:
		return kerr.NotEnoughReplicas.Code
	default:
		return code
	}
	if _, ok := t.partitions[tp]; !ok || t.state != stateOngoing {
		return kerr.InvalidTxnState.Code
	}
	return 0
}
