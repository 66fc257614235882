package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func startServer(t *testing.T) (*Server, string) {
	t.Helper()
	s, err := Start(Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s, "http://" + s.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestReadyzFollowsTheInstalledCheck(t *testing.T) {
	s, base := startServer(t)
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz = %d, want 200", code)
	}
	if code, _ := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz before SetReady = %d, want 503", code)
	}
	var checkErr error
	s.SetReady(func() error { return checkErr })
	if code, _ := get(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("readyz with passing check = %d, want 200", code)
	}
	checkErr = errors.New("no metadata leader")
	code, body := get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no metadata leader") {
		t.Fatalf("readyz with failing check = %d %q, want 503 naming the reason", code, body)
	}
	s.SetReady(nil)
	if code, _ := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz after SetReady(nil) = %d, want 503", code)
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz while not ready = %d, want 200", code)
	}
}

func TestMetricsServesOwnRegistry(t *testing.T) {
	s, base := startServer(t)
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "samsa_test_total", Help: "test"})
	s.Registerer().MustRegister(c)
	c.Add(3)

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics = %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "samsa_test_total",
		"go_gc_duration_seconds", "go_sched_pauses_total_gc_seconds", "go_gc_cycles_total_gc_cycles_total"} {
		if _, ok := families[name]; !ok {
			t.Errorf("metric %s missing", name)
		}
	}
	if got := families["samsa_test_total"].GetMetric()[0].GetCounter().GetValue(); got != 3 {
		t.Errorf("samsa_test_total = %v, want 3", got)
	}
	// Nothing leaks into the process-wide default registry.
	if err := prometheus.DefaultRegisterer.Register(prometheus.NewCounter(prometheus.CounterOpts{Name: "samsa_test_total", Help: "test"})); err != nil {
		t.Errorf("registered in the default registry too: %v", err)
	}
}

func TestPprofOnOwnMux(t *testing.T) {
	_, base := startServer(t)
	code, body := get(t, base+"/debug/pprof/")
	if code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("/debug/pprof/ = %d, body lacks the profile list", code)
	}
	if code, body := get(t, base+"/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("/debug/pprof/goroutine = %d", code)
	}
	if code, _ := get(t, base+"/nothing-here"); code != http.StatusNotFound {
		t.Fatalf("/nothing-here = %d, want 404", code)
	}
	if code, _ := get(t, base+"/debug/pprof/cmdline"); code != http.StatusOK {
		t.Fatalf("/debug/pprof/cmdline = %d", code)
	}
}

func TestStartReportsBusyAddress(t *testing.T) {
	s, _ := startServer(t)
	_, err := Start(Config{Addr: s.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), "listen on") {
		t.Fatalf("second Start on %s: err = %v, want a listen error", s.Addr(), err)
	}
}
