package broker_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/broker"
	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/samsatest"
)

// deadlineCtx is a context bounding a whole test.
func deadlineCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func clientFor(t *testing.T, sb *samsatest.Broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(sb.Addr())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// makeTopic creates a topic with CreateTopics.
func makeTopic(t *testing.T, cl *kgo.Client, name string, partitions int32, configs map[string]string) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range configs {
			if !yield(k) {
				return
			}
		}
	}) {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(configs[k])
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30000
	resp, err := req.RequestWith(deadlineCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
}

// batch builds a record batch at offset 0 of n records with keys and
// values "<prefix>-<i>", timestamps ts, ts+1, ….
func buildBatch(t *testing.T, codec record.Codec, prefix string, n int, ts int64, pid int64, epoch int16, seq int32) []byte {
	t.Helper()
	opts := record.DefaultBuildOptions()
	opts.Codec = codec
	opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence = pid, epoch, seq
	var recs []record.Record
	for i := range n {
		kv := fmt.Appendf(nil, "%s-%d", prefix, i)
		recs = append(recs, record.Record{Offset: int64(i), Timestamp: ts + int64(i), Key: kv, Value: kv})
	}
	b, err := record.Build(opts, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// produceRaw sends one batch to one partition and returns its result.
func produceRaw(t *testing.T, cl *kgo.Client, topic string, p int32, records []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = p, records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(deadlineCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

// listOffset asks ListOffsets for one partition and timestamp.
func listOffsetOf(t *testing.T, cl *kgo.Client, topic string, p int32, ts int64) kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = p, ts
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(deadlineCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

// consume reads partitions of topic from offset 0 until it has n records.
func consumeFrom(t *testing.T, sb *samsatest.Broker, topic string, partitions int32, n int) []*kgo.Record {
	t.Helper()
	offsets := map[int32]kgo.Offset{}
	for p := range partitions {
		offsets[p] = kgo.NewOffset().At(0)
	}
	cl := clientFor(t, sb, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	ctx := deadlineCtx(t)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records of %s: %v", len(out), n, topic, ctx.Err())
		}
		for _, e := range fs.Errors() {
			t.Fatalf("fetch %s-%d: %v", e.Topic, e.Partition, e.Err)
		}
		out = append(out, fs.Records()...)
	}
	if len(out) != n {
		t.Fatalf("consumed %d records of %s, want %d", len(out), topic, n)
	}
	return out
}

// checkContiguous checks that each partition's records have offsets 0, 1, ….
func checkContiguous(t *testing.T, recs []*kgo.Record) {
	t.Helper()
	next := map[int32]int64{}
	for _, r := range recs {
		if r.Offset != next[r.Partition] {
			t.Fatalf("%s-%d: offset %d, want %d", r.Topic, r.Partition, r.Offset, next[r.Partition])
		}
		next[r.Partition]++
	}
}

func TestProduceEveryCodecAndAcksConsumedBack(t *testing.T) {
	sb := samsatest.Start(t)
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()},
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	}
	acks := []struct {
		name string
		opts []kgo.Opt
	}{
		{"acks0", []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}},
		{"acks1", []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}},
		{"acksAll", nil}, // the default: acks=-1, idempotent
	}
	const perCodec = 40
	for _, a := range acks {
		topic := "codecs-" + a.name
		admin := clientFor(t, sb)
		makeTopic(t, admin, topic, 2, nil)
		want := map[string]string{}
		for _, c := range codecs {
			opts := append([]kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(c.codec)}, a.opts...)
			cl := clientFor(t, sb, opts...)
			var recs []*kgo.Record
			for i := range perCodec {
				k := fmt.Sprintf("%s-%s-key-%d", a.name, c.name, i)
				v := strings.Repeat(c.name, 20) + fmt.Sprint(i)
				want[k] = v
				recs = append(recs, &kgo.Record{Key: []byte(k), Value: []byte(v)})
			}
			if err := cl.ProduceSync(deadlineCtx(t), recs...).FirstErr(); err != nil {
				t.Fatalf("%s %s: %v", a.name, c.name, err)
			}
			cl.Close()
		}
		got := consumeFrom(t, sb, topic, 2, len(want))
		checkContiguous(t, got)
		for _, r := range got {
			if want[string(r.Key)] != string(r.Value) {
				t.Fatalf("%s: record %q = %q, want %q", a.name, r.Key, r.Value, want[string(r.Key)])
			}
			delete(want, string(r.Key))
		}
		if len(want) != 0 {
			t.Fatalf("%s: %d records missing", a.name, len(want))
		}
	}
}

