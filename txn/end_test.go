package txn

import (
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestEndTxnCommitsThroughPrepareAndMarkers(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("tx")
	h.mustAdd("tx", pid, epoch, tp("a", 0), tp("b", 3))
	h.now = h.now.Add(2000)

	out, resp := h.end(3, "tx", pid, epoch, true)
	// The reply is in the Output of the PrepareCommit record: it is sent
	// once that record is durable, as Kafka answers.
	if resp.ErrorCode != 0 || len(out.Records) != 1 || len(out.Replies) != 1 {
		t.Fatalf("EndTxn: %+v, output %+v", resp, out)
	}
	if v := h.lastValue("tx"); v.State != 2 || v.ProducerEpoch != epoch || len(v.Topics) != 2 {
		t.Fatalf("record %+v, want PrepareCommit", v)
	}
	m := onlyMarkers(t, out)
	if !m.Commit || m.ProducerID != pid || m.ProducerEpoch != epoch ||
		len(m.Partitions) != 2 || m.Partitions[0] != tp("a", 0) || m.Partitions[1] != tp("b", 3) {
		t.Fatalf("markers %+v", m)
	}
	h.checkReload()

	// Retries while the markers are written.
	if _, r := h.end(3, "tx", pid, epoch, true); r.ErrorCode != kerr.ConcurrentTransactions.Code {
		t.Fatalf("retried commit during PrepareCommit: %+v", r)
	}
	if _, r := h.end(3, "tx", pid, epoch, false); r.ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("abort during PrepareCommit: %+v", r)
	}

	h.now = h.now.Add(1000)
	out = h.written(m.ID)
	v := h.lastValue("tx")
	if len(out.Records) != 1 || v.State != 4 || len(v.Topics) != 0 || v.LastUpdateTimestamp != h.now.UnixMilli() {
		t.Fatalf("after markers: %+v", v)
	}
	if d := h.describe("tx"); d.State != "CompleteCommit" || len(d.Topics) != 0 {
		t.Fatalf("describe %+v", d)
	}
	// Markers reported twice: nothing happens.
	if out := h.c.MarkersWritten(h.now, m.ID, nil); len(out.Records)+len(out.Markers)+len(out.Replies) != 0 {
		t.Fatalf("stale MarkersWritten: %+v", out)
	}
	// Retries once complete.
	if _, r := h.end(3, "tx", pid, epoch, true); r.ErrorCode != 0 {
		t.Fatalf("retried commit after completion: %+v", r)
	}
	if _, r := h.end(3, "tx", pid, epoch, false); r.ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("abort after commit: %+v", r)
	}
	h.checkReload()
}

func TestEndTxnAborts(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("tx")
	h.mustAdd("tx", pid, epoch, tp("a", 0))
	out, resp := h.end(3, "tx", pid, epoch, false)
	m := onlyMarkers(t, out)
	if resp.ErrorCode != 0 || m.Commit || h.describe("tx").State != "PrepareAbort" {
		t.Fatalf("abort: %+v %+v", resp, m)
	}
	if _, r := h.end(3, "tx", pid, epoch, false); r.ErrorCode != kerr.ConcurrentTransactions.Code {
		t.Fatalf("retried abort: %+v", r)
	}
	h.written(m.ID)
	if h.describe("tx").State != "CompleteAbort" {
		t.Fatal("not CompleteAbort")
	}
	if _, r := h.end(3, "tx", pid, epoch, false); r.ErrorCode != 0 {
		t.Fatalf("retried abort after completion: %+v", r)
	}
	if _, r := h.end(3, "tx", pid, epoch, true); r.ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("commit after abort: %+v", r)
	}
}

func TestEndTxnErrors(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("tx")
	for _, tc := range []struct {
		name   string
		v      int16
		id     string
		pid    int64
		epoch  int16
		commit bool
		want   int16
	}{
		{"no transaction (Empty)", 3, "tx", pid, epoch, true, kerr.InvalidTxnState.Code},
		{"abort with no transaction", 3, "tx", pid, epoch, false, kerr.InvalidTxnState.Code},
		{"unknown transactional id", 3, "nope", pid, epoch, true, kerr.InvalidProducerIDMapping.Code},
		{"empty transactional id", 3, "", pid, epoch, true, kerr.InvalidRequest.Code},
		{"another producer id", 3, "tx", pid + 9, epoch, true, kerr.InvalidProducerIDMapping.Code},
		{"other epoch v2", 2, "tx", pid, epoch + 1, true, kerr.ProducerFenced.Code},
		{"other epoch v1", 1, "tx", pid, epoch + 1, true, kerr.InvalidProducerEpoch.Code},
		{"other epoch v5", 5, "tx", pid, epoch + 1, true, kerr.ProducerFenced.Code},
	} {
		out, r := h.end(tc.v, tc.id, tc.pid, tc.epoch, tc.commit)
		if r.ErrorCode != tc.want || len(out.Records) != 0 || len(out.Markers) != 0 {
			t.Errorf("%s: %+v (records %d), want %d", tc.name, r, len(out.Records), tc.want)
		}
		if r.Version != tc.v || r.ProducerID != -1 || r.ProducerEpoch != -1 {
			t.Errorf("%s: reply %+v", tc.name, r)
		}
	}
}

