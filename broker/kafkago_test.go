package broker_test

// segmentio/kafka-go against the broker: its Client (admin requests and
// offset lookups), Writer, Reader at an offset (no group) and Conn, then the
// same reads after a restart. kafka-go negotiates each request's version
// from ApiVersions. It has no DeleteRecords, so the test registers one with
// kafka-go's own protocol package and sends it through a Transport.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/protocol"

	"github.com/samsa-io/samsa/samsatest"
)

// kafkagoDeleteRecordsRequest is DeleteRecords v0–v1 in kafka-go's
// protocol description.
type kafkagoDeleteRecordsRequest struct {
	Topics    []kafkagoDeleteRecordsTopic `kafka:"min=v0,max=v1"`
	TimeoutMs int32                       `kafka:"min=v0,max=v1"`
}

type kafkagoDeleteRecordsTopic struct {
	Name       string                          `kafka:"min=v0,max=v1"`
	Partitions []kafkagoDeleteRecordsPartition `kafka:"min=v0,max=v1"`
}

type kafkagoDeleteRecordsPartition struct {
	PartitionIndex int32 `kafka:"min=v0,max=v1"`
	Offset         int64 `kafka:"min=v0,max=v1"`
}

func (*kafkagoDeleteRecordsRequest) ApiKey() protocol.ApiKey { return protocol.DeleteRecords }

// Broker sends the request to the controller: the one test broker leads
// every partition.
func (*kafkagoDeleteRecordsRequest) Broker(c protocol.Cluster) (protocol.Broker, error) {
	return c.Brokers[c.Controller], nil
}

type kafkagoDeleteRecordsResponse struct {
	ThrottleTimeMs int32                               `kafka:"min=v0,max=v1"`
	Topics         []kafkagoDeleteRecordsResponseTopic `kafka:"min=v0,max=v1"`
}

type kafkagoDeleteRecordsResponseTopic struct {
	Name       string                                  `kafka:"min=v0,max=v1"`
	Partitions []kafkagoDeleteRecordsResponsePartition `kafka:"min=v0,max=v1"`
}

type kafkagoDeleteRecordsResponsePartition struct {
	PartitionIndex int32 `kafka:"min=v0,max=v1"`
	LowWatermark   int64 `kafka:"min=v0,max=v1"`
	ErrorCode      int16 `kafka:"min=v0,max=v1"`
}

func (*kafkagoDeleteRecordsResponse) ApiKey() protocol.ApiKey { return protocol.DeleteRecords }

func init() {
	protocol.Register(&kafkagoDeleteRecordsRequest{}, &kafkagoDeleteRecordsResponse{})
}

// kafkagoCodecs is every codec kafka-go writes.
var kafkagoCodecs = []struct {
	name  string
	codec compress.Compression
}{
	{"none", compress.None},
	{"gzip", compress.Gzip},
	{"snappy", compress.Snappy},
	{"lz4", compress.Lz4},
	{"zstd", compress.Zstd},
}

