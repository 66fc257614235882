// Package samsatest starts real Samsa brokers in-process for tests, the way
// net/http/httptest starts servers: on 127.0.0.1 with a random port and a
// temporary data directory, stopped when the test ends.
package samsatest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samsa-io/samsa/broker"
)

// Broker is a running broker under test.
type Broker struct {
	t   testing.TB
	cfg broker.Config

	mu sync.Mutex
	b  *broker.Broker // nil while stopped
}

// Option changes the broker's config before it starts.
type Option func(*broker.Config)

// WithConfig applies f to the config.
func WithConfig(f func(*broker.Config)) Option { return Option(f) }

// Start starts a broker with a temporary data directory on 127.0.0.1:0. It
// is closed when the test ends.
func Start(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.Logger = testLogger(t)
	for _, o := range opts {
		o(&cfg)
	}
	sb := &Broker{t: t, cfg: cfg}
	sb.start()
	// Later starts reuse the port, so that clients reconnect to the same
	// address after a restart.
	sb.cfg.KafkaAddr = sb.b.Addr().String()
	t.Cleanup(func() { sb.Stop() })
	return sb
}

func (sb *Broker) start() {
	sb.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	for attempt := 0; ; attempt++ {
		var b *broker.Broker
		b, err = broker.Start(ctx, sb.cfg)
		if err == nil {
			sb.mu.Lock()
			sb.b = b
			sb.mu.Unlock()
			return
		}
		// The port of a stopped broker may take a moment to be free again.
		if !strings.Contains(err.Error(), "address already in use") || attempt > 100 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	sb.t.Fatalf("samsatest: start broker: %v", err)
}

// Addr is the broker's Kafka address, host:port.
func (sb *Broker) Addr() string { return sb.cfg.KafkaAddr }

// DataDir is the broker's data directory.
func (sb *Broker) DataDir() string { return sb.cfg.DataDir }

// Broker returns the running broker, nil while stopped.
func (sb *Broker) Broker() *broker.Broker {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.b
}

// Stop shuts the broker down cleanly. Stopping a stopped broker does
// nothing.
func (sb *Broker) Stop() {
	sb.mu.Lock()
	b := sb.b
	sb.b = nil
	sb.mu.Unlock()
	if b == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		sb.t.Errorf("samsatest: stop broker: %v", err)
	}
}

// Restart stops the broker cleanly and starts it again on the same data
// directory and address.
func (sb *Broker) Restart() {
	sb.t.Helper()
	sb.Stop()
	sb.start()
}

// testLogger writes warnings and errors to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(&testWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct {
	mu sync.Mutex
	t  testing.TB
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer func() { recover() }() // the test may have ended
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var _ io.Writer = (*testWriter)(nil)

// FreeAddr returns a loopback address with a port that was free a moment
// ago.
func FreeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
