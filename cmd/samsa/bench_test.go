package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/samsa-io/samsa/samsatest"
)

// runSamsa runs the command line in-process and returns the exit code and
// what went to stdout and stderr.
func runSamsa(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestBenchProduceConsumeE2E(t *testing.T) {
	b := samsatest.Start(t)
	code, out, errOut := runSamsa("bench", "produce", "-b", b.Addr(), "-t", "cmd-bench", "-n", "500", "-s", "20", "-p", "2", "--acks", "1", "--json")
	if code != 0 {
		t.Fatalf("bench produce: exit %d\n%s", code, errOut)
	}
	if errOut != "" {
		t.Errorf("progress or noise on stderr when it is not a terminal:\n%s", errOut)
	}
	var res struct {
		Mode       string                 `json:"mode"`
		Partitions int                    `json:"partitions"`
		Produced   int64                  `json:"produced"`
		Consumed   int64                  `json:"consumed"`
		Bytes      int64                  `json:"bytes"`
		Latency    *struct{ P99 float64 } `json:"latency_ms"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	if res.Mode != "produce" || res.Partitions != 2 || res.Produced != 500 || res.Bytes != 500*20 || res.Latency == nil || res.Latency.P99 <= 0 {
		t.Errorf("bench produce result: %+v", res)
	}

	// A duration alone lifts the default count; at a rate it bounds the
	// count exactly (the k-th record is due at k/rate).
	code, out, errOut = runSamsa("bench", "produce", "-b", b.Addr(), "-t", "cmd-duration", "--duration", "200ms", "--rate", "100", "--json")
	if code != 0 {
		t.Fatalf("bench produce --duration: exit %d\n%s", code, errOut)
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Produced != 20 {
		t.Errorf("bench produce --duration 200ms --rate 100: produced %d (%v), want 20", res.Produced, err)
	}

	code, out, errOut = runSamsa("bench", "consume", "-b", b.Addr(), "-t", "cmd-bench")
	if code != 0 {
		t.Fatalf("bench consume: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{"cmd-bench (2 partitions)", "500 read", "records/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench consume summary lacks %q:\n%s", want, out)
		}
	}

	code, out, errOut = runSamsa("bench", "e2e", "-b", b.Addr(), "-t", "cmd-e2e", "-n", "300", "--rate", "1000", "--json")
	if code != 0 {
		t.Fatalf("bench e2e: exit %d\n%s", code, errOut)
	}
	res.Latency = nil
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	if res.Mode != "e2e" || res.Produced != 300 || res.Consumed != 300 || res.Latency == nil {
		t.Errorf("bench e2e result: %+v", res)
	}
}

func TestBenchBadInput(t *testing.T) {
	b := samsatest.Start(t)
	closed := samsatest.FreeAddr(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"bench"}, 2, "missing subcommand"},
		{[]string{"bench", "produce", "--frobnicate"}, 2, "unknown flag: --frobnicate"},
		{[]string{"bench", "produce", "--acks", "2"}, 2, `unknown acks "2"`},
		{[]string{"bench", "produce", "--compression", "brotli"}, 2, `unknown compression "brotli"`},
		{[]string{"bench", "e2e", "--record-size", "4"}, 2, "at least 8 bytes"},
		{[]string{"bench", "produce", "--count", "0"}, 2, "give a record count or a duration"},
		{[]string{"bench", "consume", "--rate", "5"}, 2, "unknown flag: --rate"},
		{[]string{"bench", "produce", "-b", closed}, 1, "cannot reach a broker at " + closed},
		{[]string{"bench", "consume", "-b", b.Addr(), "-t", "nope"}, 1, `topic "nope" does not exist`},
	} {
		code, _, errOut := runSamsa(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("samsa %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), code, errOut, tc.code, tc.want)
		}
		if tc.code == 1 && strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("samsa %s: error is more than one line:\n%s", strings.Join(tc.args, " "), errOut)
		}
	}
}
