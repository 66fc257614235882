package cli

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// starts are the log start offsets of topic's partitions, as describe
// shows them.
func (e *env) starts(topic string) []int64 {
	e.t.Helper()
	var desc TopicDescription
	out := e.mustRun(FormatJSON, func(p Printer) error {
		return TopicDescribe(e.ctx(), e.conn, p, TopicDescribeOptions{Topics: []string{topic}})
	})
	if err := json.Unmarshal([]byte(out), &desc); err != nil {
		e.t.Fatalf("describe json: %v\n%s", err, out)
	}
	var starts []int64
	for _, p := range desc.Partitions {
		starts = append(starts, p.LogStartOffset)
	}
	return starts
}

// values are the values left in one partition, read from its start.
func (e *env) values(topic string, partition int32) string {
	e.t.Helper()
	start, _ := ParseStartOffset("start")
	out := e.mustConsume(ConsumeOptions{Topics: []string{topic}, Partitions: []int32{partition}, Offset: start, ExitAtEnd: true, Format: `%o=%v `})
	return strings.TrimSpace(out)
}

func (e *env) deleteRecords(format Format, o TopicDeleteRecordsOptions) (string, error) {
	return e.run(format, func(p Printer) error { return TopicDeleteRecords(e.ctx(), e.conn, p, o) })
}

func TestTopicDeleteRecords(t *testing.T) {
	e := newEnv(t)
	e.create("orders", 2, nil)
	e.produce("orders", `%p %v\n`, "0 a\n0 b\n0 c\n0 d\n0 e\n1 v\n1 w\n1 x\n")

	// A dry run shows the plan and deletes nothing.
	out, err := e.deleteRecords(FormatText, TopicDeleteRecordsOptions{Topics: []string{"orders"}, Before: "end-2", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "topic_delete_records_dry_run.txt", out)
	if got := e.starts("orders"); !slices.Equal(got, []int64{0, 0}) {
		t.Fatalf("after a dry run, log starts are %v", got)
	}

	// Records below the offset go: consuming from the start sees the rest,
	// describe shows the new start, the other partition is untouched.
	out, err = e.deleteRecords(FormatText, TopicDeleteRecordsOptions{Topics: []string{"orders"}, Partitions: []int32{0}, Before: "3"})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "topic_delete_records.txt", out)
	if got := e.values("orders", 0); got != "3=d 4=e" {
		t.Errorf("partition 0 after deleting before 3: %q", got)
	}
	if got := e.values("orders", 1); got != "0=v 1=w 2=x" {
		t.Errorf("partition 1, not named: %q", got)
	}
	if got := e.starts("orders"); !slices.Equal(got, []int64{3, 0}) {
		t.Errorf("log starts after deleting before 3: %v", got)
	}
	out = e.mustRun(FormatText, func(p Printer) error {
		return TopicDescribe(e.ctx(), e.conn, p, TopicDescribeOptions{Topics: []string{"orders"}})
	})
	if !strings.Contains(out, "records:    5\n") || !strings.Contains(normalize(out), "0          0       0      0         0    3          5        SIZE") {
		t.Errorf("describe after deleting before 3:\n%s", out)
	}

	// An offset below the start changes nothing and is no error.
	out, err = e.deleteRecords(FormatJSON, TopicDeleteRecordsOptions{Topics: []string{"orders"}, Partitions: []int32{0}, Before: "1"})
	var plan DeleteRecordsPlan
	if err != nil || json.Unmarshal([]byte(out), &plan) != nil || len(plan.Partitions) != 1 || plan.Partitions[0] != (DeleteRecordsPartition{Topic: "orders", Partition: 0, Before: 1, PreviousStart: 3, LogStart: 3}) {
		t.Errorf("delete before an offset already deleted: %v %+v\n%s", err, plan, out)
	}

	// Each partition succeeds or fails on its own: past the end of the log
	// is OFFSET_OUT_OF_RANGE, and the command fails.
	file := `{"version": 1, "partitions": [{"topic": "orders", "partition": 0, "offset": 4}, {"topic": "orders", "partition": 1, "offset": 10}]}`
	out, err = e.deleteRecords(FormatText, TopicDeleteRecordsOptions{OffsetJSON: strings.NewReader(file)})
	checkGolden(t, "topic_delete_records_error.txt", out)
	if ExitCode(err) != ExitFailure || err.Error() != "orders partition 1: OFFSET_OUT_OF_RANGE: offset 10 is past the end of the log (3)" {
		t.Errorf("delete past the end: %v", err)
	}
	if got := e.starts("orders"); !slices.Equal(got, []int64{4, 0}) {
		t.Errorf("log starts after a partial failure: %v", got)
	}
	// The dry run predicts the same.
	_, err = e.deleteRecords(FormatText, TopicDeleteRecordsOptions{Topics: []string{"orders"}, Partitions: []int32{1}, Before: "4", DryRun: true})
	if ExitCode(err) != ExitFailure || !strings.Contains(err.Error(), "OFFSET_OUT_OF_RANGE: offset 4 is past the end of the log (3)") {
		t.Errorf("dry run past the end: %v", err)
	}

	// end deletes everything; -1 is end, as in Kafka's file.
	out, err = e.deleteRecords(FormatYAML, TopicDeleteRecordsOptions{Topics: []string{"orders"}, Before: "-1"})
	plan = DeleteRecordsPlan{}
	if err != nil || yaml.Unmarshal([]byte(out), &plan) != nil || len(plan.Partitions) != 2 || plan.Partitions[0].LogStart != 5 || plan.Partitions[1].LogStart != 3 || plan.Partitions[1].Deleted != 3 {
		t.Errorf("delete before end: %v %+v\n%s", err, plan, out)
	}
	if got := e.values("orders", 0) + e.values("orders", 1); got != "" {
		t.Errorf("records left after deleting before the end: %q", got)
	}
	// New records are read from the new start.
	e.produce("orders", `%p %v\n`, "1 y\n")
	if got := e.values("orders", 1); got != "3=y" {
		t.Errorf("record produced after deleting all: %q", got)
	}
}