func TestProduceLogAppendTime(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb)
	makeTopic(t, cl, "appendtime", 1, map[string]string{"message.timestamp.type": "LogAppendTime"})
	created := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	res := produceRaw(t, cl, "appendtime", 0, buildBatch(t, record.CodecLZ4, "a", 3, created, -1, -1, -1))
	if res.ErrorCode != 0 || res.LogAppendTime <= created || res.BaseOffset != 0 || res.LogStartOffset != 0 {
		t.Fatalf("produce: %+v", res)
	}
	for _, r := range consumeFrom(t, sb, "appendtime", 1, 3) {
		if r.Timestamp.UnixMilli() != res.LogAppendTime || r.Attrs.TimestampType() != 1 {
			t.Fatalf("record %q: timestamp %v (%v), want the log append time %d", r.Key, r.Timestamp, r.Attrs.TimestampType(), res.LogAppendTime)
		}
	}

	// A CreateTime topic keeps the producer's timestamps and answers -1.
	makeTopic(t, cl, "createtime", 1, nil)
	res = produceRaw(t, cl, "createtime", 0, buildBatch(t, record.CodecNone, "c", 2, created, -1, -1, -1))
	if res.ErrorCode != 0 || res.LogAppendTime != -1 {
		t.Fatalf("produce: %+v", res)
	}
	if r := consumeFrom(t, sb, "createtime", 1, 2)[1]; r.Timestamp.UnixMilli() != created+1 {
		t.Fatalf("timestamp %v, want %d", r.Timestamp, created+1)
	}
}

func TestProduceMessageTooLarge(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb, kgo.DefaultProduceTopic("small"))
	makeTopic(t, cl, "small", 1, map[string]string{"max.message.bytes": "1000"})
	incompressible := make([]byte, 5000)
	rand.Read(incompressible)
	err := cl.ProduceSync(deadlineCtx(t), &kgo.Record{Value: incompressible}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("kgo produce of 5000 bytes: %v, want MESSAGE_TOO_LARGE", err)
	}
	res := produceRaw(t, cl, "small", 0, buildBatch(t, record.CodecNone, strings.Repeat("x", 600), 2, 1, -1, -1, -1))
	if res.ErrorCode != kerr.MessageTooLarge.Code || res.ErrorMessage == nil {
		t.Fatalf("raw produce: %+v", res)
	}
	if err := cl.ProduceSync(deadlineCtx(t), &kgo.Record{Value: make([]byte, 100)}).FirstErr(); err != nil {
		t.Fatalf("small record: %v", err)
	}
	if o := listOffsetOf(t, cl, "small", 0, -1); o.Offset != 1 {
		t.Fatalf("latest offset %d, want 1", o.Offset)
	}
}

func TestProduceBadBatchesWriteNothing(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb)
	makeTopic(t, cl, "strict", 1, nil)
	good := buildBatch(t, record.CodecGzip, "g", 3, 1000, -1, -1, -1)

	corrupt := slices.Clone(good)
	corrupt[len(corrupt)-3] ^= 0xff // inside the CRC's span
	truncated := good[:len(good)-5]
	twoBatches := append(slices.Clone(good), good...)
	offsetSet := slices.Clone(good)
	record.SetBaseOffset(offsetSet, 7)
	control := func() []byte {
		opts := record.DefaultBuildOptions()
		opts.Control = true
		b, err := record.Build(opts, []record.Record{{Key: []byte{0, 0, 0, 0}, Value: []byte{0, 0, 0, 0, 0, 0}}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}()
	magic1 := slices.Clone(good)
	magic1[16] = 1
	for _, tc := range []struct {
		name    string
		records []byte
		want    *kerr.Error
	}{
		{"bad crc", corrupt, kerr.CorruptMessage},
		{"truncated", truncated, kerr.CorruptMessage},
		{"short", good[:30], kerr.CorruptMessage},
		{"two batches", twoBatches, kerr.InvalidRecord},
		{"no batch", nil, kerr.InvalidRecord},
		{"base offset set", offsetSet, kerr.InvalidRecord},
		{"control batch", control, kerr.InvalidRecord},
		{"magic 1", magic1, kerr.InvalidRecord},
		{"sequence without producer", buildBatch(t, record.CodecNone, "p", 1, 1, 5, 0, -1), kerr.InvalidRecord},
	} {
		res := produceRaw(t, cl, "strict", 0, tc.records)
		if res.ErrorCode != tc.want.Code {
			t.Errorf("%s: error %v, want %v", tc.name, kerr.ErrorForCode(res.ErrorCode), tc.want)
		}
		if res.BaseOffset != -1 {
			t.Errorf("%s: base offset %d", tc.name, res.BaseOffset)
		}
	}
	if o := listOffsetOf(t, cl, "strict", 0, -1); o.Offset != 0 {
		t.Fatalf("latest offset %d after refused batches, want 0", o.Offset)
	}
	if res := produceRaw(t, cl, "strict", 0, good); res.ErrorCode != 0 || res.BaseOffset != 0 {
		t.Fatalf("good batch: %+v", res)
	}
}

func TestProduceUnknownTopicWithoutAutoCreate(t *testing.T) {
	sb := samsatest.Start(t, samsatest.WithConfig(func(c *broker.Config) { c.AutoCreateTopics = false }))
	cl := clientFor(t, sb, kgo.DefaultProduceTopic("missing"), kgo.UnknownTopicRetries(0))
	res := produceRaw(t, cl, "missing", 0, buildBatch(t, record.CodecNone, "m", 1, 1, -1, -1, -1))
	if res.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("raw produce: %+v", res)
	}
	err := cl.ProduceSync(deadlineCtx(t), &kgo.Record{Value: []byte("v")}).FirstErr()
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("kgo produce: %v", err)
	}
	makeTopic(t, cl, "present", 2, nil)
	if res := produceRaw(t, cl, "present", 2, buildBatch(t, record.CodecNone, "m", 1, 1, -1, -1, -1)); res.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("partition 2 of 2: %+v", res)
	}
}

