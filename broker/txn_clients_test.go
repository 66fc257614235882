package broker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/samsatest"
)

// txnProducer is a franz-go transactional producer.
func txnProducer(t *testing.T, sb *samsatest.Broker, id, topic string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return clientFor(t, sb, append([]kgo.Opt{
		kgo.TransactionalID(id),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
	}, opts...)...)
}

// produceTxn produces values in one transaction and ends it with commit.
func produceTxn(t *testing.T, cl *kgo.Client, commit kgo.TransactionEndTry, values ...string) {
	t.Helper()
	ctx := deadlineCtx(t)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if err := cl.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
	if err := cl.EndTransaction(ctx, commit); err != nil {
		t.Fatalf("end transaction (commit %v): %v", commit, err)
	}
}

// readAll reads topic from the start until every partition's end as of
// now (the high watermark, or the last stable offset with read_committed)
// and returns the values read, in partition then offset order.
func readAll(t *testing.T, sb *samsatest.Broker, topic string, readCommitted bool) []string {
	t.Helper()
	ctx := deadlineCtx(t)
	adm := kadm.NewClient(clientFor(t, sb))
	var ends kadm.ListedOffsets
	var err error
	if readCommitted {
		ends, err = adm.ListCommittedOffsets(ctx, topic) // the last stable offsets
	} else {
		ends, err = adm.ListEndOffsets(ctx, topic) // the high watermarks
	}
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offsets of %s: %v %v", topic, err, ends.Error())
	}
	want := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		want[o.Partition] = o.Offset
		offsets[o.Partition] = kgo.NewOffset().At(0)
	})
	opts := []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets})}
	if readCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	} else {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	}
	cl := clientFor(t, sb, opts...)
	got := map[int32][]*kgo.Record{}
	done := func() bool {
		for p, end := range want {
			if n := len(got[p]); end > 0 && (n == 0 || got[p][n-1].Offset < end-1) {
				// Control records are not returned: stop at the last
				// data record below end, which a poll with nothing new
				// confirms.
				return false
			}
		}
		return true
	}
	for !done() {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v", topic, ctx.Err())
		}
		for _, e := range fs.Errors() {
			if errors.Is(e.Err, context.DeadlineExceeded) {
				goto out // the rest of the partitions are markers or aborted data
			}
			t.Fatalf("fetch %s-%d: %v", e.Topic, e.Partition, e.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < want[r.Partition] {
				got[r.Partition] = append(got[r.Partition], r)
			}
		})
	}
out:
	var values []string
	for _, p := range slices.Sorted(func(yield func(int32) bool) {
		for p := range want {
			if !yield(p) {
				return
			}
		}
	}) {
		for _, r := range got[p] {
			values = append(values, string(r.Value))
		}
	}
	return values
}

// sortedValues returns values sorted.
func sortedValues(values []string) []string {
	out := slices.Clone(values)
	slices.Sort(out)
	return out
}

func seq(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s-%02d", prefix, i))
	}
	return out
}

