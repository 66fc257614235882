package txn

import (
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestInitNewIDGetsFreshProducerIDAtEpochZero(t *testing.T) {
	h := newHarness(t)
	out, resp := h.initID("tx", 60000)
	if resp == nil || resp.ErrorCode != 0 || resp.ProducerID != h.pids || resp.ProducerEpoch != 0 {
		t.Fatalf("reply %+v, want producer id %d epoch 0", resp, h.pids)
	}
	if resp.Version != 4 {
		t.Fatalf("reply version %d", resp.Version)
	}
	if len(out.Records) != 1 || len(out.Markers) != 0 {
		t.Fatalf("output %+v", out)
	}
	v := h.lastValue("tx")
	if v.Version != 1 || v.State != 0 || v.ProducerID != resp.ProducerID || v.ProducerEpoch != 0 ||
		v.TimeoutMillis != 60000 || v.Topics != nil || v.StartTimestamp != -1 || v.LastUpdateTimestamp != t0.UnixMilli() {
		t.Fatalf("record %+v", v)
	}
	d := h.describe("tx")
	if d.ErrorCode != 0 || d.State != "Empty" || d.ProducerID != resp.ProducerID || d.ProducerEpoch != 0 || d.TimeoutMillis != 60000 {
		t.Fatalf("describe %+v", d)
	}
	h.checkReload()
}

func TestInitRefusesBadRequests(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name    string
		v       int16
		id      *string
		timeout int32
		pid     int64
		epoch   int16
		want    int16
	}{
		{"no transactional id", 4, nil, 1000, -1, -1, kerr.InvalidRequest.Code},
		{"empty transactional id", 4, new(string), 1000, -1, -1, kerr.InvalidRequest.Code},
		{"zero timeout", 4, ptr("tx"), 0, -1, -1, kerr.InvalidTransactionTimeout.Code},
		{"negative timeout", 4, ptr("tx"), -5, -1, -1, kerr.InvalidTransactionTimeout.Code},
		{"timeout above max", 4, ptr("tx"), 15*60*1000 + 1, -1, -1, kerr.InvalidTransactionTimeout.Code},
		{"producer id without epoch", 3, ptr("tx"), 1000, 5, -1, kerr.InvalidRequest.Code},
		{"epoch without producer id", 5, ptr("tx"), 1000, -1, 3, kerr.InvalidRequest.Code},
	} {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version, req.TransactionalID, req.TransactionTimeoutMillis = tc.v, tc.id, tc.timeout
		req.ProducerID, req.ProducerEpoch = tc.pid, tc.epoch
		call := h.call(tc.v)
		out := h.take(h.c.InitProducerID(call, req))
		resp := h.replies[call.Token].(*kmsg.InitProducerIDResponse)
		if resp.ErrorCode != tc.want || resp.ProducerID != -1 || resp.ProducerEpoch != -1 || len(out.Records) != 0 {
			t.Errorf("%s: %+v, records %d; want code %d", tc.name, resp, len(out.Records), tc.want)
		}
	}
	if len(h.c.txns) != 0 {
		t.Fatalf("refused requests created ids: %v", snapshotOf(h.c))
	}
	// The maximum itself is allowed.
	if _, resp := h.initID("tx", 15*60*1000); resp.ErrorCode != 0 {
		t.Fatalf("max timeout refused: %+v", resp)
	}
}

func ptr[T any](v T) *T { return &v }

func TestInitBumpsTheEpochOfAnIdleID(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("tx")
	// Empty → epoch+1, same producer id.
	pid2, epoch2 := h.mustInit("tx")
	if pid2 != pid || epoch2 != epoch+1 {
		t.Fatalf("second init: %d/%d, want %d/%d", pid2, epoch2, pid, epoch+1)
	}
	// CompleteCommit → epoch+1.
	h.mustAdd("tx", pid, epoch2, tp("a", 0))
	h.end(3, "tx", pid, epoch2, true)
	h.writeAll()
	if d := h.describe("tx"); d.State != "CompleteCommit" {
		t.Fatalf("state %s", d.State)
	}
	_, resp := h.initID("tx", 30000)
	if resp.ProducerID != pid || resp.ProducerEpoch != epoch2+1 {
		t.Fatalf("init after commit: %+v", resp)
	}
	if d := h.describe("tx"); d.State != "Empty" || d.TimeoutMillis != 30000 || len(d.Topics) != 0 || d.StartTimestamp != -1 {
		t.Fatalf("after init: %+v", d)
	}
	h.checkReload()
}

