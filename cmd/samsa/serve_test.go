package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/samsatest"
)

// buildSamsa builds the samsa binary into a temporary directory.
func buildSamsa(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "samsa")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is a running samsa.
type process struct {
	cmd  *exec.Cmd
	out  *syncBuffer // stdout and stderr
	done chan struct{}
	err  error // set before done closes
}

func startSamsa(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	// The test controls every setting; SAMSA_* of the caller must not leak in.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SAMSA_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("samsa %s output:\n%s", strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// exitCode waits up to timeout for the process to exit.
func (p *process) exitCode(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("samsa still running after %s", timeout)
	}
	if p.err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) {
		t.Fatalf("wait: %v", p.err)
	}
	return ee.ExitCode()
}

func (p *process) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// waitReady polls /readyz until it answers 200, the process exits or a
// deadline passes.
func waitReady(t *testing.T, p *process, httpBase string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.done:
			t.Fatalf("samsa exited before it was ready: %v", p.err)
		default:
		}
		if code, _ := httpGet(httpBase + "/readyz"); code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("samsa not ready after 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func httpGet(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestServeLifecycle(t *testing.T) {
	bin := buildSamsa(t)
	dataDir := t.TempDir()
	kafkaAddr := samsatest.FreeAddr(t)
	httpAddr := samsatest.FreeAddr(t)
	httpBase := "http://" + httpAddr
	args := []string{"serve", "--data-dir", dataDir, "--kafka-addr", kafkaAddr,
		"--http-addr", httpAddr, "--log-format", "text"}

	p := startSamsa(t, bin, args...)
	waitReady(t, p, httpBase)

	if code, body := httpGet(httpBase + "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %q, want 200", code, body)
	}
	checkMetrics(t, httpBase)
	if code, body := httpGet(httpBase + "/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ = %d, want 200 with the profile list", code)
	}

	const topic = "serve-lifecycle"
	want := &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("v"),
		Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("hv")}}}
	produceOne(t, kafkaAddr, want)
	consumeOne(t, kafkaAddr, want)

	// A second broker on the same data directory is refused in one line.
	second := startSamsa(t, bin, "serve", "--data-dir", dataDir, "--kafka-addr", samsatest.FreeAddr(t),
		"--http-addr", samsatest.FreeAddr(t), "--log-format", "text")
	if code := second.exitCode(t, 30*time.Second); code != 1 {
		t.Errorf("second broker on %s exited %d, want 1", dataDir, code)
	}
	if out := second.out.String(); !strings.Contains(lastLine(out), "in use by another broker") {
		t.Errorf("second broker's last line does not explain the lock:\n%s", out)
	}

	p.signal(t, syscall.SIGTERM)
	if code := p.exitCode(t, 20*time.Second); code != 0 {
		t.Fatalf("exit after SIGTERM = %d, want 0", code)
	}
	if !strings.Contains(p.out.String(), "shutdown complete") {
		t.Errorf("no shutdown complete in the log")
	}

	// The next start finds a clean shutdown and the record.
	p = startSamsa(t, bin, args...)
	waitReady(t, p, httpBase)
	if out := p.out.String(); !strings.Contains(out, "clean_shutdown=true") {
		t.Errorf("restart does not report a clean shutdown:\n%s", out)
	}
	consumeOne(t, kafkaAddr, want)
	p.signal(t, syscall.SIGINT)
	if code := p.exitCode(t, 20*time.Second); code != 0 {
		t.Fatalf("exit after SIGINT = %d, want 0", code)
	}
}

func checkMetrics(t *testing.T, httpBase string) {
	t.Helper()
	resp, err := http.Get(httpBase + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics = %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes", "process_open_fds",
		"samsa_log_flush_rounds_total", "samsa_log_flush_logs_total", "samsa_log_flush_syncfs_rounds_total", "samsa_log_flush_seconds_total"} {
		if _, ok := families[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func produceOne(t *testing.T, addr string, r *kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := *r
	if err := cl.ProduceSync(ctx, &rec).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func consumeOne(t *testing.T, addr string, want *kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(want.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume: no record within 30s: %v", fs.Errors())
		}
		for _, fe := range fs.Errors() {
			t.Logf("fetch error (retrying): %v", fe.Err)
		}
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		got := recs[0]
		if got.Offset != 0 || !bytes.Equal(got.Key, want.Key) || !bytes.Equal(got.Value, want.Value) ||
			len(got.Headers) != 1 || got.Headers[0].Key != want.Headers[0].Key || !bytes.Equal(got.Headers[0].Value, want.Headers[0].Value) {
			t.Fatalf("consumed %+v, want key %q value %q header %v at offset 0", got, want.Key, want.Value, want.Headers)
		}
		return
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestExitCodes(t *testing.T) {
	bin := buildSamsa(t)
	cases := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"version"}, 0, "samsa "},
		{[]string{}, 2, "no command given"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"serve", "--no-such-flag"}, 2, "unknown flag: --no-such-flag"},
		{[]string{"serve", "extra-argument"}, 2, "unknown command"},
		{[]string{"serve", "--log-level", "loud"}, 2, `log-level: "loud"`},
		// A port that cannot be bound is a failure, not a usage error.
		{[]string{"serve", "--data-dir", t.TempDir(), "--http-addr", "256.0.0.1:1"}, 1, "listen on 256.0.0.1:1"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			p := startSamsa(t, bin, c.args...)
			if code := p.exitCode(t, 30*time.Second); code != c.code {
				t.Errorf("exit code %d, want %d\n%s", code, c.code, p.out.String())
			}
			if !strings.Contains(p.out.String(), c.out) {
				t.Errorf("output lacks %q:\n%s", c.out, p.out.String())
			}
		})
	}
}

func TestUnknownConfigKeyExits2(t *testing.T) {
	bin := buildSamsa(t)
	path := filepath.Join(t.TempDir(), "samsa.yaml")
	if err := os.WriteFile(path, []byte("data-dir: /tmp/x\nkafka-port: 9092\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startSamsa(t, bin, "serve", "--config", path)
	if code := p.exitCode(t, 30*time.Second); code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	if out := p.out.String(); !strings.Contains(out, `unknown key "kafka-port"`) {
		t.Errorf("output does not name the key:\n%s", out)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
