package broker_test

// IBM/sarama against the broker: its admin client, sync producer, partition
// consumer and offset lookups, at the protocol versions of three Kafka
// releases, then the same reads after a restart. No consumer groups: the
// broker does not coordinate them yet.

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/samsa-io/samsa/broker"
	"github.com/samsa-io/samsa/samsatest"
)

// sentRecord is a record a client produced and where the broker put it.
type sentRecord struct {
	partition int32
	offset    int64
	key       string
	value     string
	headers   [][2]string
	timestamp time.Time // millisecond precision
}

// sentRecords builds n records for one codec, with timestamps from ts on,
// one millisecond apart, so that each partition's timestamps increase with
// its offsets.
func sentRecords(codec string, n int, ts time.Time) []sentRecord {
	out := make([]sentRecord, n)
	for i := range out {
		out[i] = sentRecord{
			key:       fmt.Sprintf("%s-key-%d", codec, i),
			value:     fmt.Sprintf("%s-value-%d-%0100d", codec, i, i), // long enough to compress
			headers:   [][2]string{{"codec", codec}, {"index", strconv.Itoa(i)}},
			timestamp: ts.Add(time.Duration(i) * time.Millisecond),
		}
	}
	return out
}

// byPartition groups records by partition, in offset order.
func byPartition(recs []sentRecord) map[int32][]sentRecord {
	out := map[int32][]sentRecord{}
	for _, r := range recs {
		out[r.partition] = append(out[r.partition], r)
	}
	for _, rs := range out {
		slices.SortFunc(rs, func(a, b sentRecord) int { return cmp.Compare(a.offset, b.offset) })
	}
	return out
}

// checkPartitionRecords checks that a partition holds exactly want, one
// record per offset from want[0].offset on.
func checkPartitionRecords(t *testing.T, p int32, got, want []sentRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("partition %d: %d records, want %d", p, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		g.partition = p
		if g.offset != w.offset || g.key != w.key || g.value != w.value || !g.timestamp.Equal(w.timestamp) || !slices.Equal(g.headers, w.headers) {
			t.Fatalf("partition %d, record %d:\n got %+v\nwant %+v", p, i, g, w)
		}
	}
}

// refusalWatch records the requests the broker would not serve: those it
// closed a connection over (an API or version outside its table, a body
// that does not decode) and handler panics. Warnings and errors go to the
// test log as samsatest's own logger sends them.
type refusalWatch struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

// watchRefusals starts watching; the test fails at its end if the broker
// refused anything.
func watchRefusals(t *testing.T) samsatest.Option {
	w := &refusalWatch{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, l := range w.lines {
			t.Errorf("broker refused a request: %s", l)
		}
	})
	return samsatest.WithConfig(func(c *broker.Config) {
		c.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
}

// Write takes one log line (slog's text handler writes a record at once).
func (w *refusalWatch) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	w.mu.Lock()
	defer w.mu.Unlock()
	if strings.Contains(line, "request cannot be served") || strings.Contains(line, "handler panicked") {
		w.lines = append(w.lines, line)
	}
	if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
		func() {
			defer func() { recover() }() // the test may have ended
			w.t.Log(line)
		}()
	}
	return len(p), nil
}

// saramaCodecs is every codec sarama writes.
var saramaCodecs = []struct {
	name  string
	codec sarama.CompressionCodec
}{
	{"none", sarama.CompressionNone},
	{"gzip", sarama.CompressionGZIP},
	{"snappy", sarama.CompressionSnappy},
	{"lz4", sarama.CompressionLZ4},
	{"zstd", sarama.CompressionZSTD},
}

// TestSaramaClient runs sarama at the versions of Kafka 2.1 (the first with
// zstd), 3.6, and the newest sarama knows; sarama caps each request at the
// broker's advertised maximum.
func TestSaramaClient(t *testing.T) {
	for _, v := range []sarama.KafkaVersion{sarama.V2_1_0_0, sarama.V3_6_0_0, sarama.MaxVersion} {
		t.Run(v.String(), func(t *testing.T) { testSaramaClient(t, v) })
	}
}

