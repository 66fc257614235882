package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/bench/internal/procfs"
)

// Systems compared. Samsa and kfake speak Kafka; nats is JetStream.
const (
	sysSamsa = "samsa"
	sysKfake = "kfake"
	sysNATS  = "nats"
)

// binaries are the executables the harness starts.
type binaries struct {
	samsa, kfake, nats string
}

// buildBinaries builds `samsa`, kfakeserver and natsserver into dir.
func buildBinaries(dir string, systems []string) (binaries, error) {
	var b binaries
	targets := map[string]struct {
		out *string
		pkg string
	}{
		sysSamsa: {&b.samsa, "github.com/samsa-io/samsa/cmd/samsa"},
		sysKfake: {&b.kfake, "github.com/samsa-io/samsa/bench/kfakeserver"},
		sysNATS:  {&b.nats, "github.com/samsa-io/samsa/bench/natsserver"},
	}
	for _, s := range systems {
		t := targets[s]
		*t.out = filepath.Join(dir, s+"-server")
		cmd := exec.Command("go", "build", "-o", *t.out, t.pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return b, fmt.Errorf("go build %s: %w", t.pkg, err)
		}
	}
	return b, nil
}

// server is one system under test, running as a subprocess.
type server struct {
	system   string
	bin      string
	args     []string // arguments of every start (the same data directory)
	addr     string   // Kafka or NATS client address, host:port
	httpAddr string   // Samsa's HTTP API; empty for the others
	dataDir  string   // removed by stop; empty for kfake
	logPath  string

	cmd    *exec.Cmd
	log    *os.File
	exited chan error // receives cmd.Wait's result
}

// newServer prepares system with a fresh data directory under dataRoot;
// syncAlways asks NATS to fsync every write (Samsa fsyncs before acks=all
// answers by default; kfake never does).
func newServer(bins binaries, system, dataRoot string, syncAlways bool) (*server, error) {
	port, err := procfs.FreePort()
	if err != nil {
		return nil, err
	}
	s := &server{system: system, addr: fmt.Sprintf("127.0.0.1:%d", port)}
	if system != sysKfake {
		if s.dataDir, err = os.MkdirTemp(dataRoot, system+"-"); err != nil {
			return nil, err
		}
	}
	s.logPath = filepath.Join(dataRoot, fmt.Sprintf("%s-%d.log", system, port))
	switch system {
	case sysSamsa:
		httpPort, err := procfs.FreePort()
		if err != nil {
			return nil, err
		}
		s.httpAddr = fmt.Sprintf("127.0.0.1:%d", httpPort)
		s.bin = bins.samsa
		s.args = []string{"serve",
			"--data-dir", s.dataDir,
			"--kafka-addr", s.addr,
			"--http-addr", s.httpAddr,
			"--auto-create-topics=false",
			"--log-level", "warn",
		}
	case sysKfake:
		s.bin = bins.kfake
		s.args = []string{"-port", strconv.Itoa(port)}
	case sysNATS:
		s.bin = bins.nats
		s.args = []string{"-port", strconv.Itoa(port), "-store-dir", s.dataDir}
		if syncAlways {
			s.args = append(s.args, "-sync-always")
		}
	default:
		return nil, fmt.Errorf("unknown system %q", system)
	}
	return s, nil
}

// start runs the process and waits until it serves clients; it returns
// how long that took from the exec.
func (s *server) start() (time.Duration, error) {
	var err error
	if s.log, err = os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return 0, err
	}
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	began := time.Now()
	if err := s.cmd.Start(); err != nil {
		s.log.Close()
		return 0, err
	}
	s.exited = make(chan error, 1)
	go func() { s.exited <- s.cmd.Wait() }()
	if err := s.waitReady(5 * time.Minute); err != nil {
		s.kill()
		return 0, fmt.Errorf("%s did not become ready: %w (log: %s)", s.system, err, s.logPath)
	}
	return time.Since(began), nil
}

// waitReady polls until the server answers a client: a Kafka ApiVersions
// and, for Samsa, /readyz 200; a NATS connection for NATS.
func (s *server) waitReady(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := s.ping(ctx)
		if err == nil {
			return nil
		}
		select {
		case exitErr := <-s.exited:
			s.exited <- exitErr
			return fmt.Errorf("exited: %v", exitErr)
		case <-ctx.Done():
			return err
		case <-tick.C:
		}
	}
}

func (s *server) ping(ctx context.Context) error {
	if s.system == sysNATS {
		nc, err := nats.Connect("nats://"+s.addr, nats.Timeout(time.Second), nats.NoReconnect())
		if err != nil {
			return err
		}
		nc.Close()
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		return err
	}
	if s.httpAddr == "" {
		return nil
	}
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, "http://"+s.httpAddr+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz: %s", resp.Status)
	}
	return nil
}

// kill sends SIGKILL and waits for the exit; the data directory stays.
func (s *server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.log.Close()
	s.cmd = nil
}

// stop sends SIGTERM (SIGKILL after 30 s) and removes the data directory.
func (s *server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
			s.log.Close()
			s.cmd = nil
		case <-time.After(30 * time.Second):
			s.kill()
		}
	}
	if s.dataDir != "" {
		os.RemoveAll(s.dataDir)
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// cpu is the process's user plus system CPU time so far, all threads.
func (s *server) cpu() (time.Duration, error) { return procfs.CPU(s.pid()) }

// peakRSS is the process's VmHWM in bytes.
func (s *server) peakRSS() (int64, error) {
	m, err := procfs.Status(s.pid(), "VmHWM")
	if err != nil {
		return 0, err
	}
	peak, ok := m["VmHWM"]
	if !ok {
		return 0, errors.New("no VmHWM in /proc/<pid>/status")
	}
	return peak, nil
}

// openFiles counts the process's open file descriptors.
func (s *server) openFiles() (int, error) { return procfs.OpenFiles(s.pid()) }

// usage is a process's counters at one moment.
type usage struct {
	at  time.Time
	cpu time.Duration
}

func (s *server) usage() usage {
	c, err := s.cpu()
	if err != nil {
		c = -1
	}
	return usage{at: time.Now(), cpu: c}
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
