package broker_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/samsatest"
)

// timedTopic creates topic "times" holding offsets 0–2 at timestamps
// 1000–1002, 3–4 at 5000–5001 and 5 at 3000.
func timedTopic(t *testing.T, cl *kgo.Client) {
	t.Helper()
	makeTopic(t, cl, "times", 1, nil)
	for _, b := range []struct {
		n  int
		ts int64
	}{{3, 1000}, {2, 5000}, {1, 3000}} {
		if res := produceRaw(t, cl, "times", 0, buildBatch(t, record.CodecSnappy, "t", b.n, b.ts, -1, -1, -1)); res.ErrorCode != 0 {
			t.Fatalf("produce: %+v", res)
		}
	}
}

func checkListOffsets(t *testing.T, cl *kgo.Client) {
	t.Helper()
	epoch := leaderEpoch(t, cl, "times", 0)
	for _, tc := range []struct {
		name              string
		ts                int64
		offset, timestamp int64
		epoch             int32
	}{
		{"earliest", -2, 0, -1, epoch},
		{"latest", -1, 6, -1, epoch},
		{"max timestamp", -3, 4, 5001, epoch},
		{"earliest local", -4, 0, -1, epoch},
		{"latest tiered", -5, -1, -1, -1},
		{"exact time", 1001, 1, 1001, epoch},
		{"between batches", 1003, 3, 5000, epoch},
		{"first by offset, not by time", 2000, 3, 5000, epoch},
		{"zero", 0, 0, 1000, epoch},
		{"after everything", 6000, -1, -1, -1},
	} {
		o := listOffsetOf(t, cl, "times", 0, tc.ts)
		if o.ErrorCode != 0 || o.Offset != tc.offset || o.Timestamp != tc.timestamp || o.LeaderEpoch != tc.epoch {
			t.Errorf("%s (%d): offset %d timestamp %d epoch %d error %d; want %d %d %d",
				tc.name, tc.ts, o.Offset, o.Timestamp, o.LeaderEpoch, o.ErrorCode, tc.offset, tc.timestamp, tc.epoch)
		}
	}
}

func TestListOffsets(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb)
	timedTopic(t, cl)
	checkListOffsets(t, cl)

	sb.Restart()
	checkListOffsets(t, clientFor(t, sb))
}

func TestListOffsetsVersionsAndErrors(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb)
	timedTopic(t, cl)
	epoch := leaderEpoch(t, cl, "times", 0)

	request := func(version int16, isolation int8, parts ...kmsg.ListOffsetsRequestTopicPartition) []kmsg.ListOffsetsResponseTopicPartition {
		req := kmsg.NewPtrListOffsetsRequest()
		req.SetVersion(version)
		req.IsolationLevel = isolation
		req.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "times", Partitions: parts}}
		return rawRequest(t, sb.Addr(), req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions
	}
	part := func(p int32, ts int64, currentEpoch int32) kmsg.ListOffsetsRequestTopicPartition {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = p, ts, currentEpoch
		return rp
	}

	// Special timestamps need the version that introduced them.
	for _, tc := range []struct {
		version int16
		ts      int64
		want    int16
	}{
		{6, -3, kerr.UnsupportedVersion.Code}, {7, -3, 0},
		{7, -4, kerr.UnsupportedVersion.Code}, {8, -4, 0},
		{8, -5, kerr.UnsupportedVersion.Code}, {9, -5, 0},
		{1, -2, 0}, {1, -1, 0}, {1, 1001, 0},
	} {
		if got := request(tc.version, 0, part(0, tc.ts, -1))[0]; got.ErrorCode != tc.want {
			t.Errorf("v%d timestamp %d: error %d, want %d", tc.version, tc.ts, got.ErrorCode, tc.want)
		}
	}
	if got := request(1, 0, part(0, 1001, -1))[0]; got.Offset != 1 || got.Timestamp != 1001 {
		t.Errorf("v1 by time: %+v", got)
	}
	if got := request(9, 1, part(0, -1, -1))[0]; got.ErrorCode != 0 || got.Offset != 6 {
		t.Errorf("read committed latest: %+v", got)
	}

	got := request(9, 0, part(0, -1, epoch+1), part(1, -1, -1))
	if got[0].ErrorCode != kerr.UnknownLeaderEpoch.Code || got[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("newer leader epoch, partition 1 of 1: %+v", got)
	}
	if epoch > 0 {
		if got := request(9, 0, part(0, -1, epoch-1)); got[0].ErrorCode != kerr.FencedLeaderEpoch.Code {
			t.Errorf("older leader epoch: %+v", got)
		}
	}
	got = request(9, 0, part(0, -1, epoch), part(0, -2, -1))
	if len(got) != 2 || got[0].ErrorCode != kerr.InvalidRequest.Code || got[1].ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("partition named twice: %+v", got)
	}
	req := kmsg.NewPtrListOffsetsRequest()
	req.SetVersion(9)
	req.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "nope", Partitions: []kmsg.ListOffsetsRequestTopicPartition{part(0, -1, -1)}}}
	if o := rawRequest(t, sb.Addr(), req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]; o.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown topic: %+v", o)
	}
}

func TestOffsetForLeaderEpoch(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb)
	timedTopic(t, cl)
	epoch := leaderEpoch(t, cl, "times", 0)

	request := func(version int16, topic string, p int32, current, asked int32) kmsg.OffsetForLeaderEpochResponseTopicPartition {
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.SetVersion(version)
		req.ReplicaID = -1
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = p, current, asked
		req.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{rp}}}
		return rawRequest(t, sb.Addr(), req).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]
	}
	for _, v := range []int16{0, 1, 2, 3, 4} {
		wantEpoch := epoch
		if v == 0 {
			wantEpoch = -1 // not in v0 responses
		}
		if got := request(v, "times", 0, -1, epoch); got.ErrorCode != 0 || got.EndOffset != 6 || got.LeaderEpoch != wantEpoch {
			t.Errorf("v%d current epoch: %+v", v, got)
		}
	}
	if got := request(4, "times", 0, -1, epoch+1); got.ErrorCode != 0 || got.EndOffset != -1 || got.LeaderEpoch != -1 {
		t.Errorf("future epoch: %+v", got)
	}
	if got := request(4, "times", 0, epoch+1, epoch); got.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Errorf("newer current epoch: %+v", got)
	}
	if got := request(4, "times", 3, -1, epoch); got.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown partition: %+v", got)
	}
	if got := request(4, "nope", 0, -1, epoch); got.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown topic: %+v", got)
	}

	// What a kgo consumer does after a leader change: validate its position.
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = -1
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.CurrentLeaderEpoch, rp.LeaderEpoch = epoch, epoch
	req.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{{Topic: "times", Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{rp}}}
	resp, err := req.RequestWith(deadlineCtx(t), cl)
	if err != nil || resp.Topics[0].Partitions[0].EndOffset != 6 {
		t.Fatalf("kgo: %v %+v", err, resp)
	}
}
