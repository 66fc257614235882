package producers

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/record"
)

func TestIncrementSequenceWraps(t *testing.T) {
	for _, tc := range []struct{ seq, n, want int32 }{
		{0, 0, 0}, {0, 4, 4}, {math.MaxInt32 - 2, 2, math.MaxInt32},
		{math.MaxInt32 - 2, 3, 0}, {math.MaxInt32, 1, 0}, {math.MaxInt32, 5, 4},
	} {
		if got := IncrementSequence(tc.seq, tc.n); got != tc.want {
			t.Errorf("IncrementSequence(%d, %d) = %d, want %d", tc.seq, tc.n, got, tc.want)
		}
	}
	if !inSequence(math.MaxInt32, 0) || !inSequence(4, 5) || inSequence(4, 6) || inSequence(4, 4) {
		t.Error("inSequence is wrong")
	}
}

// step is one batch offered to a state, and what should happen.
type step struct {
	epoch    int16
	firstSeq int32
	records  int32
	want     *kerr.Error // nil: accepted
	dupOf    int         // >0: a duplicate of the step with this 1-based index
}

// log is a fake partition: it hands out offsets.
type fakeLog struct {
	s    *State
	next int64
}

func (l *fakeLog) write(b DataBatch, n int32, ts int64) (first int64) {
	first = l.next
	l.s.Append(b, first, first+int64(n)-1, ts, -1)
	l.next += int64(n)
	return first
}

func runSteps(t *testing.T, s *State, steps []step) {
	t.Helper()
	l := &fakeLog{s: s}
	offsets := map[int]int64{}
	for i, st := range steps {
		b := DataBatch{ProducerID: 7, Epoch: st.epoch, FirstSeq: st.firstSeq, LastSeq: IncrementSequence(st.firstSeq, st.records-1)}
		dec, err := s.Check(b)
		switch {
		case st.want != nil:
			if !errors.Is(err, st.want) {
				t.Fatalf("step %d: err %v, want %v", i+1, err, st.want)
			}
		case err != nil:
			t.Fatalf("step %d: unexpected %v", i+1, err)
		case st.dupOf > 0:
			if dec.Duplicate == nil || dec.Duplicate.FirstOffset != offsets[st.dupOf] {
				t.Fatalf("step %d: duplicate %+v, want of step %d at %d", i+1, dec.Duplicate, st.dupOf, offsets[st.dupOf])
			}
		case dec.Duplicate != nil:
			t.Fatalf("step %d: unexpected duplicate %+v", i+1, dec.Duplicate)
		default:
			offsets[i+1] = l.write(b, st.records, 0)
		}
	}
}

func TestSequences(t *testing.T) {
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
		{"new epoch from zero (KIP-360 bump)", []step{{0, 0, 3, nil, 0}, {1, 0, 1, nil, 0}, {1, 1, 1, nil, 0}}},
		{"new epoch not from zero", []step{{0, 0, 3, nil, 0}, {1, 3, 1, kerr.OutOfOrderSequenceNumber, 0}}},
		{"wrap", []step{{0, math.MaxInt32 - 1, 2, nil, 0}, {0, 0, 2, nil, 0}, {0, 2, 1, nil, 0}}},
		{"wrap inside a batch", []step{{0, math.MaxInt32 - 1, 4, nil, 0}, {0, math.MaxInt32 - 1, 4, nil, 1}, {0, 2, 1, nil, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) { runSteps(t, New(0), tc.steps) })
	}
}

func TestKeepsFiveBatches(t *testing.T) {
	s := New(0)
	for i := range int32(8) {
		s.Append(DataBatch{ProducerID: 1, FirstSeq: i, LastSeq: i}, int64(i), int64(i), 0, -1)
	}
	p, _ := s.Producer(1)
	if len(p.Batches) != BatchesKept || p.Batches[0].FirstSeq != 3 {
		t.Fatalf("batches %+v", p.Batches)
	}
}

