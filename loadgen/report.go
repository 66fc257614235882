package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what a run measured. Its JSON form is the machine-readable
// output of `samsa bench --json`; field names are stable.
type Result struct {
	Mode         Mode    `json:"mode"`
	Topic        string  `json:"topic"`
	Partitions   int     `json:"partitions"`
	TopicCreated bool    `json:"topic_created"`
	RecordSize   int     `json:"record_size"`
	Producers    int     `json:"producers"`
	Consumers    int     `json:"consumers"`
	Acks         string  `json:"acks"`
	Compression  string  `json:"compression"`
	LingerMS     float64 `json:"linger_ms"`
	TargetRate   float64 `json:"target_rate"` // records/s over all producers; 0: unlimited

	// Produced counts records acknowledged, Consumed records read.
	// Records and Bytes are the run's throughput count: Produced for a
	// produce run, Consumed otherwise.
	Produced int64 `json:"produced"`
	Consumed int64 `json:"consumed"`
	Records  int64 `json:"records"`
	Bytes    int64 `json:"bytes"`
	// Failed counts records whose produce failed; Missing, in an e2e run,
	// records acknowledged but never read.
	Failed     int64  `json:"failed"`
	Missing    int64  `json:"missing"`
	FirstError string `json:"first_error,omitempty"`
	// Interrupted is set when the run was stopped before its end.
	Interrupted bool `json:"interrupted"`

	// ElapsedSeconds runs from the start to the last acknowledgement
	// (produce) or the last record read (consume, e2e).
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	RecordsPerSec  float64 `json:"records_per_sec"`
	MBPerSec       float64 `json:"mb_per_sec"`
	// Latency is send to acknowledgement (produce) or send to receipt
	// (e2e), from the intended send time; null for a consume run.
	Latency *Latency `json:"latency_ms"`
}

// Err says what went wrong in the run: records that failed or went
// missing. Nil when every record made it.
func (r *Result) Err() error {
	switch {
	case r.Failed > 0:
		return fmt.Errorf("%d of %d records failed: %s", r.Failed, r.Failed+r.Produced, r.FirstError)
	case r.Missing > 0:
		return fmt.Errorf("%d acknowledged records were not read back within the idle timeout", r.Missing)
	}
	return nil
}

// WriteJSON writes r as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes r for people: aligned "name: value" lines.
func (r *Result) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	line := func(name, format string, args ...any) {
		fmt.Fprintf(tw, "%s:\t%s\n", name, fmt.Sprintf(format, args...))
	}
	topic := fmt.Sprintf("%s (%s", r.Topic, plural(r.Partitions, "partition"))
	if r.TopicCreated {
		topic += ", created"
	}
	line("topic", "%s)", topic)
	var workers []string
	if r.Mode != ModeConsume {
		workers = append(workers, plural(r.Producers, "producer"))
	}
	if r.Mode != ModeProduce {
		workers = append(workers, plural(r.Consumers, "consumer"))
	}
	line("workers", "%s", strings.Join(workers, ", "))
	if r.Mode != ModeConsume {
		rate := "unlimited"
		if r.TargetRate > 0 {
			rate = fmt.Sprintf("%s records/s", num(r.TargetRate))
		}
		line("producing", "%d-byte records, acks=%s, compression %s, linger %gms, rate %s",
			r.RecordSize, r.Acks, r.Compression, r.LingerMS, rate)
	}
	switch r.Mode {
	case ModeProduce:
		line("records", "%d acknowledged, %d failed", r.Produced, r.Failed)
	case ModeConsume:
		line("records", "%d read", r.Consumed)
	case ModeE2E:
		line("records", "%d acknowledged, %d read, %d failed, %d missing", r.Produced, r.Consumed, r.Failed, r.Missing)
	}
	elapsed := fmt.Sprintf("%.2fs", r.ElapsedSeconds)
	if r.Interrupted {
		elapsed += " (interrupted)"
	}
	line("elapsed", "%s", elapsed)
	line("throughput", "%s records/s, %.2f MB/s", num(r.RecordsPerSec), r.MBPerSec)
	if l := r.Latency; l != nil {
		what := "send to ack"
		if r.Mode == ModeE2E {
			what = "send to receipt"
		}
		line("latency ("+what+")", "%s", l.String())
	}
	if r.FirstError != "" {
		line("first error", "%s", r.FirstError)
	}
	return tw.Flush()
}

// String is the latency percentiles on one line, in milliseconds.
func (l *Latency) String() string {
	return fmt.Sprintf("p50 %s  p95 %s  p99 %s  p99.9 %s  max %s  mean %s ms",
		ms(l.P50), ms(l.P95), ms(l.P99), ms(l.P999), ms(l.Max), ms(l.Mean))
}

// Snapshot is a run's progress, reported about once a second.
type Snapshot struct {
	Mode     Mode
	Elapsed  time.Duration
	Produced int64 // records acknowledged so far
	Consumed int64 // records read so far
	Errors   int64 // records failed so far
	// RecordsPerSec and MBPerSec are over the last interval, of records
	// acknowledged (produce) or read (consume, e2e).
	RecordsPerSec float64
	MBPerSec      float64
	// Latency is over the last interval; nil when nothing was measured.
	Latency *Latency
}

// String is the progress line.
func (s Snapshot) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%6.1fs", s.Elapsed.Seconds())
	switch s.Mode {
	case ModeProduce:
		fmt.Fprintf(&b, "  %d acked", s.Produced)
	case ModeConsume:
		fmt.Fprintf(&b, "  %d read", s.Consumed)
	case ModeE2E:
		fmt.Fprintf(&b, "  %d acked  %d read", s.Produced, s.Consumed)
	}
	fmt.Fprintf(&b, "  %s records/s  %.2f MB/s", num(s.RecordsPerSec), s.MBPerSec)
	if l := s.Latency; l != nil {
		fmt.Fprintf(&b, "  p50 %s  p99 %s  max %s ms", ms(l.P50), ms(l.P99), ms(l.Max))
	}
	if s.Errors > 0 {
		fmt.Fprintf(&b, "  %d failed", s.Errors)
	}
	return b.String()
}

// ms formats milliseconds with three significant digits or more.
func ms(v float64) string {
	switch {
	case v < 1:
		return fmt.Sprintf("%.3f", v)
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// num formats a rate: one decimal below 100, whole numbers above.
func num(v float64) string {
	if v < 100 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
