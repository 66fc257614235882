package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramPercentilesWithinRelativeError(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rec := newRecorder()
	var exact []float64 // milliseconds
	for range 100_000 {
		// Log-uniform from 10µs to 10s: every decade of the range.
		us := int64(math.Pow(10, 1+6*rng.Float64()))
		rec.record(time.Duration(us) * time.Microsecond)
		exact = append(exact, float64(us)/1000)
	}
	slices.Sort(exact)
	h := newHistogram()
	rec.mergeTotal(h)
	l := summarize(h)
	if l.Count != int64(len(exact)) {
		t.Fatalf("count %d, want %d", l.Count, len(exact))
	}
	for _, tc := range []struct {
		name string
		got  float64
		q    float64
	}{
		{"p50", l.P50, 0.50}, {"p95", l.P95, 0.95}, {"p99", l.P99, 0.99}, {"p99.9", l.P999, 0.999}, {"max", l.Max, 1},
	} {
		want := exact[int(math.Ceil(tc.q*float64(len(exact))))-1]
		// 3 significant digits, plus one µs of truncation.
		if rel := math.Abs(tc.got-want) / want; rel > 0.001+0.001/want {
			t.Errorf("%s = %v ms, exact %v ms: relative error %.5f", tc.name, tc.got, want, rel)
		}
	}
	if !(l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("percentiles out of order: %+v", l)
	}
}

func TestHistogramClampsOutOfRange(t *testing.T) {
	rec := newRecorder()
	rec.record(-time.Second)  // a clock step backwards
	rec.record(0)             // below 1µs
	rec.record(2 * time.Hour) // above the range
	h := newHistogram()
	rec.mergeTotal(h)
	l := summarize(h)
	if l.Count != 3 {
		t.Fatalf("count %d, want 3: no value may be lost", l.Count)
	}
	if l.P50 != 0.001 {
		t.Errorf("p50 = %v ms, want the 1µs floor", l.P50)
	}
	if hour := float64(time.Hour / time.Millisecond); math.Abs(l.Max-hour)/hour > 0.001 {
		t.Errorf("max = %v ms, want about an hour", l.Max)
	}
}

func TestRecorderIntervalResetsButTotalKeeps(t *testing.T) {
	rec := newRecorder()
	rec.record(time.Millisecond)
	rec.record(2 * time.Millisecond)
	first := newHistogram()
	rec.drainInterval(first)
	if first.TotalCount() != 2 {
		t.Fatalf("first interval holds %d, want 2", first.TotalCount())
	}
	rec.record(3 * time.Millisecond)
	second := newHistogram()
	rec.drainInterval(second)
	if second.TotalCount() != 1 || second.Max() < 3000 {
		t.Errorf("second interval holds %d (max %dµs), want only the 3ms value", second.TotalCount(), second.Max())
	}
	total := newHistogram()
	rec.mergeTotal(total)
	if total.TotalCount() != 3 {
		t.Errorf("total holds %d, want 3", total.TotalCount())
	}
}

func TestSummarizeEmptyIsNil(t *testing.T) {
	if l := summarize(newHistogram()); l != nil {
		t.Errorf("summarize(empty) = %+v, want nil", l)
	}
}
