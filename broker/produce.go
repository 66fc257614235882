package broker

// Produce (key 0), versions 3–11.
//
// Each partition of the request carries exactly one record batch (magic v2):
// none, several, or another magic is INVALID_RECORD, and a batch that does not
// check out (length, CRC, counts) is CORRUPT_MESSAGE, as in Kafka; nothing of
// a refused batch is written. A batch is validated and appended by the
// partition's log (package storage), which assigns its offsets and, for
// message.timestamp.type=LogAppendTime, stamps it; the broker writes the
// partition leader epoch from the metadata image into it first. Every codec
// is accepted (zstd from v7, UNSUPPORTED_COMPRESSION_TYPE before, as Kafka).
// When the topic's compression.type names a codec (not "producer") that
// differs from the batch's, the batch is decompressed and rebuilt with that
// codec before it is appended.
//
// acks: 0 writes and sends no response, and after an error on any partition
// closes the connection (once what it has read is answered), as Kafka does:
// the client then refreshes its metadata. 1 answers once the batches are
// appended; -1 (all) answers once they are durable (storage.WaitDurableAll:
// one group-commit round for all the request's partitions), waiting at most
// timeout_ms when it is positive (no bound otherwise): past it the written
// partitions are REQUEST_TIMED_OUT, though their batches stay in the log and
// the group commit goes on, as in Kafka, where the timeout bounds the wait
// for replicas (a one-node Kafka never reaches it; a Samsa broker does when
// fsync stalls). Anything else is INVALID_REQUIRED_ACKS.
//
// Errors are per partition: UNKNOWN_TOPIC_OR_PARTITION for a topic or
// partition that does not exist (topics are auto-created by Metadata, which
// every client sends first, not by Produce — as in Kafka),
// INVALID_TOPIC_EXCEPTION for Kafka's internal topics, MESSAGE_TOO_LARGE over
// max.message.bytes, INVALID_TIMESTAMP, INVALID_RECORD (control batches,
// a base offset other than 0, a producer id without a sequence, a record
// without a key on a compacted topic, a transactional batch without a
// producer id), and the producer state's errors (package txn/producers:
// OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE for
// a non-transactional batch during the producer's transaction) or, when a
// transactional batch would start a transaction on the partition, the
// transaction coordinator's answer (INVALID_TXN_STATE when the partition was
// not added, its retriable errors as NOT_ENOUGH_REPLICAS, as Kafka). v5+ returns the log start offset, and v8+ an error
// message and, when the batch is refused for some of its records (keyless on
// a compacted topic, a timestamp out of range: storage.RejectedRecordsError),
// record_errors naming each by its index in the batch, as Kafka does.
// Produce by topic id (v13) is not served.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/metadata"
	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/storage"
	"github.com/samsa-io/samsa/txn"
	"github.com/samsa-io/samsa/txn/producers"
)

// produced is the outcome of one partition's batch.
type produced struct {
	baseOffset    int64
	logAppendTime int64
	logStart      int64
	// log and end are set when the batch is in the log: it is durable once
	// the log is durable up to end.
	log *storage.Log
	end int64
	err error
}

func handleProduce(b *Broker, ctx context.Context, r *request, req *kmsg.ProduceRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	img := b.meta.Image()
	acksOK := req.Acks == -1 || req.Acks == 0 || req.Acks == 1

	// Per request, not per partition: each of the results, the response's
	// topics and its partitions is one allocation.
	n := 0
	for _, rt := range req.Topics {
		n += len(rt.Partitions)
	}
	results := make([]produced, n) // in request order
	r.waitTurn()                   // appends in request order (conn.go)
	k := 0
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if !acksOK {
				results[k] = produced{err: fmt.Errorf("%w: acks must be -1, 0 or 1, not %d", kerr.InvalidRequiredAcks, req.Acks)}
			} else {
				results[k] = b.produceBatch(img, r.version, rt.Topic, rp.Partition, rp.Records)
			}
			k++
		}
	}
	r.passTurn()
	// The batches are in the log. Give their frame back before the wait
	// for the fsync, so that the memory a connection holds is its requests
	// being read and appended, not all those awaiting durability; from here
	// on rp.Records must not be read.
	r.releaseFrame(b)
	if req.Acks == 0 {
		closeOnError(r, req, results)
		return nil
	}
	if req.Acks == -1 {
		b.waitDurable(results, req.TimeoutMillis)
	}

	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	parts := make([]kmsg.ProduceResponseTopicPartition, n)
	k = 0
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		*st = kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = parts[k : k+len(rt.Partitions) : k+len(rt.Partitions)]
		for j, rp := range rt.Partitions {
			res := &results[k]
			k++
			sp := &st.Partitions[j]
			*sp = kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			if res.err != nil {
				sp.ErrorCode = errorCode(res.err)
				sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
				if r.version >= 8 {
					msg := res.err.Error()
					sp.ErrorMessage = &msg
					sp.ErrorRecords = recordErrors(res.err)
				}
			} else {
				sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = res.baseOffset, res.logAppendTime, res.logStart
			}
		}
	}
	return resp
}

