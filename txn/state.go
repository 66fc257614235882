package txn

import (
	"maps"
	"math"
	"slices"
	"time"
)

// state is where a transactional id is in its life, numbered as Kafka
// numbers it in TxnMetadataValue.
type state int8

const (
	stateEmpty             state = 0 // no transaction since the last InitProducerId
	stateOngoing           state = 1 // partitions added, not yet ended
	statePrepareCommit     state = 2 // commit decided and persisted, markers being written
	statePrepareAbort      state = 3 // abort decided and persisted, markers being written
	stateCompleteCommit    state = 4 // every commit marker written
	stateCompleteAbort     state = 5 // every abort marker written
	stateDead              state = 6 // expired (Kafka writes a tombstone instead)
	statePrepareEpochFence state = 7 // Kafka's transient state while fencing; never persisted
)

var stateNames = [...]string{
	stateEmpty:             "Empty",
	stateOngoing:           "Ongoing",
	statePrepareCommit:     "PrepareCommit",
	statePrepareAbort:      "PrepareAbort",
	stateCompleteCommit:    "CompleteCommit",
	stateCompleteAbort:     "CompleteAbort",
	stateDead:              "Dead",
	statePrepareEpochFence: "PrepareEpochFence",
}

// String is Kafka's name of s, as DescribeTransactions and
// ListTransactions show it.
func (s state) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "Unknown"
}

// stateNamed returns the state Kafka calls name.
func stateNamed(name string) (state, bool) {
	for s, n := range stateNames {
		if n == name {
			return state(s), true
		}
	}
	return 0, false
}

func (s state) preparing() bool { return s == statePrepareCommit || s == statePrepareAbort }
func (s state) complete() bool  { return s == stateCompleteCommit || s == stateCompleteAbort }

// idle is true in the states from which a new transaction may start and in
// which an id may expire.
func (s state) idle() bool { return s == stateEmpty || s.complete() }

// noEpoch and noProducer are Kafka's RecordBatch.NO_PRODUCER_EPOCH and
// NO_PRODUCER_ID.
const (
	noEpoch    int16 = -1
	noProducer int64 = -1
)

// epochExhausted is Kafka's isEpochExhausted: the epoch MaxInt16 is kept so
// that the coordinator can always fence the last producer.
func epochExhausted(epoch int16) bool { return epoch >= math.MaxInt16-1 }

// transaction is one transactional id: Kafka's TransactionMetadata. The
// persisted fields are in every record of the id (records.go); the others
// are rebuilt at start-up.
type transaction struct {
	id string

	// Persisted.
	producerID int64
	// previousProducerID is the producer id before the last transition
	// that could change it (InitProducerId, or completing an EndTxn v5):
	// a retry after a producer id rotation is recognized by it.
	previousProducerID int64
	// nextProducerID is, between an EndTxn v5 that exhausted the epoch
	// and the transaction's completion, the producer id that takes over
	// (epoch 0) once the markers are written; noProducer otherwise.
	nextProducerID int64
	epoch          int16
	timeoutMillis  int32
	state          state
	partitions     map[TopicPartition]struct{}
	// startMillis is when the transaction began (its first partition);
	// -1 outside a transaction.
	startMillis int64
	// updateMillis is the time of the last change, for expiry.
	updateMillis int64
	// v2 is true when the last EndTxn was v5+ (KIP-890 part 2,
	// transaction version 2): it bumped the epoch, and retries of it
	// carry the epoch before the bump.
	v2 bool

	// Not persisted (Kafka does not persist it either).
	// lastEpoch is the epoch before the last bump that a KIP-360 retry
	// may still present; noEpoch when a new producer took over.
	lastEpoch int16

	// In memory only.
	// markers is the ID of this transaction's Markers in flight, 0 when
	// none.
	markers uint64
	// fencer is the InitProducerId that fenced this transaction, answered
	// once the abort completes.
	fencer *pendingInit
	// held are the adds of the producer's next transaction waiting for
	// this one's markers (hold.go), in the order they came.
	held []heldAdd
}

// pendingInit is an InitProducerId waiting for a fenced transaction's abort
// markers.
type pendingInit struct {
	call Call
	// version, timeout and the KIP-360 producer id and epoch of the
	// request.
	transactionalID string
	timeoutMillis   int32
	expected        *producerEpoch
}

// producerEpoch is a producer id and epoch.
type producerEpoch struct {
	id    int64
	epoch int16
}

// sortedPartitions returns t's partitions in order.
func (t *transaction) sortedPartitions() []TopicPartition {
	tps := slices.Collect(maps.Keys(t.partitions))
	slices.SortFunc(tps, func(a, b TopicPartition) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition) - int(b.Partition)
	})
	return tps
}

// deadline is when t next needs the coordinator without any input: an
// add held for its markers gives up after holdLimit, an ongoing transaction times out after its timeout (Kafka aborts it once
// start+timeout < now), an idle id expires IDExpiration after its last
// change (Kafka: last update <= now - expiration).
func (c *Coordinator) deadline(t *transaction) (time.Time, bool) {
	switch {
	case len(t.held) > 0:
		return t.held[0].until, true // held in arrival order
	case t.state == stateOngoing && t.markers == 0:
		return time.UnixMilli(t.startMillis + int64(t.timeoutMillis) + 1), true
	case t.state.idle():
		return time.UnixMilli(t.updateMillis).Add(c.cfg.IDExpiration), true
	}
	return time.Time{}, false
}

// schedule brings Tick's wake-up forward to t's deadline if it is earlier.
func (c *Coordinator) schedule(t *transaction) {
	d, ok := c.deadline(t)
	if ok && (c.wake.IsZero() || d.Before(c.wake)) {
		c.wake = d
	}
}

// commit persists t's current state: its record goes into out, and its
// deadline is scheduled.
func (c *Coordinator) commit(t *transaction, out *Output) {
	out.Records = append(out.Records, c.record(t))
	c.schedule(t)
}