func TestInitRotatesTheProducerIDWhenTheEpochIsExhausted(t *testing.T) {
	h := newHarness(t)
	pid, _ := h.mustInit("tx")
	h.c.txns["tx"].epoch = math.MaxInt16 - 1 // as if bumped that often
	_, resp := h.initID("tx", 60000)
	if resp.ErrorCode != 0 || resp.ProducerID == pid || resp.ProducerID != h.pids || resp.ProducerEpoch != 0 {
		t.Fatalf("init at exhausted epoch: %+v (old producer id %d)", resp, pid)
	}
	if v := h.lastValue("tx"); v.PreviousProducerID != pid || v.ProducerID != resp.ProducerID {
		t.Fatalf("record %+v", v)
	}
	if h.c.byProducer[pid] != nil || h.c.byProducer[resp.ProducerID] == nil {
		t.Fatalf("producer index not moved")
	}
	h.checkReload()
}

func TestInitKIP360RetryAfterRotationIsRecognized(t *testing.T) {
	h := newHarness(t)
	pid, _ := h.mustInit("tx")
	h.c.txns["tx"].epoch = math.MaxInt16 - 1
	// The producer presents its exhausted epoch: rotate, remembering it.
	_, first := h.initFull(4, "tx", 60000, pid, math.MaxInt16-1)
	if first.ErrorCode != 0 || first.ProducerID == pid || first.ProducerEpoch != 0 {
		t.Fatalf("rotation: %+v", first)
	}
	// The reply was lost; the producer retries with the old id and epoch:
	// it gets the same new id and epoch.
	_, retry := h.initFull(4, "tx", 60000, pid, math.MaxInt16-1)
	if retry.ErrorCode != 0 || retry.ProducerID != first.ProducerID || retry.ProducerEpoch != 0 {
		t.Fatalf("retry after rotation: %+v, want %d/0", retry, first.ProducerID)
	}
	// The old id with a non-exhausted epoch is fenced.
	_, fenced := h.initFull(4, "tx", 60000, pid, 7)
	if fenced.ErrorCode != kerr.ProducerFenced.Code {
		t.Fatalf("old id, other epoch: %+v", fenced)
	}
}

func TestInitKIP360ProducerIDAndEpoch(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("tx")
	// The current id and epoch: bumped.
	_, resp := h.initFull(4, "tx", 60000, pid, epoch)
	if resp.ErrorCode != 0 || resp.ProducerID != pid || resp.ProducerEpoch != epoch+1 {
		t.Fatalf("bump with current epoch: %+v", resp)
	}
	// A retry with the epoch before the bump: the same answer, no bump.
	_, retry := h.initFull(4, "tx", 60000, pid, epoch)
	if retry.ErrorCode != 0 || retry.ProducerID != pid || retry.ProducerEpoch != epoch+1 {
		t.Fatalf("retry: %+v", retry)
	}
	// Another epoch: fenced (INVALID_PRODUCER_EPOCH before v4).
	for _, tc := range []struct {
		v    int16
		pid  int64
		want int16
	}{
		{5, pid, kerr.ProducerFenced.Code},
		{4, pid + 100, kerr.ProducerFenced.Code}, // another producer id
		{3, pid, kerr.InvalidProducerEpoch.Code},
	} {
		_, r := h.initFull(tc.v, "tx", 60000, tc.pid, epoch+5)
		if r.ErrorCode != tc.want {
			t.Errorf("v%d producer %d epoch %d: code %d, want %d", tc.v, tc.pid, epoch+5, r.ErrorCode, tc.want)
		}
	}
	// A new id with a producer id and epoch (a producer recovering from
	// UNKNOWN_PRODUCER_ID after its id expired): it gets a fresh one.
	_, fresh := h.initFull(4, "other", 60000, 77, 3)
	if fresh.ErrorCode != 0 || fresh.ProducerEpoch != 0 {
		t.Fatalf("new id with KIP-360 fields: %+v", fresh)
	}
	// After a new producer (no KIP-360 fields) bumps, the previous epoch
	// is no longer a retry.
	_, cur := h.initID("tx", 60000)
	_, stale := h.initFull(4, "tx", 60000, pid, cur.ProducerEpoch-1)
	if stale.ErrorCode != kerr.ProducerFenced.Code {
		t.Fatalf("previous epoch after a new producer: %+v", stale)
	}
	h.checkReload()
}