func saramaConfig(v sarama.KafkaVersion) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = v
	cfg.ClientID = "samsa-sarama-test"
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Producer.Retry.Backoff = 50 * time.Millisecond
	cfg.Net.MaxOpenRequests = 1 // required by the idempotent producer
	cfg.Producer.Partitioner = sarama.NewHashPartitioner
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Fetch.Default = 64 << 10             // several fetches per partition
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond // closing waits for the fetch in flight
	cfg.Admin.Timeout = 30 * time.Second
	return cfg
}

// saramaClients opens a client and an admin client, closed when the test
// ends (closing twice is harmless for the test).
func saramaClients(t *testing.T, sb *samsatest.Broker, v sarama.KafkaVersion) (sarama.Client, sarama.ClusterAdmin) {
	t.Helper()
	cl, err := sarama.NewClient([]string{sb.Addr()}, saramaConfig(v))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	adm, err := sarama.NewClusterAdminFromClient(cl)
	if err != nil {
		t.Fatal(err)
	}
	return cl, adm
}

func testSaramaClient(t *testing.T, v sarama.KafkaVersion) {
	sb := samsatest.Start(t, watchRefusals(t))
	cl, adm := saramaClients(t, sb, v)
	const topic, doomed = "sarama-data", "sarama-doomed"

	// Create topics, with configs; validate-only creates nothing; errors
	// arrive as sarama's KErrors.
	if err := adm.CreateTopic(topic, &sarama.TopicDetail{
		NumPartitions: 3, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.ms": str("86400000"), "max.message.bytes": str("2097152")},
	}, false); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	if err := adm.CreateTopic(doomed, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create %s: %v", doomed, err)
	}
	if err := adm.CreateTopic("sarama-dry-run", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, true); err != nil {
		t.Fatalf("validate-only create: %v", err)
	}
	for _, tc := range []struct {
		topic  string
		detail sarama.TopicDetail
		want   sarama.KError
	}{
		{topic, sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, sarama.ErrTopicAlreadyExists},
		{"sarama-replicated", sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 3}, sarama.ErrInvalidReplicationFactor},
		{"sarama-bad-config", sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1, ConfigEntries: map[string]*string{"retention.ms": str("soon")}}, sarama.ErrInvalidConfig},
	} {
		if err := adm.CreateTopic(tc.topic, &tc.detail, false); !errors.Is(err, tc.want) {
			t.Errorf("create %s %+v: %v, want %v", tc.topic, tc.detail, err, tc.want)
		}
	}
	topics, err := adm.ListTopics()
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := topics[topic]; !ok || d.NumPartitions != 3 || d.ReplicationFactor != 1 || *d.ConfigEntries["retention.ms"] != "86400000" {
		t.Fatalf("listed %s: %+v", topic, d)
	}
	for _, name := range []string{"sarama-dry-run", "sarama-replicated", "sarama-bad-config"} {
		if _, ok := topics[name]; ok {
			t.Errorf("%s was created", name)
		}
	}

	// Produce keyed records with headers and timestamps, one batch per
	// codec, through the idempotent producer.
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var sent []sentRecord
	for i, c := range saramaCodecs {
		cfg := saramaConfig(v)
		cfg.Producer.Compression = c.codec
		pr, err := sarama.NewSyncProducer([]string{sb.Addr()}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		recs := sentRecords(c.name, 30, base.Add(time.Duration(i)*time.Second))
		msgs := make([]*sarama.ProducerMessage, len(recs))
		for j, r := range recs {
			m := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(r.key), Value: sarama.StringEncoder(r.value), Timestamp: r.timestamp}
			for _, h := range r.headers {
				m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h[0]), Value: []byte(h[1])})
			}
			msgs[j] = m
		}
		if err := pr.SendMessages(msgs); err != nil {
			t.Fatalf("produce %s: %v", c.name, err)
		}
		for j, m := range msgs {
			recs[j].partition, recs[j].offset = m.Partition, m.Offset
		}
		sent = append(sent, recs...)
		if err := pr.Close(); err != nil {
			t.Fatal(err)
		}
	}
	want := byPartition(sent)
	if len(want) != 3 {
		t.Fatalf("records went to %d partitions, want 3", len(want))
	}
	ends := map[int32]int64{}
	for p, rs := range want {
		for i, r := range rs {
			if r.offset != int64(i) {
				t.Fatalf("partition %d: record %d at offset %d", p, i, r.offset)
			}
		}
		ends[p] = int64(len(rs))
	}

	consumer, err := sarama.NewConsumerFromClient(cl)
	if err != nil {
		t.Fatal(err)
	}
	for p, rs := range want {
		checkPartitionRecords(t, p, saramaConsume(t, consumer, topic, p, 0, len(rs)), rs)
		// From an offset in the middle of a compressed batch.
		checkPartitionRecords(t, p, saramaConsume(t, consumer, topic, p, 5, len(rs)-5), rs[5:])
	}

	// Offsets by time: earliest, latest, and the first record at or after a
	// timestamp; past the last timestamp there is none (-1).
	checkSaramaOffsets(t, cl, adm, topic, want, map[int32]int64{0: 0, 1: 0, 2: 0}, ends)

	// Configs: described with values and sources, replaced with
	// AlterConfigs (unset ones return to their defaults), changed with
	// IncrementalAlterConfigs.
	rc := sarama.ConfigResource{Type: sarama.TopicResource, Name: topic}
	wantSaramaConfig(t, adm, rc, "retention.ms", "86400000", sarama.SourceTopic)
	wantSaramaConfig(t, adm, rc, "max.message.bytes", "2097152", sarama.SourceTopic)
	wantSaramaConfig(t, adm, rc, "segment.bytes", "1073741824", sarama.SourceDefault)
	if err := adm.AlterConfig(sarama.TopicResource, topic, map[string]*string{"retention.ms": str("172800000")}, false); err != nil {
		t.Fatal(err)
	}
	wantSaramaConfig(t, adm, rc, "retention.ms", "172800000", sarama.SourceTopic)
	wantSaramaConfig(t, adm, rc, "max.message.bytes", "1048588", sarama.SourceDefault)
	// IncrementalAlterConfigs came with Kafka 2.3; sarama does not send it
	// for older versions.
	incremental := v.IsAtLeast(sarama.V2_3_0_0)
	if incremental {
		if err := adm.IncrementalAlterConfig(sarama.TopicResource, topic, map[string]sarama.IncrementalAlterConfigsEntry{
			"retention.bytes": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: str("1073741824")},
			"retention.ms":    {Operation: sarama.IncrementalAlterConfigsOperationDelete},
		}, false); err != nil {
			t.Fatal(err)
		}
		wantSaramaConfig(t, adm, rc, "retention.bytes", "1073741824", sarama.SourceTopic)
		wantSaramaConfig(t, adm, rc, "retention.ms", "604800000", sarama.SourceDefault)
	}
	if err := adm.AlterConfig(sarama.TopicResource, topic, map[string]*string{"retention.ms": str("soon")}, false); !errors.Is(err, sarama.ErrInvalidConfig) {
		t.Errorf("alter to a bad value: %v, want %v", err, sarama.ErrInvalidConfig)
	}
	brokerRes := sarama.ConfigResource{Type: sarama.BrokerResource, Name: "0"}
	wantSaramaConfig(t, adm, brokerRes, "num.partitions", "1", sarama.SourceDefault)
	if incremental {
		err = adm.IncrementalAlterConfig(sarama.BrokerResource, "0", map[string]sarama.IncrementalAlterConfigsEntry{
			"num.partitions": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: str("2")},
		}, false)
	} else {
		err = adm.AlterConfig(sarama.BrokerResource, "0", map[string]*string{"num.partitions": str("2")}, false)
	}
	if err != nil {
		t.Fatal(err)
	}
	wantSaramaConfig(t, adm, brokerRes, "num.partitions", "2", sarama.SourceDynamicBroker)

	// Delete records: the log start moves, reads below it are out of range.
	starts := map[int32]int64{0: 7, 1: 3, 2: 0}
	if err := adm.DeleteRecords(topic, map[int32]int64{0: starts[0], 1: starts[1]}); err != nil {
		t.Fatal(err)
	}
	checkSaramaOffsets(t, cl, adm, topic, want, starts, ends)
	if _, err := consumer.ConsumePartition(topic, 0, 2); !errors.Is(err, sarama.ErrOffsetOutOfRange) {
		t.Errorf("consume below the log start: %v, want %v", err, sarama.ErrOffsetOutOfRange)
	}
	for p, rs := range want {
		checkPartitionRecords(t, p, saramaConsume(t, consumer, topic, p, sarama.OffsetOldest, len(rs)-int(starts[p])), rs[starts[p]:])
	}

	// Delete a topic.
	if err := adm.DeleteTopic(doomed); err != nil {
		t.Fatal(err)
	}
	if err := adm.DeleteTopic(doomed); !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Errorf("delete a deleted topic: %v, want %v", err, sarama.ErrUnknownTopicOrPartition)
	}
	before := saramaDescribe(t, adm, topic)
	configsBefore := saramaConfigs(t, adm, rc)
	if err := consumer.Close(); err != nil {
		t.Fatal(err)
	}
	if err := adm.Close(); err != nil { // closes cl too
		t.Fatal(err)
	}

	// After a restart: the same topics, topic id, partitions, configs,
	// offsets and records.
	sb.Restart()
	cl, adm = saramaClients(t, sb, v)
	topics, err = adm.ListTopics()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := topics[doomed]; ok {
		t.Errorf("%s is back after the restart", doomed)
	}
	if d, ok := topics[topic]; !ok || d.NumPartitions != 3 {
		t.Fatalf("%s after restart: %+v", topic, d)
	}
	if after := saramaDescribe(t, adm, topic); after != before {
		t.Errorf("metadata after restart:\n got %s\nwant %s", after, before)
	}
	if after := saramaConfigs(t, adm, rc); after != configsBefore {
		t.Errorf("configs after restart:\n got %s\nwant %s", after, configsBefore)
	}
	wantSaramaConfig(t, adm, brokerRes, "num.partitions", "2", sarama.SourceDynamicBroker)
	checkSaramaOffsets(t, cl, adm, topic, want, starts, ends)
	consumer, err = sarama.NewConsumerFromClient(cl)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	for p, rs := range want {
		checkPartitionRecords(t, p, saramaConsume(t, consumer, topic, p, starts[p], len(rs)-int(starts[p])), rs[starts[p]:])
	}
}