func TestEndTxnOfAnEmptyTransactionCompletesAtOnce(t *testing.T) {
	// Kafka lets AddPartitionsToTxn with no partitions start a
	// transaction; its end has no markers to write.
	h := newHarness(t)
	pid, epoch := h.mustInit("tx")
	h.mustAdd("tx", pid, epoch)
	if h.describe("tx").State != "Ongoing" {
		t.Fatal("not ongoing")
	}
	out, r := h.end(3, "tx", pid, epoch, true)
	if r.ErrorCode != 0 || len(out.Markers) != 0 || len(out.Records) != 2 || h.describe("tx").State != "CompleteCommit" {
		t.Fatalf("%+v %+v", r, out)
	}
	h.checkReload()
}

func TestEndTxnV5BumpsTheEpoch(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("tx")
	h.mustAdd("tx", pid, epoch, tp("a", 0))
	out, r := h.end(5, "tx", pid, epoch, true)
	if r.ErrorCode != 0 || r.ProducerID != pid || r.ProducerEpoch != epoch+1 {
		t.Fatalf("EndTxn v5: %+v, want %d/%d", r, pid, epoch+1)
	}
	m := onlyMarkers(t, out)
	if m.ProducerEpoch != epoch+1 {
		t.Fatalf("markers at epoch %d, want the bumped %d", m.ProducerEpoch, epoch+1)
	}
	if v := h.lastValue("tx"); v.ProducerEpoch != epoch+1 || v.ClientTransactionVersion != 2 || v.State != 2 {
		t.Fatalf("record %+v", v)
	}
	// A retry carries the epoch before the bump.
	if _, r := h.end(5, "tx", pid, epoch, true); r.ErrorCode != kerr.ConcurrentTransactions.Code {
		t.Fatalf("retry during PrepareCommit: %+v", r)
	}
	// The old epoch is fenced for anything else.
	if _, codes := h.add(3, "tx", pid, epoch, tp("a", 0)); oneCode(t, codes) != kerr.ProducerFenced.Code {
		t.Fatalf("add at the old epoch: %v", codes)
	}
	h.checkReload()
	h.written(m.ID)
	if _, r := h.end(5, "tx", pid, epoch, true); r.ErrorCode != 0 || r.ProducerEpoch != epoch+1 {
		t.Fatalf("retry after completion: %+v", r)
	}
	if _, r := h.end(5, "tx", pid, epoch, false); r.ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("opposite retry: %+v", r)
	}
	// At the new epoch there is no transaction to end.
	if _, r := h.end(5, "tx", pid, epoch+1, true); r.ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("EndTxn with no transaction: %+v", r)
	}
	// The next transaction runs at the new epoch.
	h.mustAdd("tx", pid, epoch+1, tp("b", 0))
	if _, r := h.end(5, "tx", pid, epoch+1, false); r.ErrorCode != 0 || r.ProducerEpoch != epoch+2 {
		t.Fatalf("second EndTxn v5: %+v", r)
	}
	h.writeAll()
	h.checkReload()
}

func TestEndTxnV5RotatesTheProducerIDWhenTheEpochIsExhausted(t *testing.T) {
	h := newHarness(t)
	pid, _ := h.mustInit("tx")
	h.c.txns["tx"].epoch = math.MaxInt16 - 1
	h.mustAdd("tx", pid, math.MaxInt16-1, tp("a", 0))
	out, r := h.end(5, "tx", pid, math.MaxInt16-1, true)
	next := h.pids
	if r.ErrorCode != 0 || r.ProducerID != next || r.ProducerEpoch != 0 {
		t.Fatalf("EndTxn v5 at the last epoch: %+v, want %d/0", r, next)
	}
	m := onlyMarkers(t, out)
	if m.ProducerID != pid || m.ProducerEpoch != math.MaxInt16 {
		t.Fatalf("markers %+v, want the old producer at MaxInt16", m)
	}
	if v := h.lastValue("tx"); v.NextProducerID != next || v.ProducerID != pid {
		t.Fatalf("record %+v", v)
	}
	h.checkReload()
	h.written(m.ID)
	d := h.describe("tx")
	if d.ProducerID != next || d.ProducerEpoch != 0 || d.State != "CompleteCommit" {
		t.Fatalf("after completion: %+v", d)
	}
	if v := h.lastValue("tx"); v.PreviousProducerID != pid || v.NextProducerID != -1 {
		t.Fatalf("record %+v", v)
	}
	// A retry with the old id and epoch is recognized.
	if _, r := h.end(5, "tx", pid, math.MaxInt16-1, true); r.ErrorCode != 0 || r.ProducerID != next {
		t.Fatalf("retry after rotation: %+v", r)
	}
	h.mustAdd("tx", next, 0, tp("a", 0))
	if got := h.c.InTransaction(next, 0, tp("a", 0)); got != 0 {
		t.Fatalf("new producer id not in transaction: %d", got)
	}
	h.checkReload()
}

func TestMarkersWrittenDropsFailedPartitions(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("tx")
	h.mustAdd("tx", pid, epoch, tp("a", 0), tp("gone", 0))
	out, _ := h.end(3, "tx", pid, epoch, true)
	m := onlyMarkers(t, out)
	h.written(m.ID, tp("gone", 0))
	if d := h.describe("tx"); d.State != "CompleteCommit" || len(d.Topics) != 0 {
		t.Fatalf("after markers with a failed partition: %+v", d)
	}
	// Unknown markers ids are ignored.
	if out := h.c.MarkersWritten(h.now, 12345, nil); len(out.Records) != 0 {
		t.Fatal("unknown markers completed something")
	}
}
