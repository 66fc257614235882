package broker

// Allocations on the produce and fetch hot paths, measured through a real
// loopback connection to a running broker with its data on disk. The client
// side sends frames encoded once and reads each response into one reused
// buffer, so that it allocates nothing per request: what the allocation
// counters see (process-wide, broker goroutines included) is the broker's.
//
//	go test ./broker -run '^$' -bench 'Benchmark(Produce|Fetch)$' -benchmem
//
// hotpath_alloc_test.go checks the property the benchmarks show: what a
// request allocates does not grow with the records it carries.

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/record"
)

// hotpathRecordBytes is the value size of every record produced.
const hotpathRecordBytes = 100

// startHotpathBroker starts a broker on 127.0.0.1 with its data in a
// temporary directory, as samsatest does (which this package's own tests
// cannot import).
func startHotpathBroker(tb testing.TB) *Broker {
	tb.Helper()
	return startBroker(tb, nil)
}

// hotpathClient is a bare connection that sends encoded frames and reads
// each response into the same buffer.
type hotpathClient struct {
	tb   testing.TB
	nc   net.Conn
	size [4]byte
	resp []byte // the last response, after its size
}

func dialHotpath(tb testing.TB, b *Broker) *hotpathClient {
	tb.Helper()
	nc, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { nc.Close() })
	return &hotpathClient{tb: tb, nc: nc}
}

// roundTrip sends one request frame and returns the response's bytes after
// its size, valid until the next call.
func (c *hotpathClient) roundTrip(frame []byte) []byte {
	if _, err := c.nc.Write(frame); err != nil {
		c.tb.Fatalf("write: %v", err)
	}
	if _, err := io.ReadFull(c.nc, c.size[:]); err != nil {
		c.tb.Fatalf("read: %v", err)
	}
	n := int(binary.BigEndian.Uint32(c.size[:]))
	if cap(c.resp) < n {
		c.resp = make([]byte, n)
	}
	c.resp = c.resp[:n]
	if _, err := io.ReadFull(c.nc, c.resp); err != nil {
		c.tb.Fatalf("read: %v", err)
	}
	return c.resp
}

// call sends req and decodes its response (setup and checks, not the
// measured loop).
func (c *hotpathClient) call(req kmsg.Request) kmsg.Response {
	c.tb.Helper()
	return decodeHotpathResponse(c.tb, req, c.roundTrip(hotpathFrame(req)))
}

// hotpathFrame encodes req, in the version it is set to, as a size-prefixed
// frame with correlation id 1.
func hotpathFrame(req kmsg.Request) []byte {
	frame := make([]byte, 4, 64)
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.Key()))
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.GetVersion()))
	frame = binary.BigEndian.AppendUint32(frame, 1)
	frame = binary.BigEndian.AppendUint16(frame, 5)
	frame = append(frame, "bench"...)
	if req.IsFlexible() {
		frame = append(frame, 0)
	}
	frame = req.AppendTo(frame)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	return frame
}

