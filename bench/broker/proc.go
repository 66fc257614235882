package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/bench/internal/procfs"
)

// brokerProc is one broker subprocess: `samsa serve` or kfakeserver.
type brokerProc struct {
	kind     string // "samsa" or "kfake"
	cmd      *exec.Cmd
	addr     string // Kafka API, host:port
	httpAddr string // Samsa's HTTP API; empty for kfake
	dataDir  string // removed by stop; empty for kfake
	log      *os.File
	exited   chan error // receives cmd.Wait's result
}

// startSamsa runs `samsa serve` on a fresh data directory under dataRoot.
func startSamsa(bin, dataRoot, logDir string) (*brokerProc, error) {
	kafkaPort, err := procfs.FreePort()
	if err != nil {
		return nil, err
	}
	httpPort, err := procfs.FreePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(dataRoot, "samsa-")
	if err != nil {
		return nil, err
	}
	p := &brokerProc{
		kind:     "samsa",
		addr:     fmt.Sprintf("127.0.0.1:%d", kafkaPort),
		httpAddr: fmt.Sprintf("127.0.0.1:%d", httpPort),
		dataDir:  dir,
	}
	p.cmd = exec.Command(bin, "serve",
		"--data-dir", dir,
		"--kafka-addr", p.addr,
		"--http-addr", p.httpAddr,
		"--auto-create-topics=false",
		"--log-level", "warn",
	)
	if err := p.start(logDir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return p, nil
}

// startKfake runs kfakeserver (one in-memory kfake broker).
func startKfake(bin, logDir string) (*brokerProc, error) {
	port, err := procfs.FreePort()
	if err != nil {
		return nil, err
	}
	p := &brokerProc{kind: "kfake", addr: fmt.Sprintf("127.0.0.1:%d", port)}
	p.cmd = exec.Command(bin, "-port", strconv.Itoa(port))
	return p, p.start(logDir)
}

func (p *brokerProc) start(logDir string) error {
	var err error
	p.log, err = os.CreateTemp(logDir, p.kind+"-*.log")
	if err != nil {
		return err
	}
	p.cmd.Stdout = p.log
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		p.log.Close()
		return err
	}
	p.exited = make(chan error, 1)
	go func() { p.exited <- p.cmd.Wait() }()
	if err := p.waitReady(30 * time.Second); err != nil {
		p.stop()
		return fmt.Errorf("%s did not become ready: %w (log: %s)", p.kind, err, p.log.Name())
	}
	return nil
}

// waitReady polls until the broker answers a Kafka request and, for Samsa,
// /readyz says 200.
func (p *brokerProc) waitReady(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cl.Ping(ctx)
		if err == nil && p.httpAddr != "" {
			err = httpReady(ctx, "http://"+p.httpAddr+"/readyz")
		}
		if err == nil {
			return nil
		}
		select {
		case exitErr := <-p.exited:
			p.exited <- exitErr
			return fmt.Errorf("exited: %v", exitErr)
		case <-ctx.Done():
			return err
		case <-tick.C:
		}
	}
}

func httpReady(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// cpu is the process's user plus system CPU time so far, all threads.
func (p *brokerProc) cpu() (time.Duration, error) { return procfs.CPU(p.cmd.Process.Pid) }

// memory returns the process's resident set size now (VmRSS) and its peak
// (VmHWM), in bytes.
func (p *brokerProc) memory() (rss, peak int64, err error) {
	m, err := p.status("VmRSS", "VmHWM")
	return m["VmRSS"], m["VmHWM"], err
}

// status reads the named kB fields of /proc/<pid>/status, in bytes.
func (p *brokerProc) status(names ...string) (map[string]int64, error) {
	return procfs.Status(p.cmd.Process.Pid, names...)
}

// stop sends SIGTERM, waits for the exit (SIGKILL after 15 s) and removes
// the data directory.
func (p *brokerProc) stop() error {
	defer p.log.Close()
	if p.dataDir != "" {
		defer os.RemoveAll(p.dataDir)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		return err
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not exit within 15 s of SIGTERM; killed", p.kind)
	}
}

// buildBinaries builds `samsa` and kfakeserver into dir.
func buildBinaries(dir string) (samsaBin, kfakeBin string, err error) {
	samsaBin = filepath.Join(dir, "samsa")
	kfakeBin = filepath.Join(dir, "kfakeserver")
	for _, b := range []struct{ out, pkg string }{
		{samsaBin, "github.com/samsa-io/samsa/cmd/samsa"},
		{kfakeBin, "github.com/samsa-io/samsa/bench/kfakeserver"},
	} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Stdout = os.Stderr
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return "", "", fmt.Errorf("go build %s: %w", b.pkg, err)
		}
	}
	return samsaBin, kfakeBin, nil
}

// flushCounters are Samsa's group commit counters (broker/commit_metrics.go).
type flushCounters struct {
	rounds, logs int64
	time         time.Duration
}

// flushStats reads the group commit counters from Samsa's /metrics; zero
// for kfake.
func (p *brokerProc) flushStats() (flushCounters, error) {
	var fc flushCounters
	if p.httpAddr == "" {
		return fc, nil
	}
	resp, err := http.Get("http://" + p.httpAddr + "/metrics")
	if err != nil {
		return fc, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "samsa_log_flush_rounds_total":
			fc.rounds = int64(v)
		case "samsa_log_flush_logs_total":
			fc.logs = int64(v)
		case "samsa_log_flush_seconds_total":
			fc.time = time.Duration(v * float64(time.Second))
		}
	}
	return fc, sc.Err()
}
