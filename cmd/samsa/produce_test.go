package main

import (
	"strings"
	"testing"

	"github.com/samsa-io/samsa/samsatest"
)

func TestProduceThenConsumeCommandLine(t *testing.T) {
	b := samsatest.Start(t)
	t.Setenv("SAMSA_BROKERS", b.Addr())
	if code, _, errOut := runCLI("topic", "create", "lines", "-p", "1"); code != 0 {
		t.Fatal(errOut)
	}
	code, out, errOut := runWithInput("k1:one\nk2:two\nk3:three", "produce", "lines", "-K", ":", "-H", "src=test", "-z", "zstd", "--print-offsets")
	if code != 0 {
		t.Fatalf("produce: exit %d: %s", code, errOut)
	}
	if out != "lines/0@0\nlines/0@1\nlines/0@2\n" {
		t.Errorf("--print-offsets: %q", out)
	}
	if errOut != "" {
		t.Errorf("produce wrote to stderr when it is not a terminal: %q", errOut)
	}
	code, out, errOut = runWithInput("", "consume", "lines", "-e", "-f", `%o %k %v %h\n`)
	if code != 0 || out != "0 k1 one src=test\n1 k2 two src=test\n2 k3 three src=test\n" {
		t.Errorf("consume: exit %d: %q %s", code, out, errOut)
	}
	code, out, _ = runWithInput("", "consume", "lines", "-o", "end-1", "-n", "1")
	if code != 0 || out != "three\n" {
		t.Errorf("consume -o end-1 -n 1: exit %d: %q", code, out)
	}
	code, out, _ = runWithInput("", "consume", "lines", "-g", "readers", "-e", "--format", "json")
	if code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(out, `"key":"k2","value":"two"`) {
		t.Errorf("consume -g --format json: exit %d: %q", code, out)
	}
	// A custom input framing, with the partition in each record.
	code, out, errOut = runWithInput("0|a|x\n0|b|y\n", "produce", "lines", "--format", `%p|%k|%v\n`, "--print-offsets")
	if code != 0 || out != "lines/0@3\nlines/0@4\n" {
		t.Errorf("produce --format: exit %d: %q %s", code, out, errOut)
	}
}