// kafkagoClient is a kafka-go Client on its own Transport, whose idle
// connections are closed when the test ends.
func kafkagoClient(t *testing.T, sb *samsatest.Broker) *kafka.Client {
	tr := &kafka.Transport{ClientID: "samsa-kafkago-test", MetadataTTL: time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return &kafka.Client{Addr: kafka.TCP(sb.Addr()), Transport: tr, Timeout: 30 * time.Second}
}

func TestKafkaGoClient(t *testing.T) {
	sb := samsatest.Start(t, watchRefusals(t))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl := kafkagoClient(t, sb)
	const topic, doomed = "kafkago-data", "kafkago-doomed"

	// Create topics, with configs; validate-only creates nothing; errors
	// arrive as kafka-go's Errors.
	create := func(validateOnly bool, tc kafka.TopicConfig) error {
		t.Helper()
		res, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{tc}, ValidateOnly: validateOnly})
		if err != nil {
			t.Fatalf("create %s: %v", tc.Topic, err)
		}
		return res.Errors[tc.Topic]
	}
	if err := create(false, kafka.TopicConfig{Topic: topic, NumPartitions: 3, ReplicationFactor: 1, ConfigEntries: []kafka.ConfigEntry{
		{ConfigName: "retention.ms", ConfigValue: "86400000"},
		{ConfigName: "max.message.bytes", ConfigValue: "2097152"},
	}}); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	if err := create(false, kafka.TopicConfig{Topic: doomed, NumPartitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatalf("create %s: %v", doomed, err)
	}
	// No validate-only create: after a CreateTopics that succeeds, kafka-go's
	// Transport waits for the topics to appear in metadata, which a
	// validate-only one never does, until the context ends.
	for _, tc := range []struct {
		config kafka.TopicConfig
		want   kafka.Error
	}{
		{kafka.TopicConfig{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}, kafka.TopicAlreadyExists},
		{kafka.TopicConfig{Topic: "kafkago-replicated", NumPartitions: 1, ReplicationFactor: 3}, kafka.InvalidReplicationFactor},
		{kafka.TopicConfig{Topic: "kafkago-bad-config", NumPartitions: 1, ReplicationFactor: 1,
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "soon"}}}, kafka.InvalidConfiguration},
	} {
		if err := create(false, tc.config); !errors.Is(err, tc.want) {
			t.Errorf("create %+v: %v, want %v", tc.config, err, tc.want)
		}
	}
	if got, want := kafkagoTopics(t, ctx, cl), []string{topic, doomed}; !slices.Equal(got, want) {
		t.Fatalf("topics %v, want %v", got, want)
	}

	// Produce keyed records with headers and timestamps, one Writer per
	// codec; its completion callback says where each record went.
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var sent []sentRecord
	for i, c := range kafkagoCodecs {
		recs := sentRecords(c.name, 30, base.Add(time.Duration(i)*time.Second))
		var mu sync.Mutex
		w := &kafka.Writer{
			Addr:         kafka.TCP(sb.Addr()),
			Topic:        topic,
			Balancer:     &kafka.Murmur2Balancer{},
			Compression:  c.codec,
			RequiredAcks: kafka.RequireAll,
			BatchTimeout: 10 * time.Millisecond, // the default waits a second for a fuller batch
			Transport:    cl.Transport,
			Completion: func(msgs []kafka.Message, err error) {
				mu.Lock()
				defer mu.Unlock()
				for _, m := range msgs {
					if err == nil {
						r := &recs[m.WriterData.(int)]
						r.partition, r.offset = int32(m.Partition), m.Offset
					}
				}
			},
		}
		msgs := make([]kafka.Message, len(recs))
		for j, r := range recs {
			msgs[j] = kafka.Message{Key: []byte(r.key), Value: []byte(r.value), Time: r.timestamp, WriterData: j}
			for _, h := range r.headers {
				msgs[j].Headers = append(msgs[j].Headers, kafka.Header{Key: h[0], Value: []byte(h[1])})
			}
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("produce %s: %v", c.name, err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		sent = append(sent, recs...)
		mu.Unlock()
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

	for p, rs := range want {
		checkPartitionRecords(t, p, kafkagoRead(t, ctx, sb, topic, p, 0, len(rs)), rs)
		// From an offset in the middle of a compressed batch.
		checkPartitionRecords(t, p, kafkagoRead(t, ctx, sb, topic, p, 5, len(rs)-5), rs[5:])
	}

	// Offsets by time: earliest, latest, and the first record at or after a
	// timestamp; past the last timestamp there is none.
	checkKafkagoOffsets(t, ctx, sb, cl, topic, want, map[int32]int64{0: 0, 1: 0, 2: 0}, ends)

	// Configs: described with values and sources, replaced with
	// AlterConfigs (unset ones return to their defaults), changed with
	// IncrementalAlterConfigs.
	const (
		sourceDynamicTopic  = 1
		sourceDynamicBroker = 2
		sourceDefault       = 5
	)
	wantKafkagoConfig(t, ctx, cl, kafka.ResourceTypeTopic, topic, "retention.ms", "86400000", sourceDynamicTopic)
	wantKafkagoConfig(t, ctx, cl, kafka.ResourceTypeTopic, topic, "max.message.bytes", "2097152", sourceDynamicTopic)
	wantKafkagoConfig(t, ctx, cl, kafka.ResourceTypeTopic, topic, "segment.bytes", "1073741824", sourceDefault)
	alter := func(rt kafka.ResourceType, name string, configs ...kafka.AlterConfigRequestConfig) error {
		t.Helper()
		res, err := cl.AlterConfigs(ctx, &kafka.AlterConfigsRequest{Resources: []kafka.AlterConfigRequestResource{{ResourceType: rt, ResourceName: name, Configs: configs}}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Errors[kafka.AlterConfigsResponseResource{Type: int8(rt), Name: name}]
	}
	if err := alter(kafka.ResourceTypeTopic, topic, kafka.AlterConfigRequestConfig{Name: "retention.ms", Value: "172800000"}); err != nil {
		t.Fatal(err)
	}
	wantKafkagoConfig(t, ctx, cl, kafka.ResourceTypeTopic, topic, "retention.ms", "172800000", sourceDynamicTopic)
	wantKafkagoConfig(t, ctx, cl, kafka.ResourceTypeTopic, topic, "max.message.bytes", "1048588", sourceDefault)
	if err := alter(kafka.ResourceTypeTopic, topic, kafka.AlterConfigRequestConfig{Name: "retention.ms", Value: "soon"}); !errors.Is(err, kafka.InvalidConfiguration) {
		t.Errorf("alter to a bad value: %v, want %v", err, kafka.InvalidConfiguration)
	}
	incremental := func(rt kafka.ResourceType, name string, configs ...kafka.IncrementalAlterConfigsRequestConfig) {
		t.Helper()
		res, err := cl.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{Resources: []kafka.IncrementalAlterConfigsRequestResource{{ResourceType: rt, ResourceName: name, Configs: configs}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Resources) != 1 || res.Resources[0].Error != nil {
			t.Fatalf("incremental alter %s: %+v", name, res.Resources)
		}
	}
	incremental(kafka.ResourceTypeTopic, topic,
		kafka.IncrementalAlterConfigsRequestConfig{Name: "retention.bytes", Value: "1073741824", ConfigOperation: kafka.ConfigOperationSet},
		kafka.IncrementalAlterConfigsRequestConfig{Name: "retention.ms", ConfigOperation: kafka.ConfigOperationDelete})
	wantKafkagoConfig(t, ctx, cl, kafka.ResourceTypeTopic, topic, "retention.bytes", "1073741824", sourceDynamicTopic)
	wantKafkagoConfig(t, ctx, cl, kafka.ResourceTypeTopic, topic, "retention.ms", "604800000", sourceDefault)
	wantKafkagoConfig(t, ctx, cl, kafka.ResourceTypeBroker, "0", "num.partitions", "1", sourceDefault)
	incremental(kafka.ResourceTypeBroker, "0", kafka.IncrementalAlterConfigsRequestConfig{Name: "num.partitions", Value: "2", ConfigOperation: kafka.ConfigOperationSet})
	wantKafkagoConfig(t, ctx, cl, kafka.ResourceTypeBroker, "0", "num.partitions", "2", sourceDynamicBroker)

	// Delete records: the log start moves, reads below it are out of range.
	starts := map[int32]int64{0: 7, 1: 3, 2: 0}
	kafkagoDeleteRecords(t, ctx, sb, cl, topic, map[int32]int64{0: starts[0], 1: starts[1]})
	checkKafkagoOffsets(t, ctx, sb, cl, topic, want, starts, ends)
	fetched, err := cl.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: 0, Offset: 2, MaxBytes: 1 << 20})
	if err != nil || !errors.Is(fetched.Error, kafka.OffsetOutOfRange) {
		t.Errorf("fetch below the log start: %v, %+v; want %v", err, fetched, kafka.OffsetOutOfRange)
	}
	// A Reader set below the log start starts at the log start.
	if got := kafkagoRead(t, ctx, sb, topic, 0, 2, 1); got[0].offset != starts[0] {
		t.Errorf("read from below the log start: offset %d, want %d", got[0].offset, starts[0])
	}
	for p, rs := range want {
		checkPartitionRecords(t, p, kafkagoRead(t, ctx, sb, topic, p, kafka.FirstOffset, len(rs)-int(starts[p])), rs[starts[p]:])
	}

	// Delete a topic.
	deleteTopic := func(name string) error {
		t.Helper()
		res, err := cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{name}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Errors[name]
	}
	if err := deleteTopic(doomed); err != nil {
		t.Fatal(err)
	}
	if err := deleteTopic(doomed); !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Errorf("delete a deleted topic: %v, want %v", err, kafka.UnknownTopicOrPartition)
	}
	before := kafkagoDescribe(t, ctx, cl, topic)
	configsBefore := kafkagoConfigs(t, ctx, cl, kafka.ResourceTypeTopic, topic)
	cl.Transport.(*kafka.Transport).CloseIdleConnections()

	// After a restart: the same topics, partitions, configs, offsets and
	// records.
	sb.Restart()
	cl = kafkagoClient(t, sb)
	if got, want := kafkagoTopics(t, ctx, cl), []string{topic}; !slices.Equal(got, want) {
		t.Fatalf("topics after restart %v, want %v", got, want)
	}
	if after := kafkagoDescribe(t, ctx, cl, topic); after != before {
		t.Errorf("metadata after restart:\n got %s\nwant %s", after, before)
	}
	if after := kafkagoConfigs(t, ctx, cl, kafka.ResourceTypeTopic, topic); after != configsBefore {
		t.Errorf("configs after restart:\n got %s\nwant %s", after, configsBefore)
	}
	wantKafkagoConfig(t, ctx, cl, kafka.ResourceTypeBroker, "0", "num.partitions", "2", sourceDynamicBroker)
	checkKafkagoOffsets(t, ctx, sb, cl, topic, want, starts, ends)
	for p, rs := range want {
		checkPartitionRecords(t, p, kafkagoRead(t, ctx, sb, topic, p, starts[p], len(rs)-int(starts[p])), rs[starts[p]:])
	}
}

// kafkagoRead reads n records of a partition from offset on with a Reader
// that has no group.
func kafkagoRead(t *testing.T, ctx context.Context, sb *samsatest.Broker, topic string, p int32, offset int64, n int) []sentRecord {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   []string{sb.Addr()},
		Topic:     topic,
		Partition: int(p),
		MaxBytes:  64 << 10, // several fetches per partition
		MaxWait:   100 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(offset); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var got []sentRecord
	for len(got) < n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %s-%d from %d: %d of %d records: %v", topic, p, offset, len(got), n, err)
		}
		rec := sentRecord{partition: int32(m.Partition), offset: m.Offset, key: string(m.Key), value: string(m.Value), timestamp: m.Time}
		for _, h := range m.Headers {
			rec.headers = append(rec.headers, [2]string{h.Key, string(h.Value)})
		}
		got = append(got, rec)
	}
	return got
}

