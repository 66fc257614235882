package broker_test

import (
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/broker"
	"github.com/samsa-io/samsa/internal/vfs"
	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/samsatest"
)

// A batch refused for some of its records names each of them in Produce
// v8+ — record_errors, by index in the batch, with a message — besides the
// partition's error message, and writes nothing. INVALID_TIMESTAMP wins
// over INVALID_RECORD when both are at fault, as in Kafka. Before v8 the
// response has only the error code.
func TestProduceNamesTheRecordsAtFault(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb)
	makeTopic(t, cl, "keyed", 1, map[string]string{"cleanup.policy": "compact"})
	makeTopic(t, cl, "timely", 1, map[string]string{"message.timestamp.after.max.ms": "3600000"})
	makeTopic(t, cl, "both", 1, map[string]string{"cleanup.policy": "compact", "message.timestamp.after.max.ms": "3600000"})

	now := time.Now().UnixMilli()
	tomorrow := now + 24*time.Hour.Milliseconds()
	batch := func(n int, keyless []int, future []int) []byte {
		var recs []record.Record
		for i := range n {
			r := record.Record{Offset: int64(i), Timestamp: now, Key: []byte{'k', byte('0' + i)}, Value: []byte("v")}
			if slices.Contains(keyless, i) {
				r.Key = nil
			}
			if slices.Contains(future, i) {
				r.Timestamp = tomorrow
			}
			recs = append(recs, r)
		}
		b, err := record.Build(record.DefaultBuildOptions(), recs)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name    string
		topic   string
		records []byte
		want    *kerr.Error
		blamed  []int32
		message string // in each record's message
	}{
		{"keyless records on a compacted topic", "keyed", batch(5, []int{1, 3}, nil), kerr.InvalidRecord, []int32{1, 3}, "without a key"},
		{"a timestamp too far ahead", "timely", batch(4, nil, []int{2}), kerr.InvalidTimestamp, []int32{2}, "timestamp"},
		{"both", "both", batch(4, []int{0}, []int{2}), kerr.InvalidTimestamp, []int32{0, 2}, ""},
	} {
		for _, v := range []int16{7, 8, 9, 11} {
			req := kmsg.NewPtrProduceRequest()
			req.SetVersion(v)
			req.Acks, req.TimeoutMillis = -1, 30000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = tc.topic
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Records = tc.records
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			p := rawRequest(t, sb.Addr(), req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]

			if p.ErrorCode != tc.want.Code || p.BaseOffset != -1 {
				t.Errorf("%s, v%d: %v at offset %d, want %v", tc.name, v, kerr.ErrorForCode(p.ErrorCode), p.BaseOffset, tc.want)
			}
			var blamed []int32
			for _, er := range p.ErrorRecords {
				blamed = append(blamed, er.RelativeOffset)
				if er.ErrorMessage == nil || !strings.Contains(*er.ErrorMessage, tc.message) {
					t.Errorf("%s, v%d: record %d's message %v does not say %q", tc.name, v, er.RelativeOffset, er.ErrorMessage, tc.message)
				}
			}
			switch {
			case v < 8 && (len(blamed) > 0 || p.ErrorMessage != nil):
				t.Errorf("%s, v%d: record errors %v, message %v before v8", tc.name, v, blamed, p.ErrorMessage)
			case v >= 8 && !slices.Equal(blamed, tc.blamed):
				t.Errorf("%s, v%d: records blamed %v, want %v", tc.name, v, blamed, tc.blamed)
			case v >= 8 && (p.ErrorMessage == nil || *p.ErrorMessage == ""):
				t.Errorf("%s, v%d: no error message", tc.name, v)
			}
		}
	}
	for _, topic := range []string{"keyed", "timely", "both"} {
		if o := listOffsetOf(t, cl, topic, 0, -1); o.Offset != 0 {
			t.Errorf("%s: latest offset %d after refused batches, want 0", topic, o.Offset)
		}
	}
	// The same records, all keyed and on time, are taken.
	if res := produceRaw(t, cl, "both", 0, batch(4, nil, nil)); res.ErrorCode != 0 || res.BaseOffset != 0 {
		t.Fatalf("good batch: %v at offset %d", kerr.ErrorForCode(res.ErrorCode), res.BaseOffset)
	}
}

