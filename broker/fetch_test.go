package broker_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/broker"
	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/samsatest"
)

// rawRequest sends one request in the version it is set to over a new
// connection and decodes the response: for versions a kgo client would not
// pick on its own.
func rawRequest(t *testing.T, addr string, req kmsg.Request) kmsg.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	frame := make([]byte, 4, 64)
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.Key()))
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.GetVersion()))
	frame = binary.BigEndian.AppendUint32(frame, 1)
	frame = binary.BigEndian.AppendUint16(frame, 4)
	frame = append(frame, "test"...)
	if req.IsFlexible() {
		frame = append(frame, 0)
	}
	frame = req.AppendTo(frame)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		t.Fatalf("%s v%d: reading the response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatal(err)
	}
	resp := req.ResponseKind()
	body = body[4:] // correlation id
	if resp.IsFlexible() {
		body = body[1:] // no tagged fields
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decoding %s v%d response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

// topicID returns a topic's id from Metadata.
func topicID(t *testing.T, cl *kgo.Client, topic string) [16]byte {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(deadlineCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].TopicID
}

// fetchRequest asks for the given partitions of topic, each from offset,
// with partitionMax bytes each.
func fetchRequest(t *testing.T, cl *kgo.Client, topic string, offset int64, partitionMax int32, partitions ...int32) *kmsg.FetchRequest {
	return broker.NewFetchReq().MaxBytes(50<<20).PartitionMaxBytes(partitionMax).
		Topic(topic, topicID(t, cl, topic), offset, partitions...).
		Request()
}

func doFetch(t *testing.T, ctx context.Context, cl *kgo.Client, req *kmsg.FetchRequest) *kmsg.FetchResponse {
	t.Helper()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	return resp
}

// fetchOnce fetches one partition from offset without waiting.
func fetchOnce(t *testing.T, cl *kgo.Client, topic string, p int32, offset int64, minBytes, maxWaitMs int32) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := fetchRequest(t, cl, topic, offset, 1<<20, p)
	req.MinBytes, req.MaxWaitMillis = minBytes, maxWaitMs
	return doFetch(t, deadlineCtx(t), cl, req).Topics[0].Partitions[0]
}

// batchesIn splits fetched bytes into batch headers.
func batchesIn(t *testing.T, b []byte) []record.Header {
	t.Helper()
	var hs []record.Header
	for len(b) > 0 {
		h, err := record.ParseHeader(b)
		if err == nil && h.Size() > len(b) {
			err = errors.New("partial batch")
		}
		if err == nil {
			_, err = record.Validate(b[:h.Size()], record.ValidateOptions{VerifyRecords: true})
		}
		if err != nil {
			t.Fatalf("fetched batch %d: %v", len(hs), err)
		}
		hs = append(hs, h)
		b = b[h.Size():]
	}
	return hs
}

// writeHook reports each Fetch request a client has written to the wire.
type writeHook chan struct{}

func (h writeHook) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == 1 && err == nil {
		h <- struct{}{}
	}
}

func TestFetchLongPollWakesOnProduce(t *testing.T) {
	sb := samsatest.Start(t)
	admin := clientFor(t, sb)
	makeTopic(t, admin, "poll", 1, nil)
	makeTopic(t, admin, "idle", 1, nil)

	type result struct {
		resp *kmsg.FetchResponse
		err  error
	}
	longPoll := func(ctx context.Context, topic string) (<-chan result, writeHook) {
		written := make(writeHook, 1)
		cl := clientFor(t, sb, kgo.WithHooks(written))
		req := fetchRequest(t, admin, topic, 0, 1<<20, 0)
		req.MinBytes, req.MaxWaitMillis = 1, 10000
		done := make(chan result, 1)
		go func() {
			resp, err := req.RequestWith(ctx, cl)
			done <- result{resp, err}
		}()
		return done, written
	}
	ctx := deadlineCtx(t)
	idleCtx, stopIdle := context.WithCancel(ctx)
	defer stopIdle()
	// A fetch that nothing will satisfy goes out first, then the one the
	// produce will satisfy; the produce follows once both are on the wire.
	idle, idleWritten := longPoll(idleCtx, "idle")
	<-idleWritten
	poll, pollWritten := longPoll(ctx, "poll")
	<-pollWritten
	if res := produceRaw(t, admin, "poll", 0, buildBatch(t, record.CodecNone, "wake", 1, 1, -1, -1, -1)); res.ErrorCode != 0 {
		t.Fatalf("produce: %+v", res)
	}

	var got result
	select {
	case got = <-poll:
	case r := <-idle:
		t.Fatalf("the idle fetch (10 s max wait) returned before the one the produce satisfied: %+v %v", r.resp, r.err)
	}
	if got.err != nil {
		t.Fatal(got.err)
	}
	p := got.resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || len(batchesIn(t, p.RecordBatches)) != 1 || p.HighWatermark != 1 {
		t.Fatalf("long poll returned %+v", p)
	}
	select {
	case r := <-idle:
		t.Fatalf("the idle fetch returned early: %+v %v", r.resp, r.err)
	default:
	}
}

