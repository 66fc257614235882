package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// samsaBinary builds ./cmd/samsa once per test binary and returns its path.
// It is not race-built: the broker under test runs at full speed.
func samsaBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "samsa-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "samsa")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/samsa-io/samsa/cmd/samsa")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/samsa: %v\n%s", err, out)
			return
		}
		buildErr = statSources("..")
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// statSources stats every Go source and module file under root. go test
// caches a passing result by the test binary and the files in the module
// the tests open or stat; the code under test here is a binary the test
// builds, which the cache would not see. Stat'ed, any change to the
// sources makes these tests run again instead of reporting "(cached)".
func statSources(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if name := d.Name(); !d.IsDir() && (strings.HasSuffix(name, ".go") || name == "go.mod" || name == "go.sum") {
			_, err = os.Stat(path)
		}
		return err
	})
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// brokerProcess is `samsa serve` running as a child process on fixed
// loopback ports and a fixed data directory, so that it can be killed and
// started again where it was.
type brokerProcess struct {
	t         *testing.T
	bin       string
	dataDir   string
	kafkaAddr string
	httpAddr  string
	logPath   string // stderr of every run, appended

	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	starts int
}

func newBrokerProcess(t *testing.T) *brokerProcess {
	dir := t.TempDir()
	p := &brokerProcess{
		t:         t,
		bin:       samsaBinary(t),
		dataDir:   filepath.Join(dir, "data"),
		kafkaAddr: freeAddr(t),
		httpAddr:  freeAddr(t),
		logPath:   filepath.Join(dir, "broker.log"),
	}
	t.Cleanup(func() {
		if p.running() {
			p.kill()
		}
		if t.Failed() {
			p.dumpLog()
		}
	})
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (p *brokerProcess) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// start runs the broker and waits until /readyz answers 200. A port the
// previous run held may be briefly unavailable; start then tries again.
func (p *brokerProcess) start() {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := p.tryStart(deadline)
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "address already in use") || time.Now().After(deadline) {
			p.t.Fatalf("start broker (run %d): %v", p.starts, err)
		}
		time.Sleep(50 * time.Millisecond) // the port is not ours to watch
	}
}

func (p *brokerProcess) tryStart(deadline time.Time) error {
	p.starts++
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== run %d\n", p.starts)
	offset, _ := logf.Seek(0, 2)
	cmd := exec.Command(p.bin, "serve",
		"--data-dir", p.dataDir,
		"--kafka-addr", p.kafkaAddr,
		"--http-addr", p.httpAddr,
		"--log-format", "text",
		"--auto-create-topics=false")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(exited)
	}()
	p.cmd, p.exited = cmd, exited

	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			return fmt.Errorf("broker exited while starting (%v): %s", cmd.ProcessState, p.logSince(offset))
		case <-tick.C:
		}
		if resp, err := client.Get("http://" + p.httpAddr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			p.kill()
			return fmt.Errorf("not ready before the deadline: %s", p.logSince(offset))
		}
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *brokerProcess) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM and returns the exit error, nil for status 0.
func (p *brokerProcess) stop(timeout time.Duration) error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("no exit %v after SIGTERM", timeout)
	}
	if !p.cmd.ProcessState.Success() {
		return errors.New(p.cmd.ProcessState.String())
	}
	return nil
}

func (p *brokerProcess) logSince(offset int64) string {
	b, _ := os.ReadFile(p.logPath)
	if offset < int64(len(b)) {
		b = b[offset:]
	}
	return string(b)
}

// dumpLog writes the end of the broker's log to the test log.
func (p *brokerProcess) dumpLog() {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > 200 {
		lines = lines[len(lines)-200:]
	}
	p.t.Logf("broker log (last %d lines of %s):\n%s", len(lines), p.logPath, bytes.Join(lines, []byte("\n")))
}

// waitCtx is a context for a wait that must end well within the test.
func waitCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
