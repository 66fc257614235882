package txn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The key and value bytes follow Kafka's schema (TransactionLogKey v0,
// TransactionLogValue v1, flexible), checked against bytes built by hand
// from the message definitions, not by kmsg.
func TestRecordBytesMatchKafkasSchema(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("tx")
	h.mustAdd("tx", pid, epoch, tp("a", 3))
	r := h.log[len(h.log)-1]

	key := []byte{0, 0, 0, 2, 't', 'x'}
	if !bytes.Equal(r.Key, key) {
		t.Fatalf("key %x, want %x", r.Key, key)
	}
	be := binary.BigEndian
	var want []byte
	want = be.AppendUint16(want, 1)                      // version
	want = be.AppendUint64(want, uint64(pid))            // producer id
	want = be.AppendUint16(want, uint16(epoch))          // producer epoch
	want = be.AppendUint32(want, 60000)                  // timeout
	want = append(want, 1)                               // Ongoing
	want = append(want, 2, 2, 'a', 2, 0, 0, 0, 3, 0)     // [{a [3]}], compact, no tags
	want = be.AppendUint64(want, uint64(t0.UnixMilli())) // last update
	want = be.AppendUint64(want, uint64(t0.UnixMilli())) // start
	want = append(want, 1, 0, 8)                         // one tag: 0 (previous producer id), 8 bytes
	want = be.AppendUint64(want, uint64(pid))
	if !bytes.Equal(r.Value, want) {
		t.Fatalf("value\n got %x\nwant %x", r.Value, want)
	}
	// Empty has a null partition list.
	h.end(3, "tx", pid, epoch, false)
	h.writeAll()
	h.mustInit("tx")
	v := h.lastValue("tx")
	if v.State != 0 || v.Topics != nil {
		t.Fatalf("Empty record %+v", v)
	}
	if r := h.log[len(h.log)-1].Value; r[2+8+2+4+1] != 0 { // compact null array
		t.Fatalf("Empty record's partitions not null: %x", r)
	}
}

func TestReplayRebuildsEveryState(t *testing.T) {
	h := newHarness(t)
	// Empty.
	h.mustInit("empty")
	// Ongoing.
	p, e := h.mustInit("ongoing")
	h.mustAdd("ongoing", p, e, tp("a", 0), tp("a", 1), tp("b", 0))
	// PrepareCommit and PrepareAbort.
	p, e = h.mustInit("committing")
	h.mustAdd("committing", p, e, tp("a", 0))
	h.end(3, "committing", p, e, true)
	p, e = h.mustInit("aborting")
	h.mustAdd("aborting", p, e, tp("b", 0))
	h.end(5, "aborting", p, e, false)
	// CompleteCommit and CompleteAbort.
	for _, commit := range []bool{true, false} {
		id := "done-abort"
		if commit {
			id = "done-commit"
		}
		p, e = h.mustInit(id)
		h.mustAdd(id, p, e, tp("c", 0))
		out, _ := h.end(3, id, p, e, commit)
		h.written(onlyMarkers(t, out).ID)
	}
	// Expired.
	h.mustInit("expired")
	h.c.remove(h.c.txns["expired"])
	h.log = append(h.log, h.c.tombstone("expired"))

	h.checkReload()
	c, out := h.reload()
	if len(out.Markers) != 2 {
		t.Fatalf("Loaded asked for %d markers, want 2", len(out.Markers))
	}
	for _, id := range []string{"empty", "ongoing", "committing", "aborting", "done-commit", "done-abort"} {
		if c.DescribeTransaction(h.now, id).ErrorCode != 0 {
			t.Errorf("%s not replayed", id)
		}
	}
	// The re-emitted markers complete the replayed coordinator's
	// transactions.
	for _, m := range out.Markers {
		done := c.MarkersWritten(h.now, m.ID, nil)
		if len(done.Records) != 1 {
			t.Fatalf("markers %d: %+v", m.ID, done)
		}
	}
	if s := c.DescribeTransaction(h.now, "committing").State; s != "CompleteCommit" {
		t.Fatalf("committing is %s", s)
	}
}

func TestReplaySkipsUnknownAndRefusesCorruptRecords(t *testing.T) {
	c := New(DefaultConfig())
	if err := c.Replay(0, []byte{0}, []byte{1, 2}); err != nil {
		t.Fatalf("short key: %v", err)
	}
	if err := c.Replay(0, []byte{0, 9, 0, 0}, []byte{1, 2}); err != nil {
		t.Fatalf("unknown key version: %v", err)
	}
	good := valueOf(&transaction{id: "x", producerID: 4, previousProducerID: -1, nextProducerID: -1,
		epoch: 2, timeoutMillis: 100, state: stateEmpty, startMillis: -1})
	for name, v := range map[string][]byte{
		"truncated value":       good[:9],
		"unknown value version": append([]byte{0, 9}, good[2:]...),
		"unknown state":         func() []byte { b := bytes.Clone(good); b[2+8+2+4] = 42; return b }(),
	} {
		err := c.Replay(0, keyOf("x"), v)
		var corrupt *errCorrupt
		if !errors.As(err, &corrupt) {
			t.Errorf("%s: %v, want a corrupt-record error", name, err)
		}
	}
	if err := c.Replay(0, []byte{0, 0, 0, 9, 'x'}, good); err == nil {
		t.Error("truncated key accepted")
	}
	if len(c.txns) != 0 {
		t.Fatal("bad records changed the state")
	}
	if err := c.Replay(0, keyOf("x"), good); err != nil {
		t.Fatal(err)
	}
	if d := c.DescribeTransaction(t0, "x"); d.ProducerID != 4 || d.ProducerEpoch != 2 {
		t.Fatalf("%+v", d)
	}
}

func TestReplayReadsVersionZeroAndKafkasRareStates(t *testing.T) {
	c := New(DefaultConfig())
	v := kmsg.NewTxnMetadataValue()
	v.Version = 0
	v.ProducerID, v.ProducerEpoch, v.TimeoutMillis = 8, 3, 5000
	v.State = 7 // PrepareEpochFence: read as PrepareAbort
	v.Topics = []kmsg.TxnMetadataValueTopic{{Topic: "a", Partitions: []int32{0}}}
	v.StartTimestamp, v.LastUpdateTimestamp = 10, 20
	if err := c.Replay(0, keyOf("f"), v.AppendTo(nil)); err != nil {
		t.Fatal(err)
	}
	d := c.DescribeTransaction(t0, "f")
	if d.State != "PrepareAbort" || d.ProducerID != 8 || d.ProducerEpoch != 3 || len(d.Topics) != 1 {
		t.Fatalf("%+v", d)
	}
	out := c.Loaded(t0)
	if len(out.Markers) != 1 || out.Markers[0].Commit || out.Markers[0].ProducerEpoch != 3 {
		t.Fatalf("markers %+v", out.Markers)
	}
	// Dead forgets the id, as a tombstone does.
	v.State = 6
	if err := c.Replay(0, keyOf("f"), v.AppendTo(nil)); err != nil {
		t.Fatal(err)
	}
	if len(c.txns) != 0 || len(c.byProducer) != 0 || len(c.inflight) != 0 {
		t.Fatal("Dead did not forget the id")
	}
}