// closeOnError ends the connection of an acks=0 produce that failed on any
// partition, as Kafka does: the client gets no response to learn from, and
// a closed connection makes it refresh its metadata. The connection stops
// reading; what it has read already is still handled and answered, and it
// closes once those answers are written.
func closeOnError(r *request, req *kmsg.ProduceRequest, results []produced) {
	k := 0
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			err := results[k].err
			k++
			if err == nil {
				continue
			}
			if r.conn == nil || r.conn.nc == nil { // a handler called without a connection (FuzzHandle)
				return
			}
			r.conn.logger.Info("closing connection: an acks=0 produce failed",
				"topic", rt.Topic, "partition", rp.Partition, "err", err)
			r.conn.stopReading()
			return
		}
	}
}

// recordErrors lists the records an error blames, for Produce v8+.
func recordErrors(err error) []kmsg.ProduceResponseTopicPartitionErrorRecord {
	var rejected *storage.RejectedRecordsError
	if !errors.As(err, &rejected) {
		return nil
	}
	out := make([]kmsg.ProduceResponseTopicPartitionErrorRecord, len(rejected.Records))
	for i, re := range rejected.Records {
		out[i] = kmsg.NewProduceResponseTopicPartitionErrorRecord()
		out[i].RelativeOffset = int32(re.Index)
		out[i].ErrorMessage = kmsg.StringPtr(re.Message)
	}
	return out
}

// waitDurable waits until every written batch is durable, all partitions
// in one group-commit round (storage.WaitDurableAll), for at most timeoutMs
// when it is positive. When the wait fails, each log is asked again, which
// answers at once, to find the partitions whose log failed. When it times
// out, every written partition is REQUEST_TIMED_OUT, as in Kafka: the
// batches are in the log, and the round goes on to make them durable. A
// wait with a timeout runs on a worker (workers.go), whose stack has
// already grown to what a group-commit round needs.
func (b *Broker) waitDurable(results []produced, timeoutMs int32) {
	logs := make([]*storage.Log, 0, len(results))
	ends := make([]int64, 0, len(results))
	for _, res := range results {
		if res.err == nil && res.log != nil {
			logs, ends = append(logs, res.log), append(ends, res.end)
		}
	}
	if len(logs) == 0 {
		return
	}
	var err error
	if timeoutMs <= 0 {
		err = storage.WaitDurableAll(logs, ends)
	} else {
		done := make(chan error, 1)
		b.workers.goRun(func() { done <- storage.WaitDurableAll(logs, ends) })
		timer := time.NewTimer(time.Duration(timeoutMs) * time.Millisecond)
		select {
		case err = <-done:
			timer.Stop()
		case <-timer.C:
			err = fmt.Errorf("%w: the batch is in the log but was not durable within timeout_ms (%d)",
				kerr.RequestTimedOut, timeoutMs)
			for i := range results {
				if res := &results[i]; res.err == nil && res.log != nil {
					res.err = err
				}
			}
			return
		}
	}
	if err == nil {
		return
	}
	for i := range results {
		if res := &results[i]; res.err == nil && res.log != nil {
			res.err = res.log.WaitDurable(res.end)
		}
	}
}

