package loadgen

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/samsatest"
)

func testConfig(b *samsatest.Broker, mode Mode, topic string) Config {
	cfg := DefaultConfig()
	cfg.Mode = mode
	cfg.Brokers = []string{b.Addr()}
	cfg.Topic = topic
	cfg.Linger = time.Millisecond
	return cfg
}

func runOK(t *testing.T, cfg Config) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run(%s): %v", cfg.Mode, err)
	}
	if err := res.Err(); err != nil {
		t.Fatalf("Run(%s) result: %v", cfg.Mode, err)
	}
	return res
}

func checkLatency(t *testing.T, l *Latency, count int64) {
	t.Helper()
	if l == nil {
		t.Fatal("no latency measured")
	}
	if l.Count != count {
		t.Errorf("latency count %d, want %d", l.Count, count)
	}
	if !(0 < l.P50 && l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max && l.Mean > 0) {
		t.Errorf("latency percentiles not positive and ordered: %+v", l)
	}
}

func TestProduceThenConsumeCountsAddUp(t *testing.T) {
	b := samsatest.Start(t)

	cfg := testConfig(b, ModeProduce, "bench-pc")
	cfg.Count = 2001
	cfg.Producers = 2
	cfg.Partitions = 3
	cfg.RecordSize = 64
	res := runOK(t, cfg)
	if res.Produced != 2001 || res.Records != 2001 || res.Bytes != 2001*64 || res.Failed != 0 {
		t.Errorf("produced %d records (%d counted, %d bytes, %d failed), want 2001 of 64 bytes", res.Produced, res.Records, res.Bytes, res.Failed)
	}
	if res.Partitions != 3 || !res.TopicCreated || res.Producers != 2 || res.Consumers != 0 {
		t.Errorf("result describes %d partitions (created %v), %d producers, %d consumers", res.Partitions, res.TopicCreated, res.Producers, res.Consumers)
	}
	if res.ElapsedSeconds <= 0 || res.RecordsPerSec <= 0 || res.MBPerSec <= 0 {
		t.Errorf("elapsed %v s, %v records/s, %v MB/s: want positive", res.ElapsedSeconds, res.RecordsPerSec, res.MBPerSec)
	}
	checkLatency(t, res.Latency, 2001)

	// A second produce run finds the topic.
	cfg.Count = 999
	cfg.Partitions = 7 // ignored: the topic exists
	res = runOK(t, cfg)
	if res.TopicCreated || res.Partitions != 3 || res.Produced != 999 {
		t.Errorf("second run: created %v, %d partitions, %d produced", res.TopicCreated, res.Partitions, res.Produced)
	}

	// Consuming reads everything there is by default, with more consumers
	// than partitions reduced to one each.
	ccfg := testConfig(b, ModeConsume, "bench-pc")
	ccfg.Consumers = 5
	res = runOK(t, ccfg)
	if res.Consumed != 3000 || res.Records != 3000 || res.Bytes != 3000*64 {
		t.Errorf("consumed %d records (%d bytes), want 3000 of 64 bytes", res.Consumed, res.Bytes)
	}
	if res.Consumers != 3 || res.Producers != 0 || res.Latency != nil {
		t.Errorf("consume result: %d consumers, %d producers, latency %+v", res.Consumers, res.Producers, res.Latency)
	}

	// A count stops reading exactly there, even within a fetch.
	ccfg.Count = 1234
	res = runOK(t, ccfg)
	if res.Consumed != 1234 || res.Bytes != 1234*64 {
		t.Errorf("consumed %d records (%d bytes) with --count 1234", res.Consumed, res.Bytes)
	}
}