// checkKafkagoOffsets looks offsets up by time through a Conn to the
// partition leader (ReadFirstOffset, ReadLastOffset, ReadOffset) and through
// the Client (ListOffsets, one lookup per request: Kafka refuses a
// partition twice in one).
func checkKafkagoOffsets(t *testing.T, ctx context.Context, sb *samsatest.Broker, cl *kafka.Client, topic string, want map[int32][]sentRecord, starts, ends map[int32]int64) {
	t.Helper()
	for p, rs := range want {
		conn, err := kafka.DialLeader(ctx, "tcp", sb.Addr(), topic, int(p))
		if err != nil {
			t.Fatal(err)
		}
		first, last, err := conn.ReadOffsets()
		if err != nil || first != starts[p] || last != ends[p] {
			t.Errorf("%s-%d: ReadOffsets = %d, %d, %v; want %d, %d", topic, p, first, last, err, starts[p], ends[p])
		}
		// The first record at or after a record's timestamp is that record
		// when it is still in the log, the log start otherwise; past the
		// last timestamp there is none (-1).
		byTime := map[time.Time]int64{rs[len(rs)-1].timestamp.Add(time.Millisecond): -1}
		for _, i := range []int64{0, 4, 9, int64(len(rs)) - 1} {
			byTime[rs[i].timestamp] = max(i, starts[p])
		}
		for ts, wantOffset := range byTime {
			if got, err := conn.ReadOffset(ts); err != nil || got != wantOffset {
				t.Errorf("%s-%d: Conn.ReadOffset(%d) = %d, %v; want %d", topic, p, ts.UnixMilli(), got, err, wantOffset)
			}
			res, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.TimeOffsetOf(int(p), ts)}}})
			if err != nil {
				t.Fatal(err)
			}
			if po := res.Topics[topic]; len(po) != 1 || po[0].Error != nil || len(po[0].Offsets) != 1 {
				t.Errorf("%s-%d: ListOffsets(%d) = %+v", topic, p, ts.UnixMilli(), po)
			} else if _, ok := po[0].Offsets[wantOffset]; !ok {
				t.Errorf("%s-%d: ListOffsets(%d) = %v; want offset %d", topic, p, ts.UnixMilli(), po[0].Offsets, wantOffset)
			}
		}
		conn.Close()
	}
}