func marker(commit bool, coordEpoch int32) record.Marker {
	return record.Marker{Commit: commit, CoordinatorEpoch: coordEpoch}
}

func TestTransactionsMoveFirstUnstable(t *testing.T) {
	s := New(0)
	l := &fakeLog{s: s}
	if _, ok := s.FirstUnstable(); ok {
		t.Fatal("unstable with no transaction")
	}
	txA := DataBatch{ProducerID: 1, FirstSeq: 0, LastSeq: 1, Transactional: true}
	dec, err := s.Check(txA)
	if err != nil || !dec.Verify {
		t.Fatalf("first transactional batch: %+v %v, want Verify", dec, err)
	}
	l.write(txA, 2, 0) // 0-1
	l.write(DataBatch{ProducerID: 9, FirstSeq: 0, LastSeq: 0}, 1, 0)
	txB := DataBatch{ProducerID: 2, FirstSeq: 0, LastSeq: 0, Transactional: true}
	l.write(txB, 1, 0) // 3
	if off, ok := s.FirstUnstable(); !ok || off != 0 {
		t.Fatalf("first unstable %d %v, want 0", off, ok)
	}
	more := DataBatch{ProducerID: 1, FirstSeq: 2, LastSeq: 2, Transactional: true}
	if dec, err := s.Check(more); err != nil || dec.Verify {
		t.Fatalf("second batch of an ongoing transaction: %+v %v, want no Verify", dec, err)
	}
	l.write(more, 1, 0) // 4
	// A non-transactional batch during the transaction is refused.
	if _, err := s.Check(DataBatch{ProducerID: 1, FirstSeq: 3, LastSeq: 3}); !errors.Is(err, kerr.InvalidTxnState) {
		t.Fatalf("non-transactional batch in a transaction: %v", err)
	}
	// A abort marker of A at 5: B's start becomes the first unstable.
	if ended, ok := s.ApplyMarker(1, 0, marker(false, 0), 5, 0); !ok || ended != (AbortedTxn{1, 0, 5}) {
		t.Fatalf("ended %+v %v", ended, ok)
	}
	l.next = 6
	if off, ok := s.FirstUnstable(); !ok || off != 3 {
		t.Fatalf("first unstable %d %v, want 3", off, ok)
	}
	if _, ok := s.ApplyMarker(2, 0, marker(true, 0), 6, 0); !ok {
		t.Fatal("commit of B ended nothing")
	}
	if _, ok := s.FirstUnstable(); ok {
		t.Fatal("unstable after both ended")
	}
	// A marker with no data in the partition ends nothing.
	if _, ok := s.ApplyMarker(3, 0, marker(false, 0), 7, 0); ok {
		t.Fatal("a marker of an empty transaction ended one")
	}
	if got := s.Aborted(0, 100); len(got) != 1 || got[0] != (AbortedTxn{1, 0, 5}) {
		t.Fatalf("aborted %+v", got)
	}
	// Producer 1 may go on after its abort, non-transactionally.
	if _, err := s.Check(DataBatch{ProducerID: 1, FirstSeq: 3, LastSeq: 3}); err != nil {
		t.Fatalf("after the marker: %v", err)
	}
}

func TestMarkerChecks(t *testing.T) {
	s := New(0)
	s.Append(DataBatch{ProducerID: 1, Epoch: 3, FirstSeq: 0, LastSeq: 0, Transactional: true}, 0, 0, 0, -1)
	if err := s.CheckMarker(1, 2, marker(true, 0)); !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("marker of an older epoch: %v", err)
	}
	s.ApplyMarker(1, 3, marker(true, 5), 1, 0)
	if err := s.CheckMarker(1, 3, marker(false, 4)); !errors.Is(err, kerr.TransactionCoordinatorFenced) {
		t.Fatalf("marker of an older coordinator: %v", err)
	}
	if err := s.CheckMarker(1, 4, marker(false, 5)); err != nil {
		t.Fatalf("marker of a bumped epoch: %v", err)
	}
	if err := s.CheckMarker(99, 0, marker(false, 0)); err != nil {
		t.Fatalf("marker of an unknown producer: %v", err)
	}
	// A marker with a newer epoch (the coordinator's bump) resets the
	// producer's sequences: the next batch starts at 0.
	s.ApplyMarker(1, 4, marker(false, 5), 2, 0)
	if _, err := s.Check(DataBatch{ProducerID: 1, Epoch: 4, FirstSeq: 1, LastSeq: 1}); err != nil {
		// Same epoch as the marker and no batch kept: any sequence.
		t.Fatalf("after a bumping marker: %v", err)
	}
	if _, err := s.Check(DataBatch{ProducerID: 1, Epoch: 3, FirstSeq: 1, LastSeq: 1}); !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("old epoch after a bumping marker: %v", err)
	}
}