func TestE2ECountsAndJSON(t *testing.T) {
	b := samsatest.Start(t)
	cfg := testConfig(b, ModeE2E, "bench-e2e")
	cfg.Count = 1500
	cfg.Rate = 3000 // records/s over both producers: stamps are intended times
	cfg.Producers = 2
	cfg.Consumers = 2
	cfg.Partitions = 4
	cfg.RecordSize = 32
	cfg.Compression = "zstd"
	cfg.Acks = "1"
	res := runOK(t, cfg)
	if res.Produced != 1500 || res.Consumed != 1500 || res.Missing != 0 || res.Failed != 0 {
		t.Errorf("produced %d, consumed %d, missing %d, failed %d; want 1500 each way", res.Produced, res.Consumed, res.Missing, res.Failed)
	}
	checkLatency(t, res.Latency, 1500)

	var buf bytes.Buffer
	if err := res.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("JSON does not parse: %v\n%s", err, buf.String())
	}
	for key, want := range map[string]any{
		"mode": "e2e", "topic": "bench-e2e", "partitions": 4.0, "record_size": 32.0,
		"producers": 2.0, "consumers": 2.0, "acks": "1", "compression": "zstd", "target_rate": 3000.0,
		"produced": 1500.0, "consumed": 1500.0, "records": 1500.0, "bytes": 1500 * 32.0, "missing": 0.0, "failed": 0.0,
		"interrupted": false,
	} {
		if got[key] != want {
			t.Errorf("JSON %q = %v, want %v", key, got[key], want)
		}
	}
	lat, ok := got["latency_ms"].(map[string]any)
	if !ok {
		t.Fatalf("JSON latency_ms = %v, want an object", got["latency_ms"])
	}
	for _, k := range []string{"p50", "p95", "p99", "p99_9", "max", "mean"} {
		if v, ok := lat[k].(float64); !ok || v <= 0 {
			t.Errorf("JSON latency_ms.%s = %v, want a positive number", k, lat[k])
		}
	}
	for _, k := range []string{"elapsed_seconds", "records_per_sec", "mb_per_sec"} {
		if v, ok := got[k].(float64); !ok || v <= 0 {
			t.Errorf("JSON %s = %v, want a positive number", k, got[k])
		}
	}

	var text bytes.Buffer
	if err := res.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bench-e2e (4 partitions, created)", "1500 acknowledged, 1500 read, 0 failed, 0 missing", "latency (send to receipt):", "p99.9"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, text.String())
		}
	}
}

// E2e records and their values are reused once acknowledged: a value
// reused while still in flight would show as a stamp carried twice, or as a
// stamp that is not its record's timestamp.
func TestE2ERecordsKeepTheirOwnStamps(t *testing.T) {
	b := samsatest.Start(t)
	cfg := testConfig(b, ModeE2E, "bench-stamps")
	cfg.Count = 20000
	cfg.Rate = 200000 // the k-th intended time is start+k/rate: all distinct
	cfg.Linger = 0
	cfg.Acks = "all"
	res := runOK(t, cfg)
	if res.Produced != cfg.Count || res.Consumed != cfg.Count {
		t.Fatalf("produced %d, consumed %d; want %d each", res.Produced, res.Consumed, cfg.Count)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(cfg.Topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seen := make(map[uint64]bool, cfg.Count)
	for int64(len(seen)) < cfg.Count && ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		fetches.EachRecord(func(r *kgo.Record) {
			stamp := binary.BigEndian.Uint64(r.Value)
			if seen[stamp] {
				t.Fatalf("offset %d: stamp %d carried twice", r.Offset, stamp)
			}
			seen[stamp] = true
			if got, want := time.Unix(0, int64(stamp)).UnixMilli(), r.Timestamp.UnixMilli(); got != want {
				t.Fatalf("offset %d: value stamped %d ms, record timestamp %d ms", r.Offset, got, want)
			}
		})
	}
	if int64(len(seen)) != cfg.Count {
		t.Fatalf("read %d distinct stamps, want %d", len(seen), cfg.Count)
	}
}

// At a target rate the k-th record is due at start+k/rate, so a duration
// bounds the count exactly, however slow the machine is.
func TestRateAndDurationBoundTheCount(t *testing.T) {
	b := samsatest.Start(t)
	cfg := testConfig(b, ModeProduce, "bench-rate")
	cfg.Rate = 400
	cfg.Producers = 2 // 200/s each
	cfg.Duration = 250 * time.Millisecond
	var mu sync.Mutex
	var snaps []Snapshot
	cfg.ProgressInterval = 20 * time.Millisecond
	cfg.Progress = func(s Snapshot) {
		mu.Lock()
		snaps = append(snaps, s)
		mu.Unlock()
	}
	res := runOK(t, cfg)
	if res.Produced != 100 {
		t.Errorf("produced %d records at 400/s for 250ms, want 100", res.Produced)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, s := range snaps {
		if s.Mode != ModeProduce || s.Produced < 0 || s.Produced > 100 || (i > 0 && s.Produced < snaps[i-1].Produced) {
			t.Errorf("snapshot %d out of line: %+v", i, s)
		}
	}
}

func TestConsumeMissingOrEmptyTopic(t *testing.T) {
	b := samsatest.Start(t)
	cfg := testConfig(b, ModeConsume, "no-such-topic")
	_, err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), `topic "no-such-topic" does not exist`) || !strings.Contains(err.Error(), "samsa bench produce") {
		t.Errorf("consuming a missing topic: %v", err)
	}

	// An empty topic has nothing to read.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, -1, nil, "empty"); err != nil {
		t.Fatal(err)
	}
	cfg.Topic = "empty"
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("consuming an empty topic: %v", err)
	}
}

