package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/broker"
)

// runningBroker is an in-process broker on its own data directory.
type runningBroker struct {
	b   *broker.Broker
	dir string
}

// startBroker starts a broker on a new directory under o.dataDir; mod
// adjusts its config.
func startBroker(o options, mod func(*broker.Config)) (*runningBroker, error) {
	if err := os.MkdirAll(o.dataDir, 0o755); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(o.dataDir, "groupsbench-")
	if err != nil {
		return nil, err
	}
	cfg := broker.DefaultConfig()
	cfg.DataDir = dir
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.AutoCreateTopics = false
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := broker.Start(ctx, cfg)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	rb := &runningBroker{b: b, dir: dir}
	if err := rb.waitCoordinator(ctx); err != nil {
		rb.stop()
		return nil, err
	}
	return rb, nil
}

// waitCoordinator waits until the group coordinator has loaded
// __consumer_offsets and answers.
func (rb *runningBroker) waitCoordinator(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(rb.addr()))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for {
		r, err := adm.FetchOffsets(ctx, "bench-warmup")
		if err == nil && r.Error() == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("the group coordinator never answered: %v %v", err, r.Error())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (rb *runningBroker) addr() string { return rb.b.Addr().String() }

func (rb *runningBroker) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rb.b.Close(ctx); err != nil {
		slog.Warn("closing the broker", "err", err)
	}
	os.RemoveAll(rb.dir)
}
