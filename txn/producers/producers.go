package producers

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/record"
)

// BatchesKept is how many of a producer's last batches a partition
// remembers for duplicate detection: five, as Kafka (and the clients' limit
// of in-flight requests per connection with idempotence).
const BatchesKept = 5

// DefaultExpiration is producer.id.expiration.ms: one day.
const DefaultExpiration = 24 * time.Hour

// expirationCheckInterval is producer.id.expiration.check.interval.ms (10
// minutes): MaybeExpire looks for expired producers at most this often.
const expirationCheckInterval = 10 * time.Minute

// Batch is what a partition remembers of one written data batch.
type Batch struct {
	FirstSeq, LastSeq       int32
	FirstOffset, LastOffset int64
	LogAppendTime           int64 // -1 for CreateTime
}

// Producer is one producer id's state in one partition.
type Producer struct {
	ID               int64
	Epoch            int16
	CoordinatorEpoch int32 // of the last marker; -1 before any
	LastTimestamp    int64 // max timestamp of the last batch or marker, ms
	// TxnFirstOffset is the first offset of the producer's ongoing
	// transaction on the partition, -1 when it has none.
	TxnFirstOffset int64
	Batches        []Batch // oldest first, at most BatchesKept
}

// AbortedTxn is an aborted transaction with data in the partition: its
// producer, its first offset, and the offset of its abort marker.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64
}

// DataBatch is the producer fields of an incoming data batch.
type DataBatch struct {
	ProducerID    int64
	Epoch         int16
	FirstSeq      int32
	LastSeq       int32
	Transactional bool
}

// DataBatchOf reads the producer fields of a batch header.
func DataBatchOf(h record.Header) DataBatch {
	return DataBatch{
		ProducerID:    h.ProducerID,
		Epoch:         h.ProducerEpoch,
		FirstSeq:      h.BaseSequence,
		LastSeq:       IncrementSequence(h.BaseSequence, h.LastOffsetDelta),
		Transactional: h.Attributes.Transactional(),
	}
}

// IncrementSequence adds n to a sequence number, wrapping past MaxInt32 to
// 0 as Kafka does.
func IncrementSequence(seq, n int32) int32 {
	if seq > math.MaxInt32-n {
		return n - (math.MaxInt32 - seq) - 1
	}
	return seq + n
}

// inSequence reports whether next directly follows last.
func inSequence(last, next int32) bool {
	return int64(next) == int64(last)+1 || (next == 0 && last == math.MaxInt32)
}

// Decision is what Check says about a batch that may be written.
type Decision struct {
	// Duplicate, when set, is the batch already written that this one
	// repeats: answer with its offsets and write nothing.
	Duplicate *Batch
	// Verify says the batch would start a transaction on the partition:
	// the coordinator must confirm that the partition is in the producer's
	// transaction before it is written (KIP-890 part 1); see BeginVerify.
	Verify bool
}

// State is one partition's producer state. It is not safe for concurrent
// use.
type State struct {
	expiration time.Duration
	byID       map[int64]*Producer
	aborted    []AbortedTxn // by LastOffset
	// verifying holds, per producer id, the guard of a verification in
	// flight (BeginVerify); a marker or an epoch change voids it.
	verifying   map[int64]uint64
	nextGuard   uint64
	nextExpiry  int64 // ms; MaybeExpire does nothing before
	ongoing     int   // producers with an ongoing transaction
	lowestFirst int64 // cache of FirstUnstable; -1 when stale or none
}

// New returns an empty state; producers with no batch for expiration (and
// no ongoing transaction) are forgotten by MaybeExpire.
func New(expiration time.Duration) *State {
	if expiration <= 0 {
		expiration = DefaultExpiration
	}
	return &State{expiration: expiration, byID: map[int64]*Producer{}, verifying: map[int64]uint64{}, lowestFirst: -1}
}

// Producer returns a copy of one producer's state.
func (s *State) Producer(id int64) (Producer, bool) {
	p, ok := s.byID[id]
	if !ok {
		return Producer{}, false
	}
	c := *p
	c.Batches = slices.Clone(p.Batches)
	return c, true
}