func TestTopicDeleteRecordsBeforeTime(t *testing.T) {
	e := newEnv(t)
	e.create("events", 1, nil)
	e.produce("events", `%d %v\n`, "1000 a\n2000 b\n3000 c\n4000 d\n")
	now := func() time.Time { return time.UnixMilli(5000) }
	for _, tc := range []struct {
		before string
		left   string
	}{
		{"@1500", "1=b 2=c 3=d"},
		{"1970-01-01T00:00:02Z", "1=b 2=c 3=d"},
		{"-2500ms", "2=c 3=d"}, // 2500
		{"start+1", "3=d"},
		{"@9000", ""}, // no record so late: all go
	} {
		_, err := e.deleteRecords(FormatText, TopicDeleteRecordsOptions{Topics: []string{"events"}, Before: tc.before, Now: now})
		if err != nil {
			t.Fatalf("--before %s: %v", tc.before, err)
		}
		if got := e.values("events", 0); got != tc.left {
			t.Errorf("--before %s: left %q, want %q", tc.before, got, tc.left)
		}
	}
}

func TestTopicDeleteRecordsErrors(t *testing.T) {
	e := newEnv(t)
	e.create("orders", 2, nil)
	e.create("compacted", 1, map[string]string{"cleanup.policy": "compact"})
	e.produce("orders", `%p %v\n`, "0 a\n0 b\n1 c\n")
	e.produce("compacted", `%k %v\n`, "k a\nk b\n")

	// Names are checked first: nothing is deleted.
	for name, tc := range map[string]struct {
		o    TopicDeleteRecordsOptions
		want string
	}{
		"missing topic": {TopicDeleteRecordsOptions{Topics: []string{"orders", "ordres"}, Before: "end"},
			`topic "ordres" does not exist; did you mean "orders"?`},
		"missing partition": {TopicDeleteRecordsOptions{Topics: []string{"orders"}, Partitions: []int32{0, 7}, Before: "end"},
			`topic "orders" has no partition 7 (it has 2 partitions)`},
		"missing partition in the file": {TopicDeleteRecordsOptions{OffsetJSON: strings.NewReader(`{"partitions": [{"topic": "orders", "partition": 0, "offset": 1}, {"topic": "orders", "partition": 2, "offset": 1}]}`)},
			`topic "orders" has no partition 2 (it has 2 partitions)`},
	} {
		_, err := e.deleteRecords(FormatText, tc.o)
		if ExitCode(err) != ExitFailure || err.Error() != tc.want {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}
	if got := e.starts("orders"); !slices.Equal(got, []int64{0, 0}) {
		t.Errorf("log starts after refused commands: %v", got)
	}

	// A compacted topic refuses, in a dry run and for real.
	for _, dry := range []bool{true, false} {
		_, err := e.deleteRecords(FormatText, TopicDeleteRecordsOptions{Topics: []string{"compacted"}, Before: "1", DryRun: dry})
		if ExitCode(err) != ExitFailure || !strings.Contains(err.Error(), "compacted partition 0: POLICY_VIOLATION: the topic is compacted") {
			t.Errorf("compacted topic (dry run %v): %v", dry, err)
		}
	}
	if got := e.values("compacted", 0); got != "0=a 1=b" {
		t.Errorf("compacted topic after a refused deletion: %q", got)
	}

	for name, tc := range map[string]struct {
		o    TopicDeleteRecordsOptions
		want string
	}{
		"no --before":  {TopicDeleteRecordsOptions{Topics: []string{"orders"}}, "give where to delete up to: --before WHERE"},
		"no topic":     {TopicDeleteRecordsOptions{Before: "end"}, "missing topic name"},
		"bad --before": {TopicDeleteRecordsOptions{Topics: []string{"orders"}, Before: "yesterday"}, `bad --before "yesterday"`},
		"negative":     {TopicDeleteRecordsOptions{Topics: []string{"orders"}, Before: "-2"}, `bad --before "-2": want a duration after -`},
		"bad partition": {TopicDeleteRecordsOptions{Topics: []string{"orders"}, Before: "end", Partitions: []int32{-1}},
			"bad --partitions: -1 is not a partition number"},
		"file and topic": {TopicDeleteRecordsOptions{Topics: []string{"orders"}, OffsetJSON: strings.NewReader(`{}`)},
			"give no topic, --partitions or --before with it"},
		"bad json": {TopicDeleteRecordsOptions{OffsetJSON: strings.NewReader(`{"partitions": [`), OffsetJSONName: "o.json"},
			"bad --offset-json-file o.json: unexpected EOF"},
		"unknown field": {TopicDeleteRecordsOptions{OffsetJSON: strings.NewReader(`{"partitions": [{"topic": "orders", "partition": 0, "offest": 1}]}`)},
			`unknown field "offest"`},
		"no offset": {TopicDeleteRecordsOptions{OffsetJSON: strings.NewReader(`{"partitions": [{"topic": "orders", "partition": 0}]}`)},
			"partitions[0]: want topic, partition and offset"},
		"offset -2": {TopicDeleteRecordsOptions{OffsetJSON: strings.NewReader(`{"partitions": [{"topic": "orders", "partition": 0, "offset": -2}]}`)},
			"partitions[0]: offset -2: want an offset, or -1 for the end"},
		"twice": {TopicDeleteRecordsOptions{OffsetJSON: strings.NewReader(`{"partitions": [{"topic": "orders", "partition": 0, "offset": 1}, {"topic": "orders", "partition": 0, "offset": 2}]}`)},
			"orders partition 0 is given twice"},
		"version 2": {TopicDeleteRecordsOptions{OffsetJSON: strings.NewReader(`{"version": 2, "partitions": [{"topic": "orders", "partition": 0, "offset": 1}]}`)},
			"version 2: only version 1 is known"},
		"empty file": {TopicDeleteRecordsOptions{OffsetJSON: strings.NewReader(`{"version": 1, "partitions": []}`)},
			"no partitions"},
	} {
		_, err := e.deleteRecords(FormatText, tc.o)
		if ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want a usage error with %q", name, err, tc.want)
		}
	}
}
