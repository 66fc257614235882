package broker_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/broker"
	"github.com/samsa-io/samsa/httpapi"
	"github.com/samsa-io/samsa/samsatest"
)

// metricsBroker starts a broker whose metrics are on the /metrics of an
// HTTP API server, as `samsa serve` wires them, and returns the broker and
// the server's base URL.
func metricsBroker(t *testing.T, opts ...samsatest.Option) (*samsatest.Broker, string) {
	t.Helper()
	api, err := httpapi.Start(httpapi.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		api.Shutdown(ctx)
	})
	opts = append([]samsatest.Option{samsatest.WithConfig(func(c *broker.Config) { c.Metrics = api.Registerer() })}, opts...)
	return samsatest.Start(t, opts...), "http://" + api.Addr().String()
}

// scraped is one scrape of /metrics, parsed.
type scraped map[string]*dto.MetricFamily

// scrape gets /metrics and parses it with the Prometheus text parser.
func scrape(t *testing.T, base string) scraped {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// find returns the samples of family name whose labels include labels
// ("k=v", …).
func (s scraped) find(name string, labels ...string) []*dto.Metric {
	f, ok := s[name]
	if !ok {
		return nil
	}
	var out []*dto.Metric
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				match = false
			}
		}
		if match {
			out = append(out, m)
		}
	}
	return out
}

// value sums the samples of name matching labels: counter and gauge
// values, histogram and summary sample counts. ok is false when there is
// none.
func (s scraped) value(name string, labels ...string) (v float64, ok bool) {
	for _, m := range s.find(name, labels...) {
		ok = true
		switch {
		case m.Counter != nil:
			v += m.GetCounter().GetValue()
		case m.Gauge != nil:
			v += m.GetGauge().GetValue()
		case m.Histogram != nil:
			v += float64(m.GetHistogram().GetSampleCount())
		case m.Summary != nil:
			v += float64(m.GetSummary().GetSampleCount())
		case m.Untyped != nil:
			v += m.GetUntyped().GetValue()
		}
	}
	return v, ok
}

// check reports an error unless name{labels} is present and pred holds.
func (s scraped) check(t *testing.T, what string, pred func(float64) bool, name string, labels ...string) {
	t.Helper()
	v, ok := s.value(name, labels...)
	if !ok {
		t.Errorf("%s{%s} missing from /metrics", name, strings.Join(labels, ","))
		return
	}
	if !pred(v) {
		t.Errorf("%s{%s} = %g, want %s", name, strings.Join(labels, ","), v, what)
	}
}

func positive(v float64) bool { return v > 0 }

func equal(want float64) (string, func(float64) bool) {
	return fmt.Sprint(want), func(v float64) bool { return v == want }
}

