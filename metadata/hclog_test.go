package metadata

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestHCLogAdapterLevels(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level:       slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return a },
	}))
	var l hclog.Logger = newHCLogAdapter(logger)
	l = l.Named("snapshot").With("node", 1)
	l.Info("started", "servers", hclog.Fmt("%d voters", 3))
	l.Warn("heartbeat timeout")
	l.Error("disk full")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("lines: %q", lines)
	}
	for i, want := range []string{
		`level=DEBUG msg="raft.snapshot: started" node=1 servers="3 voters"`,
		`level=DEBUG msg="raft.snapshot: heartbeat timeout" node=1`,
		`level=ERROR msg="raft.snapshot: disk full" node=1`,
	} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %q, want %q in it", i, lines[i], want)
		}
	}

	buf.Reset()
	quiet := newHCLogAdapter(slog.New(slog.NewTextHandler(&buf, nil))) // info and up
	quiet.Warn("not shown")
	if buf.Len() != 0 || quiet.IsDebug() || !quiet.IsError() {
		t.Fatalf("info-level slog: wrote %q, IsDebug %v", buf.String(), quiet.IsDebug())
	}
}
