package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/samsa-io/samsa/broker"
	"github.com/samsa-io/samsa/httpapi"
	"github.com/samsa-io/samsa/internal/memlimit"
)

// shutdownTimeout bounds a graceful shutdown: requests in flight get this
// long to finish before their connections are closed.
const shutdownTimeout = 10 * time.Second

// shutdownGrace is how long past shutdownTimeout the process waits for the
// broker to flush and close before it gives up and exits 1.
const shutdownGrace = 5 * time.Second

func newServeCommand(stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a broker",
		Long: `Run a single-node broker.

Every flag but --config is also an environment variable SAMSA_<NAME>
(--data-dir is SAMSA_DATA_DIR) and a key of the YAML file named by --config
(data-dir: /var/lib/samsa). A flag on the command line wins over the
environment, which wins over the file, which wins over the default.

SIGTERM or SIGINT shuts the broker down cleanly: it stops accepting, finishes
the requests in flight (for up to 10 s), flushes the logs and records a clean
shutdown. A second signal exits at once.

In a cgroup with a memory limit (a container), the Go runtime's soft memory
limit is set to 90% of it, so that garbage is collected harder near the
limit; the GOMEMLIMIT environment variable, when set, wins.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadServeConfig(cmd.Flags(), os.LookupEnv)
			if err != nil {
				return usageError{err}
			}
			return serve(cfg, cfg.newLogger(stderr))
		},
	}
	defineServeFlags(cmd.Flags())
	return cmd
}

// serve runs the HTTP API and the broker until SIGTERM or SIGINT.
func serve(cfg serveConfig, logger *slog.Logger) error {
	if lim := memlimit.Set(memlimit.DefaultRatio); lim.Bytes > 0 {
		logger.Info("Go memory limit set from the cgroup", "limit_bytes", lim.Bytes, "cgroup_limit_bytes", lim.Cgroup, "from", lim.Source)
	}
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)

	// The first signal cancels stopping; a second one exits at once.
	stopping, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		select {
		case sig := <-signals:
			logger.Info("shutting down", "signal", sig.String())
			stop()
		case <-stopping.Done():
			return
		}
		sig := <-signals
		logger.Error("second signal: exiting without a clean shutdown", "signal", sig.String())
		os.Exit(1)
	}()

	// HTTP first, so that /healthz answers and /readyz says 503 while the
	// broker starts.
	var api *httpapi.Server
	if cfg.HTTPAddr != "" {
		var err error
		api, err = httpapi.Start(httpapi.Config{Addr: cfg.HTTPAddr, Logger: logger.With("component", "http")})
		if err != nil {
			return err
		}
	}
	bc := cfg.brokerConfig(logger)
	if api != nil {
		bc.Metrics = api.Registerer()
	}
	b, err := broker.Start(stopping, bc)
	if err != nil {
		shutdownHTTP(api, logger)
		if stopping.Err() != nil {
			logger.Info("stopped while starting", "err", err)
			return nil
		}
		return fmt.Errorf("start broker: %w", err)
	}
	if api != nil {
		api.SetReady(b.Ready)
	}
	logger.Info("ready", "kafka", b.Addr().String(), "http", httpAddr(api))

	<-stopping.Done()
	if api != nil {
		api.SetReady(nil)
	}
	watchdog := time.AfterFunc(shutdownTimeout+shutdownGrace, func() {
		logger.Error("shutdown did not finish in time; exiting", "timeout", shutdownTimeout+shutdownGrace)
		os.Exit(1)
	})
	defer watchdog.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = b.Close(ctx)
	shutdownHTTP(api, logger)
	if err != nil {
		return fmt.Errorf("shut down broker: %w", err)
	}
	logger.Info("shutdown complete")
	return nil
}

// shutdownHTTP stops the HTTP API last, so that /healthz answers throughout
// the broker's shutdown.
func shutdownHTTP(api *httpapi.Server, logger *slog.Logger) {
	if api == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := api.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		logger.Warn("http shutdown", "err", err)
	}
}

func httpAddr(api *httpapi.Server) string {
	if api == nil {
		return ""
	}
	return api.Addr().String()
}