// An acks=0 produce that fails on a partition closes its connection, as
// Kafka does: there is no response, so the close is what makes the client
// refresh its metadata. A request read before it is still answered. An
// acks=0 produce that succeeds leaves the connection open.
func TestAcksZeroErrorClosesTheConnection(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb)
	makeTopic(t, cl, "fire", 1, nil)
	makeTopic(t, cl, "compacted", 1, map[string]string{"cleanup.policy": "compact"})
	produce := func(topic string, p int32, records []byte) *kmsg.ProduceRequest {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(9)
		req.Acks, req.TimeoutMillis = 0, 30000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, records
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}
	apiVersions := kmsg.NewPtrApiVersionsRequest()
	apiVersions.SetVersion(3)
	good := buildBatch(t, record.CodecNone, "g", 2, 1, -1, -1, -1)
	keyless, err := record.Build(record.DefaultBuildOptions(), []record.Record{{Value: []byte("no key")}})
	if err != nil {
		t.Fatal(err)
	}

	c := dialRaw(t, sb.Addr())
	c.write(append(requestFrame(produce("fire", 0, good), 1), requestFrame(apiVersions, 2)...))
	c.readResponse(apiVersions, 2) // the produce has no response; the connection is open

	for _, tc := range []struct {
		name string
		req  *kmsg.ProduceRequest
	}{
		{"unknown partition", produce("fire", 7, good)},
		{"unknown topic", produce("nowhere", 0, good)},
		{"keyless record on a compacted topic", produce("compacted", 0, keyless)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, sb.Addr())
			c.write(append(requestFrame(apiVersions, 1), requestFrame(tc.req, 2)...))
			c.readResponse(apiVersions, 1)
			c.expectClosed()
		})
	}
	if o := listOffsetOf(t, cl, "fire", 0, -1); o.Offset != 2 {
		t.Errorf("latest offset of fire %d, want 2 (the good acks=0 batch)", o.Offset)
	}
}

// stallingFS holds the Sync of every file whose name contains stall, once
// armed, until released: an fsync that does not come back.
type stallingFS struct {
	vfs.FS
	stall   string
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

type stallingFile struct {
	vfs.File
	fs   *stallingFS
	name string
}

func (f stallingFile) Sync() error {
	if f.fs.armed.Load() && strings.Contains(f.name, f.fs.stall) {
		select {
		case f.fs.entered <- struct{}{}:
		default:
		}
		<-f.fs.release
	}
	return f.File.Sync()
}

func (s *stallingFS) Create(name string) (vfs.File, error) {
	f, err := s.FS.Create(name)
	return stallingFile{f, s, name}, err
}

func (s *stallingFS) OpenAppend(name string) (vfs.File, error) {
	f, err := s.FS.OpenAppend(name)
	return stallingFile{f, s, name}, err
}

// An acks=all produce waits for durability at most timeout_ms: when fsync
// stalls, the partition is REQUEST_TIMED_OUT, and the batch is still in the
// log (as in Kafka, where the data may still be written). The fsync is held
// until the answer has come, so the outcome does not depend on timing.
func TestProduceTimesOutWaitingForDurability(t *testing.T) {
	fs := &stallingFS{FS: vfs.NewCrashableMem(), stall: "stalled-0", entered: make(chan struct{}, 1), release: make(chan struct{})}
	sb := samsatest.Start(t, samsatest.WithConfig(func(c *broker.Config) { c.FS = fs }))
	released := false
	release := func() {
		if !released {
			released = true
			close(fs.release)
		}
	}
	t.Cleanup(release) // before the broker closes
	cl := clientFor(t, sb)
	makeTopic(t, cl, "stalled", 1, nil)

	fs.armed.Store(true)
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks, req.TimeoutMillis = -1, 100
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "stalled"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = buildBatch(t, record.CodecNone, "s", 3, 1, -1, -1, -1)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	p := rawRequest(t, sb.Addr(), req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	select {
	case <-fs.entered:
	default:
		t.Fatal("the answer came without an fsync of the partition having begun")
	}
	if p.ErrorCode != kerr.RequestTimedOut.Code {
		t.Fatalf("error %v, want REQUEST_TIMED_OUT", kerr.ErrorForCode(p.ErrorCode))
	}
	if p.ErrorMessage == nil || !strings.Contains(*p.ErrorMessage, "timeout_ms") {
		t.Errorf("error message %v", p.ErrorMessage)
	}

	// The batch is in the log: acks=1 is answered without an fsync and
	// lands after it.
	req.Acks = 1
	req.Topics[0].Partitions[0].Records = buildBatch(t, record.CodecNone, "t", 1, 1, -1, -1, -1)
	if p := rawRequest(t, sb.Addr(), req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != 3 {
		t.Fatalf("acks=1 after the timeout: %v at offset %d, want offset 3", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}

	// Once fsync comes back, acks=all is answered again, after the rest.
	release()
	fs.armed.Store(false)
	req.Acks, req.TimeoutMillis = -1, 30000
	if p := rawRequest(t, sb.Addr(), req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != 4 {
		t.Fatalf("acks=all after the stall: %v at offset %d, want offset 4", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	recs := consumeFrom(t, sb, "stalled", 1, 5)
	checkContiguous(t, recs)
}
