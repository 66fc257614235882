package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/samsatest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

var (
	idLine    = regexp.MustCompile(`(?m)^((?:cluster )?id:\s+)\S+$`)
	sizeCell  = regexp.MustCompile(`\b\d+(\.\d)? (B|KiB|MiB)\b`)
	loopbackP = regexp.MustCompile(`127\.0\.0\.1:\d+`)
)

// normalize hides what changes from run to run: ids, sizes (the last
// column where they appear), the broker's port.
func normalize(s string) string {
	s = idLine.ReplaceAllString(s, "${1}ID")
	s = sizeCell.ReplaceAllString(s, "SIZE")
	return loopbackP.ReplaceAllStringFunc(s, func(a string) string { return "127.0.0.1:" + strings.Repeat("P", len(a)-len("127.0.0.1:")) })
}

type env struct {
	t    *testing.T
	b    *samsatest.Broker
	conn *Conn
}

func newEnv(t *testing.T) *env {
	b := samsatest.Start(t)
	return &env{t: t, b: b, conn: &Conn{Brokers: []string{b.Addr()}}}
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

// text runs f with a text printer and returns what it printed.
func (e *env) run(format Format, f func(Printer) error) (string, error) {
	var buf bytes.Buffer
	err := f(Printer{Out: &buf, Format: format})
	return buf.String(), err
}

func (e *env) mustRun(format Format, f func(Printer) error) string {
	e.t.Helper()
	out, err := e.run(format, f)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) create(topic string, partitions int32, configs map[string]string) {
	e.t.Helper()
	e.mustRun(FormatText, func(p Printer) error {
		return TopicCreate(e.ctx(), e.conn, p, TopicCreateOptions{Topics: []string{topic}, Partitions: partitions, Replicas: -1, Configs: configs})
	})
}

// produce writes input framed by tmpl and returns the printed offsets.
func (e *env) produce(topic, tmpl, input string) string {
	e.t.Helper()
	var out bytes.Buffer
	err := Produce(e.ctx(), e.conn, strings.NewReader(input), &out, &bytes.Buffer{}, ProduceOptions{Topic: topic, Template: tmpl, Partition: -1, PrintOffsets: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return out.String()
}

func (e *env) consume(o ConsumeOptions) (string, error) {
	var out bytes.Buffer
	err := Consume(e.ctx(), e.conn, &out, &bytes.Buffer{}, o)
	return out.String(), err
}

func (e *env) mustConsume(o ConsumeOptions) string {
	e.t.Helper()
	out, err := e.consume(o)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func TestTopicCommands(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	out := e.mustRun(FormatText, func(p Printer) error {
		return TopicCreate(ctx, e.conn, p, TopicCreateOptions{Topics: []string{"orders", "payments"}, Partitions: 3, Replicas: -1, Configs: map[string]string{"retention.ms": "3600000"}})
	})
	checkGolden(t, "topic_create.txt", out)

	// Creating again fails, unless --if-not-exists.
	_, err := e.run(FormatText, func(p Printer) error {
		return TopicCreate(ctx, e.conn, p, TopicCreateOptions{Topics: []string{"orders"}, Partitions: 1, Replicas: -1})
	})
	if ExitCode(err) != ExitFailure || !strings.Contains(err.Error(), `topic "orders" already exists`) {
		t.Errorf("create twice: %v", err)
	}
	out = e.mustRun(FormatText, func(p Printer) error {
		return TopicCreate(ctx, e.conn, p, TopicCreateOptions{Topics: []string{"orders"}, Partitions: 1, Replicas: -1, IfNotExists: true})
	})
	if !strings.Contains(out, "exists") {
		t.Errorf("--if-not-exists: %q", out)
	}

	out = e.mustRun(FormatText, func(p Printer) error { return TopicList(ctx, e.conn, p, false) })
	checkGolden(t, "topic_list.txt", normalize(out))

	var list []TopicSummary
	out = e.mustRun(FormatJSON, func(p Printer) error { return TopicList(ctx, e.conn, p, false) })
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("topic list json: %v\n%s", err, out)
	}
	if len(list) != 2 || list[0].Name != "orders" || list[0].Partitions != 3 || list[1].Name != "payments" {
		t.Errorf("topic list json: %+v", list)
	}

	e.produce("orders", `%p %d %k %v\n`, "0 1000 a one\n0 1001 b two\n1 1002 c three\n")
	e.mustRun(FormatText, func(p Printer) error {
		return TopicAlterConfig(ctx, e.conn, p, TopicAlterConfigOptions{Topics: []string{"orders"}, Set: map[string]string{"cleanup.policy": "compact"}, Delete: []string{"retention.ms"}})
	})
	out = e.mustRun(FormatText, func(p Printer) error {
		return TopicDescribe(ctx, e.conn, p, TopicDescribeOptions{Topics: []string{"orders"}})
	})
	checkGolden(t, "topic_describe.txt", normalize(out))

	var desc TopicDescription
	out = e.mustRun(FormatJSON, func(p Printer) error {
		return TopicDescribe(ctx, e.conn, p, TopicDescribeOptions{Topics: []string{"orders"}, AllConfigs: true})
	})
	if err := json.Unmarshal([]byte(out), &desc); err != nil {
		t.Fatalf("describe json: %v\n%s", err, out)
	}
	if len(desc.Partitions) != 3 || desc.Partitions[0].LogEndOffset != 2 || desc.Partitions[1].LogEndOffset != 1 || desc.Partitions[0].SizeBytes <= 0 {
		t.Errorf("describe json partitions: %+v", desc.Partitions)
	}
	if desc.Totals.Records != 3 {
		t.Errorf("describe json totals: %+v", desc.Totals)
	}
	sources := map[string]string{}
	for _, c := range desc.Configs {
		sources[c.Name] = c.Source + "=" + c.Value
	}
	if sources["cleanup.policy"] != "topic=compact" || sources["retention.ms"] != "default=604800000" {
		t.Errorf("describe json configs: cleanup.policy %q, retention.ms %q", sources["cleanup.policy"], sources["retention.ms"])
	}

	out = e.mustRun(FormatText, func(p Printer) error {
		return TopicAddPartitions(ctx, e.conn, p, TopicAddPartitionsOptions{Topics: []string{"orders"}, Total: 5})
	})
	checkGolden(t, "topic_add_partitions.txt", out)
	out = e.mustRun(FormatYAML, func(p Printer) error {
		return TopicAddPartitions(ctx, e.conn, p, TopicAddPartitionsOptions{Topics: []string{"orders"}, Add: 1})
	})
	if out != "- topic: orders\n  status: added\n" {
		t.Errorf("add-partitions yaml: %q", out)
	}
	out = e.mustRun(FormatJSON, func(p Printer) error {
		return TopicDescribe(ctx, e.conn, p, TopicDescribeOptions{Topics: []string{"orders"}})
	})
	json.Unmarshal([]byte(out), &desc)
	if len(desc.Partitions) != 6 {
		t.Errorf("after adding partitions: %d partitions", len(desc.Partitions))
	}
	_, err = e.run(FormatText, func(p Printer) error {
		return TopicAddPartitions(ctx, e.conn, p, TopicAddPartitionsOptions{Topics: []string{"orders"}, Total: 2})
	})
	if ExitCode(err) != ExitFailure || !strings.Contains(err.Error(), "INVALID_PARTITIONS") {
		t.Errorf("shrinking partitions: %v", err)
	}

	out = e.mustRun(FormatText, func(p Printer) error { return TopicDelete(ctx, e.conn, p, []string{"payments"}, false) })
	checkGolden(t, "topic_delete.txt", out)
}

func TestTopicErrors(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	e.create("orders", 1, nil)
	for name, f := range map[string]func(Printer) error{
		"describe": func(p Printer) error {
			return TopicDescribe(ctx, e.conn, p, TopicDescribeOptions{Topics: []string{"ordres"}})
		},
		"delete": func(p Printer) error { return TopicDelete(ctx, e.conn, p, []string{"ordres"}, false) },
		"alter-config": func(p Printer) error {
			return TopicAlterConfig(ctx, e.conn, p, TopicAlterConfigOptions{Topics: []string{"ordres"}, Set: map[string]string{"retention.ms": "1"}})
		},
		"add-partitions": func(p Printer) error {
			return TopicAddPartitions(ctx, e.conn, p, TopicAddPartitionsOptions{Topics: []string{"ordres"}, Add: 1})
		},
	} {
		_, err := e.run(FormatText, f)
		if want := `topic "ordres" does not exist; did you mean "orders"?`; err == nil || err.Error() != want {
			t.Errorf("%s of a missing topic: got %v, want %q", name, err, want)
		}
	}
	if _, err := e.run(FormatText, func(p Printer) error { return TopicDelete(ctx, e.conn, p, []string{"gone"}, true) }); err != nil {
		t.Errorf("delete --if-exists of a missing topic: %v", err)
	}
	_, err := e.run(FormatText, func(p Printer) error {
		return TopicAlterConfig(ctx, e.conn, p, TopicAlterConfigOptions{Topics: []string{"orders"}, Set: map[string]string{"no.such.config": "1"}})
	})
	if ExitCode(err) != ExitFailure || !strings.Contains(err.Error(), "no.such.config") && !strings.Contains(err.Error(), "INVALID_CONFIG") {
		t.Errorf("unknown config: %v", err)
	}
	for name, f := range map[string]func(Printer) error{
		"alter nothing": func(p Printer) error {
			return TopicAlterConfig(ctx, e.conn, p, TopicAlterConfigOptions{Topics: []string{"orders"}})
		},
		"add neither": func(p Printer) error {
			return TopicAddPartitions(ctx, e.conn, p, TopicAddPartitionsOptions{Topics: []string{"orders"}})
		},
	} {
		if _, err := e.run(FormatText, f); ExitCode(err) != ExitUsage {
			t.Errorf("%s: got %v, want a usage error", name, err)
		}
	}
}

func TestProduceConsume(t *testing.T) {
	e := newEnv(t)
	e.create("events", 2, nil)
	offsets := e.produce("events", `%p %d %k=%v\n`, "0 1000 a=one\n0 2000 b=two\n1 3000 c=three\n0 4000 d=four\n")
	// Acknowledgements come in order within a partition.
	if got := strings.Count(offsets, "\n"); got != 4 || !strings.Contains(offsets, "events/0@0\n") || !strings.Contains(offsets, "events/0@2\n") || !strings.Contains(offsets, "events/1@0\n") {
		t.Errorf("--print-offsets: %q", offsets)
	}
	tmpl := `%p %o %d %k=%v\n`
	sorted := func(s string) string {
		lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
		// Partitions interleave; order within each is by offset.
		var p0, p1 []string
		for _, l := range lines {
			if strings.HasPrefix(l, "0 ") {
				p0 = append(p0, l)
			} else {
				p1 = append(p1, l)
			}
		}
		return strings.Join(append(p0, p1...), "\n") + "\n"
	}
	for _, tc := range []struct {
		offset string
		want   string
	}{
		{"start", "0 0 1000 a=one\n0 1 2000 b=two\n0 2 4000 d=four\n1 0 3000 c=three\n"},
		{"end-1", "0 2 4000 d=four\n1 0 3000 c=three\n"},
		{"start+2", "0 2 4000 d=four\n"},
		{"1", "0 1 2000 b=two\n0 2 4000 d=four\n"},
		{"@2000", "0 1 2000 b=two\n0 2 4000 d=four\n1 0 3000 c=three\n"},
		{"1970-01-01T00:00:03Z", "0 2 4000 d=four\n1 0 3000 c=three\n"},
		{"-2s", "0 2 4000 d=four\n1 0 3000 c=three\n"}, // now is 5000
		{"end", "\n"},
	} {
		so, err := ParseStartOffset(tc.offset)
		if err != nil {
			t.Fatal(err)
		}
		out := e.mustConsume(ConsumeOptions{Topics: []string{"events"}, Offset: so, ExitAtEnd: true, Format: tmpl, Now: func() time.Time { return time.UnixMilli(5000) }})
		if got := sorted(out); got != tc.want {
			t.Errorf("-o %s: got\n%s\nwant\n%s", tc.offset, got, tc.want)
		}
	}

	// -n stops early; partitions restrict.
	start, _ := ParseStartOffset("start")
	out := e.mustConsume(ConsumeOptions{Topics: []string{"events"}, Offset: start, Partitions: []int32{0}, Count: 2, Format: tmpl})
	if out != "0 0 1000 a=one\n0 1 2000 b=two\n" {
		t.Errorf("-p 0 -n 2: %q", out)
	}

	// JSON lines parse, with headers and non-UTF-8 values.
	e.create("bin", 1, nil)
	e.produce("bin", `%h|%v\n`, "h=1|text\n|\xff\xfe\n")
	out = e.mustConsume(ConsumeOptions{Topics: []string{"bin"}, Offset: start, ExitAtEnd: true, Format: "json"})
	var recs []JSONRecord
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r JSONRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("json line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	if len(recs) != 2 || recs[0].Value == nil || *recs[0].Value != "text" || len(recs[0].Headers) != 1 || recs[0].Headers[0] != (JSONHeader{"h", "1"}) || recs[0].Key != nil {
		t.Errorf("json record 0: %+v", recs[0])
	}
	if recs[1].Value != nil || recs[1].ValueBase64 != "//4=" || recs[1].Offset != 1 || recs[1].Topic != "bin" {
		t.Errorf("json record 1: %+v", recs[1])
	}
}

func TestConsumeFollowsUntilCount(t *testing.T) {
	e := newEnv(t)
	e.create("live", 1, nil)
	end, _ := ParseStartOffset("end")
	done := make(chan string)
	go func() {
		out, err := e.consume(ConsumeOptions{Topics: []string{"live"}, Offset: end, Count: 2})
		if err != nil {
			t.Error(err)
		}
		done <- out
	}()
	// The consumer starts at the end, so produce until it has seen two
	// records written after it started.
	deadline := time.After(20 * time.Second)
	for i := 0; ; i++ {
		select {
		case out := <-done:
			if lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); len(lines) != 2 || lines[1] == lines[0] {
				t.Errorf("followed: %q", out)
			}
			return
		case <-deadline:
			t.Fatal("consume did not see records written after it started")
		case <-time.After(100 * time.Millisecond):
			e.produce("live", "", "r"+strings.Repeat("x", i)+"\n")
		}
	}
}

func TestConsumeGroupCommits(t *testing.T) {
	e := newEnv(t)
	e.create("jobs", 2, nil)
	e.produce("jobs", `%p %v\n`, "0 a\n0 b\n1 c\n")
	start, _ := ParseStartOffset("start")
	out := e.mustConsume(ConsumeOptions{Topics: []string{"jobs"}, Group: "workers", Offset: start, ExitAtEnd: true})
	if len(strings.Fields(out)) != 3 {
		t.Fatalf("first run: %q", out)
	}
	// The group resumes where it committed: nothing left, until more comes.
	if out := e.mustConsume(ConsumeOptions{Topics: []string{"jobs"}, Group: "workers", Offset: start, ExitAtEnd: true}); out != "" {
		t.Errorf("second run read again: %q", out)
	}
	e.produce("jobs", `%p %v\n`, "1 d\n")
	if out := e.mustConsume(ConsumeOptions{Topics: []string{"jobs"}, Group: "workers", Offset: start, ExitAtEnd: true}); out != "d\n" {
		t.Errorf("third run: %q", out)
	}
	// -n commits only what was printed.
	e.produce("jobs", `%p %v\n`, "0 e\n0 f\n")
	if out := e.mustConsume(ConsumeOptions{Topics: []string{"jobs"}, Group: "workers", Offset: start, Count: 1}); out != "e\n" {
		t.Errorf("-n 1: %q", out)
	}
	if out := e.mustConsume(ConsumeOptions{Topics: []string{"jobs"}, Group: "workers", Offset: start, ExitAtEnd: true}); out != "f\n" {
		t.Errorf("after -n 1: %q", out)
	}
}

func TestProduceConsumeErrors(t *testing.T) {
	e := newEnv(t)
	e.create("orders", 2, nil)
	ctx := e.ctx()
	err := Produce(ctx, e.conn, strings.NewReader("x\n"), &bytes.Buffer{}, &bytes.Buffer{}, ProduceOptions{Topic: "ordres", Partition: -1})
	if err == nil || err.Error() != `topic "ordres" does not exist; did you mean "orders"?` {
		t.Errorf("produce to a missing topic: %v", err)
	}
	err = Produce(ctx, e.conn, strings.NewReader("x\n"), &bytes.Buffer{}, &bytes.Buffer{}, ProduceOptions{Topic: "orders", Partition: 7})
	if ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "has 2 partitions") {
		t.Errorf("produce to a missing partition: %v", err)
	}
	for _, o := range []ProduceOptions{
		{Topic: "orders", Partition: -1, Acks: "most"},
		{Topic: "orders", Partition: -1, Compression: "brotli"},
		{Topic: "orders", Partition: -1, Template: "%v", KeySeparator: ":"},
		{Topic: "orders", Partition: -1, Template: "%o %v\n"},
	} {
		if err := Produce(ctx, e.conn, strings.NewReader("x\n"), &bytes.Buffer{}, &bytes.Buffer{}, o); ExitCode(err) != ExitUsage {
			t.Errorf("%+v: got %v, want a usage error", o, err)
		}
	}
	err = Produce(ctx, e.conn, strings.NewReader("k:v\nnokey\n"), &bytes.Buffer{}, &bytes.Buffer{}, ProduceOptions{Topic: "orders", Partition: -1, KeySeparator: ":"})
	if ExitCode(err) != ExitFailure || !strings.Contains(err.Error(), "input record 2") {
		t.Errorf("bad input: %v", err)
	}

	start, _ := ParseStartOffset("start")
	if _, err := e.consume(ConsumeOptions{Topics: []string{"ordres"}, Offset: start}); err == nil || !strings.Contains(err.Error(), `did you mean "orders"`) {
		t.Errorf("consume a missing topic: %v", err)
	}
	if _, err := e.consume(ConsumeOptions{Topics: []string{"orders"}, Offset: start, Partitions: []int32{5}}); ExitCode(err) != ExitUsage {
		t.Errorf("consume a missing partition: %v", err)
	}
	if _, err := e.consume(ConsumeOptions{Topics: []string{"orders"}, Offset: start, Partitions: []int32{0}, Group: "g"}); ExitCode(err) != ExitUsage {
		t.Errorf("--partitions with --group: %v", err)
	}
	if _, err := e.consume(ConsumeOptions{Topics: []string{"orders"}, Offset: start, Format: "%q"}); ExitCode(err) != ExitUsage {
		t.Errorf("bad --format: %v", err)
	}
}

func TestClusterCommands(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	e.create("orders", 2, nil)
	out := e.mustRun(FormatText, func(p Printer) error { return ClusterDescribe(ctx, e.conn, p, ClusterInfoOptions{}) })
	// The number of APIs grows as the broker does.
	out = regexp.MustCompile(`(?m)(true|false)(\s+)\d+$`).ReplaceAllString(out, "${1}${2}N")
	checkGolden(t, "cluster_info.txt", normalize(out))

	var info ClusterInfo
	out = e.mustRun(FormatJSON, func(p Printer) error { return ClusterDescribe(ctx, e.conn, p, ClusterInfoOptions{}) })
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	if info.ClusterID == "" || info.Controller < 0 || len(info.Brokers) != 1 || info.Brokers[0].Address != e.b.Addr() || len(info.APIs) == 0 {
		t.Errorf("cluster info json: %+v", info)
	}
	names := map[string]bool{}
	for _, a := range info.APIs {
		names[a.Name] = true
	}
	for _, want := range []string{"Produce", "Fetch", "Metadata", "ApiVersions"} {
		if !names[want] {
			t.Errorf("cluster info json lacks API %s", want)
		}
	}

	out = e.mustRun(FormatText, func(p Printer) error { return ClusterHealth(ctx, e.conn, p) })
	checkGolden(t, "cluster_health.txt", out)
	var h Health
	out = e.mustRun(FormatJSON, func(p Printer) error { return ClusterHealth(ctx, e.conn, p) })
	if err := json.Unmarshal([]byte(out), &h); err != nil || !h.Healthy || len(h.Checks) != 5 {
		t.Errorf("health json: %+v %v", h, err)
	}

	// An unreachable cluster is unhealthy, with the one-line message.
	e.b.Stop()
	_, err := e.run(FormatText, func(p Printer) error { return ClusterHealth(ctx, e.conn, p) })
	if ExitCode(err) != ExitFailure || !strings.Contains(err.Error(), "cannot reach a broker at "+e.b.Addr()) {
		t.Errorf("health of a stopped broker: %v", err)
	}
}
