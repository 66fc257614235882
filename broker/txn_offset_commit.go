package broker

// TxnOffsetCommit (key 28), versions 0–4.
//
// Commits a group's offsets inside a producer's transaction (KIP-98,
// KIP-447): they are written to the group's __consumer_offsets partition as
// a transactional batch of the producer (durable before the response), and
// stay pending until the transaction's marker on that partition commits or
// aborts them (package group, txn_offsets.go). Meanwhile OffsetFetch shows
// the previous commit, and with require_stable (v7+) answers
// UNSTABLE_OFFSET_COMMIT for those partitions.
//
// First, as Kafka's broker verifies (KIP-890), the producer id and epoch
// must have the group's partition in their ongoing transaction
// (AddOffsetsToTxn): otherwise the transaction coordinator's error
// (INVALID_PRODUCER_ID_MAPPING, INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE;
// COORDINATOR_NOT_AVAILABLE while the previous transaction's markers are
// being written) answers every partition, and COORDINATOR_LOAD_IN_PROGRESS
// while either coordinator loads. The check and the append happen under the transaction
// coordinator's lock, so no marker can slip between them. Then the group
// coordinator decides as Kafka's: an empty group id is INVALID_GROUP_ID;
// unknown partitions UNKNOWN_TOPIC_OR_PARTITION; v3+ name the member
// (generation, member id, instance id), checked as OffsetCommit checks it
// except that the group's state is not enforced (UNKNOWN_MEMBER_ID,
// ILLEGAL_GENERATION, FENCED_INSTANCE_ID); an unknown group is created for
// generation -1 (a producer outside group management), and
// ILLEGAL_GENERATION otherwise; OFFSET_METADATA_TOO_LARGE. v2+ carry the
// offset's leader epoch; v3 is the first flexible version; v4 only allows
// TRANSACTION_ABORTABLE, which Samsa does not send. v5+ (topic ids) are not
// served.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group"
	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/txn"
)

func handleTxnOffsetCommit(b *Broker, _ context.Context, r *request, req *kmsg.TxnOffsetCommitRequest) kmsg.Response {
	if req.Group == "" {
		return txnErrorResponse(req, kerr.InvalidGroupID.Code)
	}
	tp := txn.TopicPartition{Topic: offsetsTopic, Partition: group.Partition(req.Group, b.groups.partitions)}
	var finish func() kmsg.Response
	code := b.txns.whileInTransaction(req.ProducerID, req.ProducerEpoch, tp, func() {
		finish = b.groups.txnOffsetCommit(r, req)
	})
	if code == kerr.NotEnoughReplicas.Code {
		// The previous transaction's markers are being written; Kafka's
		// group coordinator answers this retriable error so.
		code = kerr.CoordinatorNotAvailable.Code
	}
	if code != 0 {
		return txnErrorResponse(req, code)
	}
	return finish()
}

// whileInTransaction runs f under the driver's lock if producerID at epoch
// has tp in its ongoing transaction, and returns the error code otherwise
// (f does not run then).
func (d *txnDriver) whileInTransaction(producerID int64, epoch int16, tp txn.TopicPartition, f func()) int16 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if code := d.stateLocked(); code != 0 {
		return code
	}
	if code := d.coord.InTransaction(producerID, epoch, tp); code != 0 {
		return code
	}
	f()
	return 0
}

// txnOffsetCommit runs TxnOffsetCommit on the group coordinator and appends
// its records as one transactional batch of the request's producer (per
// partition: a group has one); the function it returns waits until they
// are durable and returns the response.
func (g *groups) txnOffsetCommit(r *request, req *kmsg.TxnOffsetCommitRequest) func() kmsg.Response {
	g.mu.Lock()
	if code := g.stateLocked(); code != 0 {
		g.mu.Unlock()
		return func() kmsg.Response { return txnErrorResponse(req, code) }
	}
	tok, ch := g.registerLocked()
	out := g.coord.TxnOffsetCommit(groupCall(r, tok), req)
	opts := record.DefaultBuildOptions()
	opts.Transactional = true
	opts.ProducerID, opts.ProducerEpoch = req.ProducerID, req.ProducerEpoch
	w := g.appendBatchesLocked(out.Records, opts)
	g.rearmLocked()
	g.mu.Unlock()
	return func() kmsg.Response {
		g.deliver(out.Replies, w)
		return g.replyNow(req, tok, ch, txnErrorResponse)
	}
}

// txnOffsetCommitErrors answers every partition of req with code.
func txnOffsetCommitErrors(req *kmsg.TxnOffsetCommitRequest, code int16) []kmsg.TxnOffsetCommitResponseTopic {
	var out []kmsg.TxnOffsetCommitResponseTopic
	for _, rt := range req.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, code
			st.Partitions = append(st.Partitions, sp)
		}
		out = append(out, st)
	}
	return out
}

// appendCoordinatorRecords appends a coordinator's records to one of its
// partitions, built with opts. A transactional producer's batch
// (TxnOffsetCommit) goes through the partition's producer state
// (appendWithProducerState), which then knows of the producer's
// transaction on the partition until its marker, as for any producer.
func appendCoordinatorRecords(part *partition, opts record.BuildOptions, recs []record.Record) (int64, error) {
	if opts.ProducerID < 0 {
		return appendBuilt(part.log, part.log.Append, opts, recs)
	}
	return appendBuilt(part.log, part.appendWithProducerState, opts, recs)
}

// txnMarker tells the group coordinator of producerID's marker on
// __consumer_offsets partition p (just written, or read back): its pending
// transactional offsets there are committed or dropped. It is applied even
// while the coordinator loads: applying a marker twice is harmless, and
// the loader may have read the partition before the marker was written.
func (g *groups) txnMarker(p int32, producerID int64, commit bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	g.coord.ReplayMarker(p, producerID, commit)
}

// replayMarker replays a control record of __consumer_offsets partition p;
// control records other than transaction markers are skipped.
func (g *groups) replayMarker(p int32, producerID int64, key, value []byte) error {
	m, ok, err := record.ParseMarker(key, value)
	if err != nil || !ok {
		return err
	}
	g.txnMarker(p, producerID, m.Commit)
	return nil
}

// replayTransactional replays a record of a transactional batch of
// __consumer_offsets partition p.
func (g *groups) replayTransactional(p int32, producerID int64, key, value []byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.coord.ReplayTransactional(p, producerID, key, value)
}