// kafkagoDeleteRecords deletes the records before the given offsets.
func kafkagoDeleteRecords(t *testing.T, ctx context.Context, sb *samsatest.Broker, cl *kafka.Client, topic string, before map[int32]int64) {
	t.Helper()
	req := &kafkagoDeleteRecordsRequest{Topics: []kafkagoDeleteRecordsTopic{{Name: topic}}, TimeoutMs: 30000}
	for _, p := range slices.Sorted(maps.Keys(before)) {
		req.Topics[0].Partitions = append(req.Topics[0].Partitions, kafkagoDeleteRecordsPartition{PartitionIndex: p, Offset: before[p]})
	}
	m, err := cl.Transport.RoundTrip(ctx, kafka.TCP(sb.Addr()), req)
	if err != nil {
		t.Fatal(err)
	}
	res := m.(*kafkagoDeleteRecordsResponse)
	if len(res.Topics) != 1 || len(res.Topics[0].Partitions) != len(before) {
		t.Fatalf("delete records: %+v", res)
	}
	for _, rp := range res.Topics[0].Partitions {
		if rp.ErrorCode != 0 || rp.LowWatermark != before[rp.PartitionIndex] {
			t.Errorf("delete records of %s-%d: %+v; want low watermark %d", topic, rp.PartitionIndex, rp, before[rp.PartitionIndex])
		}
	}
}