func TestVerificationGuard(t *testing.T) {
	s := New(0)
	b := DataBatch{ProducerID: 1, FirstSeq: 0, LastSeq: 0, Transactional: true}
	g := s.BeginVerify(1)
	if !s.Verified(1, g) {
		t.Fatal("not verified")
	}
	s.ApplyMarker(1, 0, marker(false, 0), 10, 0) // the transaction ended meanwhile
	if s.Verified(1, g) {
		t.Fatal("verification survived a marker")
	}
	g2 := s.BeginVerify(1)
	s.Append(b, 11, 11, 0, -1)
	if s.Verified(1, g2) {
		t.Fatal("verification survived the append it allowed")
	}
}

func TestAbortedRangesAndIsAborted(t *testing.T) {
	s := New(0)
	// Producer 1: aborted [0..4], producer 2: aborted [2..6], producer 1
	// again: committed [7..9], aborted [10..12].
	s.Append(DataBatch{ProducerID: 1, Transactional: true}, 0, 0, 0, -1)
	s.Append(DataBatch{ProducerID: 2, Transactional: true}, 2, 2, 0, -1)
	s.ApplyMarker(1, 0, marker(false, 0), 4, 0)
	s.ApplyMarker(2, 0, marker(false, 0), 6, 0)
	s.Append(DataBatch{ProducerID: 1, Transactional: true, FirstSeq: 1, LastSeq: 1}, 7, 7, 0, -1)
	s.ApplyMarker(1, 0, marker(true, 0), 9, 0)
	s.Append(DataBatch{ProducerID: 1, Transactional: true, FirstSeq: 2, LastSeq: 2}, 10, 10, 0, -1)
	s.ApplyMarker(1, 0, marker(false, 0), 12, 0)
	ids := func(as []AbortedTxn) (out []int64) {
		for _, a := range as {
			out = append(out, a.FirstOffset)
		}
		return out
	}
	for _, tc := range []struct {
		from, upTo int64
		want       []int64
	}{
		{0, 100, []int64{0, 2, 10}},
		{0, 1, []int64{0}},
		{0, 2, []int64{0}},
		{0, 3, []int64{0, 2}},
		{5, 100, []int64{2, 10}},
		{7, 10, nil},
		{7, 11, []int64{10}},
		{13, 100, nil},
	} {
		if got := ids(s.Aborted(tc.from, tc.upTo)); !equal(got, tc.want) {
			t.Errorf("Aborted(%d, %d) = %v, want %v", tc.from, tc.upTo, got, tc.want)
		}
	}
	for _, tc := range []struct {
		pid, off int64
		want     bool
	}{{1, 0, true}, {2, 2, true}, {1, 7, false}, {1, 10, true}, {2, 10, false}, {3, 0, false}, {1, 13, false}} {
		if got := s.IsAborted(tc.pid, tc.off); got != tc.want {
			t.Errorf("IsAborted(%d, %d) = %v", tc.pid, tc.off, got)
		}
	}
	s.ForgetAbortedBefore(5)
	if got := ids(s.Aborted(0, 100)); !equal(got, []int64{2, 10}) {
		t.Errorf("after ForgetAbortedBefore(5): %v", got)
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestExpiry(t *testing.T) {
	day := 24 * time.Hour
	s := New(day)
	now := int64(1_700_000_000_000)
	s.Append(DataBatch{ProducerID: 1}, 0, 0, now, -1)
	s.Append(DataBatch{ProducerID: 2, Transactional: true}, 1, 1, now, -1)
	s.Append(DataBatch{ProducerID: 3}, 2, 2, now+int64(time.Hour/time.Millisecond), -1)
	if n := s.MaybeExpire(now + day.Milliseconds() - 1); n != 0 {
		t.Fatalf("expired %d before the expiration", n)
	}
	// Within the check interval nothing is looked at.
	if n := s.MaybeExpire(now + day.Milliseconds()); n != 0 {
		t.Fatalf("expired %d within the check interval", n)
	}
	if n := s.MaybeExpire(now + day.Milliseconds() + expirationCheckInterval.Milliseconds()); n != 1 {
		t.Fatalf("expired %d, want 1 (producer 1; 2 has a transaction, 3 is recent)", n)
	}
	if _, ok := s.Producer(1); ok {
		t.Fatal("producer 1 kept")
	}
	if _, ok := s.Producer(2); !ok {
		t.Fatal("producer 2, with an ongoing transaction, expired")
	}
	// An expired producer is new again: any sequence.
	if _, err := s.Check(DataBatch{ProducerID: 1, FirstSeq: 77, LastSeq: 77}); err != nil {
		t.Fatal(err)
	}
}

func TestObserveRebuildsFromBatches(t *testing.T) {
	build := func(opts record.BuildOptions, n int) []byte {
		t.Helper()
		recs := make([]record.Record, n)
		for i := range recs {
			recs[i] = record.Record{Offset: opts.BaseOffset + int64(i), Timestamp: 5, Value: []byte("v")}
		}
		b, err := record.Build(opts, recs)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	opts := func(base, pid int64, seq int32, txn bool) record.BuildOptions {
		o := record.DefaultBuildOptions()
		o.BaseOffset, o.ProducerID, o.ProducerEpoch, o.BaseSequence, o.Transactional = base, pid, 0, seq, txn
		if pid < 0 {
			o.ProducerEpoch, o.BaseSequence = -1, -1
		}
		return o
	}
	mk, err := record.BuildMarker(record.MarkerOptions{ProducerID: 8, ProducerEpoch: 0, Timestamp: 6, Marker: marker(false, 2)})
	if err != nil {
		t.Fatal(err)
	}
	record.SetBaseOffset(mk, 7)
	batches := [][]byte{
		build(opts(0, 9, 0, false), 3),
		build(opts(3, -1, 0, false), 1),
		build(opts(4, 9, 3, false), 2),
		build(opts(6, 8, 0, true), 1),
		mk,
		build(opts(8, 8, 1, true), 1),
	}
	s := New(0)
	for _, b := range batches {
		h, err := record.ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Observe(h, b, 0); err != nil {
			t.Fatal(err)
		}
	}
	dec, err := s.Check(DataBatch{ProducerID: 9, FirstSeq: 3, LastSeq: 4})
	if err != nil || dec.Duplicate == nil || dec.Duplicate.FirstOffset != 4 || dec.Duplicate.LastOffset != 5 {
		t.Fatalf("retry after rebuild: %+v %v", dec, err)
	}
	if _, err := s.Check(DataBatch{ProducerID: 9, FirstSeq: 6, LastSeq: 6}); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("gap after rebuild: %v", err)
	}
	if got := s.Aborted(0, 100); len(got) != 1 || got[0] != (AbortedTxn{8, 6, 7}) {
		t.Fatalf("aborted after rebuild %+v", got)
	}
	if off, ok := s.FirstUnstable(); !ok || off != 8 {
		t.Fatalf("first unstable after rebuild %d %v, want 8", off, ok)
	}
	if p, _ := s.Producer(8); p.CoordinatorEpoch != 2 {
		t.Fatalf("coordinator epoch %d", p.CoordinatorEpoch)
	}
}