// saramaConsume reads n records of a partition from offset on with a
// partition consumer.
func saramaConsume(t *testing.T, c sarama.Consumer, topic string, p int32, offset int64, n int) []sentRecord {
	t.Helper()
	pc, err := c.ConsumePartition(topic, p, offset)
	if err != nil {
		t.Fatalf("consume %s-%d from %d: %v", topic, p, offset, err)
	}
	defer pc.Close()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	var got []sentRecord
	for len(got) < n {
		select {
		case m := <-pc.Messages():
			r := sentRecord{partition: m.Partition, offset: m.Offset, key: string(m.Key), value: string(m.Value), timestamp: m.Timestamp}
			for _, h := range m.Headers {
				r.headers = append(r.headers, [2]string{string(h.Key), string(h.Value)})
			}
			got = append(got, r)
		case err := <-pc.Errors():
			t.Fatalf("consume %s-%d: %v", topic, p, err)
		case <-timeout.C:
			t.Fatalf("consume %s-%d from %d: %d of %d records after 30s", topic, p, offset, len(got), n)
		}
	}
	return got
}

// checkSaramaOffsets looks offsets up by time through the client
// (GetOffset) and the admin client (ListOffsets).
func checkSaramaOffsets(t *testing.T, cl sarama.Client, adm sarama.ClusterAdmin, topic string, want map[int32][]sentRecord, starts, ends map[int32]int64) {
	t.Helper()
	for p, rs := range want {
		last := rs[len(rs)-1].timestamp.UnixMilli()
		cases := map[int64]int64{
			sarama.OffsetOldest: starts[p],
			sarama.OffsetNewest: ends[p],
			last + 1:            -1,
		}
		// The first record at or after a record's timestamp is that record
		// when it is still in the log, the log start otherwise.
		for _, i := range []int64{0, 4, 9, int64(len(rs)) - 1} {
			cases[rs[i].timestamp.UnixMilli()] = max(i, starts[p])
		}
		for ts, wantOffset := range cases {
			got, err := cl.GetOffset(topic, p, ts)
			if err != nil || got != wantOffset {
				t.Errorf("GetOffset(%s-%d, %d) = %d, %v; want %d", topic, p, ts, got, err, wantOffset)
			}
			res, err := adm.ListOffsets(map[string]map[int32]int64{topic: {p: ts}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r := res[topic][p]; r == nil || !errors.Is(r.Err, sarama.ErrNoError) || r.Offset != wantOffset {
				t.Errorf("ListOffsets(%s-%d, %d) = %+v; want %d", topic, p, ts, r, wantOffset)
			}
		}
	}
}

// saramaDescribeConfigs describes a resource's configs with their synonyms
// and documentation.
func saramaDescribeConfigs(t *testing.T, adm sarama.ClusterAdmin, rc sarama.ConfigResource) []sarama.ConfigEntry {
	t.Helper()
	res, err := adm.DescribeConfigs([]*sarama.ConfigResource{&rc}, sarama.DescribeConfigsOptions{IncludeSynonyms: true, IncludeDocumentation: true})
	if err != nil || len(res) != 1 || !errors.Is(res[0].ErrorCode, sarama.ErrNoError) {
		t.Fatalf("describe configs of %s: %v %+v", rc.Name, err, res)
	}
	return res[0].Configs
}

// saramaConfigs describes a resource's configs as text, to compare.
func saramaConfigs(t *testing.T, adm sarama.ClusterAdmin, rc sarama.ConfigResource) string {
	t.Helper()
	entries := saramaDescribeConfigs(t, adm, rc)
	slices.SortFunc(entries, func(a, b sarama.ConfigEntry) int { return cmp.Compare(a.Name, b.Name) })
	var out string
	for _, e := range entries {
		out += fmt.Sprintf("%s=%s (%v default=%v read-only=%v", e.Name, e.Value, e.Source, e.Default, e.ReadOnly)
		for _, syn := range e.Synonyms {
			out += fmt.Sprintf(" %s=%s from %v", syn.ConfigName, syn.ConfigValue, syn.Source)
		}
		out += "); "
	}
	return out
}

// wantSaramaConfig checks one described config.
func wantSaramaConfig(t *testing.T, adm sarama.ClusterAdmin, rc sarama.ConfigResource, name, value string, source sarama.ConfigSource) {
	t.Helper()
	rc.ConfigNames = []string{name}
	entries := saramaDescribeConfigs(t, adm, rc)
	if len(entries) != 1 || entries[0].Name != name || entries[0].Value != value || entries[0].Source != source {
		t.Errorf("%s %s: %+v; want %s from %v", rc.Name, name, entries, value, source)
	}
}

// saramaDescribe describes a topic's metadata as text, to compare.
func saramaDescribe(t *testing.T, adm sarama.ClusterAdmin, topic string) string {
	t.Helper()
	md, err := adm.DescribeTopics([]string{topic})
	if err != nil || len(md) != 1 || md[0].Err != sarama.ErrNoError {
		t.Fatalf("describe %s: %v %+v", topic, err, md)
	}
	out := fmt.Sprintf("%s id %s internal %v:", md[0].Name, md[0].Uuid, md[0].IsInternal)
	slices.SortFunc(md[0].Partitions, func(a, b *sarama.PartitionMetadata) int { return cmp.Compare(a.ID, b.ID) })
	for _, p := range md[0].Partitions {
		out += fmt.Sprintf(" [%d leader %d epoch %d replicas %v isr %v]", p.ID, p.Leader, p.LeaderEpoch, p.Replicas, p.Isr)
	}
	return out
}
