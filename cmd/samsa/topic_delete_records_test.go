package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samsa-io/samsa/cli"
	"github.com/samsa-io/samsa/samsatest"
)

func TestTopicDeleteRecordsCommandLine(t *testing.T) {
	b := samsatest.Start(t)
	t.Setenv("SAMSA_BROKERS", b.Addr())
	if code, out, errOut := runCLI("topic", "create", "orders", "-p", "2"); code != 0 {
		t.Fatalf("create: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runWithInput("0 a\n0 b\n0 c\n0 d\n1 x\n1 y\n", "produce", "orders", "--format", `%p %v\n`); code != 0 {
		t.Fatalf("produce: exit %d\n%s%s", code, out, errOut)
	}
	starts := func() []int64 {
		t.Helper()
		code, out, errOut := runCLI("topic", "describe", "orders", "--format", "json")
		var desc cli.TopicDescription
		if err := json.Unmarshal([]byte(out), &desc); code != 0 || err != nil {
			t.Fatalf("describe: exit %d, %v\n%s%s", code, err, out, errOut)
		}
		var s []int64
		for _, p := range desc.Partitions {
			s = append(s, p.LogStartOffset)
		}
		return s
	}

	code, out, errOut := runCLI("topic", "delete-records", "orders", "--before", "end-1", "--dry-run")
	if code != 0 || !strings.Contains(out, "Dry run: would delete 4 records in 2 partitions; nothing was changed.") {
		t.Errorf("--dry-run: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI("topic", "delete-records", "orders", "-p", "0", "--before", "2")
	if code != 0 || !strings.Contains(out, "orders  0          2       0               2          2") {
		t.Errorf("--before 2: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI("consume", "orders", "-p", "0", "-e")
	if code != 0 || out != "c\nd\n" {
		t.Errorf("consume after deleting before 2: exit %d: %q", code, out)
	}
	if s := starts(); len(s) != 2 || s[0] != 2 || s[1] != 0 {
		t.Errorf("log starts after deleting before 2: %v", s)
	}

	// Kafka's offset file, from a file and from standard input; -1 is the
	// end, also as a --before value.
	file := filepath.Join(t.TempDir(), "offsets.json")
	if err := os.WriteFile(file, []byte(`{"version": 1, "partitions": [{"topic": "orders", "partition": 1, "offset": 1}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI("topic", "delete-records", "--offset-json-file", file); code != 0 || !strings.Contains(out, "Deleted 1 record in 1 partition.") {
		t.Errorf("--offset-json-file: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runWithInput(`{"partitions": [{"topic": "orders", "partition": 0, "offset": -1}]}`, "topic", "delete-records", "--offset-json-file", "-"); code != 0 || !strings.Contains(out, "Deleted 2 records in 1 partition.") {
		t.Errorf("--offset-json-file -: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI("topic", "delete-records", "orders", "--before", "-1"); code != 0 || !strings.Contains(out, "Deleted 1 record in 2 partitions.") {
		t.Errorf("--before -1: exit %d\n%s%s", code, out, errOut)
	}
	if s := starts(); len(s) != 2 || s[0] != 4 || s[1] != 2 {
		t.Errorf("log starts after deleting everything: %v", s)
	}

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"topic", "delete-records", "orders"}, 2, "give where to delete up to: --before WHERE"},
		{[]string{"topic", "delete-records", "--before", "end"}, 2, "missing topic name"},
		{[]string{"topic", "delete-records", "orders", "--before", "soon"}, 2, `bad --before "soon"`},
		{[]string{"topic", "delete-records", "orders", "--offset-json-file", file}, 2, "give no topic, --partitions or --before with it"},
		{[]string{"topic", "delete-records", "--offset-json-file", filepath.Join(t.TempDir(), "none.json")}, 2, "--offset-json-file: open "},
		{[]string{"topic", "delete-records", "ordres", "--before", "end"}, 1, `topic "ordres" does not exist; did you mean "orders"?`},
		{[]string{"topic", "delete-records", "orders", "-p", "9", "--before", "end"}, 1, `topic "orders" has no partition 9 (it has 2 partitions)`},
		{[]string{"topic", "delete-records", "orders", "-p", "0", "--before", "100"}, 1, "orders partition 0: OFFSET_OUT_OF_RANGE: offset 100 is past the end of the log (4)"},
	} {
		code, out, errOut := runCLI(tc.args...)
		if first := strings.SplitN(errOut, "\n", 2)[0]; code != tc.code || !strings.Contains(first, tc.msg) {
			t.Errorf("samsa %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), code, errOut, tc.code, tc.msg)
		}
		if tc.code == 1 && strings.Contains(tc.msg, "OFFSET_OUT_OF_RANGE") && !strings.Contains(out, "ERROR") {
			t.Errorf("samsa %s: the table lacks the error column:\n%s", strings.Join(tc.args, " "), out)
		}
	}

	// The shell completes the subcommand and its topic names.
	if _, out, _ := runCLI("__complete", "topic", ""); !strings.Contains(out, "delete-records\t") {
		t.Errorf("completing 'samsa topic' lacks delete-records:\n%s", out)
	}
	if _, out, _ := runCLI("__complete", "topic", "delete-records", ""); !strings.Contains(out, "orders\n") {
		t.Errorf("completing delete-records' topics: %q", out)
	}
}