// waitTxnState polls DescribeTransactions until id is in state.
func waitTxnState(t *testing.T, sb *samsatest.Broker, id, state string) kadm.DescribedTransaction {
	t.Helper()
	ctx := deadlineCtx(t)
	adm := kadm.NewClient(clientFor(t, sb))
	var last kadm.DescribedTransaction
	for ctx.Err() == nil {
		described, err := adm.DescribeTransactions(ctx, id)
		if err == nil {
			if last = described[id]; last.State == state {
				return last
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("transaction %s is %+v, want %s", id, last, state)
	return last
}

// waitStable polls until every partition's last stable offset is its high
// watermark.
func waitStable(t *testing.T, sb *samsatest.Broker, topic string) {
	t.Helper()
	ctx := deadlineCtx(t)
	adm := kadm.NewClient(clientFor(t, sb))
	var lso, hwm kadm.ListedOffsets
	for ctx.Err() == nil {
		var err1, err2 error
		lso, err1 = adm.ListCommittedOffsets(ctx, topic)
		hwm, err2 = adm.ListEndOffsets(ctx, topic)
		if err1 == nil && err2 == nil && lso.Error() == nil && hwm.Error() == nil {
			stable := true
			hwm.Each(func(o kadm.ListedOffset) {
				if l, _ := lso.Lookup(topic, o.Partition); l.Offset != o.Offset {
					stable = false
				}
			})
			if stable {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: last stable offsets %v, high watermarks %v", topic, describeOffsets(lso), describeOffsets(hwm))
}

func describeOffsets(l kadm.ListedOffsets) string {
	var b strings.Builder
	l.Each(func(o kadm.ListedOffset) { fmt.Fprintf(&b, "%d:%d ", o.Partition, o.Offset) })
	return b.String()
}

// txnCommitOffsets adds group's offsets to cl's transaction and commits
// offset for topic partition 0 in it, as a transactional client does
// (AddOffsetsToTxn, then TxnOffsetCommit to the group coordinator).
func txnCommitOffsets(t *testing.T, cl *kgo.Client, txnID, group, topic string, offset int64) {
	t.Helper()
	ctx := deadlineCtx(t)
	id, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txnID, id, epoch, group
	addResp, err := add.RequestWith(ctx, cl)
	if err != nil || addResp.ErrorCode != 0 {
		t.Fatalf("AddOffsetsToTxn: %v %v", err, kerr.ErrorForCode(addResp.ErrorCode))
	}
	commit := kmsg.NewPtrTxnOffsetCommitRequest()
	commit.TransactionalID, commit.Group, commit.ProducerID, commit.ProducerEpoch = txnID, group, id, epoch
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, offset
	rt.Partitions = append(rt.Partitions, rp)
	commit.Topics = append(commit.Topics, rt)
	resp, err := commit.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("TxnOffsetCommit: %v", kerr.ErrorForCode(code))
	}
}

// fetchOffset fetches group's offset of topic partition 0, with
// require_stable: the offset, or the error.
func fetchOffset(t *testing.T, cl *kgo.Client, group, topic string, requireStable bool) (int64, error) {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 7
	req.Group = group
	req.RequireStable = requireStable
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(deadlineCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	return p.Offset, kerr.ErrorForCode(p.ErrorCode)
}

// waitOffset polls until group's stable offset of topic partition 0 is
// want.
func waitOffset(t *testing.T, cl *kgo.Client, group, topic string, want int64) {
	t.Helper()
	ctx := deadlineCtx(t)
	var got int64
	var err error
	for ctx.Err() == nil {
		if got, err = fetchOffset(t, cl, group, topic, true); err == nil && got == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("group %s offset %d (%v), want %d", group, got, err, want)
}

func TestTxnOffsetsAreVisibleOnlyOnceCommitted(t *testing.T) {
	sb := samsatest.Start(t)
	admCl := clientFor(t, sb)
	makeTopic(t, admCl, "txn-in", 1, nil)
	makeTopic(t, admCl, "txn-out", 1, nil)
	cl := txnProducer(t, sb, "offsets-tx", "txn-out")
	ctx := deadlineCtx(t)

	// Committed: invisible (and unstable) until EndTxn commits.
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, kgo.StringRecord("a")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	txnCommitOffsets(t, cl, "offsets-tx", "eos", "txn-in", 3)
	if got, err := fetchOffset(t, admCl, "eos", "txn-in", false); err != nil || got != -1 {
		t.Fatalf("offset before EndTxn: %d (%v), want -1", got, err)
	}
	if _, err := fetchOffset(t, admCl, "eos", "txn-in", true); !errors.Is(err, kerr.UnstableOffsetCommit) {
		t.Fatalf("require_stable before EndTxn: %v, want UNSTABLE_OFFSET_COMMIT", err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	waitOffset(t, admCl, "eos", "txn-in", 3)

	// Aborted: never visible.
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, kgo.StringRecord("b")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	txnCommitOffsets(t, cl, "offsets-tx", "eos", "txn-in", 7)
	if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	waitOffset(t, admCl, "eos", "txn-in", 3)

	// Both outcomes survive a restart: the loader replays the
	// transactional records and their markers.
	sb.Restart()
	admCl = clientFor(t, sb)
	waitOffset(t, admCl, "eos", "txn-in", 3)
}

func TestGroupTransactSessionCommitsOffsetsWithItsOutput(t *testing.T) {
	sb := samsatest.Start(t)
	admCl := clientFor(t, sb)
	makeTopic(t, admCl, "eos-in", 2, nil)
	makeTopic(t, admCl, "eos-out", 2, nil)
	ctx := deadlineCtx(t)
	in := clientFor(t, sb, kgo.DefaultProduceTopic("eos-in"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	for _, v := range seq("in", 20) {
		if err := in.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	session, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(sb.Addr()),
		kgo.TransactionalID("eos-tx"),
		kgo.ConsumerGroup("eos-g"),
		kgo.ConsumeTopics("eos-in"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DefaultProduceTopic("eos-out"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()

	// One transaction that reads, writes, and is aborted: nothing of it
	// shows.
	var read int
	for read == 0 {
		if err := session.Begin(); err != nil {
			t.Fatal(err)
		}
		fs := session.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			read++
			session.Produce(ctx, kgo.StringRecord("aborted-"+string(r.Value)), nil)
		})
		if _, err := session.End(ctx, kgo.TryAbort); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(admCl)
	if offsets, err := adm.FetchOffsets(ctx, "eos-g"); err != nil || len(offsets) != 0 {
		t.Fatalf("offsets after an aborted transaction: %v (%v)", offsets, err)
	}

	// Then transactions that commit until every input is copied.
	copied := map[string]bool{}
	for len(copied) < 20 {
		if err := session.Begin(); err != nil {
			t.Fatal(err)
		}
		fs := session.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("copied %d of 20: %v", len(copied), ctx.Err())
		}
		var values []string
		fs.EachRecord(func(r *kgo.Record) {
			values = append(values, string(r.Value))
			session.Produce(ctx, kgo.StringRecord("out-"+string(r.Value)), nil)
		})
		committed, err := session.End(ctx, kgo.TryCommit)
		if err != nil {
			t.Fatal(err)
		}
		if committed {
			for _, v := range values {
				copied[v] = true
			}
		}
	}

	ends, err := adm.ListEndOffsets(ctx, "eos-in")
	if err != nil {
		t.Fatal(err)
	}
	waitStable(t, sb, "eos-out")
	offsets, err := adm.FetchOffsets(ctx, "eos-g")
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(e kadm.ListedOffset) {
		if o, ok := offsets.Lookup("eos-in", e.Partition); !ok || o.At != e.Offset {
			t.Errorf("committed offset of eos-in-%d: %+v, want %d", e.Partition, o, e.Offset)
		}
	})
	var want []string
	for _, v := range seq("in", 20) {
		want = append(want, "out-"+v)
	}
	if got := sortedValues(readAll(t, sb, "eos-out", true)); !slices.Equal(got, want) {
		t.Fatalf("read_committed eos-out: %v, want %v", got, want)
	}
}

func TestDescribeProducersShowsIdempotentAndTransactionalProducers(t *testing.T) {
	sb := samsatest.Start(t)
	admCl := clientFor(t, sb)
	makeTopic(t, admCl, "txn-described", 1, nil)
	ctx := deadlineCtx(t)

	idem := clientFor(t, sb, kgo.DefaultProduceTopic("txn-described"))
	for _, v := range seq("idem", 3) {
		if err := idem.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	idemID, _, err := idem.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx := txnProducer(t, sb, "described-tx", "txn-described")
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	r := kgo.StringRecord("in-a-transaction")
	if err := tx.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	txID, txEpoch, err := tx.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}

	adm := kadm.NewClient(admCl)
	describe := func() kadm.DescribedProducers {
		t.Helper()
		described, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"txn-described": {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		p := described["txn-described"].Partitions[0]
		if p.Err != nil {
			t.Fatalf("describe producers: %v %s", p.Err, p.ErrMessage)
		}
		return p.ActiveProducers
	}
	active := describe()
	if p := active[idemID]; p.ProducerID != idemID || p.LastSequence != 2 || p.CurrentTxnStartOffset != -1 {
		t.Fatalf("idempotent producer %d: %+v", idemID, p)
	}
	if p := active[txID]; p.ProducerEpoch != txEpoch || p.LastSequence != 0 || p.CurrentTxnStartOffset != r.Offset {
		t.Fatalf("transactional producer %d at %d: %+v, want its transaction from offset %d", txID, txEpoch, p, r.Offset)
	}

	if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	waitStable(t, sb, "txn-described")
	if p := describe()[txID]; p.CurrentTxnStartOffset != -1 {
		t.Fatalf("after commit: %+v, want no ongoing transaction", p)
	}

	req := kmsg.NewPtrDescribeProducersRequest()
	req.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: "txn-described", Partitions: []int32{7}}, {Topic: "nosuch", Partitions: []int32{0}}}
	resp := rawRequest(t, sb.Addr(), req).(*kmsg.DescribeProducersResponse)
	if len(resp.Topics) != 2 {
		t.Fatalf("response %+v", resp)
	}
	for _, rt := range resp.Topics {
		if code := rt.Partitions[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("%s-%d: %v", rt.Topic, rt.Partitions[0].Partition, kerr.ErrorForCode(code))
		}
	}
}

func TestApiVersionsAdvertisesTheTransactionAPIs(t *testing.T) {
	sb := samsatest.Start(t)
	vs, err := kadm.NewClient(clientFor(t, sb)).ApiVersions(deadlineCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, bv := range vs {
		for key, max := range map[kmsg.Key]int16{
			kmsg.InitProducerID: 5, kmsg.AddPartitionsToTxn: 5, kmsg.AddOffsetsToTxn: 4, kmsg.EndTxn: 5,
			kmsg.TxnOffsetCommit: 4, kmsg.DescribeProducers: 0, kmsg.DescribeTransactions: 0, kmsg.ListTransactions: 2,
		} {
			lo, hi, ok := bv.KeyVersions(int16(key))
			if !ok || lo != 0 || hi != max {
				t.Errorf("%s: advertised %v %d–%d, want 0–%d", kmsg.NameForKey(int16(key)), ok, lo, hi, max)
			}
		}
	}
}
