package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestCLIDocsUpToDate fails when docs/cli.md no longer matches the
// commands: run go generate ./cmd/samsa.
func TestCLIDocsUpToDate(t *testing.T) {
	var buf bytes.Buffer
	if err := genCLIDocs(&buf); err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), committed) {
		t.Fatal("docs/cli.md is stale: run go generate ./cmd/samsa")
	}
	for _, want := range []string{"## samsa topic describe", "## samsa consume", "## samsa produce", "## samsa cluster health", "## samsa completion", "(#samsa-topic-create)"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("docs/cli.md lacks %q", want)
		}
	}
	if strings.Contains(buf.String(), "## samsa docs") || strings.Contains(buf.String(), "Auto generated") {
		t.Error("docs/cli.md documents the hidden docs command or carries a date")
	}
}

func TestDocsCommandWritesTheReference(t *testing.T) {
	code, out, errOut := runCLI("docs")
	var buf bytes.Buffer
	genCLIDocs(&buf)
	if code != 0 || out != buf.String() {
		t.Errorf("samsa docs: exit %d, %d bytes, want %d: %s", code, len(out), buf.Len(), errOut)
	}
}