// produceBatch checks one partition's records and appends them.
func (b *Broker) produceBatch(img *metadata.Image, version int16, topic string, p int32, batch []byte) (out produced) {
	t := img.Topics[topic]
	if t == nil || p < 0 || int(p) >= len(t.Partitions) {
		return produced{err: fmt.Errorf("%w: %s-%d", kerr.UnknownTopicOrPartition, topic, p)}
	}
	if isInternalTopic(topic) {
		return produced{err: fmt.Errorf("%w: clients cannot write to the internal topic %s", kerr.InvalidTopicException, topic)}
	}
	part, ok := b.parts.get(topic, p)
	if !ok {
		return produced{err: fmt.Errorf("%w: %s-%d is not ready on this broker", kerr.UnknownTopicOrPartition, topic, p)}
	}
	h, err := checkProduceBatch(version, batch)
	if err != nil {
		return produced{err: err}
	}
	defer part.traffic.produced(&out, len(batch), h.NumRecords) // BytesIn, MessagesIn (metrics.go)
	cfg := part.log.Config()
	if int64(len(batch)) > cfg.MaxMessageBytes {
		return produced{err: fmt.Errorf("%w: the batch is %d bytes, max.message.bytes is %d",
			kerr.MessageTooLarge, len(batch), cfg.MaxMessageBytes)}
	}
	if codec, ok := b.topicCodec(img, t); ok && codec != h.Attributes.Codec() {
		if batch, err = recompress(batch, codec); err != nil {
			return produced{err: err}
		}
	}
	record.SetPartitionLeaderEpoch(batch, t.Partitions[p].LeaderEpoch)

	if h.ProducerID < 0 {
		res, err := part.log.Append(batch)
		if err != nil {
			return produced{err: err}
		}
		return produced{baseOffset: res.BaseOffset, logAppendTime: res.LogAppendTime, logStart: res.LogStart,
			log: part.log, end: res.LastOffset + 1}
	}
	return part.produceWithProducerID(h, batch, b.inTransaction)
}

// inTransactionFunc asks the transaction coordinator whether a partition
// is in a producer's ongoing transaction; it returns a kerr code, 0 when
// it is.
type inTransactionFunc func(producerID int64, epoch int16, tp txn.TopicPartition) int16

// produceWithProducerID appends a batch with a producer id: checked against
// the partition's producer state and recorded in it, atomically with the
// append. A transactional batch that would start a transaction on the
// partition is first verified with the transaction coordinator (KIP-890
// part 1, inTransaction), with the state's lock released meanwhile.
func (part *partition) produceWithProducerID(h record.Header, batch []byte, inTransaction inTransactionFunc) produced {
	pt := part.producers
	info := producers.DataBatchOf(h)
	pt.mu.Lock()
	defer pt.mu.Unlock()
	st, err := pt.ready()
	if err != nil {
		return produced{err: err}
	}
	dec, err := st.Check(info)
	if err == nil && dec.Verify {
		guard := st.BeginVerify(info.ProducerID)
		pt.mu.Unlock()
		err = verifyCode(inTransaction(info.ProducerID, info.Epoch, txn.TopicPartition{Topic: part.tp.Topic, Partition: part.tp.Partition}))
		pt.mu.Lock()
		if err == nil {
			// The state may have changed meanwhile: check again, and
			// refuse the batch if a marker ended the transaction that was
			// verified (Kafka's verification guard).
			dec, err = st.Check(info)
			if err == nil && dec.Verify && !st.Verified(info.ProducerID, guard) {
				err = fmt.Errorf("%w: the transaction of producer %d ended while %s was verified",
					kerr.InvalidTxnState, info.ProducerID, part.tp)
			}
		}
	}
	if err != nil {
		return produced{err: err}
	}
	if d := dec.Duplicate; d != nil {
		return produced{baseOffset: d.FirstOffset, logAppendTime: d.LogAppendTime,
			logStart: part.log.Offsets().LogStart, log: part.log, end: d.LastOffset + 1}
	}
	res, err := part.log.Append(batch)
	if err != nil {
		return produced{err: err}
	}
	seen := max(h.MaxTimestamp, res.LogAppendTime, time.Now().UnixMilli())
	st.Append(info, res.BaseOffset, res.LastOffset, seen, res.LogAppendTime)
	pt.appendedLocked(res)
	return produced{baseOffset: res.BaseOffset, logAppendTime: res.LogAppendTime, logStart: res.LogStart,
		log: part.log, end: res.LastOffset + 1}
}