func TestFetchLongPollTimesOutEmpty(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb)
	makeTopic(t, cl, "quiet", 1, nil)
	p := fetchOnce(t, cl, "quiet", 0, 0, 1, 50)
	if p.ErrorCode != 0 || len(p.RecordBatches) != 0 || p.HighWatermark != 0 || p.LogStartOffset != 0 || p.LastStableOffset != 0 {
		t.Fatalf("fetch of an empty partition: %+v", p)
	}
	if p.RecordBatches == nil {
		t.Fatal("an empty partition's record set came back null; librdkafka rejects that (invalid MessageSetSize -1)")
	}
}

func TestFetchReturnsFirstBatchWholeAndHonoursLimits(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb)
	makeTopic(t, cl, "big", 2, nil)
	big := buildBatch(t, record.CodecNone, string(make([]byte, 10000)), 1, 1, -1, -1, -1)
	for p := range int32(2) {
		if res := produceRaw(t, cl, "big", p, big); res.ErrorCode != 0 {
			t.Fatalf("produce: %+v", res)
		}
	}
	// KIP-74: the first batch comes whole although it is over both limits;
	// the second partition's does not fit what is left and waits.
	req := fetchRequest(t, cl, "big", 0, 100, 0, 1)
	req.MaxBytes = 100
	resp := doFetch(t, deadlineCtx(t), cl, req)
	p0, p1 := resp.Topics[0].Partitions[0], resp.Topics[0].Partitions[1]
	if p0.ErrorCode != 0 || len(p0.RecordBatches) != len(big) {
		t.Fatalf("partition 0: %d bytes (error %d), want the whole %d-byte batch", len(p0.RecordBatches), p0.ErrorCode, len(big))
	}
	if p1.ErrorCode != 0 || len(p1.RecordBatches) != 0 || p1.HighWatermark != 1 {
		t.Fatalf("partition 1: %d bytes (error %d, high watermark %d), want none", len(p1.RecordBatches), p1.ErrorCode, p1.HighWatermark)
	}

	makeTopic(t, cl, "small", 1, nil)
	one := buildBatch(t, record.CodecNone, string(make([]byte, 1000)), 1, 1, -1, -1, -1)
	for range 3 {
		produceRaw(t, cl, "small", 0, one)
	}
	for _, tc := range []struct {
		partitionMax int32
		want         int
	}{{1, 1}, {len32(one) + 10, 1}, {2*len32(one) + 10, 2}, {1 << 20, 3}} {
		resp := doFetch(t, deadlineCtx(t), cl, fetchRequest(t, cl, "small", 0, tc.partitionMax, 0))
		if got := len(batchesIn(t, resp.Topics[0].Partitions[0].RecordBatches)); got != tc.want {
			t.Errorf("partition max %d: %d batches, want %d", tc.partitionMax, got, tc.want)
		}
	}
	// A fetch from the middle starts at the batch holding the offset.
	if hs := batchesIn(t, fetchOnce(t, cl, "small", 0, 2, 0, 0).RecordBatches); len(hs) != 1 || hs[0].BaseOffset != 2 {
		t.Fatalf("fetch from offset 2: %+v", hs)
	}
}

func len32(b []byte) int32 { return int32(len(b)) }

