package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMedianOf(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{2, 2, 9}, 2},
	} {
		in := append([]float64(nil), tc.in...)
		if got := medianOf(tc.in); got != tc.want {
			t.Errorf("medianOf(%v) = %v, want %v", tc.in, got, tc.want)
		}
		if !reflect.DeepEqual(in, tc.in) {
			t.Errorf("medianOf reordered its input: %v", tc.in)
		}
	}
	if got := medianOf(nil); !math.IsNaN(got) {
		t.Errorf("medianOf(nil) = %v, want NaN", got)
	}
}

// testReport has two cases: workload 1 measured by all three systems over
// three rounds, one NATS sample failed; workload 3 with latencies.
func testReport() *report {
	r := &report{
		Machine:  machine{CPU: "Test CPU", CPUs: 2, Kernel: "6.0", GoVersion: "go1.26"},
		Settings: settings{Systems: []string{sysSamsa, sysKfake, sysNATS}, Rounds: 3, DurationS: 10, LingerMS: 5, NATSMaxPending: 4000},
		Started:  time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC),
		Finished: time.Date(2026, 11, 22, 5, 30, 0, 0, time.UTC),
		LoadFrom: "1.00 1.00 1.00",
		LoadTo:   "2.00 2.00 2.00",
		Cases: []caseSpec{
			{ID: "w1/acks=all", Workload: 1, Acks: "all"},
			{ID: "w3/acks=all", Workload: 3, Acks: "all"},
		},
	}
	add := func(c, system string, round int, m map[string]float64, err string) {
		r.Samples = append(r.Samples, sample{Case: c, System: system, Round: round, Metrics: m, Error: err})
	}
	for round, v := range []float64{100, 120, 90} {
		add("w1/acks=all", sysSamsa, round+1, map[string]float64{"produce_mb_s": v, "produce_p50_ms": 2}, "")
		add("w1/acks=all", sysKfake, round+1, map[string]float64{"produce_mb_s": v / 2, "produce_p50_ms": 4}, "")
	}
	add("w1/acks=all", sysNATS, 1, map[string]float64{"produce_mb_s": 10}, "")
	add("w1/acks=all", sysNATS, 2, map[string]float64{"produce_mb_s": 30}, "")
	add("w1/acks=all", sysNATS, 3, map[string]float64{}, "e2e: broken")
	add("w3/acks=all", sysSamsa, 1, map[string]float64{"e2e_mb_s": 50, "e2e_p50_ms": 1.5, "e2e_p99_ms": 4, "e2e_p999_ms": 9}, "")
	add("w3/acks=all", sysKfake, 1, map[string]float64{"e2e_mb_s": 50, "e2e_p50_ms": 3, "e2e_p99_ms": 8, "e2e_p999_ms": 30}, "")
	return r
}

func TestSummarizeMediansAndRatios(t *testing.T) {
	r := testReport()
	r.summarize()

	m, ok := r.medianFor("w1/acks=all", sysSamsa)
	if !ok || m.N != 3 || m.Errors != 0 || m.Metrics["produce_mb_s"] != 100 {
		t.Errorf("samsa w1 median = %+v, %v; want 3 samples, 100 MB/s", m, ok)
	}
	m, ok = r.medianFor("w1/acks=all", sysNATS)
	if !ok || m.N != 2 || m.Errors != 1 || m.Metrics["produce_mb_s"] != 20 {
		t.Errorf("nats w1 median = %+v, %v; want 2 good samples (median 20) and 1 failed", m, ok)
	}
	q, ok := r.ratioFor("w1/acks=all", sysKfake)
	if !ok || q.Metrics["produce_mb_s"] != 2 || q.Metrics["produce_p50_ms"] != 0.5 {
		t.Errorf("samsa/kfake w1 = %+v, %v; want 2 and 0.5", q, ok)
	}
	q, ok = r.ratioFor("w1/acks=all", sysNATS)
	if !ok || q.Metrics["produce_mb_s"] != 5 {
		t.Errorf("samsa/nats w1 = %+v, %v; want 5", q, ok)
	}
	if _, ok := q.Metrics["produce_p50_ms"]; ok {
		t.Errorf("ratio of a metric NATS lacks: %+v", q)
	}
	if _, ok := r.medianFor("w3/acks=all", sysNATS); ok {
		t.Error("a median for a system without samples")
	}
	if _, ok := r.ratioFor("w3/acks=all", sysNATS); ok {
		t.Error("a ratio to a system without samples")
	}

	// Summarizing again gives the same, not twice as much.
	n := len(r.Medians)
	r.summarize()
	if len(r.Medians) != n {
		t.Errorf("second summarize: %d medians, want %d", len(r.Medians), n)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := testReport()
	r.summarize()
	var buf bytes.Buffer
	if err := r.writeJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("JSON does not parse: %v", err)
	}
	if !reflect.DeepEqual(back.Medians, r.Medians) || !reflect.DeepEqual(back.Ratios, r.Ratios) ||
		!reflect.DeepEqual(back.Cases, r.Cases) || len(back.Samples) != len(r.Samples) {
		t.Errorf("round trip changed the report:\n%s", buf.String())
	}
	var raw map[string]any
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"machine", "settings", "started", "load_start", "load_end", "cases", "samples", "medians", "ratios"} {
		if _, ok := raw[key]; !ok {
			t.Errorf("JSON lacks %q", key)
		}
	}
}

