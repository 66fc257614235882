package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/samsa-io/samsa/cli"
	"github.com/samsa-io/samsa/loadgen"
)

func newBenchCommand(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput and latency: produce, consume, e2e",
		Long: `Measure a cluster's throughput and latency, like kafka-producer-perf-test
and the OpenMessaging Benchmark: records/s, MB/s (MB = 2^20 bytes) and
latency percentiles from an HDR histogram.

With --rate, latency counts from each record's intended send time, so a
stall delays every record due during it (no coordinated omission).

A progress line is printed to stderr every second on a terminal; the
summary goes to stdout, as JSON with --json.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.Usagef("missing subcommand: one of produce, consume, e2e")
		},
	}
	var conn cli.Conn
	conn.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(
		newBenchModeCommand(stdout, stderr, &conn, loadgen.ModeProduce,
			"Send records as fast as possible or at a rate; latency is send to ack",
			`  samsa bench produce --count 1000000 --record-size 1024
  samsa bench produce --duration 1m --rate 50000 --producers 4 --partitions 12 --acks 1
  samsa bench produce --count 100000 --compression zstd --linger 20ms --json`),
		newBenchModeCommand(stdout, stderr, &conn, loadgen.ModeConsume,
			"Read a topic from its start; throughput only",
			`  samsa bench consume                       # everything in samsa-bench
  samsa bench consume --count 500000 --consumers 3`),
		newBenchModeCommand(stdout, stderr, &conn, loadgen.ModeE2E,
			"Produce and consume together; latency is send to receipt",
			`  samsa bench e2e --rate 10000 --duration 30s
  samsa bench e2e --count 100000 --producers 2 --consumers 2 --partitions 4 --json`),
	)
	return cmd
}

func newBenchModeCommand(stdout, stderr io.Writer, conn *cli.Conn, mode loadgen.Mode, short, example string) *cobra.Command {
	cfg := loadgen.DefaultConfig()
	cfg.Mode = mode
	var asJSON bool
	cmd := &cobra.Command{
		Use:     string(mode),
		Short:   short,
		Example: example,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			// A duration alone is not cut short by the default count.
			if mode != loadgen.ModeConsume && f.Changed("duration") && !f.Changed("count") {
				cfg.Count = 0
			}
			cfg.Brokers = conn.Seeds()
			if err := cfg.Validate(); err != nil {
				return cli.UsageError{Err: err}
			}
			if cli.IsTerminal(stderr) {
				cfg.Progress = func(s loadgen.Snapshot) { fmt.Fprintln(stderr, s) }
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			// Fail at once, with a hint, when no broker answers.
			cl, err := conn.Client(ctx)
			if err != nil {
				return err
			}
			cl.Close()

			res, err := loadgen.Run(ctx, cfg)
			var ce loadgen.ConfigError
			if errors.As(err, &ce) {
				return cli.UsageError{Err: err}
			}
			if err != nil {
				return err
			}
			if asJSON {
				err = res.WriteJSON(stdout)
			} else {
				err = res.WriteText(stdout)
			}
			if err != nil {
				return err
			}
			return res.Err()
		},
	}
	addBenchFlags(cmd.Flags(), mode, &cfg)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// addBenchFlags defines the flags that matter to mode.
func addBenchFlags(f *pflag.FlagSet, mode loadgen.Mode, cfg *loadgen.Config) {
	f.StringVarP(&cfg.Topic, "topic", "t", cfg.Topic, "topic to use")
	switch mode {
	case loadgen.ModeConsume:
		f.Int64VarP(&cfg.Count, "count", "n", 0, "records to read (0: all the topic holds at start)")
		f.DurationVarP(&cfg.Duration, "duration", "d", 0, "stop reading after this long (0: no limit)")
		f.IntVar(&cfg.Consumers, "consumers", cfg.Consumers, "consumers, sharing the partitions")
		f.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "give up when no record arrives for this long")
		return
	}
	cfg.Count = 1_000_000
	f.Int64VarP(&cfg.Count, "count", "n", cfg.Count, "records to send (0: until --duration ends)")
	f.DurationVarP(&cfg.Duration, "duration", "d", 0, "stop sending after this long (alone, it lifts the default --count)")
	f.IntVarP(&cfg.RecordSize, "record-size", "s", cfg.RecordSize, "value size in bytes")
	f.Float64Var(&cfg.Rate, "rate", 0, "target records per second over all producers (0: as fast as possible)")
	f.Int32VarP(&cfg.Partitions, "partitions", "p", cfg.Partitions, "partitions of the topic when it is created")
	f.Int16Var(&cfg.ReplicationFactor, "replicas", cfg.ReplicationFactor, "replication factor of the topic when it is created (-1: broker default)")
	f.StringVar(&cfg.Acks, "acks", cfg.Acks, "acknowledgements: all, 1 or 0")
	f.StringVar(&cfg.Compression, "compression", cfg.Compression, "none, gzip, snappy, lz4 or zstd")
	f.DurationVar(&cfg.Linger, "linger", cfg.Linger, "how long a producer waits to fill a batch")
	f.IntVar(&cfg.Producers, "producers", cfg.Producers, "producer clients")
	if mode == loadgen.ModeE2E {
		f.IntVar(&cfg.Consumers, "consumers", cfg.Consumers, "consumer clients, sharing the partitions")
		f.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "after sending, give up on records not read for this long")
	}
}