func TestInterruptedRunReportsWhatWasDone(t *testing.T) {
	b := samsatest.Start(t)
	cfg := testConfig(b, ModeE2E, "bench-interrupt")
	cfg.Rate = 200
	cfg.Count = 1_000_000 // far more than will be sent
	ctx, cancel := context.WithCancel(context.Background())
	cfg.ProgressInterval = 10 * time.Millisecond
	var once sync.Once
	cfg.Progress = func(s Snapshot) {
		if s.Consumed > 0 {
			once.Do(cancel)
		}
	}
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Consumed == 0 || res.Produced >= 1_000_000 || res.Missing != 0 {
		t.Errorf("interrupted %v, consumed %d, produced %d, missing %d", res.Interrupted, res.Consumed, res.Produced, res.Missing)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no count or duration", func(c *Config) {}, "count or a duration"},
		{"e2e small records", func(c *Config) { c.Mode, c.Count, c.RecordSize = ModeE2E, 1, 4 }, "at least 8 bytes"},
		{"bad acks", func(c *Config) { c.Count, c.Acks = 1, "2" }, `unknown acks "2"`},
		{"bad compression", func(c *Config) { c.Count, c.Compression = 1, "brotli" }, `unknown compression "brotli"`},
		{"bad mode", func(c *Config) { c.Mode = "fetch" }, `unknown mode "fetch"`},
		{"zero partitions", func(c *Config) { c.Count, c.Partitions = 1, 0 }, "partitions must be at least 1"},
		{"negative rate", func(c *Config) { c.Count, c.Rate = 1, -5 }, "rate must not be negative"},
		{"no producers", func(c *Config) { c.Count, c.Producers = 1, 0 }, "at least one producer"},
	} {
		cfg := DefaultConfig()
		tc.change(&cfg)
		err := cfg.Validate()
		var ce ConfigError
		if err == nil || !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want a ConfigError mentioning %q", tc.name, err, tc.want)
		}
	}
	cfg := DefaultConfig()
	cfg.Mode = ModeConsume // reads what is there: no count needed
	if err := cfg.Validate(); err != nil {
		t.Errorf("default consume config: %v", err)
	}
}

func TestSnapshotLine(t *testing.T) {
	s := Snapshot{Mode: ModeE2E, Elapsed: 3 * time.Second, Produced: 3000, Consumed: 2990, RecordsPerSec: 1000, MBPerSec: 0.0954,
		Latency: &Latency{P50: 1.234, P99: 12.34, Max: 123.4}}
	want := "   3.0s  3000 acked  2990 read  1000 records/s  0.10 MB/s  p50 1.23  p99 12.3  max 123 ms"
	if got := s.String(); got != want {
		t.Errorf("progress line\n got %q\nwant %q", got, want)
	}
}