// Producers returns a copy of every producer's state, by id.
func (s *State) Producers() []Producer {
	out := make([]Producer, 0, len(s.byID))
	for id := range s.byID {
		p, _ := s.Producer(id)
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Check decides what to do with an incoming data batch, as Kafka's
// ProducerAppendInfo: write it, answer it as a duplicate, or refuse it with
// an error wrapping a *kerr.Error. It changes nothing.
func (s *State) Check(b DataBatch) (Decision, error) {
	p, ok := s.byID[b.ProducerID]
	if !ok {
		// A producer new to this partition: any sequence (KIP-360: its
		// state may have gone with old segments or expired).
		return Decision{Verify: b.Transactional}, nil
	}
	if b.Epoch == p.Epoch {
		for i := range p.Batches {
			if p.Batches[i].FirstSeq == b.FirstSeq && p.Batches[i].LastSeq == b.LastSeq {
				d := p.Batches[i]
				return Decision{Duplicate: &d}, nil
			}
		}
	}
	switch {
	case b.Epoch < p.Epoch:
		// Since Kafka 2.7 a produce gets INVALID_PRODUCER_EPOCH here (not
		// PRODUCER_FENCED), which lets the client abort and go on.
		return Decision{}, fmt.Errorf("%w: producer %d epoch %d is older than the current epoch %d",
			kerr.InvalidProducerEpoch, b.ProducerID, b.Epoch, p.Epoch)
	case b.Epoch > p.Epoch:
		if b.FirstSeq != 0 && p.Epoch >= 0 {
			return Decision{}, fmt.Errorf("%w: producer %d starts epoch %d at sequence %d, not 0",
				kerr.OutOfOrderSequenceNumber, b.ProducerID, b.Epoch, b.FirstSeq)
		}
	case len(p.Batches) > 0:
		last := p.Batches[len(p.Batches)-1].LastSeq
		if !inSequence(last, b.FirstSeq) {
			return Decision{}, fmt.Errorf("%w: producer %d sent sequence %d, expected %d",
				kerr.OutOfOrderSequenceNumber, b.ProducerID, b.FirstSeq, IncrementSequence(last, 1))
		}
	}
	if p.TxnFirstOffset >= 0 && !b.Transactional {
		return Decision{}, fmt.Errorf("%w: producer %d sent a non-transactional batch during its transaction",
			kerr.InvalidTxnState, b.ProducerID)
	}
	return Decision{Verify: b.Transactional && p.TxnFirstOffset < 0}, nil
}

// BeginVerify notes that the coordinator is being asked whether a batch of
// producer id may start a transaction here, and returns a guard for
// Verified. A marker for the producer written meanwhile voids it, so that
// a batch verified for a transaction that then ended is not written as the
// start of a new one (Kafka's VerificationGuard).
func (s *State) BeginVerify(producerID int64) uint64 {
	s.nextGuard++
	s.verifying[producerID] = s.nextGuard
	return s.nextGuard
}

// Verified reports whether the verification with guard still holds.
func (s *State) Verified(producerID int64, guard uint64) bool {
	g, ok := s.verifying[producerID]
	return ok && g == guard
}

// Append records a data batch that was written at [first, last] at time
// seen (ms: the broker passes the later of the batch's max timestamp and
// its clock, so that a producer whose clock lags is not expired early);
// logAppendTime is the broker's timestamp or -1. It applies no checks: call Check first (a
// rebuild from the log calls it directly, as Kafka does for its own log).
func (s *State) Append(b DataBatch, first, last, seen, logAppendTime int64) {
	p := s.producer(b.ProducerID, b.Epoch)
	if b.Epoch != p.Epoch {
		p.Epoch = b.Epoch
		p.Batches = p.Batches[:0]
		delete(s.verifying, b.ProducerID)
	}
	if len(p.Batches) == BatchesKept {
		copy(p.Batches, p.Batches[1:])
		p.Batches = p.Batches[:BatchesKept-1]
	}
	p.Batches = append(p.Batches, Batch{FirstSeq: b.FirstSeq, LastSeq: b.LastSeq,
		FirstOffset: first, LastOffset: last, LogAppendTime: logAppendTime})
	p.LastTimestamp = seen
	if b.Transactional && p.TxnFirstOffset < 0 {
		p.TxnFirstOffset = first
		s.ongoing++
		if s.ongoing == 1 {
			s.lowestFirst = first
		}
	}
	delete(s.verifying, b.ProducerID)
}

func (s *State) producer(id int64, epoch int16) *Producer {
	p, ok := s.byID[id]
	if !ok {
		p = &Producer{ID: id, Epoch: epoch, CoordinatorEpoch: -1, TxnFirstOffset: -1}
		s.byID[id] = p
	}
	return p
}

// CheckMarker checks a commit or abort marker for producerID at epoch
// before it is written: an older epoch is INVALID_PRODUCER_EPOCH, an older
// coordinator epoch than the last marker's TRANSACTION_COORDINATOR_FENCED,
// as Kafka's appendEndTxnMarker.
func (s *State) CheckMarker(producerID int64, epoch int16, m record.Marker) error {
	p, ok := s.byID[producerID]
	if !ok {
		return nil
	}
	if epoch < p.Epoch {
		return fmt.Errorf("%w: marker of producer %d has epoch %d, older than the current %d",
			kerr.InvalidProducerEpoch, producerID, epoch, p.Epoch)
	}
	if m.CoordinatorEpoch < p.CoordinatorEpoch {
		return fmt.Errorf("%w: marker of producer %d has coordinator epoch %d, older than %d",
			kerr.TransactionCoordinatorFenced, producerID, m.CoordinatorEpoch, p.CoordinatorEpoch)
	}
	return nil
}

// ApplyMarker records a marker written at offset with timestamp ts (ms):
// the producer's transaction, if it has one here, ends; an aborted one is
// added to the aborted transactions. It returns the ended transaction
// (ok false for a marker of a producer with no data in the partition,
// which changes neither the LSO nor the aborted list, as in Kafka).
func (s *State) ApplyMarker(producerID int64, epoch int16, m record.Marker, offset, ts int64) (ended AbortedTxn, ok bool) {
	p := s.producer(producerID, epoch)
	if epoch != p.Epoch {
		p.Epoch = epoch
		p.Batches = p.Batches[:0]
	}
	p.CoordinatorEpoch = m.CoordinatorEpoch
	p.LastTimestamp = ts
	delete(s.verifying, producerID)
	if p.TxnFirstOffset < 0 {
		return AbortedTxn{}, false
	}
	ended = AbortedTxn{ProducerID: producerID, FirstOffset: p.TxnFirstOffset, LastOffset: offset}
	if p.TxnFirstOffset == s.lowestFirst {
		s.lowestFirst = -1 // recomputed on demand
	}
	p.TxnFirstOffset = -1
	s.ongoing--
	if !m.Commit {
		s.aborted = append(s.aborted, ended)
	}
	return ended, true
}

// FirstUnstable returns the first offset of the earliest ongoing
// transaction; ok is false when none is ongoing.
func (s *State) FirstUnstable() (offset int64, ok bool) {
	if s.ongoing == 0 {
		return 0, false
	}
	if s.lowestFirst < 0 {
		for _, p := range s.byID {
			if p.TxnFirstOffset >= 0 && (s.lowestFirst < 0 || p.TxnFirstOffset < s.lowestFirst) {
				s.lowestFirst = p.TxnFirstOffset
			}
		}
	}
	return s.lowestFirst, true
}

// Ongoing returns the producers with an ongoing transaction, by first
// offset.
func (s *State) Ongoing() []Producer {
	var out []Producer
	for _, p := range s.byID {
		if p.TxnFirstOffset >= 0 {
			c, _ := s.Producer(p.ID)
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TxnFirstOffset < out[j].TxnFirstOffset })
	return out
}

// Aborted returns the aborted transactions that overlap [from, upTo): those
// whose marker is at or after from and that started before upTo, which is
// what Fetch with read_committed returns for data read from from up to
// upTo (Kafka's collectAbortedTransactions).
func (s *State) Aborted(from, upTo int64) []AbortedTxn {
	i := sort.Search(len(s.aborted), func(i int) bool { return s.aborted[i].LastOffset >= from })
	var out []AbortedTxn
	for _, a := range s.aborted[i:] {
		if a.FirstOffset < upTo {
			out = append(out, a)
		}
	}
	return out
}

// IsAborted reports whether a transactional data batch of producerID at
// offset belongs to an aborted transaction (compaction drops those).
func (s *State) IsAborted(producerID, offset int64) bool {
	i := sort.Search(len(s.aborted), func(i int) bool { return s.aborted[i].LastOffset > offset })
	for _, a := range s.aborted[i:] {
		if a.ProducerID == producerID {
			// A producer's transactions do not overlap: its first
			// transaction ending after offset is the one holding it, if
			// any.
			return a.FirstOffset <= offset
		}
	}
	return false
}

// ForgetAbortedBefore drops the aborted transactions whose marker is below
// logStart: retention or DeleteRecords removed them.
func (s *State) ForgetAbortedBefore(logStart int64) {
	i := sort.Search(len(s.aborted), func(i int) bool { return s.aborted[i].LastOffset >= logStart })
	if i > 0 {
		s.aborted = slices.Delete(s.aborted, 0, i)
	}
}

// MaybeExpire forgets, at most every ten minutes
// (producer.id.expiration.check.interval.ms), the producers whose last
// batch or marker is older than the expiration and that have no ongoing
// transaction, as Kafka's removeExpiredProducers. It returns how many went.
func (s *State) MaybeExpire(nowMs int64) int {
	if nowMs < s.nextExpiry {
		return 0
	}
	s.nextExpiry = nowMs + expirationCheckInterval.Milliseconds()
	return s.Expire(nowMs)
}

// Expire forgets now the producers MaybeExpire would.
func (s *State) Expire(nowMs int64) int {
	n := 0
	for id, p := range s.byID {
		if p.TxnFirstOffset < 0 && nowMs-p.LastTimestamp >= s.expiration.Milliseconds() {
			delete(s.byID, id)
			delete(s.verifying, id)
			n++
		}
	}
	return n
}

// Observe applies one batch read back from the log (rebuilding after a
// restart): a data batch with a producer id as Append, a marker as
// ApplyMarker, without checks. Batches without a producer id change
// nothing. batch is the whole batch, needed only for a control batch's
// record. A producer counts as seen at the later of the batch's timestamp
// and nowMs (the time of the rebuild), so that one whose clock lags is not
// expired at once (Kafka uses the batch's timestamp alone).
func (s *State) Observe(h record.Header, batch []byte, nowMs int64) error {
	if h.ProducerID < 0 {
		return nil
	}
	if !h.Attributes.Control() {
		logAppendTime := int64(-1)
		if h.Attributes.LogAppendTime() {
			logAppendTime = h.MaxTimestamp
		}
		s.Append(DataBatchOf(h), h.BaseOffset, h.LastOffset(), max(h.MaxTimestamp, nowMs), logAppendTime)
		return nil
	}
	if h.NumRecords == 0 {
		return nil // a control batch emptied by compaction (Kafka's rule)
	}
	recs, err := record.Records(batch)
	if err != nil {
		return err
	}
	if len(recs) != 1 {
		return fmt.Errorf("control batch at %d has %d records: %w", h.BaseOffset, len(recs), record.ErrCorrupt)
	}
	m, ok, err := record.ParseMarker(recs[0].Key, recs[0].Value)
	if err != nil || !ok {
		return err // an unknown control type is skipped, as in Kafka
	}
	s.ApplyMarker(h.ProducerID, h.ProducerEpoch, m, h.BaseOffset, max(recs[0].Timestamp, nowMs))
	return nil
}
