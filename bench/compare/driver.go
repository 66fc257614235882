package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/loadgen"
)

// driver runs load against one system. Kafka-protocol systems are driven
// by package loadgen; NATS by this package's own equivalent (natsload.go),
// which takes the same loadgen.Config and returns the same loadgen.Result.
type driver interface {
	// createTopic makes topic with the given partitions (replication 1)
	// and returns once clients can use it.
	createTopic(ctx context.Context, topic string, partitions int32) error
	// run runs one loadgen configuration; cfg.Brokers is filled in.
	run(ctx context.Context, cfg loadgen.Config) (*loadgen.Result, error)
}

func newDriver(s *server, natsMaxPending int) driver {
	if s.system == sysNATS {
		return natsDriver{addr: s.addr, maxPending: natsMaxPending}
	}
	return kafkaDriver{addr: s.addr}
}

// clientLogger shows the Kafka clients' warnings.
var clientLogger kgo.Logger = kgo.BasicLogger(os.Stderr, kgo.LogLevelWarn, nil)

// kafkaDriver runs loadgen with the same franz-go settings for every
// Kafka-protocol system: loadgen's defaults (linger 5 ms, no compression,
// franz-go's default 1 MB batches and 10,000 buffered records; idempotent
// with acks=all, not with acks=1).
type kafkaDriver struct{ addr string }

func (d kafkaDriver) createTopic(ctx context.Context, topic string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(d.addr), kgo.WithLogger(clientLogger),
		kgo.MetadataMinAge(10*time.Millisecond), kgo.RequestTimeoutOverhead(5*time.Minute))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32((5 * time.Minute).Milliseconds()))
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %q: %w", topic, err)
	}
	for {
		details, err := adm.ListTopics(ctx, topic)
		if err == nil {
			if td := details[topic]; td.Err == nil && len(td.Partitions) == int(partitions) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %q: partitions did not appear: %w", topic, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (d kafkaDriver) run(ctx context.Context, cfg loadgen.Config) (*loadgen.Result, error) {
	cfg.Brokers = []string{d.addr}
	cfg.ClientOpts = append(cfg.ClientOpts, kgo.WithLogger(clientLogger))
	return loadgen.Run(ctx, cfg)
}
