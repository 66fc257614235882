package txn

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestAddPartitionsStartsAndExtendsTheTransaction(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("tx")
	h.now = h.now.Add(5000)
	start := h.now.UnixMilli()
	out := h.mustAdd("tx", pid, epoch, tp("a", 0), tp("a", 1))
	if len(out.Records) != 1 {
		t.Fatalf("%d records", len(out.Records))
	}
	v := h.lastValue("tx")
	if v.State != 1 || v.StartTimestamp != start || len(v.Topics) != 1 || len(v.Topics[0].Partitions) != 2 {
		t.Fatalf("record %+v", v)
	}
	// Partitions already in: answered without a record.
	h.now = h.now.Add(1000)
	if out := h.mustAdd("tx", pid, epoch, tp("a", 1)); len(out.Records) != 0 {
		t.Fatalf("re-adding wrote %d records", len(out.Records))
	}
	// A new one: persisted, the start unchanged.
	h.mustAdd("tx", pid, epoch, tp("a", 1), tp("b", 0))
	v = h.lastValue("tx")
	if v.StartTimestamp != start || v.LastUpdateTimestamp != h.now.UnixMilli() || len(v.Topics) != 2 {
		t.Fatalf("record %+v", v)
	}
	d := h.describe("tx")
	if d.State != "Ongoing" || d.StartTimestamp != start || len(d.Topics) != 2 || d.Topics[0].Topic != "a" || len(d.Topics[0].Partitions) != 2 {
		t.Fatalf("describe %+v", d)
	}
	h.checkReload()
}

func TestAddPartitionsErrors(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("tx")
	h.mustInit("tx") // a new producer: epoch+1
	for _, tc := range []struct {
		name  string
		v     int16
		id    string
		pid   int64
		epoch int16
		want  int16
	}{
		{"unknown transactional id", 3, "nope", pid, epoch, kerr.InvalidProducerIDMapping.Code},
		{"empty transactional id", 3, "", pid, epoch, kerr.InvalidRequest.Code},
		{"another producer id", 3, "tx", pid + 1, epoch + 1, kerr.InvalidProducerIDMapping.Code},
		{"old epoch v2", 2, "tx", pid, epoch, kerr.ProducerFenced.Code},
		{"old epoch v1", 1, "tx", pid, epoch, kerr.InvalidProducerEpoch.Code},
		{"old epoch v0", 0, "tx", pid, epoch, kerr.InvalidProducerEpoch.Code},
		{"future epoch", 3, "tx", pid, epoch + 2, kerr.ProducerFenced.Code},
	} {
		out, codes := h.add(tc.v, tc.id, tc.pid, tc.epoch, tp("a", 0), tp("b", 2))
		if got := oneCode(t, codes); got != tc.want || len(out.Records) != 0 {
			t.Errorf("%s: code %d (records %d), want %d", tc.name, got, len(out.Records), tc.want)
		}
	}
	// While the previous transaction's markers are being written, a
	// broker's batched add is not held (hold_test.go has the client's).
	h.mustAdd("tx", pid, epoch+1, tp("a", 0))
	h.end(3, "tx", pid, epoch+1, false)
	if _, resp := h.addBatch(4, batchTxn("tx", pid, epoch+1, false, "a", 0)); resp.Transactions[0].Topics[0].Partitions[0].ErrorCode != kerr.ConcurrentTransactions.Code {
		t.Fatalf("batched add during PrepareAbort: %+v", resp.Transactions)
	}
	h.writeAll()
	// After the abort a new transaction starts.
	h.now = h.now.Add(7000)
	h.mustAdd("tx", pid, epoch+1, tp("c", 0))
	if d := h.describe("tx"); d.State != "Ongoing" || d.StartTimestamp != h.now.UnixMilli() || len(d.Topics) != 1 || d.Topics[0].Topic != "c" {
		t.Fatalf("new transaction: %+v", d)
	}
}

func TestAddPartitionsChecksTheyExistOnceTopicsAreKnown(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("tx")
	h.c.SetTopics(map[string]int32{"a": 2})
	out, codes := h.add(3, "tx", pid, epoch, tp("a", 0), tp("a", 2), tp("zz", 0))
	want := map[TopicPartition]int16{
		tp("a", 0):  kerr.OperationNotAttempted.Code,
		tp("a", 2):  kerr.UnknownTopicOrPartition.Code,
		tp("zz", 0): kerr.UnknownTopicOrPartition.Code,
	}
	for k, w := range want {
		if codes[k] != w {
			t.Errorf("%v: %d, want %d", k, codes[k], w)
		}
	}
	if len(out.Records) != 0 || h.describe("tx").State != "Empty" {
		t.Fatal("a refused add changed the transaction")
	}
	h.mustAdd("tx", pid, epoch, tp("a", 1))
}

