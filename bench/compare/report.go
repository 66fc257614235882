package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// report is everything a run measured; its JSON form (-json, -out) is the
// machine-readable result and can be rendered again with -from-json.
type report struct {
	Machine  machine    `json:"machine"`
	Settings settings   `json:"settings"`
	Started  time.Time  `json:"started"`
	Finished time.Time  `json:"finished"`
	LoadFrom string     `json:"load_start"` // /proc/loadavg
	LoadTo   string     `json:"load_end"`
	Cases    []caseSpec `json:"cases"`
	Samples  []sample   `json:"samples"`
	// Filled by summarize.
	Medians []median `json:"medians"`
	Ratios  []ratio  `json:"ratios"`
}

type machine struct {
	CPU       string `json:"cpu"`
	CPUs      int    `json:"cpus"`
	Memory    string `json:"memory"`
	Kernel    string `json:"kernel"`
	DataFS    string `json:"data_fs"`
	GoVersion string `json:"go"`
	Commit    string `json:"commit"`
}

type settings struct {
	Systems        []string `json:"systems"`
	Rounds         int      `json:"rounds"`
	DurationS      float64  `json:"duration_s"`
	LingerMS       float64  `json:"linger_ms"` // Kafka producers
	NATSMaxPending int      `json:"nats_max_pending"`
	Args           []string `json:"args"`
}

// median is one system's medians over the rounds of one case.
type median struct {
	Case    string             `json:"case"`
	System  string             `json:"system"`
	N       int                `json:"n"`      // samples without error
	Errors  int                `json:"errors"` // samples that failed
	Metrics map[string]float64 `json:"metrics"`
}

// ratio is Samsa's median over another system's, metric by metric.
type ratio struct {
	Case    string             `json:"case"`
	Versus  string             `json:"versus"`
	Metrics map[string]float64 `json:"metrics"`
}

// medianOf is the median of xs (the mean of the middle two for an even
// count); NaN for none.
func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// summarize computes the medians of every case and system over the samples
// without error, and Samsa's ratios to the others.
func (r *report) summarize() {
	r.Medians, r.Ratios = nil, nil
	for _, c := range r.Cases {
		bySystem := map[string]median{}
		for _, system := range r.Settings.Systems {
			m := median{Case: c.ID, System: system, Metrics: map[string]float64{}}
			values := map[string][]float64{}
			for _, s := range r.Samples {
				if s.Case != c.ID || s.System != system {
					continue
				}
				if s.Error != "" {
					m.Errors++
					continue
				}
				m.N++
				for k, v := range s.Metrics {
					values[k] = append(values[k], v)
				}
			}
			if m.N+m.Errors == 0 {
				continue
			}
			for k, vs := range values {
				m.Metrics[k] = medianOf(vs)
			}
			bySystem[system] = m
			r.Medians = append(r.Medians, m)
		}
		samsa, ok := bySystem[sysSamsa]
		if !ok || samsa.N == 0 {
			continue
		}
		for _, system := range r.Settings.Systems {
			other, ok := bySystem[system]
			if system == sysSamsa || !ok || other.N == 0 {
				continue
			}
			q := ratio{Case: c.ID, Versus: system, Metrics: map[string]float64{}}
			for k, v := range samsa.Metrics {
				if w, ok := other.Metrics[k]; ok && w != 0 {
					q.Metrics[k] = v / w
				}
			}
			r.Ratios = append(r.Ratios, q)
		}
	}
}

func (r *report) medianFor(caseID, system string) (median, bool) {
	for _, m := range r.Medians {
		if m.Case == caseID && m.System == system {
			return m, true
		}
	}
	return median{}, false
}

func (r *report) ratioFor(caseID, versus string) (ratio, bool) {
	for _, q := range r.Ratios {
		if q.Case == caseID && q.Versus == versus {
			return q, true
		}
	}
	return ratio{}, false
}

// writeJSON writes r as indented JSON. NaN (no value) is not JSON: medians
// never hold one, since a metric without samples has no entry.
func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// column is one metric in a workload's table.
type column struct {
	key, title, format string
}

// columns per workload: what its table shows, in order.
var columns = map[int][]column{
	1: {
		{"produce_mb_s", "produce MB/s", "%.1f"},
		{"produce_rec_s", "produce rec/s", "%.0f"},
		{"produce_p50_ms", "ack p50 ms", "%.2f"},
		{"produce_p99_ms", "ack p99 ms", "%.2f"},
		{"produce_cpu_s_gb", "produce CPU s/GB", "%.2f"},
		{"consume_mb_s", "consume MB/s", "%.1f"},
		{"consume_cpu_s_gb", "consume CPU s/GB", "%.2f"},
		{"peak_rss_mib", "peak RSS MiB", "%.0f"},
	},
	2: e2eColumns,
	3: e2eColumns,
	4: {
		{"e2e_mb_s", "MB/s", "%.1f"},
		{"e2e_p50_ms", "p50 ms", "%.2f"},
		{"e2e_p99_ms", "p99 ms", "%.2f"},
		{"peak_rss_mib", "peak RSS MiB", "%.0f"},
		{"open_files", "open files", "%.0f"},
		{"start_s", "start s", "%.2f"},
		{"create_topic_s", "create topic s", "%.2f"},
		{"restart_s", "restart after SIGKILL s", "%.2f"},
	},
	5: {
		{"fanout_mb_s", "read MB/s, all groups", "%.1f"},
		{"fill_mb_s", "fill MB/s", "%.1f"},
		{"consume_cpu_s_gb", "read CPU s/GB", "%.2f"},
		{"peak_rss_mib", "peak RSS MiB", "%.0f"},
	},
	6: append([]column{{"fill_s", "fill s", "%.0f"}, {"settle_s", "sync after fill s", "%.1f"}}, e2eColumns...),
}

