package txn

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/javahash"
)

// Config holds the coordinator's settings, with Kafka's config names. A
// zero field means Kafka's default.
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
	// (10 s): how often timed-out transactions are looked for. The
	// coordinator computes exact deadlines, so this only bounds how late
	// Deadline may be: never later than AbortCheckInterval after the
	// earliest due work.
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

// withDefaults fills the zero fields of cfg with Kafka's defaults.
func (cfg Config) withDefaults() Config {
	def := DefaultConfig()
	if cfg.Partitions <= 0 {
		cfg.Partitions = def.Partitions
	}
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = def.MaxTimeout
	}
	if cfg.IDExpiration <= 0 {
		cfg.IDExpiration = def.IDExpiration
	}
	if cfg.AbortCheckInterval <= 0 {
		cfg.AbortCheckInterval = def.AbortCheckInterval
	}
	return cfg
}

// Token identifies a request whose response may be due later (an
// InitProducerId that fences an ongoing transaction is answered once that
// transaction's abort markers are written); the driver chooses it.
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
	// handed out. A negative value means none was reserved: a call that
	// needs one is answered COORDINATOR_NOT_AVAILABLE (retriable).
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
// and waits until they are durable; then it sends Replies and writes
// Markers (in either order, or concurrently: as in Kafka, an EndTxn is
// answered once its PrepareCommit/PrepareAbort record is durable, and the
// markers are written after). If the append fails it answers the replies
// with an error instead and writes no markers; the coordinator's state is
// then ahead of the log, and the driver should rebuild it from the log
// (New, Replay, Loaded), as Kafka reloads a partition.
type Output struct {
	Records []Record
	Markers []Markers
	Replies []Reply
}

// Coordinator holds every transactional id of the __transaction_state
// partitions this broker leads. It is not safe for concurrent use: the
// driver serializes calls.
//
// State changes are applied when an input is handled, and the records that
// persist them are in its Output: the driver must append them before it
// lets anything depend on them (replies, markers).
type Coordinator struct {
	cfg Config
	// txns by transactional id.
	txns map[string]*transaction
	// byProducer indexes txns by their current producer id.
	byProducer map[int64]*transaction
	// inflight maps the ID of every Markers not yet reported written to
	// its transactional id.
	inflight map[uint64]string
	// lastMarkers is the last Markers ID handed out.
	lastMarkers uint64
	// topics is the last SetTopics (partition counts by topic); nil until
	// then, and then AddPartitionsToTxn does not check partitions exist.
	topics map[string]int32
	// wake is when Tick next has something to do; zero when nothing. It
	// may be early (a deadline that went away), never late.
	wake time.Time
	// coordinatorEpoch goes into the markers.
	coordinatorEpoch int32
}

// New returns an empty coordinator.
func New(cfg Config) *Coordinator {
	return &Coordinator{
		cfg:        cfg.withDefaults(),
		txns:       make(map[string]*transaction),
		byProducer: make(map[int64]*transaction),
		inflight:   make(map[uint64]string),
	}
}

// Partition is the __transaction_state partition of a transactional id, as
// Kafka computes it (Utils.abs of the Java String hash code, modulo n).
func Partition(transactionalID string, n int32) int32 {
	return javahash.Partition(transactionalID, n)
}

// SetCoordinatorEpoch sets the epoch written into markers (Kafka uses the
// leader epoch of the __transaction_state partition); 0 until set.
func (c *Coordinator) SetCoordinatorEpoch(epoch int32) { c.coordinatorEpoch = epoch }

// SetTopics tells the coordinator which partitions exist (partition counts
// by topic): AddPartitionsToTxn then refuses unknown partitions with
// UNKNOWN_TOPIC_OR_PARTITION (the rest of that transaction's partitions
// get OPERATION_NOT_ATTEMPTED), as Kafka does. Until the first call every
// partition is accepted.
func (c *Coordinator) SetTopics(partitions map[string]int32) {
	c.topics = make(map[string]int32, len(partitions))
	for t, n := range partitions {
		c.topics[t] = n
	}
}

// partition is the __transaction_state partition of id.
func (c *Coordinator) partition(id string) int32 { return Partition(id, c.cfg.Partitions) }

// lookup returns the transaction of id, nil if it has none.
func (c *Coordinator) lookup(id string) *transaction { return c.txns[id] }

// put adds t, or replaces the transaction of the same id.
func (c *Coordinator) put(t *transaction) {
	if old := c.txns[t.id]; old != nil {
		c.unindex(old)
	}
	c.txns[t.id] = t
	c.byProducer[t.producerID] = t
}

// remove forgets t.
func (c *Coordinator) remove(t *transaction) {
	c.unindex(t)
	delete(c.txns, t.id)
	if t.markers != 0 {
		delete(c.inflight, t.markers)
	}
}

func (c *Coordinator) unindex(t *transaction) {
	if c.byProducer[t.producerID] == t {
		delete(c.byProducer, t.producerID)
	}
}

// setProducerID changes t's producer id, keeping the index.
func (c *Coordinator) setProducerID(t *transaction, id int64) {
	c.unindex(t)
	t.producerID = id
	c.byProducer[id] = t
}