func TestMarkdownTables(t *testing.T) {
	r := testReport()
	r.summarize()
	var buf bytes.Buffer
	if err := r.writeMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"| acks=all | samsa | 3 | 100.0 |",
		"| acks=all | nats | 2 (1 failed) | 20.0 |",
		"| acks=all | **samsa/kfake** | | 2.00 |",
		"| acks=all | **samsa/nats** | | 5.00 |",
		"- round 3 w1/acks=all nats: e2e: broken",
		"load average 1.00 1.00 1.00 at the start",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, out)
		}
	}
}

func TestSVGIsWellFormedAndShowsEverySystem(t *testing.T) {
	r := testReport()
	r.summarize()
	var buf bytes.Buffer
	if err := r.writeSVG(&buf); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	var rects, texts int
	var allText strings.Builder
	inText := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, buf.String())
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			switch tok.Name.Local {
			case "rect":
				rects++
			case "text":
				texts++
				inText = true
			}
		case xml.EndElement:
			inText = false
		case xml.CharData:
			if inText {
				allText.Write(tok)
				allText.WriteByte('\n')
			}
		}
	}
	text := allText.String()
	for _, want := range []string{"samsa", "kfake", "nats", "w1/acks=all produce", "w3/acks=all", "100.0", "1.50 / 4.00 / 9.00", "1 ms", "100 ms"} {
		if !strings.Contains(text, want) {
			t.Errorf("chart text lacks %q:\n%s", want, text)
		}
	}
	// Failed NATS samples still leave a median (2 good ones): a bar.
	if rects < 10 || texts < 10 {
		t.Errorf("chart has %d rects and %d texts; want a bar per system and case", rects, texts)
	}
}

func TestRotateStartsEachRoundElsewhere(t *testing.T) {
	systems := []string{"a", "b", "c"}
	for round, want := range [][]string{{"a", "b", "c"}, {"b", "c", "a"}, {"c", "a", "b"}, {"a", "b", "c"}} {
		if got := rotate(systems, round+1); !reflect.DeepEqual(got, want) {
			t.Errorf("round %d: %v, want %v", round+1, got, want)
		}
	}
}

func TestBuildCases(t *testing.T) {
	o := &options{
		workloads: []int{1, 4, 6}, acks: []string{"all", "1"},
		scalePartitions: []int32{1, 100}, prefillGB: []float64{1, 50}, scaleRateMB: 10,
	}
	var ids []string
	for _, c := range buildCases(o) {
		ids = append(ids, c.ID)
		if c.ID == "w6/50GB/acks=all" && c.SkipSystem != sysKfake {
			t.Errorf("50 GB case does not skip kfake: %+v", c)
		}
		if c.Workload == 1 && (c.RecordSize != 100 || c.Partitions != 1 || c.Producers != 1) {
			t.Errorf("workload 1 shape: %+v", c)
		}
		if c.Workload == 4 && c.RateMB != 10 {
			t.Errorf("workload 4 rate: %+v", c)
		}
	}
	want := []string{
		"w1/acks=all", "w1/acks=1",
		"w4/p=1/acks=all", "w4/p=100/acks=all", "w4/p=1/acks=1", "w4/p=100/acks=1",
		"w6/1GB/acks=all", "w6/50GB/acks=all", "w6/1GB/acks=1", "w6/50GB/acks=1",
	}
	if !reflect.DeepEqual(ids, want) {
		t.Errorf("cases %v, want %v", ids, want)
	}
}
