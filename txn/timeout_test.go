package txn

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestTimedOutTransactionIsAbortedAndItsProducerFenced(t *testing.T) {
	h := newHarness(t)
	_, resp := h.initID("tx", 30000)
	pid, epoch := resp.ProducerID, resp.ProducerEpoch
	h.now = h.now.Add(time.Second)
	start := h.now
	h.mustAdd("tx", pid, epoch, tp("a", 0))

	d, ok := h.c.Deadline()
	if want := start.Add(30*time.Second + time.Millisecond); !ok || !d.Equal(want) {
		t.Fatalf("deadline %v %v, want %v", d, ok, want)
	}
	// Kafka aborts once start+timeout < now: not at the timeout itself.
	h.now = start.Add(30 * time.Second)
	if out := h.take(h.c.Tick(h.now)); len(out.Records)+len(out.Markers) != 0 {
		t.Fatalf("aborted at the timeout itself: %+v", out)
	}
	h.now = d
	out := h.take(h.c.Tick(h.now))
	m := onlyMarkers(t, out)
	if m.Commit || m.ProducerID != pid || m.ProducerEpoch != epoch+1 {
		t.Fatalf("abort markers %+v, want epoch %d", m, epoch+1)
	}
	if v := h.lastValue("tx"); v.State != 3 || v.ProducerEpoch != epoch+1 {
		t.Fatalf("record %+v", v)
	}
	if len(out.Replies) != 0 {
		t.Fatalf("replies %+v", out.Replies)
	}
	h.checkReload()

	// The zombie producer is fenced, before and after the markers.
	if _, r := h.end(3, "tx", pid, epoch, true); r.ErrorCode != kerr.ProducerFenced.Code {
		t.Fatalf("zombie commit: %+v", r)
	}
	h.written(m.ID)
	if h.describe("tx").State != "CompleteAbort" {
		t.Fatal("not CompleteAbort")
	}
	for _, commit := range []bool{true, false} {
		if _, r := h.end(3, "tx", pid, epoch, commit); r.ErrorCode != kerr.ProducerFenced.Code {
			t.Fatalf("zombie EndTxn(commit=%v) after the abort: %+v", commit, r)
		}
	}
	if _, codes := h.add(3, "tx", pid, epoch, tp("a", 0)); oneCode(t, codes) != kerr.ProducerFenced.Code {
		t.Fatalf("zombie add: %v", codes)
	}
	if code := h.c.InTransaction(pid, epoch, tp("a", 0)); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("zombie produce: %d", code)
	}
	// KIP-360 with the zombie's epoch: fenced too (the fence forgot it).
	if _, r := h.initFull(4, "tx", 30000, pid, epoch); r.ErrorCode != kerr.ProducerFenced.Code {
		t.Fatalf("zombie InitProducerId: %+v", r)
	}
	// A new producer carries on.
	if _, r := h.initID("tx", 30000); r.ErrorCode != 0 || r.ProducerEpoch != epoch+2 {
		t.Fatalf("new producer: %+v", r)
	}
}

func TestReplayedOngoingTransactionKeepsItsTimeoutFromItsStart(t *testing.T) {
	h := newHarness(t)
	_, resp := h.initID("tx", 10000)
	start := h.now
	h.mustAdd("tx", resp.ProducerID, resp.ProducerEpoch, tp("a", 0))
	h.now = h.now.Add(4 * time.Second)
	c, out := h.reload()
	if len(out.Markers) != 0 {
		t.Fatalf("markers for an ongoing transaction: %+v", out.Markers)
	}
	d, ok := c.Deadline()
	if want := start.Add(10*time.Second + time.Millisecond); !ok || !d.Equal(want) {
		t.Fatalf("deadline after reload %v, want %v", d, want)
	}
	if out := c.Tick(d); len(out.Markers) != 1 {
		t.Fatalf("no abort at the deadline after reload: %+v", out)
	}
}

func TestIdleIDsExpire(t *testing.T) {
	h := newHarness(t)
	h.cfg.IDExpiration = time.Hour
	h.c = New(h.cfg)
	pidA, epochA := h.mustInit("a")
	pidB, epochB := h.mustInit("b")
	h.mustAdd("b", pidB, epochB, tp("x", 0)) // b is ongoing
	pidC, epochC := h.mustInit("c")
	h.mustAdd("c", pidC, epochC, tp("x", 1))
	h.end(3, "c", pidC, epochC, true)
	h.writeAll() // c is CompleteCommit

	// Ongoing b times out (60s) and is aborted long before.
	h.now = h.now.Add(2 * time.Minute)
	h.take(h.c.Tick(h.now))
	h.writeAll()
	abortedAt := h.now

	d, ok := h.c.Deadline()
	if want := t0.Add(time.Hour); !ok || !d.Equal(want) {
		t.Fatalf("deadline %v, want %v (a's expiry)", d, want)
	}
	h.now = t0.Add(time.Hour - time.Millisecond)
	if out := h.take(h.c.Tick(h.now)); len(out.Records) != 0 {
		t.Fatalf("expired early: %+v", out)
	}
	h.now = t0.Add(time.Hour)
	out := h.take(h.c.Tick(h.now))
	if len(out.Records) != 2 || out.Records[0].Value != nil || out.Records[1].Value != nil {
		t.Fatalf("want tombstones of a and c: %+v", out.Records)
	}
	if idOfKey(t, out.Records[0].Key) != "a" || idOfKey(t, out.Records[1].Key) != "c" {
		t.Fatal("wrong ids expired")
	}
	for _, id := range []string{"a", "c"} {
		if d := h.describe(id); d.ErrorCode != kerr.TransactionalIDNotFound.Code {
			t.Fatalf("%s after expiry: %+v", id, d)
		}
	}
	if code := h.c.InTransaction(pidA, epochA, tp("x", 0)); code != kerr.InvalidProducerIDMapping.Code {
		t.Fatalf("expired producer: %d", code)
	}
	if d, _ := h.c.Deadline(); !d.Equal(abortedAt.Add(time.Hour)) {
		t.Fatalf("deadline %v, want b's expiry %v", d, abortedAt.Add(time.Hour))
	}
	h.checkReload()
	// An expired id starts afresh.
	if _, r := h.initID("a", 1000); r.ErrorCode != 0 || r.ProducerID == pidA || r.ProducerEpoch != 0 {
		t.Fatalf("re-init of an expired id: %+v", r)
	}
}

func TestNothingDueMeansNoDeadline(t *testing.T) {
	h := newHarness(t)
	if _, ok := h.c.Deadline(); ok {
		t.Fatal("deadline with no ids")
	}
	pid, epoch := h.mustInit("tx")
	h.mustAdd("tx", pid, epoch, tp("a", 0))
	h.end(3, "tx", pid, epoch, true)
	// PrepareCommit has nothing timed; a Tick at a stale deadline clears it.
	d, ok := h.c.Deadline()
	if !ok {
		t.Fatal("no deadline")
	}
	h.now = d
	h.take(h.c.Tick(h.now))
	if _, ok := h.c.Deadline(); ok {
		t.Fatal("deadline while only PrepareCommit remains")
	}
}