func TestInitFencesAnOngoingTransaction(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("tx")
	h.mustAdd("tx", pid, epoch, tp("a", 0), tp("b", 1))

	// A second producer with the same transactional id.
	out, resp := h.initID("tx", 60000)
	if resp != nil {
		t.Fatalf("fencing InitProducerId answered before the abort: %+v", resp)
	}
	m := onlyMarkers(t, out)
	if m.Commit || m.ProducerID != pid || m.ProducerEpoch != epoch+1 || len(m.Partitions) != 2 {
		t.Fatalf("abort markers %+v, want producer %d epoch %d", m, pid, epoch+1)
	}
	if v := h.lastValue("tx"); kmsg.TransactionState(v.State) != 3 || v.ProducerEpoch != epoch+1 || len(v.Topics) != 2 {
		t.Fatalf("fence record %+v, want PrepareAbort at epoch %d", v, epoch+1)
	}
	h.checkReload()

	// The old producer is fenced everywhere meanwhile.
	if _, codes := h.add(3, "tx", pid, epoch, tp("c", 0)); oneCode(t, codes) != kerr.ProducerFenced.Code {
		t.Fatalf("old producer's add: %v", codes)
	}
	if _, r := h.end(3, "tx", pid, epoch, true); r.ErrorCode != kerr.ProducerFenced.Code {
		t.Fatalf("old producer's commit: %+v", r)
	}
	if code := h.c.InTransaction(pid, epoch, tp("a", 0)); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("old producer's produce: %d", code)
	}
	// A third InitProducerId meanwhile is told to retry.
	if _, r := h.initID("tx", 60000); r == nil || r.ErrorCode != kerr.ConcurrentTransactions.Code {
		t.Fatalf("init during the fence: %+v", r)
	}

	// Markers written: the abort completes, then the new producer's
	// epoch is bumped once more and it is answered.
	token := h.next - 3 // the fencing InitProducerId
	out = h.written(m.ID)
	if len(out.Records) != 2 {
		t.Fatalf("%d records after markers, want CompleteAbort and Empty", len(out.Records))
	}
	r, ok := h.replies[token].(*kmsg.InitProducerIDResponse)
	if !ok || r.ErrorCode != 0 || r.ProducerID != pid || r.ProducerEpoch != epoch+2 {
		t.Fatalf("fencing InitProducerId answered %+v, want %d/%d", h.replies[token], pid, epoch+2)
	}
	if d := h.describe("tx"); d.State != "Empty" || d.ProducerEpoch != epoch+2 {
		t.Fatalf("after fence: %+v", d)
	}
	h.checkReload()
}

func TestInitDuringPrepareIsToldToRetry(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("tx")
	h.mustAdd("tx", pid, epoch, tp("a", 0))
	h.end(3, "tx", pid, epoch, true)
	_, resp := h.initID("tx", 60000)
	if resp == nil || resp.ErrorCode != kerr.ConcurrentTransactions.Code {
		t.Fatalf("init while PrepareCommit: %+v", resp)
	}
	h.writeAll()
	_, resp = h.initID("tx", 60000)
	if resp.ErrorCode != 0 || resp.ProducerEpoch != epoch+1 {
		t.Fatalf("init after commit: %+v", resp)
	}
}

func TestInitWithoutAReservedProducerID(t *testing.T) {
	h := newHarness(t)
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version, req.TransactionalID, req.TransactionTimeoutMillis = 4, ptr("tx"), 1000
	call := h.call(4)
	call.NewProducerID = -1
	h.take(h.c.InitProducerID(call, req))
	if r := h.replies[call.Token].(*kmsg.InitProducerIDResponse); r.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("reply %+v", r)
	}
	if len(h.c.txns) != 0 {
		t.Fatal("id created without a producer id")
	}
}
