package metadata

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// hclogAdapter forwards hashicorp/raft's logs to a *slog.Logger. Raft's
// chatter (elections, snapshots, even its warnings about a heartbeat
// timeout at every start) goes out at debug; only its errors keep their
// level.
type hclogAdapter struct {
	logger  *slog.Logger // with the implied args already attached
	name    string
	implied []any
}

var _ hclog.Logger = (*hclogAdapter)(nil)

func newHCLogAdapter(logger *slog.Logger) *hclogAdapter {
	return &hclogAdapter{logger: logger, name: "raft"}
}

func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	l := slog.LevelDebug
	if level >= hclog.Error {
		l = slog.LevelError
	}
	if !a.logger.Enabled(context.Background(), l) {
		return
	}
	a.logger.Log(context.Background(), l, a.name+": "+msg, formatArgs(args)...)
}

// formatArgs renders hclog.Fmt values, which slog would print as slices.
func formatArgs(args []any) []any {
	copied := false
	for i, arg := range args {
		f, ok := arg.(hclog.Format)
		if !ok || len(f) == 0 {
			continue
		}
		if !copied { // the caller's slice is not ours to change
			args, copied = append([]any(nil), args...), true
		}
		if format, ok := f[0].(string); ok {
			args[i] = fmt.Sprintf(format, f[1:]...)
		} else {
			args[i] = fmt.Sprint(f...)
		}
	}
	return args
}

func (a *hclogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *hclogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *hclogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *hclogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *hclogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *hclogAdapter) debugEnabled() bool {
	return a.logger.Enabled(context.Background(), slog.LevelDebug)
}

func (a *hclogAdapter) IsTrace() bool { return a.debugEnabled() }
func (a *hclogAdapter) IsDebug() bool { return a.debugEnabled() }
func (a *hclogAdapter) IsInfo() bool  { return a.debugEnabled() }
func (a *hclogAdapter) IsWarn() bool  { return a.debugEnabled() }
func (a *hclogAdapter) IsError() bool { return a.logger.Enabled(context.Background(), slog.LevelError) }

func (a *hclogAdapter) ImpliedArgs() []any { return a.implied }

func (a *hclogAdapter) With(args ...any) hclog.Logger {
	return &hclogAdapter{
		logger:  a.logger.With(args...),
		name:    a.name,
		implied: append(append([]any(nil), a.implied...), args...),
	}
}

func (a *hclogAdapter) Name() string { return a.name }

func (a *hclogAdapter) Named(name string) hclog.Logger {
	c := *a
	if c.name != "" {
		name = c.name + "." + name
	}
	c.name = name
	return &c
}

func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	c := *a
	c.name = name
	return &c
}

// SetLevel is ignored: the slog handler decides what is written.
func (a *hclogAdapter) SetLevel(hclog.Level) {}

func (a *hclogAdapter) GetLevel() hclog.Level {
	if a.debugEnabled() {
		return hclog.Trace
	}
	return hclog.Error
}

func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *hclogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		a.Debug(string(trimNewline(p)))
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func trimNewline(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}