// kafkagoTopics lists the topics, sorted.
func kafkagoTopics(t *testing.T, ctx context.Context, cl *kafka.Client) []string {
	t.Helper()
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tp := range md.Topics {
		if !tp.Internal { // __consumer_offsets, made at start-up
			names = append(names, tp.Name)
		}
	}
	slices.Sort(names)
	return names
}

// kafkagoDescribe describes a topic's metadata as text, to compare.
func kafkagoDescribe(t *testing.T, ctx context.Context, cl *kafka.Client, topic string) string {
	t.Helper()
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
		t.Fatalf("metadata of %s: %v %+v", topic, err, md)
	}
	tp := md.Topics[0]
	out := fmt.Sprintf("%s internal %v:", tp.Name, tp.Internal)
	slices.SortFunc(tp.Partitions, func(a, b kafka.Partition) int { return a.ID - b.ID })
	ids := func(bs []kafka.Broker) (s []int) {
		for _, b := range bs {
			s = append(s, b.ID)
		}
		return s
	}
	for _, p := range tp.Partitions {
		out += fmt.Sprintf(" [%d leader %d at %s replicas %v isr %v]", p.ID, p.Leader.ID,
			net.JoinHostPort(p.Leader.Host, strconv.Itoa(p.Leader.Port)), ids(p.Replicas), ids(p.Isr))
	}
	return out
}

// kafkagoDescribeConfigs describes a resource's configs.
func kafkagoDescribeConfigs(t *testing.T, ctx context.Context, cl *kafka.Client, rt kafka.ResourceType, name string, names ...string) []kafka.DescribeConfigResponseConfigEntry {
	t.Helper()
	res, err := cl.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{ResourceType: rt, ResourceName: name, ConfigNames: names}}})
	if err != nil || len(res.Resources) != 1 || res.Resources[0].Error != nil {
		t.Fatalf("describe configs of %s: %v %+v", name, err, res)
	}
	return res.Resources[0].ConfigEntries
}

// kafkagoConfigs describes a resource's configs as text, to compare.
func kafkagoConfigs(t *testing.T, ctx context.Context, cl *kafka.Client, rt kafka.ResourceType, name string) string {
	t.Helper()
	entries := kafkagoDescribeConfigs(t, ctx, cl, rt, name)
	slices.SortFunc(entries, func(a, b kafka.DescribeConfigResponseConfigEntry) int { return cmp.Compare(a.ConfigName, b.ConfigName) })
	var out string
	for _, e := range entries {
		out += fmt.Sprintf("%s=%s (source %d default=%v read-only=%v); ", e.ConfigName, e.ConfigValue, e.ConfigSource, e.IsDefault, e.ReadOnly)
	}
	return out
}

// wantKafkagoConfig checks one described config.
func wantKafkagoConfig(t *testing.T, ctx context.Context, cl *kafka.Client, rt kafka.ResourceType, resource, name, value string, source int8) {
	t.Helper()
	entries := kafkagoDescribeConfigs(t, ctx, cl, rt, resource, name)
	if len(entries) != 1 || entries[0].ConfigName != name || entries[0].ConfigValue != value || entries[0].ConfigSource != source {
		t.Errorf("%s %s: %+v; want %s from source %d", resource, name, entries, value, source)
	}
}