// decodeHotpathResponse decodes the response to req from its bytes after
// the size.
func decodeHotpathResponse(tb testing.TB, req kmsg.Request, body []byte) kmsg.Response {
	tb.Helper()
	if len(body) < 4 || binary.BigEndian.Uint32(body) != 1 {
		tb.Fatalf("%s: response of %d bytes without correlation id 1", kmsg.NameForKey(req.Key()), len(body))
	}
	body = body[4:]
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() {
		body = body[1:] // the response header's tagged fields: none
	}
	if err := resp.ReadFrom(body); err != nil {
		tb.Fatalf("decoding %s v%d response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

// createHotpathTopic creates a topic and waits until this broker holds its
// partitions.
func createHotpathTopic(tb testing.TB, b *Broker, c *hotpathClient, topic string, partitions int32) {
	tb.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(7)
	req.TimeoutMillis = 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, rt)
	resp := c.call(req).(*kmsg.CreateTopicsResponse)
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		tb.Fatalf("create topic %s: %v", topic, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for p := range partitions {
		for {
			if _, ok := b.parts.get(topic, p); ok {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("partition %s-%d is not ready after 30s", topic, p)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// hotpathBatch builds a batch of n records of hotpathRecordBytes each,
// without a producer id.
func hotpathBatch(tb testing.TB, n int) []byte {
	tb.Helper()
	now := time.Now().UnixMilli()
	value := make([]byte, hotpathRecordBytes)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{Offset: int64(i), Timestamp: now, Value: value}
	}
	batch, err := record.Build(record.DefaultBuildOptions(), recs)
	if err != nil {
		tb.Fatal(err)
	}
	return batch
}

// produceRequest is a Produce request (v11, the newest served) carrying one
// batch of n records to each of partitions 0..partitions-1 of topic.
func produceRequest(tb testing.TB, topic string, partitions int32, n int, acks int16) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(11)
	req.Acks, req.TimeoutMillis = acks, 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p
		rp.Records = hotpathBatch(tb, n)
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// checkProduced fails unless every partition of a Produce response
// succeeded.
func checkProduced(tb testing.TB, req *kmsg.ProduceRequest, body []byte) {
	tb.Helper()
	resp := decodeHotpathResponse(tb, req, body).(*kmsg.ProduceResponse)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				tb.Fatalf("produce to %s-%d: %v", t.Topic, p.Partition, err)
			}
		}
	}
}

// BenchmarkProduce sends one Produce request per iteration, with a batch of
// 100-byte records to each of 1 or 16 partitions, and waits for its
// response. allocs/record is the run's allocations over the records it
// produced.
func BenchmarkProduce(b *testing.B) {
	for _, partitions := range []int32{1, 16} {
		for _, acks := range []int16{1, -1} {
			for _, n := range []int{1, 100, 1000} {
				name := fmt.Sprintf("partitions=%d/acks=%d/records=%d", partitions, acks, n)
				b.Run(name, func(b *testing.B) {
					br := startHotpathBroker(b)
					c := dialHotpath(b, br)
					createHotpathTopic(b, br, c, "produce", partitions)
					req := produceRequest(b, "produce", partitions, n, acks)
					frame := hotpathFrame(req)
					checkProduced(b, req, c.roundTrip(frame))
					b.SetBytes(int64(len(frame)))
					b.ReportAllocs()
					before := mallocs()
					for b.Loop() {
						c.roundTrip(frame)
					}
					reportPerRecord(b, mallocs()-before, int(partitions)*n)
					checkProduced(b, req, c.resp)
				})
			}
		}
	}
}

// fetchCase is a Fetch benchmark's partition: batches of perBatch records
// each, of which a request returns records.
type fetchCase struct {
	perBatch, records int
}

var fetchCases = []fetchCase{{1, 1}, {1, 100}, {1, 1000}, {100, 100}, {100, 1000}}

// fetchFixture is a broker with topic "fetch" holding, in partition i,
// 1000 records in batches of fetchCases[i].perBatch records.
type fetchFixture struct {
	b       *Broker
	c       *hotpathClient
	topicID [16]byte
	// batchBytes[i] is the size of one batch of partition i.
	batchBytes []int
}

func newFetchFixture(tb testing.TB) *fetchFixture {
	tb.Helper()
	f := &fetchFixture{b: startHotpathBroker(tb)}
	f.c = dialHotpath(tb, f.b)
	createHotpathTopic(tb, f.b, f.c, "fetch", int32(len(fetchCases)))
	f.topicID = f.b.meta.Image().Topics["fetch"].ID
	for i, fc := range fetchCases {
		batch := hotpathBatch(tb, fc.perBatch)
		f.batchBytes = append(f.batchBytes, len(batch))
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(11)
		req.Acks, req.TimeoutMillis = 1, 30000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "fetch"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = int32(i), batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		frame := hotpathFrame(req)
		for range 1000 / fc.perBatch {
			checkProduced(tb, req, f.c.roundTrip(frame))
		}
	}
	return f
}

// request is a Fetch request in version v, from offset 0 of partition i,
// with max bytes that return exactly fetchCases[i].records records, as a
// consumer waiting for data would send it (min bytes 1, max wait 5 s).
func (f *fetchFixture) request(v int16, i int) *kmsg.FetchRequest {
	fc := fetchCases[i]
	maxBytes := int32(fc.records / fc.perBatch * f.batchBytes[i])
	return NewFetchReq().Version(v).Wait(5000, 1).MaxBytes(maxBytes).PartitionMaxBytes(maxBytes).
		Topic("fetch", f.topicID, 0, int32(i)).
		Request()
}

// checkFetched fails unless a Fetch response returns want records.
func checkFetched(tb testing.TB, req *kmsg.FetchRequest, body []byte, want int) {
	tb.Helper()
	resp := decodeHotpathResponse(tb, req, body).(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		tb.Fatalf("fetch: %v", err)
	}
	got := 0
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				tb.Fatalf("fetch partition %d: %v", p.Partition, err)
			}
			for rest := p.RecordBatches; len(rest) > 0; {
				h, err := record.ParseHeader(rest)
				if err != nil {
					tb.Fatalf("fetch partition %d: %v", p.Partition, err)
				}
				got += int(h.NumRecords)
				rest = rest[h.Size():]
			}
		}
	}
	if got != want {
		tb.Fatalf("fetch returned %d records, want %d", got, want)
	}
}

// BenchmarkFetch sends one Fetch request per iteration, for records from
// offset 0 of a partition that holds them in batches of perBatch records,
// and reads the response. allocs/record is the run's allocations over the
// records it fetched.
func BenchmarkFetch(b *testing.B) {
	f := newFetchFixture(b)
	for _, v := range []int16{4, 17} {
		for i, fc := range fetchCases {
			name := fmt.Sprintf("v%d/perbatch=%d/records=%d", v, fc.perBatch, fc.records)
			b.Run(name, func(b *testing.B) {
				req := f.request(v, i)
				frame := hotpathFrame(req)
				checkFetched(b, req, f.c.roundTrip(frame), fc.records)
				b.SetBytes(int64(len(f.c.resp)))
				b.ReportAllocs()
				before := mallocs()
				for b.Loop() {
					f.c.roundTrip(frame)
				}
				reportPerRecord(b, mallocs()-before, fc.records)
				checkFetched(b, req, f.c.resp, fc.records)
			})
		}
	}
}

// mallocs is the number of heap objects the process has allocated so far.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// reportPerRecord reports allocs/record: allocs, counted over the run's
// b.N requests, over the records they carried.
func reportPerRecord(b *testing.B, allocs uint64, records int) {
	b.ReportMetric(float64(allocs)/float64(b.N)/float64(records), "allocs/record")
}
