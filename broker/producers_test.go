package broker

import (
	"errors"
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/record"
)

func TestIncrementSequenceWraps(t *testing.T) {
	for _, tc := range []struct{ seq, n, want int32 }{
		{0, 0, 0},
		{0, 4, 4},
		{math.MaxInt32 - 2, 2, math.MaxInt32},
		{math.MaxInt32 - 2, 3, 0},
		{math.MaxInt32, 1, 0},
		{math.MaxInt32, 5, 4},
	} {
		if got := incrementSequence(tc.seq, tc.n); got != tc.want {
			t.Errorf("incrementSequence(%d, %d) = %d, want %d", tc.seq, tc.n, got, tc.want)
		}
	}
	if !inSequence(math.MaxInt32, 0) || !inSequence(4, 5) || inSequence(4, 6) || inSequence(4, 4) {
		t.Error("inSequence is wrong")
	}
}

// step is one batch offered to a producer table, and what should happen.
type step struct {
	epoch    int16
	firstSeq int32
	records  int32
	want     *kerr.Error // nil: accepted
	dupOf    int         // >0: a duplicate of the step with this 1-based index
}

func runSteps(t *testing.T, pt *producerTable, steps []step) {
	t.Helper()
	offsets := map[int]int64{} // step index -> first offset written
	next := int64(0)
	for i, s := range steps {
		b := producerBatchInfo{producerID: 7, epoch: s.epoch, firstSeq: s.firstSeq,
			lastSeq: incrementSequence(s.firstSeq, s.records-1)}
		dup, err := pt.check(b)
		switch {
		case s.want != nil:
			if !errors.Is(err, s.want) {
				t.Fatalf("step %d: err %v, want %v", i+1, err, s.want)
			}
		case err != nil:
			t.Fatalf("step %d: unexpected %v", i+1, err)
		case s.dupOf > 0:
			if dup == nil || dup.firstOffset != offsets[s.dupOf] {
				t.Fatalf("step %d: duplicate %+v, want of step %d at %d", i+1, dup, s.dupOf, offsets[s.dupOf])
			}
		case dup != nil:
			t.Fatalf("step %d: unexpected duplicate %+v", i+1, dup)
		default:
			offsets[i+1] = next
			pt.record(b, producerBatch{firstSeq: b.firstSeq, lastSeq: b.lastSeq,
				firstOffset: next, lastOffset: next + int64(s.records) - 1, logAppendTime: -1})
			next += int64(s.records)
		}
	}
}

func TestProducerTableSequences(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"in order", []step{{0, 0, 3, nil, 0}, {0, 3, 2, nil, 0}, {0, 5, 1, nil, 0}}},
		{"unknown producer starts anywhere", []step{{0, 42, 3, nil, 0}, {0, 45, 1, nil, 0}}},
		{"gap", []step{{0, 0, 3, nil, 0}, {0, 4, 1, kerr.OutOfOrderSequenceNumber, 0}}},
		{"repeat of the last batch", []step{{0, 0, 3, nil, 0}, {0, 0, 3, nil, 1}}},
		{"repeat of an earlier batch", []step{
			{0, 0, 1, nil, 0}, {0, 1, 1, nil, 0}, {0, 2, 1, nil, 0}, {0, 1, 1, nil, 2}, {0, 3, 1, nil, 0}}},
		{"overlapping but not equal range", []step{{0, 0, 3, nil, 0}, {0, 1, 3, kerr.OutOfOrderSequenceNumber, 0}}},
		{"batch older than the last five", []step{
			{0, 0, 1, nil, 0}, {0, 1, 1, nil, 0}, {0, 2, 1, nil, 0}, {0, 3, 1, nil, 0},
			{0, 4, 1, nil, 0}, {0, 5, 1, nil, 0}, {0, 1, 1, nil, 2}, {0, 0, 1, kerr.OutOfOrderSequenceNumber, 0}}},
		{"older epoch", []step{{1, 0, 1, nil, 0}, {0, 1, 1, kerr.InvalidProducerEpoch, 0}}},
		{"older epoch repeating an old batch", []step{{0, 0, 1, nil, 0}, {1, 0, 1, nil, 0}, {0, 0, 1, kerr.InvalidProducerEpoch, 0}}},
		{"new epoch from zero", []step{{0, 0, 3, nil, 0}, {1, 0, 1, nil, 0}, {1, 1, 1, nil, 0}}},
		{"new epoch not from zero", []step{{0, 0, 3, nil, 0}, {1, 3, 1, kerr.OutOfOrderSequenceNumber, 0}}},
		{"wrap", []step{{0, math.MaxInt32 - 1, 2, nil, 0}, {0, 0, 2, nil, 0}, {0, 2, 1, nil, 0}}},
		{"wrap inside a batch", []step{{0, math.MaxInt32 - 1, 4, nil, 0}, {0, math.MaxInt32 - 1, 4, nil, 1}, {0, 2, 1, nil, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) { runSteps(t, newProducerTable(), tc.steps) })
	}
}

func TestProducerTableKeepsFiveBatches(t *testing.T) {
	pt := newProducerTable()
	for i := range int32(8) {
		b := producerBatchInfo{producerID: 1, epoch: 0, firstSeq: i, lastSeq: i}
		pt.record(b, producerBatch{firstSeq: i, lastSeq: i, firstOffset: int64(i), lastOffset: int64(i)})
	}
	if n := len(pt.byID[1].batches); n != producerBatchesKept {
		t.Fatalf("kept %d batches", n)
	}
	if got := pt.byID[1].batches[0].firstSeq; got != 3 {
		t.Fatalf("oldest kept batch has sequence %d, want 3", got)
	}
}

func TestProducerTableObserveRebuildsFromBatches(t *testing.T) {
	pt := newProducerTable()
	headers := []record.Header{
		{BaseOffset: 0, LastOffsetDelta: 2, ProducerID: 9, ProducerEpoch: 0, BaseSequence: 0, MaxTimestamp: 5},
		{BaseOffset: 3, LastOffsetDelta: 0, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
		{BaseOffset: 4, LastOffsetDelta: 1, ProducerID: 9, ProducerEpoch: 0, BaseSequence: 3, MaxTimestamp: 6},
	}
	for _, h := range headers {
		pt.observe(h)
	}
	dup, err := pt.check(producerBatchInfo{producerID: 9, epoch: 0, firstSeq: 3, lastSeq: 4})
	if err != nil || dup == nil || dup.firstOffset != 4 || dup.lastOffset != 5 || dup.logAppendTime != -1 {
		t.Fatalf("retry after rebuild: dup %+v err %v", dup, err)
	}
	if _, err := pt.check(producerBatchInfo{producerID: 9, epoch: 0, firstSeq: 6, lastSeq: 6}); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("gap after rebuild: %v", err)
	}
	if dup, err := pt.check(producerBatchInfo{producerID: 9, epoch: 0, firstSeq: 5, lastSeq: 5}); err != nil || dup != nil {
		t.Fatalf("next batch after rebuild: dup %+v err %v", dup, err)
	}
	if len(pt.byID) != 1 {
		t.Fatalf("producers %v", pt.byID)
	}
}
