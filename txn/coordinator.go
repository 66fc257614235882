package txn

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config holds the coordinator's settings, with Kafka's config names.
type Config struct {
	// Partitions is transaction.state.log.num.partitions (50): a
	// transactional id's records go to partition Partition(id, Partitions).
	Partitions int32
	// MaxTimeout is transaction.max.timeout.ms (15 min): a larger
	// transaction timeout gets INVALID_TRANSACTION_TIMEOUT.
	MaxTimeout time.Duration
	// IDExpiration is transactional.id.expiration.ms (7 days): an id with
	// no transaction for this long is forgotten.
	IDExpiration time.Duration
	// AbortCheckInterval is transaction.abort.timed.out.transaction.cleanup.interval.ms
	// (10 s): how often timed-out transactions are looked for.
	AbortCheckInterval time.Duration
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		Partitions:         50,
		MaxTimeout:         15 * time.Minute,
		IDExpiration:       7 * 24 * time.Hour,
		AbortCheckInterval: 10 * time.Second,
	}
}

// Token identifies a request whose response may be due later (an EndTxn is
// answered once its markers are written); the driver chooses it.
type Token uint64

// Reply is a response now due to the request with Token.
type Reply struct {
	Token    Token
	Response kmsg.Response
}

// Call is what every request brings besides its body.
type Call struct {
	Now     time.Time
	Token   Token
	Version int16
	// NewProducerID is a fresh producer id the driver reserved for this
	// call, used when the coordinator must hand one out (a new
	// transactional id, or an epoch exhausted); unused ones are simply not
	// handed out.
	NewProducerID int64
}

// Record is one record for __transaction_state, in Kafka's schema. A nil
// Value is a tombstone.
type Record struct {
	Partition  int32
	Key, Value []byte
}

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Markers asks the driver to write a commit or abort marker (a control
// batch) for a producer to each of Partitions, and then to report with
// MarkersWritten(ID).
type Markers struct {
	// ID identifies this request for MarkersWritten.
	ID            uint64
	ProducerID    int64
	ProducerEpoch int16
	Commit        bool
	// CoordinatorEpoch goes into the marker, as in Kafka.
	CoordinatorEpoch int32
	Partitions       []TopicPartition
}

// Output is the effect of one input. The driver appends Records (in order)
// and waits until they are durable, then writes Markers, then sends
// Replies; if the append fails it answers those replies with an error
// instead.
type Output struct {
	Records []Record
	Markers []Markers
	Replies []Reply
}

// Coordinator holds every transactional id of the __transaction_state
// partitions this broker leads. It is not safe for concurrent use: the
// driver serializes calls.
type Coordinator struct {
	cfg Config
}

// New returns an empty coordinator.
func New(cfg Config) *Coordinator { return &Coordinator{cfg: cfg} }

// Partition is the __transaction_state partition of a transactional id, as
// Kafka computes it (Utils.abs of the Java String hash code, modulo n).
func Partition(transactionalID string, n int32) int32 { return 0 }

// InitProducerID handles InitProducerId v0–v5 with a transactional id:
// a new id gets call.NewProducerID at epoch 0; a known one gets its epoch
// bumped (aborting an ongoing transaction first, whose reply then waits for
// the markers); KIP-360's producer id and epoch in the request let a
// producer recover from a failed transaction.
func (c *Coordinator) InitProducerID(call Call, req *kmsg.InitProducerIDRequest) Output {
	return Output{}
}

// AddPartitionsToTxn handles AddPartitionsToTxn v0–v5 (v4+: batches of
// transactions, and the verify-only form that brokers use, KIP-890).
func (c *Coordinator) AddPartitionsToTxn(call Call, req *kmsg.AddPartitionsToTxnRequest) Output {
	return Output{}
}

// AddOffsetsToTxn handles AddOffsetsToTxn: the group's __consumer_offsets
// partition joins the transaction; groupPartition is that partition.
func (c *Coordinator) AddOffsetsToTxn(call Call, req *kmsg.AddOffsetsToTxnRequest, groupPartition int32) Output {
	return Output{}
}

// EndTxn handles EndTxn: commit or abort; the reply comes once the markers
// are written (MarkersWritten).
func (c *Coordinator) EndTxn(call Call, req *kmsg.EndTxnRequest) Output { return Output{} }

// MarkersWritten reports that the markers of id are durable on every
// partition (failed lists partitions whose marker could not be written,
// e.g. deleted topics, which Kafka skips).
func (c *Coordinator) MarkersWritten(now time.Time, id uint64, failed []TopicPartition) Output {
	return Output{}
}

// InTransaction reports whether producerID at epoch has partition in its
// ongoing transaction (the broker's check before a transactional produce,
// KIP-890 part 1); the error code says why not (0 when it has).
func (c *Coordinator) InTransaction(producerID int64, epoch int16, tp TopicPartition) int16 {
	return 0
}

// DescribeTransactions answers one transactional id of DescribeTransactions.
func (c *Coordinator) DescribeTransaction(now time.Time, transactionalID string) kmsg.DescribeTransactionsResponseTransactionState {
	return kmsg.DescribeTransactionsResponseTransactionState{}
}

// ListTransactions answers ListTransactions with its filters (states,
// producer ids, v1+: duration, v2+: id pattern).
func (c *Coordinator) ListTransactions(now time.Time, req *kmsg.ListTransactionsRequest) *kmsg.ListTransactionsResponse {
	return nil
}

// Tick advances time: transactions past their timeout are aborted (their
// producer epoch bumped, as Kafka does), ids unused for IDExpiration are
// forgotten.
func (c *Coordinator) Tick(now time.Time) Output { return Output{} }

// Deadline is when Tick next has something to do.
func (c *Coordinator) Deadline() (t time.Time, ok bool) { return time.Time{}, false }

// Replay applies one record read back from __transaction_state at start-up,
// in log order; a nil value is a tombstone.
func (c *Coordinator) Replay(partition int32, key, value []byte) error { return nil }

// Loaded ends replay: transactions found in PrepareCommit/PrepareAbort have
// their markers written again (the Output's Markers), as Kafka does after
// a coordinator fail-over.
func (c *Coordinator) Loaded(now time.Time) Output { return Output{} }
