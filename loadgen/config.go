package loadgen

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Mode is what a run measures.
type Mode string

// The modes of a run.
const (
	ModeProduce Mode = "produce"
	ModeConsume Mode = "consume"
	ModeE2E     Mode = "e2e"
)

// stampSize is the bytes of an e2e record's value taken by the send time.
const stampSize = 8

// Defaults of a run.
const (
	DefaultTopic            = "samsa-bench"
	DefaultRecordSize       = 100
	DefaultPartitions       = 1
	DefaultLinger           = 5 * time.Millisecond // Kafka 4.0's linger.ms
	DefaultProgressInterval = time.Second
	DefaultIdleTimeout      = 10 * time.Second
)

// Config describes a run. Use [DefaultConfig] and change what differs.
type Config struct {
	Mode Mode

	// Brokers are the seed addresses, host:port.
	Brokers []string
	// ClientOpts are added to every client the run makes (TLS, SASL, a
	// dial timeout…).
	ClientOpts []kgo.Opt

	// Topic is the topic to write and read. Produce and e2e runs create it
	// when it is missing, with Partitions partitions and
	// ReplicationFactor replicas (-1: the broker's default).
	Topic             string
	Partitions        int32
	ReplicationFactor int16

	// RecordSize is each record's value size in bytes; records have no key.
	// e2e needs at least 8 bytes for the send time.
	RecordSize int

	// Count is how many records to send (produce, e2e) or read (consume),
	// over all workers; Duration bounds the run's sending or reading time.
	// The run stops at whichever comes first; zero means no bound. A
	// consume run with neither reads up to the end offsets it sees at
	// start. Produce and e2e runs need at least one.
	Count    int64
	Duration time.Duration

	// Rate is the target records per second over all producers; zero
	// sends as fast as the cluster takes them.
	Rate float64

	// Acks is "all", "1" or "0" (also "-1", "leader", "none").
	Acks string
	// Compression is "none", "gzip", "snappy", "lz4" or "zstd".
	Compression string
	// Linger is how long a producer waits to fill a batch.
	Linger time.Duration

	// Producers and Consumers are the number of clients. Consumers share
	// the partitions round-robin; more consumers than partitions are
	// reduced to one per partition.
	Producers int
	Consumers int

	// IdleTimeout ends reading when no record arrives for this long once
	// nothing more is expected soon: after the producers finished (e2e),
	// or while waiting for more than the topic holds (consume).
	IdleTimeout time.Duration

	// Progress, if set, is called about every ProgressInterval from a
	// goroutine of its own with the run's progress so far.
	Progress         func(Snapshot)
	ProgressInterval time.Duration
}

// DefaultConfig is a produce run of 100-byte records to "samsa-bench" on
// localhost:9092 with acks=all, no compression and one producer and
// consumer. Count and Duration are left for the caller to choose.
func DefaultConfig() Config {
	return Config{
		Mode:              ModeProduce,
		Brokers:           []string{"localhost:9092"},
		Topic:             DefaultTopic,
		Partitions:        DefaultPartitions,
		ReplicationFactor: -1,
		RecordSize:        DefaultRecordSize,
		Acks:              "all",
		Compression:       "none",
		Linger:            DefaultLinger,
		Producers:         1,
		Consumers:         1,
		IdleTimeout:       DefaultIdleTimeout,
		ProgressInterval:  DefaultProgressInterval,
	}
}

// Validate reports the first thing wrong with c. Its errors are
// [ConfigError]s: a caller can tell them from failures of the run.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error { return ConfigError{fmt.Errorf(format, args...)} }
	switch c.Mode {
	case ModeProduce, ModeConsume, ModeE2E:
	default:
		return bad("unknown mode %q: use produce, consume or e2e", c.Mode)
	}
	if len(c.Brokers) == 0 {
		return bad("no brokers given")
	}
	if c.Topic == "" {
		return bad("no topic given")
	}
	if c.Partitions < 1 {
		return bad("partitions must be at least 1, not %d", c.Partitions)
	}
	if c.RecordSize < 0 {
		return bad("record size must not be negative")
	}
	if c.Mode == ModeE2E && c.RecordSize < stampSize {
		return bad("e2e records need at least %d bytes for the send time, not %d", stampSize, c.RecordSize)
	}
	if c.Count < 0 || c.Duration < 0 {
		return bad("count and duration must not be negative")
	}
	if c.Mode != ModeConsume && c.Count == 0 && c.Duration == 0 {
		return bad("give a record count or a duration")
	}
	if c.Rate < 0 {
		return bad("rate must not be negative")
	}
	if _, err := acksOpt(c.Acks); err != nil {
		return ConfigError{err}
	}
	if _, err := compressionOpt(c.Compression); err != nil {
		return ConfigError{err}
	}
	if c.Linger < 0 || c.Linger > time.Minute {
		return bad("linger must be between 0 and 1m, not %v", c.Linger)
	}
	if c.Mode != ModeConsume && c.Producers < 1 {
		return bad("need at least one producer")
	}
	if c.Mode != ModeProduce && c.Consumers < 1 {
		return bad("need at least one consumer")
	}
	if c.IdleTimeout <= 0 {
		return bad("idle timeout must be positive")
	}
	return nil
}

// ConfigError is a Config that cannot run.
type ConfigError struct{ Err error }

func (e ConfigError) Error() string { return e.Err.Error() }
func (e ConfigError) Unwrap() error { return e.Err }

// acksOpt turns an acks name into the producer options it needs.
func acksOpt(acks string) ([]kgo.Opt, error) {
	switch strings.ToLower(acks) {
	case "all", "-1":
		return []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}, nil
	case "1", "leader":
		return []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}, nil
	case "0", "none":
		return []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}, nil
	}
	return nil, fmt.Errorf("unknown acks %q: use all, 1 or 0", acks)
}

// compressionOpt turns a codec name into a producer option.
func compressionOpt(name string) (kgo.Opt, error) {
	var c kgo.CompressionCodec
	switch strings.ToLower(name) {
	case "none", "":
		c = kgo.NoCompression()
	case "gzip":
		c = kgo.GzipCompression()
	case "snappy":
		c = kgo.SnappyCompression()
	case "lz4":
		c = kgo.Lz4Compression()
	case "zstd":
		c = kgo.ZstdCompression()
	default:
		return nil, errors.New("unknown compression " + fmt.Sprintf("%q", name) + ": use none, gzip, snappy, lz4 or zstd")
	}
	return kgo.ProducerBatchCompression(c), nil
}
