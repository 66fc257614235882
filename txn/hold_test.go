package txn

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// addOffsets sends AddOffsetsToTxn v3 for group g (its partition 4) and
// returns its token and the code, or ok false when it is held.
func (h *harness) addOffsets(id string, pid int64, epoch int16) (tok Token, code int16, ok bool) {
	h.t.Helper()
	req := kmsg.NewPtrAddOffsetsToTxnRequest()
	req.Version = 3
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = id, pid, epoch, "g"
	call := h.call(3)
	h.take(h.c.AddOffsetsToTxn(call, req, 4))
	r, ok := h.replies[call.Token]
	if !ok {
		return call.Token, 0, false
	}
	return call.Token, r.(*kmsg.AddOffsetsToTxnResponse).ErrorCode, true
}

// The next transaction's adds, sent while the markers of the one before are
// being written, wait for them and are then handled in order, after the
// record that completes the transaction before.
func TestAddsWaitForThePreviousMarkers(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("tx")
	h.mustAdd("tx", pid, epoch, tp("a", 0))
	out, _ := h.end(3, "tx", pid, epoch, true)
	m := onlyMarkers(t, out)

	logged := len(h.log)
	out, codes := h.add(3, "tx", pid, epoch, tp("b", 1))
	if codes != nil || len(out.Records) != 0 || len(out.Markers) != 0 {
		t.Fatalf("add during PrepareCommit answered %v, wrote %d records", codes, len(out.Records))
	}
	addTok := h.next
	offTok, _, answered := h.addOffsets("tx", pid, epoch)
	if answered {
		t.Fatal("AddOffsetsToTxn during PrepareCommit answered at once")
	}
	if d, ok := h.c.Deadline(); !ok || !d.Equal(h.now.Add(holdLimit)) {
		t.Fatalf("deadline %v %v, want the hold limit %v", d, ok, h.now.Add(holdLimit))
	}

	h.now = h.now.Add(3 * time.Millisecond)
	out = h.written(m.ID)
	for _, tok := range []Token{addTok, offTok} {
		r, ok := h.replies[tok]
		if !ok {
			t.Fatalf("token %d not answered once the markers were written", tok)
		}
		var code int16
		switch r := r.(type) {
		case *kmsg.AddPartitionsToTxnResponse:
			code = r.Topics[0].Partitions[0].ErrorCode
		case *kmsg.AddOffsetsToTxnResponse:
			code = r.ErrorCode
		}
		if code != 0 {
			t.Fatalf("held token %d answered %d", tok, code)
		}
	}
	var states []string
	for _, rec := range h.log[logged:] {
		var v kmsg.TxnMetadataValue
		if err := v.ReadFrom(rec.Value); err != nil {
			t.Fatal(err)
		}
		states = append(states, state(v.State).String())
	}
	if want := []string{"CompleteCommit", "Ongoing", "Ongoing"}; !slices.Equal(states, want) {
		t.Fatalf("records %v, want %v", states, want)
	}
	d := h.describe("tx")
	if d.State != "Ongoing" || d.StartTimestamp != h.now.UnixMilli() || len(d.Topics) != 2 {
		t.Fatalf("after the markers: %+v", d)
	}
	h.checkReload()
}

// An add held for markers that are not written within holdLimit is
// answered CONCURRENT_TRANSACTIONS, once; the markers written later answer
// nothing more.
func TestHeldAddGivesUpAfterTheLimit(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("tx")
	h.mustAdd("tx", pid, epoch, tp("a", 0))
	out, _ := h.end(3, "tx", pid, epoch, false)
	m := onlyMarkers(t, out)
	h.add(3, "tx", pid, epoch, tp("a", 0))
	tok := h.next

	h.now = h.now.Add(holdLimit - time.Millisecond)
	h.take(h.c.Tick(h.now))
	if _, ok := h.replies[tok]; ok {
		t.Fatal("answered before the hold limit")
	}
	h.now = h.now.Add(time.Millisecond)
	h.take(h.c.Tick(h.now))
	r, ok := h.replies[tok]
	if !ok || r.(*kmsg.AddPartitionsToTxnResponse).Topics[0].Partitions[0].ErrorCode != kerr.ConcurrentTransactions.Code {
		t.Fatalf("after the hold limit: %+v, %v", r, ok)
	}
	if out := h.written(m.ID); len(out.Replies) != 0 {
		t.Fatalf("markers answered %d more", len(out.Replies))
	}
	if d := h.describe("tx"); d.State != "CompleteAbort" {
		t.Fatalf("state %s, want CompleteAbort", d.State)
	}
	h.checkReload()
}

// Only the transaction's own producer at its epoch waits; anyone else is
// answered at once, as before.
func TestOnlyTheOwnProducersAddsWait(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("tx")
	h.mustAdd("tx", pid, epoch, tp("a", 0))
	h.end(3, "tx", pid, epoch, true)
	for _, tc := range []struct {
		name  string
		pid   int64
		epoch int16
		want  int16
	}{
		{"another producer id", pid + 1, epoch, kerr.InvalidProducerIDMapping.Code},
		{"an older epoch", pid, epoch - 1, kerr.ProducerFenced.Code},
	} {
		if _, codes := h.add(3, "tx", tc.pid, tc.epoch, tp("a", 0)); codes == nil || oneCode(t, codes) != tc.want {
			t.Errorf("%s: codes %v, want %d at once", tc.name, codes, tc.want)
		}
	}
}
