package loadgen

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds, in microseconds: 1µs to one hour, 3 significant digits
// (a recorded value is off by at most 0.1%).
const (
	histLowest  = 1
	histHighest = int64(time.Hour / time.Microsecond)
	histDigits  = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histDigits)
}

// recorder collects one worker's latencies: all of them for the result and
// those since the last progress line. Safe for concurrent use.
type recorder struct {
	mu       sync.Mutex
	total    *hdrhistogram.Histogram // guarded by mu
	interval *hdrhistogram.Histogram // guarded by mu; reset by drainInterval
}

func newRecorder() *recorder {
	return &recorder{total: newHistogram(), interval: newHistogram()}
}

// record adds one latency. Values outside the histogram's range are
// clamped to it, so that a clock step never loses a record.
func (r *recorder) record(d time.Duration) {
	us := int64(d / time.Microsecond)
	us = max(us, histLowest)
	us = min(us, histHighest)
	r.mu.Lock()
	// Cannot fail: us is within the histogram's range.
	_ = r.total.RecordValue(us)
	_ = r.interval.RecordValue(us)
	r.mu.Unlock()
}

// drainInterval merges the latencies since the last call into into and
// starts a new interval.
func (r *recorder) drainInterval(into *hdrhistogram.Histogram) {
	r.mu.Lock()
	into.Merge(r.interval)
	r.interval.Reset()
	r.mu.Unlock()
}

// mergeTotal merges every latency recorded into into.
func (r *recorder) mergeTotal(into *hdrhistogram.Histogram) {
	r.mu.Lock()
	into.Merge(r.total)
	r.mu.Unlock()
}

// Latency summarizes a latency histogram, in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

// summarize reads the percentiles of h; nil when h is empty.
func summarize(h *hdrhistogram.Histogram) *Latency {
	if h.TotalCount() == 0 {
		return nil
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return &Latency{
		Count: h.TotalCount(),
		Mean:  h.Mean() / 1000,
		P50:   ms(h.ValueAtPercentile(50)),
		P95:   ms(h.ValueAtPercentile(95)),
		P99:   ms(h.ValueAtPercentile(99)),
		P999:  ms(h.ValueAtPercentile(99.9)),
		Max:   ms(h.Max()),
	}
}