func TestFetchErrors(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb)
	makeTopic(t, cl, "errs", 1, nil)
	produceRaw(t, cl, "errs", 0, buildBatch(t, record.CodecNone, "e", 2, 1, -1, -1, -1))

	if p := fetchOnce(t, cl, "errs", 0, 3, 0, 0); p.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Errorf("offset past the end: %+v", p)
	}
	if p := fetchOnce(t, cl, "errs", 0, 2, 0, 0); p.ErrorCode != 0 || len(p.RecordBatches) != 0 || p.HighWatermark != 2 {
		t.Errorf("offset at the end: %+v", p)
	}

	req := fetchRequest(t, cl, "errs", 0, 1<<20, 0, 1)
	req.Topics[0].Partitions[0].CurrentLeaderEpoch = leaderEpoch(t, cl, "errs", 0) + 1
	resp := doFetch(t, deadlineCtx(t), cl, req)
	if p := resp.Topics[0].Partitions; p[0].ErrorCode != kerr.UnknownLeaderEpoch.Code || p[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("newer leader epoch, partition 1 of 1: %+v", p)
	}

	req = fetchRequest(t, cl, "errs", 0, 1<<20, 0)
	req.Topics[0].TopicID = [16]byte{1, 2, 3}
	if p := doFetch(t, deadlineCtx(t), cl, req).Topics[0].Partitions[0]; p.ErrorCode != kerr.UnknownTopicID.Code {
		t.Errorf("unknown topic id: %+v", p)
	}

	// By name, in v12; and the oldest version served.
	for _, v := range []int16{12, 4} {
		req = fetchRequest(t, cl, "errs", 0, 1<<20, 0)
		req.Topics = append(req.Topics, kmsg.FetchRequestTopic{Topic: "nope", Partitions: req.Topics[0].Partitions})
		req.SetVersion(v)
		resp := rawRequest(t, sb.Addr(), req).(*kmsg.FetchResponse)
		if len(resp.Topics) != 2 || resp.Topics[0].Topic != "errs" || len(batchesIn(t, resp.Topics[0].Partitions[0].RecordBatches)) != 1 {
			t.Errorf("v%d: %+v", v, resp.Topics)
		} else if resp.Topics[1].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("v%d unknown topic: %+v", v, resp.Topics[1])
		}
	}

	// Epoch -1 is a sessionless full fetch whatever the session id; kafka-go
	// sends id -1.
	req = fetchRequest(t, cl, "errs", 0, 1<<20, 0)
	for _, id := range []int32{0, -1, 12} {
		req.SessionID, req.SessionEpoch = id, -1
		if resp := doFetch(t, deadlineCtx(t), cl, req); resp.ErrorCode != 0 || resp.SessionID != 0 || len(resp.Topics) != 1 {
			t.Errorf("full fetch with session id %d: %+v", id, resp)
		}
	}
	req.SessionID, req.SessionEpoch = 12, 1
	resp, err := req.RequestWith(deadlineCtx(t), cl)
	if err != nil || resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Errorf("unknown session: %v %+v", err, resp)
	}
}

func TestFetchZstdNeedsV10(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb)
	makeTopic(t, cl, "zstd", 1, nil)
	produceRaw(t, cl, "zstd", 0, buildBatch(t, record.CodecZstd, "z", 2, 1, -1, -1, -1))
	for v, want := range map[int16]int16{9: kerr.UnsupportedCompressionType.Code, 10: 0} {
		req := fetchRequest(t, cl, "zstd", 0, 1<<20, 0)
		req.SetVersion(v)
		if p := rawRequest(t, sb.Addr(), req).(*kmsg.FetchResponse).Topics[0].Partitions[0]; p.ErrorCode != want {
			t.Errorf("v%d: error %d, want %d", v, p.ErrorCode, want)
		}
	}
	// Produce of zstd needs v7.
	preq := kmsg.NewPtrProduceRequest()
	preq.Acks, preq.TimeoutMillis = 1, 5000
	preq.Topics = []kmsg.ProduceRequestTopic{{Topic: "zstd", Partitions: []kmsg.ProduceRequestTopicPartition{
		{Partition: 0, Records: buildBatch(t, record.CodecZstd, "z", 1, 1, -1, -1, -1)}}}}
	preq.SetVersion(6)
	if p := rawRequest(t, sb.Addr(), preq).(*kmsg.ProduceResponse).Topics[0].Partitions[0]; p.ErrorCode != kerr.UnsupportedCompressionType.Code {
		t.Errorf("produce v6 zstd: %+v", p)
	}
}

// TestFetchRefusesABatchCorruptedOnDisk damages a batch in a segment file
// while the broker is down. After the restart no batch has been checked
// (the clean open scans only the tail after the last index entry), so the
// fetch that would send it reads it, finds its CRC wrong, and answers
// CORRUPT_MESSAGE instead of sending it; the batches after it are served.
func TestFetchRefusesABatchCorruptedOnDisk(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb)
	makeTopic(t, cl, "damaged", 1, map[string]string{"index.interval.bytes": "0"})
	one := buildBatch(t, record.CodecNone, string(make([]byte, 1000)), 1, 1, -1, -1, -1)
	for range 3 {
		if res := produceRaw(t, cl, "damaged", 0, one); res.ErrorCode != 0 {
			t.Fatalf("produce: %+v", res)
		}
	}
	cl.Close()
	sb.Stop()
	path := filepath.Join(sb.DataDir(), "logs", "damaged-0", "00000000000000000000.log")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[record.HeaderSize+100] ^= 0x01 // inside the first batch's records
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sb.Restart()
	cl = clientFor(t, sb)
	if p := fetchOnce(t, cl, "damaged", 0, 0, 0, 0); p.ErrorCode != kerr.CorruptMessage.Code || len(p.RecordBatches) != 0 {
		t.Fatalf("fetch of the damaged batch: error %d, %d bytes; want CORRUPT_MESSAGE and nothing", p.ErrorCode, len(p.RecordBatches))
	}
	p := fetchOnce(t, cl, "damaged", 0, 1, 0, 0)
	if hs := batchesIn(t, p.RecordBatches); p.ErrorCode != 0 || len(hs) != 2 || hs[0].BaseOffset != 1 {
		t.Fatalf("fetch after the damaged batch: error %d, batches %+v", p.ErrorCode, hs)
	}
}