// Produce itself never creates a topic (as in Kafka): the client's Metadata
// request does, when the client allows it (kgo does not by default; Java
// producers do).
func TestProduceToNewTopicAutoCreatesIt(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb, kgo.DefaultProduceTopic("fresh"), kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(deadlineCtx(t), &kgo.Record{Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if r := consumeFrom(t, sb, "fresh", 1, 1)[0]; string(r.Value) != "v" {
		t.Fatalf("record %+v", r)
	}
}

func TestProduceRecompressesToTopicCodec(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb, kgo.DefaultProduceTopic("zipped"), kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	makeTopic(t, cl, "zipped", 1, map[string]string{"compression.type": "gzip"})
	var recs []*kgo.Record
	for i := range 20 {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: []byte(strings.Repeat("v", 100))})
	}
	if err := cl.ProduceSync(deadlineCtx(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := consumeFrom(t, sb, "zipped", 1, 20)
	checkContiguous(t, got)
	if string(got[19].Key) != "k19" {
		t.Fatalf("last record %q", got[19].Key)
	}
	fr := fetchOnce(t, cl, "zipped", 0, 0, 0, 0)
	h, err := record.ParseHeader(fr.RecordBatches)
	if err != nil || h.Attributes.Codec() != record.CodecGzip {
		t.Fatalf("stored batch codec %v (%v), want gzip", h.Attributes.Codec(), err)
	}
}

func TestProduceSetsPartitionLeaderEpoch(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb)
	makeTopic(t, cl, "epochs", 1, nil)
	b := buildBatch(t, record.CodecNone, "e", 1, 1, -1, -1, -1)
	record.SetPartitionLeaderEpoch(b, 77)
	if res := produceRaw(t, cl, "epochs", 0, b); res.ErrorCode != 0 {
		t.Fatalf("produce: %+v", res)
	}
	fr := fetchOnce(t, cl, "epochs", 0, 0, 0, 0)
	h, err := record.ParseHeader(fr.RecordBatches)
	if err != nil || h.PartitionLeaderEpoch != leaderEpoch(t, cl, "epochs", 0) {
		t.Fatalf("stored leader epoch %d (%v)", h.PartitionLeaderEpoch, err)
	}
}

// leaderEpoch returns a partition's leader epoch from Metadata.
func leaderEpoch(t *testing.T, cl *kgo.Client, topic string, p int32) int32 {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(deadlineCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[p].LeaderEpoch
}

func TestDataAndOffsetsSurviveRestart(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb, kgo.DefaultProduceTopic("durable"))
	makeTopic(t, cl, "durable", 3, nil)
	var recs []*kgo.Record
	for i := range 90 {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)})
	}
	if err := cl.ProduceSync(deadlineCtx(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ends := map[int32]int64{}
	for p := range int32(3) {
		ends[p] = listOffsetOf(t, cl, "durable", p, -1).Offset
	}
	cl.Close()

	sb.Restart()
	cl = clientFor(t, sb, kgo.DefaultProduceTopic("durable"))
	got := consumeFrom(t, sb, "durable", 3, 90)
	checkContiguous(t, got)
	for _, r := range got {
		if strings.TrimPrefix(string(r.Key), "k") != strings.TrimPrefix(string(r.Value), "v") {
			t.Fatalf("record %q = %q", r.Key, r.Value)
		}
	}
	var total int64
	for p := range int32(3) {
		if o := listOffsetOf(t, cl, "durable", p, -1).Offset; o != ends[p] {
			t.Fatalf("partition %d: latest %d after restart, %d before", p, o, ends[p])
		}
		total += ends[p]
	}
	if total != 90 {
		t.Fatalf("ends %v", ends)
	}
	// Appends continue where the log ended.
	res := produceRaw(t, cl, "durable", 1, buildBatch(t, record.CodecNone, "after", 2, 1, -1, -1, -1))
	if res.ErrorCode != 0 || res.BaseOffset != ends[1] {
		t.Fatalf("produce after restart: %+v, want base offset %d", res, ends[1])
	}
}
