package txn

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The records of __transaction_state, in Kafka's schema (its
// transaction-coordinator message definitions TransactionLogKey and
// TransactionLogValue, kmsg's TxnMetadataKey and TxnMetadataValue). Each
// starts with an int16 version.
//
//	key version 0      TxnMetadataKey: the transactional id
//	value version 1    TxnMetadataValue: producer id and epoch, timeout,
//	                   state, the partitions of the transaction (none
//	                   while Empty), last update and start timestamps,
//	                   and the tagged fields of KIP-890 (previous and next
//	                   producer id, client transaction version)
//
// Every record holds the whole state of its id, so compaction keeps the
// last one; a tombstone (no value) is an expired id. Values of version 0
// (the non-flexible one) are read too. Keys of other versions are skipped
// on replay, as Kafka skips what it does not know.
const (
	txnKeyVersion   = 0
	txnValueVersion = 1 // the newest, which Kafka 4 writes
	// transactionVersion2 is the ClientTransactionVersion of a
	// transaction ended with EndTxn v5 (the feature level
	// transaction.version=2).
	transactionVersion2 = 2
)

// keyOf encodes the key of a transactional id.
func keyOf(id string) []byte {
	k := kmsg.TxnMetadataKey{Version: txnKeyVersion, TransactionalID: id}
	return k.AppendTo(nil)
}

// valueOf encodes t's persisted state.
func valueOf(t *transaction) []byte {
	v := kmsg.NewTxnMetadataValue()
	v.Version = txnValueVersion
	v.ProducerID = t.producerID
	v.ProducerEpoch = t.epoch
	v.TimeoutMillis = t.timeoutMillis
	v.State = kmsg.TransactionState(t.state)
	if t.state != stateEmpty { // Kafka writes a null list for Empty
		v.Topics = []kmsg.TxnMetadataValueTopic{}
		for _, tp := range t.sortedPartitions() {
			if n := len(v.Topics); n > 0 && v.Topics[n-1].Topic == tp.Topic {
				v.Topics[n-1].Partitions = append(v.Topics[n-1].Partitions, tp.Partition)
				continue
			}
			v.Topics = append(v.Topics, kmsg.TxnMetadataValueTopic{Topic: tp.Topic, Partitions: []int32{tp.Partition}})
		}
	}
	v.LastUpdateTimestamp = t.updateMillis
	v.StartTimestamp = t.startMillis
	v.PreviousProducerID = t.previousProducerID
	v.NextProducerID = t.nextProducerID
	if t.v2 {
		v.ClientTransactionVersion = transactionVersion2
	}
	return v.AppendTo(nil)
}

// record is the record of t's current state.
func (c *Coordinator) record(t *transaction) Record {
	return Record{Partition: c.partition(t.id), Key: keyOf(t.id), Value: valueOf(t)}
}

// tombstone is the record that forgets id.
func (c *Coordinator) tombstone(id string) Record {
	return Record{Partition: c.partition(id), Key: keyOf(id)}
}

// keyVersion is the version that starts a record key; ok is false for a
// key too short to have one.
func keyVersion(key []byte) (v int16, ok bool) {
	if len(key) < 2 {
		return 0, false
	}
	return int16(binary.BigEndian.Uint16(key)), true
}

// decodeValue decodes the state of id from a value of version 0 or 1.
func decodeValue(id string, b []byte) (*transaction, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("value of %d bytes", len(b))
	}
	if v := int16(binary.BigEndian.Uint16(b)); v < 0 || v > txnValueVersion {
		return nil, fmt.Errorf("unknown value version %d", v)
	}
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(b); err != nil {
		return nil, err
	}
	if v.State < 0 || int(v.State) >= len(stateNames) {
		return nil, fmt.Errorf("unknown transaction state %d", v.State)
	}
	t := &transaction{
		id:                 id,
		producerID:         v.ProducerID,
		previousProducerID: noProducer,
		nextProducerID:     noProducer,
		epoch:              v.ProducerEpoch,
		lastEpoch:          noEpoch,
		timeoutMillis:      v.TimeoutMillis,
		state:              state(v.State),
		partitions:         make(map[TopicPartition]struct{}),
		startMillis:        v.StartTimestamp,
		updateMillis:       v.LastUpdateTimestamp,
	}
	if v.Version >= 1 {
		t.previousProducerID = v.PreviousProducerID
		t.nextProducerID = v.NextProducerID
		t.v2 = v.ClientTransactionVersion >= transactionVersion2
	}
	if t.state != stateEmpty {
		for _, topic := range v.Topics {
			for _, p := range topic.Partitions {
				t.partitions[TopicPartition{topic.Topic, p}] = struct{}{}
			}
		}
	}
	return t, nil
}

// errCorrupt is a record of a known kind that does not decode.
type errCorrupt struct {
	what string
	err  error
}

func (e *errCorrupt) Error() string {
	return fmt.Sprintf("txn: corrupt %s record: %v", e.what, e.err)
}

func (e *errCorrupt) Unwrap() error { return e.err }
