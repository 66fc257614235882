package broker_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/samsatest"
)

// initProducerID asks for an idempotent producer id.
func initProducerID(t *testing.T, cl *kgo.Client) (int64, int16) {
	t.Helper()
	resp, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(deadlineCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatal(err)
	}
	return resp.ProducerID, resp.ProducerEpoch
}

func TestIdempotentRetriesAreWrittenOnce(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb)
	makeTopic(t, cl, "idem", 1, nil)
	pid, epoch := initProducerID(t, cl)
	if epoch != 0 {
		t.Fatalf("epoch %d", epoch)
	}
	first := buildBatch(t, record.CodecGzip, "first", 3, 1000, pid, 0, 0)
	second := buildBatch(t, record.CodecNone, "second", 2, 2000, pid, 0, 3)

	expect := func(what string, b []byte, code int16, base int64) {
		t.Helper()
		res := produceRaw(t, cl, "idem", 0, b)
		if res.ErrorCode != code || (code == 0 && res.BaseOffset != base) {
			t.Fatalf("%s: error %v base offset %d; want %v at %d", what, kerr.ErrorForCode(res.ErrorCode), res.BaseOffset, kerr.ErrorForCode(code), base)
		}
	}
	expectEnd := func(end int64) {
		t.Helper()
		if o := listOffsetOf(t, cl, "idem", 0, -1).Offset; o != end {
			t.Fatalf("log end %d, want %d", o, end)
		}
	}
	expect("first", first, 0, 0)
	expect("first again", first, 0, 0)
	expectEnd(3)
	expect("second", second, 0, 3)
	expect("first once more", first, 0, 0)
	expect("second again", second, 0, 3)
	expectEnd(5)

	// Across a restart the state is rebuilt from the log.
	sb.Restart()
	cl = clientFor(t, sb)
	expect("second after restart", second, 0, 3)
	expect("first after restart", first, 0, 0)
	expectEnd(5)

	expect("gap", buildBatch(t, record.CodecNone, "gap", 1, 3000, pid, 0, 6), kerr.OutOfOrderSequenceNumber.Code, 0)
	expect("overlap", buildBatch(t, record.CodecNone, "overlap", 2, 3000, pid, 0, 4), kerr.OutOfOrderSequenceNumber.Code, 0)
	expectEnd(5)
	expect("next", buildBatch(t, record.CodecNone, "next", 1, 3000, pid, 0, 5), 0, 5)
	expect("new epoch not from 0", buildBatch(t, record.CodecNone, "e1", 1, 3000, pid, 1, 6), kerr.OutOfOrderSequenceNumber.Code, 0)
	expect("new epoch", buildBatch(t, record.CodecNone, "e1", 1, 3000, pid, 1, 0), 0, 6)
	expect("old epoch", buildBatch(t, record.CodecNone, "e0", 1, 3000, pid, 0, 6), kerr.InvalidProducerEpoch.Code, 0)
	expectEnd(7)

	// Another producer id is independent; one the partition has not seen
	// may start at any sequence (KIP-360), as in Kafka.
	other, _ := initProducerID(t, cl)
	expect("other producer", buildBatch(t, record.CodecNone, "o", 1, 3000, other, 0, 17), 0, 7)
	expectEnd(8)

	got := consumeFrom(t, sb, "idem", 1, 8)
	checkContiguous(t, got)
	for i, want := range []string{"first-0", "first-1", "first-2", "second-0", "second-1", "next-0", "e1-0", "o-0"} {
		if string(got[i].Key) != want {
			t.Fatalf("offset %d: key %q, want %q", i, got[i].Key, want)
		}
	}
}

func TestProducerIDsAreUniqueAcrossRestarts(t *testing.T) {
	sb := samsatest.Start(t)
	seen := map[int64]bool{}
	var last int64 = -1
	for round := range 3 {
		cl := clientFor(t, sb)
		for range 3 {
			id, epoch := initProducerID(t, cl)
			if seen[id] || id <= last || epoch != 0 {
				t.Fatalf("round %d: producer id %d epoch %d after %d", round, id, epoch, last)
			}
			seen[id], last = true, id
		}
		cl.Close()
		sb.Restart()
	}
}

func TestInitProducerIDChecksItsFields(t *testing.T) {
	sb := samsatest.Start(t)
	for _, tc := range []struct {
		txnID string
		want  *kerr.Error
	}{{"", kerr.InvalidRequest}} {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.SetVersion(4)
		req.TransactionalID = kmsg.StringPtr(tc.txnID)
		req.TransactionTimeoutMillis = 60000
		resp := rawRequest(t, sb.Addr(), req).(*kmsg.InitProducerIDResponse)
		if resp.ErrorCode != tc.want.Code || resp.ProducerID != -1 {
			t.Errorf("transactional id %q: %+v, want %v", tc.txnID, resp, tc.want)
		}
	}
	for _, v := range []int16{0, 2, 5} {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.SetVersion(v)
		if resp := rawRequest(t, sb.Addr(), req).(*kmsg.InitProducerIDResponse); resp.ErrorCode != 0 || resp.ProducerID < 0 {
			t.Errorf("v%d: %+v", v, resp)
		}
	}
	req := kmsg.NewPtrInitProducerIDRequest()
	req.SetVersion(5)
	req.ProducerID = 12
	if resp := rawRequest(t, sb.Addr(), req).(*kmsg.InitProducerIDResponse); resp.ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("producer id without epoch: %+v", resp)
	}
}

func TestIdempotentProducerClient(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb, kgo.DefaultProduceTopic("idem-kgo"))
	makeTopic(t, cl, "idem-kgo", 2, nil)
	var recs []*kgo.Record
	for i := range 500 {
		recs = append(recs, &kgo.Record{Key: []byte{byte(i % 7)}, Value: []byte{byte(i)}})
	}
	if err := cl.ProduceSync(deadlineCtx(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	sb.Restart()
	if err := cl.ProduceSync(deadlineCtx(t), recs...).FirstErr(); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	checkContiguous(t, consumeFrom(t, sb, "idem-kgo", 2, 1000))
}
