package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config is what the HTTP server needs to start.
type Config struct {
	// Addr is where it listens, e.g. ":9644".
	Addr   string
	Logger *slog.Logger
}

// Server serves the HTTP API. It is safe for concurrent use.
type Server struct {
	logger   *slog.Logger         // immutable
	registry *prometheus.Registry // immutable; owned by the server
	ln       net.Listener         // immutable
	srv      *http.Server         // immutable

	// ready is the readiness check; nil while not ready.
	ready atomic.Pointer[func() error]

	done    chan struct{} // closed when Serve returns
	serveMu sync.Mutex
	served  error // Serve's error; guarded by serveMu, set before done closes
}

// Start listens on cfg.Addr and serves in the background until Shutdown.
func Start(cfg Config) (*Server, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("http: listen on %s: %w", cfg.Addr, err)
	}
	s := &Server{
		logger:   logger,
		registry: prometheus.NewRegistry(),
		ln:       ln,
		done:     make(chan struct{}),
	}
	s.registry.MustRegister(
		// The MemStats metrics (go_memstats_*, go_gc_duration_seconds) and,
		// from runtime/metrics, the GC's (go_gc_*) and the scheduler's,
		// among them the stop-the-world pauses as histograms
		// (go_sched_pauses_total_gc_seconds) and goroutine scheduling
		// latency (go_sched_latencies_seconds).
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.MetricsGC, collectors.MetricsScheduler)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// No WriteTimeout: /debug/pprof/profile streams for 30 s by default.
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		} else {
			logger.Error("http server stopped", "err", err)
		}
		s.serveMu.Lock()
		s.served = err
		s.serveMu.Unlock()
		close(s.done)
	}()
	logger.Info("http api started", "addr", ln.Addr().String())
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Registerer is where other packages register their collectors. Metric
// names must be unique within it.
func (s *Server) Registerer() prometheus.Registerer { return s.registry }

// Gatherer reads the registry (tests).
func (s *Server) Gatherer() prometheus.Gatherer { return s.registry }

// SetReady installs the readiness check: /readyz answers 200 while check
// returns nil and 503 with its error otherwise. SetReady(nil) makes the
// server not ready, as it is before the first call and during shutdown.
func (s *Server) SetReady(check func() error) {
	if check == nil {
		s.ready.Store(nil)
		return
	}
	s.ready.Store(&check)
}

// Handler is the server's mux: /healthz, /readyz, /metrics, /debug/pprof/.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		plain(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(s.registry,
		promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
			Registry: s.registry,
			ErrorLog: slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		})))
	// pprof.Index also serves the named profiles: /debug/pprof/heap, …
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	check := s.ready.Load()
	if check == nil {
		plain(w, http.StatusServiceUnavailable, "not ready: broker not started or shutting down")
		return
	}
	if err := (*check)(); err != nil {
		plain(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
		return
	}
	plain(w, http.StatusOK, "ok")
}

func plain(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	io.WriteString(w, body+"\n")
}

// Shutdown stops accepting, waits for requests in flight until ctx is done,
// then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.SetReady(nil)
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	<-s.done
	s.serveMu.Lock()
	defer s.serveMu.Unlock()
	return errors.Join(err, s.served)
}
