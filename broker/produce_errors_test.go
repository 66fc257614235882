package broker_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

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