func TestMetricsMoveWithTraffic(t *testing.T) {
	sb, base := metricsBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic, group, n = "metrics-traffic", "metrics-group", 25

	before := scrape(t, base)
	if _, ok := before.value("samsa_topic_bytes_in_total", "topic="+topic); ok {
		t.Fatalf("traffic of %s before it exists", topic)
	}

	producer, err := kgo.NewClient(kgo.SeedBrokers(sb.Addr()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	// Several produce requests: a batch each.
	for i := range 5 {
		var recs []*kgo.Record
		for j := range n / 5 {
			recs = append(recs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "value-%d-%d", i, j)})
		}
		if err := producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	consumer, err := kgo.NewClient(kgo.SeedBrokers(sb.Addr()), kgo.ConsumeTopics(topic),
		kgo.ConsumerGroup(group), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < n {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll: %v", err)
		}
		got += fs.NumRecords()
	}
	if got != n {
		t.Fatalf("consumed %d records, want %d", got, n)
	}
	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	runtime.GC() // at least one GC pause to report

	s := scrape(t, base)
	// Connections: the two clients' (each has a seed and a broker
	// connection, or more).
	s.check(t, "at least 2", func(v float64) bool { return v >= 2 }, "samsa_connections")
	s.check(t, "at least 2", func(v float64) bool { return v >= 2 }, "samsa_connections_accepted_total")

	// Requests, per API and version; the histogram counts each request
	// the counter counts.
	for _, api := range []string{"ApiVersions", "Metadata", "Produce", "Fetch", "FindCoordinator", "JoinGroup", "SyncGroup", "OffsetCommit"} {
		s.check(t, "> 0", positive, "samsa_requests_total", "api="+api)
		count, _ := s.value("samsa_requests_total", "api="+api)
		what, eq := equal(count)
		s.check(t, what+" (the requests counted)", eq, "samsa_request_duration_seconds", "api="+api)
	}
	if produces, _ := s.value("samsa_requests_total", "api=Produce"); produces < 5 {
		t.Errorf("%g produce requests counted, want at least 5", produces)
	}
	for _, m := range s.find("samsa_requests_total", "api=Produce") {
		for _, l := range m.GetLabel() {
			if l.GetName() == "version" && (l.GetValue() == "" || strings.Trim(l.GetValue(), "0123456789") != "") {
				t.Errorf("Produce version label %q, want a number", l.GetValue())
			}
		}
	}

	// Traffic: every record in and out once; batches are sent back as
	// they were stored, so the bytes out equal the bytes in, which is all
	// the one partition's log holds.
	what, eq := equal(n)
	s.check(t, what, eq, "samsa_topic_records_in_total", "topic="+topic)
	s.check(t, what, eq, "samsa_topic_records_out_total", "topic="+topic)
	bytesIn, _ := s.value("samsa_topic_bytes_in_total", "topic="+topic)
	if bytesIn < float64(n*len("value-0-0")) {
		t.Errorf("samsa_topic_bytes_in_total = %g, want at least the values' %d bytes", bytesIn, n*len("value-0-0"))
	}
	what, eq = equal(bytesIn)
	s.check(t, what+" (the bytes in)", eq, "samsa_topic_bytes_out_total", "topic="+topic)

	// The log, read at scrape time.
	what, eq = equal(n)
	s.check(t, what, eq, "samsa_log_end_offset", "topic="+topic, "partition=0")
	what, eq = equal(0)
	s.check(t, what, eq, "samsa_log_start_offset", "topic="+topic, "partition=0")
	what, eq = equal(bytesIn)
	s.check(t, what+" (the bytes in)", eq, "samsa_log_size_bytes", "topic="+topic, "partition=0")
	s.check(t, "> 0", positive, "samsa_log_end_offset", "topic=__consumer_offsets")

	// Storage: acks=all produces waited for group commits.
	s.check(t, "> 0", positive, "samsa_storage_fsync_duration_seconds")
	s.check(t, "> 0", positive, "samsa_storage_group_commit_logs")

	// Consumer group lag (group_metrics.go): all consumed and committed.
	what, eq = equal(0)
	s.check(t, what, eq, "samsa_consumer_group_lag", "group="+group, "topic="+topic, "partition=0")
	what, eq = equal(n)
	s.check(t, what, eq, "samsa_consumer_group_committed_offset", "group="+group, "topic="+topic, "partition=0")

	// The Go runtime and the process (httpapi).
	s.check(t, "> 0", positive, "go_sched_pauses_total_gc_seconds")
	s.check(t, "> 0", positive, "go_gc_duration_seconds")
	s.check(t, "> 0", positive, "go_goroutines")
	if runtime.GOOS == "linux" {
		s.check(t, "> 0", positive, "process_resident_memory_bytes")
	}

	// Closed connections leave the gauge.
	consumer.Close()
	producer.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, _ := scrape(t, base).value("samsa_connections")
		if v == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("samsa_connections = %g after every client closed, want 0", v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMetricsForgetDeletedTopics(t *testing.T) {
	sb, base := metricsBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic = "metrics-deleted"
	cl, err := kgo.NewClient(kgo.SeedBrokers(sb.Addr()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(cl *kgo.Client, n int) {
		t.Helper()
		for range n {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
		}
	}
	produce(cl, 3)
	what, eq := equal(3)
	scrape(t, base).check(t, what, eq, "samsa_topic_records_in_total", "topic="+topic)

	adm := kadm.NewClient(cl)
	if _, err := adm.DeleteTopic(ctx, topic); err != nil {
		t.Fatalf("delete: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := scrape(t, base)
		_, traffic := s.value("samsa_topic_records_in_total", "topic="+topic)
		_, log := s.value("samsa_log_end_offset", "topic="+topic)
		if !traffic && !log {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a deleted topic's metrics are still there (traffic %v, log %v)", traffic, log)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A topic created again under the name counts from zero. (A new
	// client: the old one knows the old topic id.)
	cl2, err := kgo.NewClient(kgo.SeedBrokers(sb.Addr()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	produce(cl2, 2)
	what, eq = equal(2)
	scrape(t, base).check(t, what, eq, "samsa_topic_records_in_total", "topic="+topic)
}

func TestMetricsRegisterAgainAfterRestart(t *testing.T) {
	sb, base := metricsBroker(t)
	sb.Restart() // would fail to start if the first broker's collectors were still registered
	s := scrape(t, base)
	if _, ok := s["samsa_connections"]; !ok {
		t.Error("samsa_connections missing after a restart")
	}
}

// TestBrokerLogsNothingPerRequest runs traffic through a broker logging at
// info level and finds no line about it: a busy broker's log holds events
// worth a person's attention, not its requests.
func TestBrokerLogsNothingPerRequest(t *testing.T) {
	var logs lockedBuffer
	sb := samsatest.Start(t, samsatest.WithConfig(func(c *broker.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(sb.Addr()), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics("quiet"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	// Startup is logged; what follows must not be.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "quiet", Value: []byte("first")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	start := logs.Len()
	for i := range 200 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "quiet", Value: fmt.Appendf(nil, "%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for got := 0; got < 201; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	cl.Close()
	if extra := logs.String()[start:]; extra != "" {
		// One-off events of the first traffic (coordinators loading) may
		// land here; nothing may repeat per request.
		lines := strings.Split(strings.TrimSpace(extra), "\n")
		if len(lines) > 3 {
			t.Errorf("%d log lines at info while serving 400 requests:\n%s", len(lines), extra)
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
