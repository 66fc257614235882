package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/samsa-io/samsa/cli"
	"github.com/samsa-io/samsa/samsatest"
)

// runWithInput runs the command line in-process with stdin, and returns the
// exit code (as run computes it) and what went to stdout and stderr.
func runWithInput(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	root := newRootCommand(&out, &errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	_, err := root.ExecuteC()
	var ue usageError
	switch {
	case err == nil:
		code = 0
	case errors.As(err, &ue) || cli.IsUsage(err):
		code = 2
	default:
		code = 1
	}
	if err != nil {
		fmt.Fprintf(&errOut, "samsa: %v\n", err)
	}
	return code, out.String(), errOut.String()
}

// runCLI runs the command line through run, as main does.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestTopicCommandLine(t *testing.T) {
	b := samsatest.Start(t)
	t.Setenv("SAMSA_BROKERS", b.Addr())

	code, out, errOut := runCLI("topic", "create", "orders", "-p", "2", "-c", "retention.ms=60000")
	if code != 0 || !strings.Contains(out, "orders  created (2 partitions") {
		t.Fatalf("create: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI("topic", "list", "--format", "json")
	var list []cli.TopicSummary
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list) != 1 || list[0].Name != "orders" {
		t.Errorf("list json: exit %d, %v: %s", code, err, out)
	}
	code, out, _ = runCLI("topic", "alter-config", "orders", "--set", "retention.ms=120000")
	if code != 0 || !strings.Contains(out, "retention.ms") {
		t.Errorf("alter-config: exit %d: %s", code, out)
	}
	code, out, _ = runCLI("topic", "describe", "orders", "--format", "yaml")
	if code != 0 || !strings.Contains(out, "- name: retention.ms\n    value: \"120000\"\n    source: topic") {
		t.Errorf("describe yaml: exit %d:\n%s", code, out)
	}
	code, _, _ = runCLI("topic", "add-partitions", "orders", "--num", "1")
	if code != 0 {
		t.Errorf("add-partitions: exit %d", code)
	}
	code, out, _ = runCLI("topic", "delete", "orders")
	if code != 0 || !strings.Contains(out, "deleted") {
		t.Errorf("delete: exit %d: %s", code, out)
	}
}

// TestClientCommandErrors checks the message and exit code of bad input.
func TestClientCommandErrors(t *testing.T) {
	b := samsatest.Start(t)
	closed := samsatest.FreeAddr(t)
	if code, _, errOut := runCLI("topic", "create", "orders", "-b", b.Addr()); code != 0 {
		t.Fatalf("create: %s", errOut)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"topic"}, 2, "missing subcommand"},
		{[]string{"topic", "describe"}, 2, "missing topic name"},
		{[]string{"topic", "list", "--no-such-flag"}, 2, "unknown flag: --no-such-flag"},
		{[]string{"topic", "list", "--format", "xml"}, 2, `unknown --format "xml": use text, json or yaml`},
		{[]string{"topic", "create", "x", "-c", "retention.ms"}, 2, `--config "retention.ms": want name=value`},
		{[]string{"topic", "describe", "ordres"}, 1, `topic "ordres" does not exist; did you mean "orders"?`},
		{[]string{"topic", "delete", "nothing-like-it"}, 1, `topic "nothing-like-it" does not exist (see 'samsa topic list')`},
		{[]string{"topic", "list", "-b", closed}, 1, "cannot reach a broker at " + closed + " (connection refused); start one with 'samsa serve'"},
		{[]string{"consume", "orders", "-o", "yesterday"}, 2, `bad --offset "yesterday"`},
		{[]string{"consume", "orders", "-o", "2024-02-30T00:00:00Z"}, 2, "not an RFC 3339 time"},
		{[]string{"consume", "orders", "-o", "-5"}, 2, "want a duration after -"},
		{[]string{"consume", "ordres", "-e"}, 1, `did you mean "orders"?`},
		{[]string{"consume", "orders", "-b", closed}, 1, "cannot reach a broker at " + closed},
		{[]string{"consume"}, 2, "missing topic name"},
		{[]string{"produce"}, 2, "missing one topic"},
		{[]string{"produce", "a", "b"}, 2, "too many arguments"},
		{[]string{"produce", "orders", "--acks", "2"}, 2, `--acks "2": use all, 1 or 0`},
		{[]string{"produce", "ordres"}, 1, `did you mean "orders"?`},
		{[]string{"cluster", "info", "-b", closed}, 1, "cannot reach a broker at " + closed},
		{[]string{"cluster", "health", "-b", closed}, 1, "cannot reach a broker at " + closed},
		{[]string{"cluster", "bogus"}, 2, `unknown command "bogus"`},
		{[]string{"completion", "tcsh"}, 2, `unknown shell "tcsh"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := tc.args
			if !strings.Contains(strings.Join(args, " "), "-b ") {
				args = append(args, "-b", b.Addr())
			}
			if args[0] == "completion" || (len(args) > 1 && args[1] == "bogus") {
				args = tc.args
			}
			code, _, errOut := runWithInput("x\n", args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s", code, tc.code, errOut)
			}
			first := strings.SplitN(errOut, "\n", 2)[0]
			if !strings.Contains(first, tc.msg) {
				t.Errorf("first line of stderr %q lacks %q", first, tc.msg)
			}
		})
	}
}
