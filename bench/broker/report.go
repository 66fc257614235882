package main

import (
	"fmt"
	"io"
	"slices"
	"time"
)

func (r run) produceRate() float64 { return float64(r.Produced) / r.ProduceTime.Seconds() }
func (r run) consumeRate() float64 {
	return float64(r.Produced+int64(r.Config.Partitions)) / r.ConsumeTime.Seconds()
}
func (r run) gb() float64              { return float64(r.Produced) * recordSize / 1e9 }
func (r run) produceCPUPerGB() float64 { return r.ProduceCPU.Seconds() / r.gb() }
func (r run) consumeCPUPerGB() float64 { return r.ConsumeCPU.Seconds() / r.gb() }

// flushSummary describes Samsa's group commit rounds during the produce
// phase, for the progress log; empty when there were none (kfake, acks=1).
func (r run) flushSummary() string {
	if r.FlushRounds == 0 {
		return ""
	}
	n := float64(r.FlushRounds)
	return fmt.Sprintf("; %.0f fsync rounds/s, %.1f logs and %.2f ms each",
		n/r.ProduceTime.Seconds(), float64(r.FlushLogs)/n, r.FlushTime.Seconds()*1e3/n)
}

// metric is one column of the report.
type metric struct {
	name   string
	value  func(run) float64
	format string
}

var metrics = []metric{
	{"produce rec/s", run.produceRate, "%.0f"},
	{"produce MB/s", func(r run) float64 { return r.produceRate() * recordSize / 1e6 }, "%.1f"},
	{"p50 ms", func(r run) float64 { return ms(r.P50) }, "%.2f"},
	{"p99 ms", func(r run) float64 { return ms(r.P99) }, "%.2f"},
	{"produce CPU s/GB", run.produceCPUPerGB, "%.2f"},
	{"consume rec/s", run.consumeRate, "%.0f"},
	{"consume MB/s", func(r run) float64 { return r.consumeRate() * recordSize / 1e6 }, "%.1f"},
	{"consume CPU s/GB", run.consumeCPUPerGB, "%.2f"},
	{"peak RSS MiB", func(r run) float64 { return mib(r.PeakRSS) }, "%.0f"},
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// report prints the medians as Markdown tables: one row per configuration
// and broker, and the Samsa/kfake ratio under each configuration.
func report(w io.Writer, o options, idles []idle, runs []run) {
	fmt.Fprintf(w, "\nMedians of %d rounds, %v of produce per run.\n\n", o.rounds, o.duration)
	fmt.Fprint(w, "| partitions | acks | broker |")
	for _, m := range metrics {
		fmt.Fprintf(w, " %s |", m.name)
	}
	fmt.Fprint(w, "\n|---|---|---|")
	for range metrics {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)
	for _, c := range o.configs {
		medians := map[string][]float64{}
		for _, b := range o.brokers {
			fmt.Fprintf(w, "| %d | %d | %s |", c.Partitions, c.Acks, b)
			for _, m := range metrics {
				var xs []float64
				for _, r := range runs {
					if r.Broker == b && r.Config == c {
						xs = append(xs, m.value(r))
					}
				}
				med := median(xs)
				medians[b] = append(medians[b], med)
				fmt.Fprintf(w, " "+m.format+" |", med)
			}
			fmt.Fprintln(w)
		}
		if s, k := medians["samsa"], medians["kfake"]; s != nil && k != nil {
			fmt.Fprintf(w, "| %d | %d | **Samsa/kfake** |", c.Partitions, c.Acks)
			for i := range metrics {
				fmt.Fprintf(w, " %.2f |", s[i]/k[i])
			}
			fmt.Fprintln(w)
		}
	}

	if len(idles) == 0 {
		return
	}
	fmt.Fprint(w, "\nIdle RSS (MiB), median of the rounds:\n\n| broker | after start | one topic, 16 partitions | peak |\n|---|---:|---:|---:|\n")
	for _, b := range o.brokers {
		var empty, topic, peak []float64
		for _, m := range idles {
			if m.Broker == b {
				empty = append(empty, mib(m.RSSEmpty))
				topic = append(topic, mib(m.RSSTopic))
				peak = append(peak, mib(m.PeakRSSIdle))
			}
		}
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %.1f |\n", b, median(empty), median(topic), median(peak))
	}
}
