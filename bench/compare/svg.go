package main

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// The chart: throughput per case and system (bars scaled to each case's
// largest), then latency percentiles per case and system on one log axis.
const (
	chartWidth  = 1080
	labelWidth  = 230
	plotWidth   = 560
	barHeight   = 13
	barGap      = 3
	groupGap    = 10
	sectionGap  = 34
	chartMargin = 16
)

// systemColors are the bar colours; p50, p99 and p99.9 use the same hue
// from dark to light.
var systemColors = map[string][3]string{
	sysSamsa: {"#1f4e8c", "#4a7fc1", "#a9c4e6"},
	sysKfake: {"#555555", "#8a8a8a", "#cccccc"},
	sysNATS:  {"#2d6a3e", "#58a06b", "#b3d9bd"},
}

func colorOf(system string, shade int) string {
	if c, ok := systemColors[system]; ok {
		return c[shade]
	}
	return []string{"#7a3b1f", "#b8693f", "#e8bfa5"}[shade]
}

// series is one throughput or latency group of the chart.
type series struct {
	suffix string // added to the case label
	key    string // throughput metric, or latency prefix
}

func throughputSeries(workload int) []series {
	switch workload {
	case 1:
		return []series{{" produce", "produce_mb_s"}, {" consume", "consume_mb_s"}}
	case 5:
		return []series{{"", "fanout_mb_s"}}
	}
	return []series{{"", "e2e_mb_s"}}
}

func latencyPrefix(workload int) string {
	if workload == 1 {
		return "produce_" // send to acknowledgement
	}
	if workload == 5 {
		return ""
	}
	return "e2e_" // send to receipt
}

// writeSVG draws the chart of r's medians.
func (r *report) writeSVG(w io.Writer) error {
	var body strings.Builder
	y := chartMargin
	text := func(x, y int, anchor, style, s string) {
		fmt.Fprintf(&body, `<text x="%d" y="%d" text-anchor="%s" %s>%s</text>`+"\n", x, y, anchor, style, html.EscapeString(s))
	}
	text(chartMargin, y+12, "start", `font-size="16" font-weight="bold"`, "Samsa vs kfake vs NATS JetStream: medians of "+fmt.Sprint(r.Settings.Rounds)+" interleaved rounds")
	y += 22
	text(chartMargin, y+12, "start", `font-size="11" fill="#444"`, fmt.Sprintf("%s × %d, %s, %s; %s; load %s → %s",
		r.Machine.CPU, r.Machine.CPUs, r.Machine.Kernel, r.Machine.GoVersion, r.Started.Format("2006-01-02 15:04 UTC"), r.LoadFrom, r.LoadTo))
	y += 22
	// Legend.
	x := chartMargin
	for _, s := range r.Settings.Systems {
		fmt.Fprintf(&body, `<rect x="%d" y="%d" width="14" height="%d" fill="%s"/>`+"\n", x, y, barHeight, colorOf(s, 0))
		text(x+18, y+11, "start", `font-size="12"`, s)
		x += 90
	}
	y += barHeight + sectionGap/2

	// Throughput.
	text(chartMargin, y+12, "start", `font-size="14" font-weight="bold"`, "Throughput, MB/s (MiB of values per second; each group scaled to its largest bar)")
	y += 24
	for _, c := range r.Cases {
		for _, sr := range throughputSeries(c.Workload) {
			var top float64
			for _, s := range r.Settings.Systems {
				if m, ok := r.medianFor(c.ID, s); ok {
					top = math.Max(top, finite(m.Metrics[sr.key]))
				}
			}
			if top <= 0 {
				continue
			}
			first := y
			for _, s := range r.Settings.Systems {
				m, ok := r.medianFor(c.ID, s)
				if !ok {
					continue
				}
				v, has := m.Metrics[sr.key]
				wd := int(finite(v) / top * plotWidth)
				fmt.Fprintf(&body, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s %s: %.1f MB/s</title></rect>`+"\n",
					labelWidth, y, wd, barHeight, colorOf(s, 0), html.EscapeString(c.ID+sr.suffix), s, v)
				label := "failed"
				if has {
					label = fmt.Sprintf("%.1f", v)
				}
				text(labelWidth+wd+4, y+11, "start", `font-size="11"`, label)
				y += barHeight + barGap
			}
			text(labelWidth-8, (first+y)/2+4, "end", `font-size="12"`, c.ID+sr.suffix)
			y += groupGap
		}
	}

	// Latency, on a log axis shared by all cases.
	y += sectionGap - groupGap
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, m := range r.Medians {
		for _, k := range []string{"p50_ms", "p99_ms", "p999_ms"} {
			for mk, v := range m.Metrics {
				if strings.HasSuffix(mk, k) && v > 0 && !math.IsInf(v, 0) {
					lo, hi = math.Min(lo, v), math.Max(hi, v)
				}
			}
		}
	}
	if hi > 0 && !math.IsInf(hi, 0) {
		lo = math.Pow(10, math.Floor(math.Log10(lo)))
		hi = math.Pow(10, math.Ceil(math.Log10(hi)))
		if hi <= lo {
			hi = lo * 10
		}
		scale := func(v float64) int {
			v = math.Max(v, lo)
			return int(math.Log10(v/lo) / math.Log10(hi/lo) * plotWidth)
		}
		text(chartMargin, y+12, "start", `font-size="14" font-weight="bold"`, "Latency, ms (p50 dark, p99 middle, p99.9 light; log scale)")
		y += 18
		text(chartMargin, y+12, "start", `font-size="11" fill="#444"`, "workload 1: send to acknowledgement; others: send to receipt, from the intended send time")
		y += 22
		axisTop := y
		for _, c := range r.Cases {
			prefix := latencyPrefix(c.Workload)
			if prefix == "" {
				continue
			}
			first, drew := y, false
			for _, s := range r.Settings.Systems {
				m, ok := r.medianFor(c.ID, s)
				if !ok {
					continue
				}
				p50, ok50 := m.Metrics[prefix+"p50_ms"]
				p99 := m.Metrics[prefix+"p99_ms"]
				p999 := m.Metrics[prefix+"p999_ms"]
				if !ok50 {
					continue
				}
				for shade, v := range []float64{p999, p99, p50} {
					fmt.Fprintf(&body, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n",
						labelWidth, y, scale(v), barHeight, colorOf(s, 2-shade))
				}
				text(labelWidth+scale(p999)+4, y+11, "start", `font-size="11"`, fmt.Sprintf("%s  %s / %s / %s", s, msLabel(p50), msLabel(p99), msLabel(p999)))
				y += barHeight + barGap
				drew = true
			}
			if drew {
				text(labelWidth-8, (first+y)/2+4, "end", `font-size="12"`, c.ID)
				y += groupGap
			}
		}
		// Decade grid lines and labels.
		for v := lo; v <= hi*1.0001; v *= 10 {
			gx := labelWidth + scale(v)
			fmt.Fprintf(&body, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#000" stroke-opacity="0.15"/>`+"\n", gx, axisTop-4, gx, y)
			text(gx, y+12, "middle", `font-size="11"`, trimFloat(v)+" ms")
		}
		y += 20
	}
	y += chartMargin

	_, err := fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">
<rect width="100%%" height="100%%" fill="#fff"/>
%s</svg>
`, chartWidth, y, chartWidth, y, body.String())
	return err
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// msLabel formats milliseconds with about three significant digits.
func msLabel(v float64) string {
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