// verifyCode turns the coordinator's answer to "is the partition in the
// producer's transaction" into the produce error Kafka returns: the
// coordinator's retriable errors become NOT_ENOUGH_REPLICAS, which every
// client retries without a metadata refresh (ReplicaManager does the same).
func verifyCode(code int16) error {
	if code == 0 {
		return nil
	}
	e := kerr.ErrorForCode(code)
	switch e {
	case kerr.ConcurrentTransactions, kerr.NetworkException, kerr.CoordinatorLoadInProgress,
		kerr.CoordinatorNotAvailable, kerr.NotCoordinator:
		return fmt.Errorf("%w: could not verify that the partition is in the transaction: %w", kerr.NotEnoughReplicas, e)
	case kerr.InvalidTxnState:
		return fmt.Errorf("%w: the partition was not added to the transaction", e)
	}
	return e
}

// inTransaction asks the transaction coordinator whether the partition is
// in the ongoing transaction of producerID at epoch (a kerr code, 0 when
// it is).
func (b *Broker) inTransaction(producerID int64, epoch int16, tp txn.TopicPartition) int16 {
	if b.txns == nil {
		return kerr.CoordinatorNotAvailable.Code
	}
	return b.txns.inTransaction(producerID, epoch, tp)
}

// minBatchPrefix is how much of a batch shows its magic byte.
const minBatchPrefix = 17

// checkProduceBatch applies the checks Kafka makes on a produce request's
// records before the log sees them, and returns the batch header.
func checkProduceBatch(version int16, b []byte) (record.Header, error) {
	if len(b) == 0 {
		return record.Header{}, fmt.Errorf("%w: produce requests v3+ need exactly one record batch per partition, got none",
			record.ErrInvalidRecord)
	}
	if len(b) >= minBatchPrefix && b[16] != record.MagicV2 {
		return record.Header{}, fmt.Errorf("%w: produce requests v3+ may only hold record batches of magic 2, got magic %d",
			record.ErrInvalidRecord, int8(b[16]))
	}
	h, err := record.ParseHeader(b)
	if err != nil {
		return record.Header{}, err
	}
	if rest := b[min(h.Size(), len(b)):]; len(rest) > 0 {
		if _, err := record.ParseHeader(rest); err == nil {
			return record.Header{}, fmt.Errorf("%w: produce requests v3+ may hold exactly one record batch per partition",
				record.ErrInvalidRecord)
		}
		// Trailing bytes that are not a batch: Validate reports the size.
	}
	switch {
	case version < 7 && h.Attributes.Codec() == record.CodecZstd:
		return h, fmt.Errorf("%w: produce requests before v7 may not use zstd", record.ErrUnsupportedCodec)
	case h.Attributes.Control():
		return h, fmt.Errorf("%w: clients may not write control batches", record.ErrInvalidRecord)
	case h.BaseOffset != 0:
		return h, fmt.Errorf("%w: the batch's base offset must be 0, not %d", record.ErrInvalidRecord, h.BaseOffset)
	case h.ProducerID >= 0 && h.BaseSequence < 0:
		return h, fmt.Errorf("%w: batch of producer %d has no sequence number", record.ErrInvalidRecord, h.ProducerID)
	case h.Attributes.Transactional() && h.ProducerID < 0:
		return h, fmt.Errorf("%w: a transactional batch needs a producer id", record.ErrInvalidRecord)
	}
	return h, nil
}

// topicCodec returns the codec a topic's compression.type imposes, ok false
// for "producer" (keep the batch's).
func (b *Broker) topicCodec(img *metadata.Image, t *metadata.Topic) (record.Codec, bool) {
	def, _ := lookupTopicConfig("compression.type")
	v, _ := topicConfigValue(def, t.Configs, brokerConfigs(img, b.cfg.NodeID))
	if v == "producer" {
		return 0, false
	}
	codec, err := record.ParseCodec(v)
	return codec, err == nil
}

// recompress rebuilds a batch with another codec, keeping its records,
// timestamps and producer fields.
func recompress(b []byte, codec record.Codec) ([]byte, error) {
	h, err := record.Validate(b, record.ValidateOptions{VerifyRecords: true})
	if err != nil {
		return nil, err
	}
	recs, err := record.Records(b)
	if err != nil {
		return nil, err
	}
	opts := record.DefaultBuildOptions()
	opts.Codec = codec
	opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence = h.ProducerID, h.ProducerEpoch, h.BaseSequence
	opts.PartitionLeaderEpoch = h.PartitionLeaderEpoch
	opts.LogAppendTime = h.Attributes.LogAppendTime()
	out, err := record.Build(opts, recs)
	if err != nil {
		return nil, fmt.Errorf("recompressing a batch with %s: %w", codec, err)
	}
	return out, nil
}
