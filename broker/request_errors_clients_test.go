package broker_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// requestErrors reads samsa_request_errors_total{api,error} from a scrape;
// 0 when the series is not there.
func (s scraped) requestErrors(api, name string) float64 {
	v, _ := s.value("samsa_request_errors_total", "api="+api, "error="+name)
	return v
}

// TestRequestErrorsCountWhatClientsAreAnswered makes franz-go clients run
// into errors a broker answers every day and reads their counts from
// /metrics: one per code in each response, under the API it answered.
func TestRequestErrorsCountWhatClientsAreAnswered(t *testing.T) {
	sb, base := metricsBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic, missing = "errors", "errors-missing"

	cl, err := kgo.NewClient(kgo.SeedBrokers(sb.Addr()),
		kgo.MetadataMinAge(10*time.Millisecond), kgo.UnknownTopicRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	// A topic created twice: the second time TOPIC_ALREADY_EXISTS.
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("creating %s again: %v, want TOPIC_ALREADY_EXISTS", topic, err)
	}
	// Successes count nothing.
	for range 3 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	s := scrape(t, base)
	what, eq := equal(1)
	s.check(t, what, eq, "samsa_request_errors_total", "api=CreateTopics", "error=TOPIC_ALREADY_EXISTS")
	if v, ok := s.value("samsa_request_errors_total", "api=Produce"); ok {
		t.Errorf("%g Produce errors counted after produces that succeeded", v)
	}

	// Producing to a topic that does not exist: the client asks Metadata,
	// which answers UNKNOWN_TOPIC_OR_PARTITION until the client gives up.
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: missing, Value: []byte("v")}).FirstErr()
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("producing to %s: %v, want UNKNOWN_TOPIC_OR_PARTITION", missing, err)
	}
	s = scrape(t, base)
	s.check(t, "at least 1", func(v float64) bool { return v >= 1 }, "samsa_request_errors_total",
		"api=Metadata", "error=UNKNOWN_TOPIC_OR_PARTITION")

	// A Produce request sent there anyway: one error per partition.
	seed := cl.SeedBrokers()[0]
	produce := kmsg.NewPtrProduceRequest()
	produce.Acks, produce.TimeoutMillis = -1, 10000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = missing
	for p := range int32(2) {
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Partition = p
		pt.Partitions = append(pt.Partitions, pp)
	}
	produce.Topics = append(produce.Topics, pt)
	resp, err := seed.Request(ctx, produce)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.(*kmsg.ProduceResponse).Topics[0].Partitions {
		if p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("produce to %s-%d answered %v", missing, p.Partition, kerr.ErrorForCode(p.ErrorCode))
		}
	}

	// A Fetch past the log's end: OFFSET_OUT_OF_RANGE, once.
	topics, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	fetch := kmsg.NewPtrFetchRequest()
	fetch.ReplicaID, fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes, fetch.SessionEpoch = -1, 100, 1, 1<<20, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = topic, topics[topic].ID
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = 0, 100, 1<<20
	fp.CurrentLeaderEpoch, fp.LastFetchedEpoch, fp.LogStartOffset = -1, -1, -1
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	resp, err = seed.Request(ctx, fetch)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch from offset 100 answered %v", kerr.ErrorForCode(code))
	}

	s = scrape(t, base)
	what, eq = equal(2)
	s.check(t, what, eq, "samsa_request_errors_total", "api=Produce", "error=UNKNOWN_TOPIC_OR_PARTITION")
	what, eq = equal(1)
	s.check(t, what, eq, "samsa_request_errors_total", "api=Fetch", "error=OFFSET_OUT_OF_RANGE")
	if v, _ := s.value("samsa_request_errors_total", "api=Produce"); v != 2 {
		t.Errorf("%g Produce errors in all, want the 2 of the request to %s", v, missing)
	}
	// A consumer told to start past the end is answered the same, then
	// resets to the start and reads the records.
	consumer, err := kgo.NewClient(kgo.SeedBrokers(sb.Addr()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(100)}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	for got := 0; got < 3; {
		fs := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d records of 3: %v", got, err)
		}
		got += fs.NumRecords()
	}
	s = scrape(t, base)
	s.check(t, "at least 2", func(v float64) bool { return v >= 2 }, "samsa_request_errors_total",
		"api=Fetch", "error=OFFSET_OUT_OF_RANGE")

	for _, m := range s.find("samsa_request_errors_total") {
		for _, l := range m.GetLabel() {
			if l.GetName() == "error" && l.GetValue() == "NONE" {
				t.Errorf("NONE counted: %v", m)
			}
		}
	}
}

// TestRequestErrorsCountUnsupportedApiVersions sends an ApiVersions
// request in a version the broker does not know, which it answers in v0
// with UNSUPPORTED_VERSION before any handler sees it.
func TestRequestErrorsCountUnsupportedApiVersions(t *testing.T) {
	sb, base := metricsBroker(t)
	before := scrape(t, base).requestErrors("ApiVersions", "UNSUPPORTED_VERSION")

	nc, err := net.Dial("tcp", sb.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	frame := binary.BigEndian.AppendUint32(nil, 10)
	frame = binary.BigEndian.AppendUint16(frame, uint16(kmsg.ApiVersions))
	frame = binary.BigEndian.AppendUint16(frame, 99) // version
	frame = binary.BigEndian.AppendUint32(frame, 7)  // correlation id
	frame = binary.BigEndian.AppendUint16(frame, 0)  // client id ""
	if _, err := nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(nc, body); err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	if err := resp.ReadFrom(body[4:]); err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("ApiVersions v99 answered %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	if after := scrape(t, base).requestErrors("ApiVersions", "UNSUPPORTED_VERSION"); after != before+1 {
		t.Errorf("ApiVersions UNSUPPORTED_VERSION went from %g to %g, want one more", before, after)
	}
}