func TestAddOffsetsAddsTheGroupsPartition(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("tx")
	h.c.SetTopics(map[string]int32{}) // __consumer_offsets is not checked
	for _, tc := range []struct {
		v     int16
		epoch int16
		want  int16
	}{
		{1, epoch + 3, kerr.InvalidProducerEpoch.Code},
		{2, epoch + 3, kerr.ProducerFenced.Code},
		{3, epoch, 0},
	} {
		req := kmsg.NewPtrAddOffsetsToTxnRequest()
		req.Version = tc.v
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = "tx", pid, tc.epoch, "g"
		call := h.call(tc.v)
		h.take(h.c.AddOffsetsToTxn(call, req, 17))
		if r := h.replies[call.Token].(*kmsg.AddOffsetsToTxnResponse); r.ErrorCode != tc.want || r.Version != tc.v {
			t.Fatalf("v%d epoch %d: %+v, want %d", tc.v, tc.epoch, r, tc.want)
		}
	}
	d := h.describe("tx")
	if d.State != "Ongoing" || len(d.Topics) != 1 || d.Topics[0].Topic != "__consumer_offsets" || d.Topics[0].Partitions[0] != 17 {
		t.Fatalf("describe %+v", d)
	}
}

// addBatch sends AddPartitionsToTxn v4+ with one transaction per entry.
func (h *harness) addBatch(v int16, txns ...kmsg.AddPartitionsToTxnRequestTransaction) (Output, *kmsg.AddPartitionsToTxnResponse) {
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = v
	req.Transactions = txns
	call := h.call(v)
	out := h.take(h.c.AddPartitionsToTxn(call, req))
	return out, h.replies[call.Token].(*kmsg.AddPartitionsToTxnResponse)
}

func batchTxn(id string, pid int64, epoch int16, verify bool, topic string, parts ...int32) kmsg.AddPartitionsToTxnRequestTransaction {
	tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
	tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly = id, pid, epoch, verify
	rt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
	rt.Topic, rt.Partitions = topic, parts
	tx.Topics = append(tx.Topics, rt)
	return tx
}

func TestAddPartitionsBatchesAndVerifyOnly(t *testing.T) {
	h := newHarness(t)
	p1, e1 := h.mustInit("one")
	p2, e2 := h.mustInit("two")
	h.mustAdd("two", p2, e2, tp("t", 0))

	// v4: two transactions added in one request, answered per partition.
	out, resp := h.addBatch(4,
		batchTxn("one", p1, e1, false, "t", 1, 2),
		batchTxn("missing", 5, 0, false, "t", 0),
	)
	if len(out.Records) != 1 || len(resp.Transactions) != 2 || resp.Version != 4 {
		t.Fatalf("output %+v, response %+v", out, resp)
	}
	for _, tx := range resp.Transactions {
		want := int16(0)
		if tx.TransactionalID == "missing" {
			want = kerr.InvalidProducerIDMapping.Code
		}
		for _, p := range tx.Topics[0].Partitions {
			if p.ErrorCode != want {
				t.Errorf("%s t/%d: %d, want %d", tx.TransactionalID, p.Partition, p.ErrorCode, want)
			}
		}
	}

	// v5 verify-only: partitions in the transaction are fine, others are
	// TRANSACTION_ABORTABLE; nothing is persisted.
	out, resp = h.addBatch(5,
		batchTxn("two", p2, e2, true, "t", 0, 1),
		batchTxn("one", p1, e1+1, true, "t", 1),
	)
	if len(out.Records) != 0 {
		t.Fatalf("verify-only wrote %d records", len(out.Records))
	}
	got := map[string]int16{}
	for _, tx := range resp.Transactions {
		for _, p := range tx.Topics[0].Partitions {
			got[tx.TransactionalID+"/"+string(rune('0'+p.Partition))] = p.ErrorCode
		}
	}
	want := map[string]int16{
		"two/0": 0,
		"two/1": kerr.TransactionAbortable.Code,
		"one/1": kerr.ProducerFenced.Code, // not mapped: v4+ comes from brokers
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("verify %s: %d, want %d", k, got[k], w)
		}
	}
	if d := h.describe("two"); len(d.Topics) != 1 || len(d.Topics[0].Partitions) != 1 {
		t.Fatalf("verify-only added: %+v", d)
	}
	h.checkReload()
}

func TestInTransaction(t *testing.T) {
	h := newHarness(t)
	pid, epoch := h.mustInit("tx")
	for _, tc := range []struct {
		name  string
		pid   int64
		epoch int16
		tp    TopicPartition
		want  int16
	}{
		{"no transaction", pid, epoch, tp("a", 0), kerr.InvalidTxnState.Code},
		{"unknown producer", pid + 50, 0, tp("a", 0), kerr.InvalidProducerIDMapping.Code},
	} {
		if got := h.c.InTransaction(tc.pid, tc.epoch, tc.tp); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	h.mustAdd("tx", pid, epoch, tp("a", 0))
	for _, tc := range []struct {
		name  string
		epoch int16
		tp    TopicPartition
		want  int16
	}{
		{"added", epoch, tp("a", 0), 0},
		{"not added", epoch, tp("a", 1), kerr.InvalidTxnState.Code},
		{"old epoch", epoch - 1, tp("a", 0), kerr.InvalidProducerEpoch.Code},
	} {
		if got := h.c.InTransaction(pid, tc.epoch, tc.tp); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	h.end(3, "tx", pid, epoch, true)
	if got := h.c.InTransaction(pid, epoch, tp("a", 0)); got != kerr.NotEnoughReplicas.Code {
		t.Errorf("while committing: %d, want NOT_ENOUGH_REPLICAS (retriable)", got)
	}
	h.writeAll()
	if got := h.c.InTransaction(pid, epoch, tp("a", 0)); got != kerr.InvalidTxnState.Code {
		t.Errorf("after commit: %d", got)
	}
}