var e2eColumns = []column{
	{"e2e_mb_s", "MB/s", "%.1f"},
	{"e2e_p50_ms", "p50 ms", "%.2f"},
	{"e2e_p99_ms", "p99 ms", "%.2f"},
	{"e2e_p999_ms", "p99.9 ms", "%.2f"},
	{"cpu_s_gb", "CPU s/GB", "%.2f"},
	{"peak_rss_mib", "peak RSS MiB", "%.0f"},
}

// writeMarkdown writes the settings and one table per workload: each
// system's medians, then Samsa's ratio to each other system.
func (r *report) writeMarkdown(w io.Writer) error {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "Machine: %s × %d, %s, kernel %s, %s; data on %s; commit %s.\n",
		m.CPU, m.CPUs, m.Memory, m.Kernel, m.GoVersion, m.DataFS, m.Commit)
	fmt.Fprintf(&b, "Run: %s to %s UTC, load average %s at the start and %s at the end; %d rounds, %gs per measured phase; `%s`.\n",
		r.Started.Format("2006-01-02 15:04"), r.Finished.Format("15:04"), r.LoadFrom, r.LoadTo,
		r.Settings.Rounds, r.Settings.DurationS, strings.Join(append([]string{"go run ./bench/compare"}, r.Settings.Args...), " "))
	fmt.Fprintf(&b, "Kafka clients (Samsa, kfake): franz-go through package loadgen, linger %gms, no compression, default batch and buffer sizes; acks=all is idempotent. NATS: nats.go JetStream async publish (at most %d awaiting acks), pull consumers without acks; acks=all runs the server with sync_interval=always (fsync per write), acks=1 with its default (fsync every 2 min).\n", r.Settings.LingerMS, r.Settings.NATSMaxPending)
	fmt.Fprintf(&b, "MB/s is MiB (2^20 bytes) of record values per second, as `samsa bench` counts; CPU s/GB is the server's CPU seconds per 10^9 bytes of values.\n")

	byWorkload := map[int][]caseSpec{}
	var workloads []int
	for _, c := range r.Cases {
		if _, ok := byWorkload[c.Workload]; !ok {
			workloads = append(workloads, c.Workload)
		}
		byWorkload[c.Workload] = append(byWorkload[c.Workload], c)
	}
	sort.Ints(workloads)
	for _, wl := range workloads {
		cols := columns[wl]
		fmt.Fprintf(&b, "\n#### %s\n\n| case | system | n |", workloadTitles[wl])
		for _, c := range cols {
			fmt.Fprintf(&b, " %s |", c.title)
		}
		b.WriteString("\n|---|---|---:|")
		for range cols {
			b.WriteString("---:|")
		}
		b.WriteString("\n")
		for _, c := range byWorkload[wl] {
			label := strings.TrimPrefix(c.ID, fmt.Sprintf("w%d/", wl))
			for _, system := range r.Settings.Systems {
				md, ok := r.medianFor(c.ID, system)
				if !ok {
					continue
				}
				n := fmt.Sprintf("%d", md.N)
				if md.Errors > 0 {
					n += fmt.Sprintf(" (%d failed)", md.Errors)
				}
				fmt.Fprintf(&b, "| %s | %s | %s |", label, system, n)
				for _, col := range cols {
					b.WriteString(" " + cell(md.Metrics, col.key, col.format) + " |")
				}
				b.WriteString("\n")
			}
			for _, system := range r.Settings.Systems {
				q, ok := r.ratioFor(c.ID, system)
				if !ok {
					continue
				}
				fmt.Fprintf(&b, "| %s | **samsa/%s** | |", label, system)
				for _, col := range cols {
					b.WriteString(" " + cell(q.Metrics, col.key, "%.2f") + " |")
				}
				b.WriteString("\n")
			}
		}
	}

	var failures []string
	for _, s := range r.Samples {
		if s.Error != "" {
			failures = append(failures, fmt.Sprintf("- round %d %s %s: %s", s.Round, s.Case, s.System, s.Error))
		}
	}
	if len(failures) > 0 {
		b.WriteString("\nFailed samples (left out of the medians):\n\n" + strings.Join(failures, "\n") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func cell(m map[string]float64, key, format string) string {
	v, ok := m[key]
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return fmt.Sprintf(format, v)
}

// oneLine is a sample for the progress log.
func (s sample) oneLine() string {
	if s.Error != "" {
		return "FAILED: " + s.Error
	}
	keys := make([]string, 0, len(s.Metrics))
	for k := range s.Metrics {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%.3g", k, s.Metrics[k]))
	}
	return strings.Join(parts, " ") + " (load " + s.Load + ")"
}
