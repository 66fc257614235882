package main

import (
	"strings"
	"testing"

	"github.com/samsa-io/samsa/samsatest"
)

func TestCompletionScripts(t *testing.T) {
	for shell, marker := range map[string]string{
		"bash": "__start_samsa",
		"zsh":  "#compdef samsa",
		"fish": "complete -c samsa",
	} {
		code, out, errOut := runCLI("completion", shell)
		if code != 0 || !strings.Contains(out, marker) {
			t.Errorf("completion %s: exit %d, output lacks %q (%d bytes) %s", shell, code, marker, len(out), errOut)
		}
	}
}

// TestDynamicCompletion drives cobra's hidden __complete command, which the
// scripts call: subcommands, flags and topic names from the broker.
func TestDynamicCompletion(t *testing.T) {
	code, out, _ := runCLI("__complete", "topic", "")
	for _, want := range []string{"create", "describe", "add-partitions", "alter-config"} {
		if code != 0 || !strings.Contains(out, want+"\t") {
			t.Errorf("completing 'samsa topic': lacks %q:\n%s", want, out)
		}
	}
	b := samsatest.Start(t)
	if code, _, errOut := runCLI("topic", "create", "orders", "invoices", "-b", b.Addr()); code != 0 {
		t.Fatal(errOut)
	}
	_, out, _ = runCLI("__complete", "consume", "-b", b.Addr(), "")
	if !strings.Contains(out, "orders\n") || !strings.Contains(out, "invoices\n") {
		t.Errorf("completing topic names: %q", out)
	}
	_, out, _ = runCLI("__complete", "consume", "--exit-")
	if !strings.Contains(out, "--exit-at-end") {
		t.Errorf("completing flags: %q", out)
	}
}
