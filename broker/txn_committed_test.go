package broker_test

// Transactions seen by read_committed consumers: commit and abort, a
// fenced zombie, a timed-out transaction, and transactions across a
// restart.

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/samsatest"
)

func TestTransactionalProducerCommitsAndAborts(t *testing.T) {
	sb := samsatest.Start(t)
	admCl := clientFor(t, sb)
	makeTopic(t, admCl, "txn-orders", 2, nil)
	cl := txnProducer(t, sb, "orders-tx", "txn-orders")

	produceTxn(t, cl, kgo.TryCommit, seq("first", 6)...)
	produceTxn(t, cl, kgo.TryAbort, seq("aborted", 6)...)
	produceTxn(t, cl, kgo.TryCommit, seq("second", 6)...)

	// EndTxn answers once the outcome is durable; the markers follow.
	waitStable(t, sb, "txn-orders")
	committed := append(seq("first", 6), seq("second", 6)...)
	if got := sortedValues(readAll(t, sb, "txn-orders", true)); !slices.Equal(got, committed) {
		t.Fatalf("read_committed read %v, want %v", got, committed)
	}
	all := append(append(seq("aborted", 6), seq("first", 6)...), seq("second", 6)...)
	if got := sortedValues(readAll(t, sb, "txn-orders", false)); !slices.Equal(got, all) {
		t.Fatalf("read_uncommitted read %v, want %v", got, all)
	}

	ctx := deadlineCtx(t)
	adm := kadm.NewClient(admCl)
	described, err := adm.DescribeTransactions(ctx, "orders-tx")
	if err != nil {
		t.Fatal(err)
	}
	d := described["orders-tx"]
	id, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Err != nil || d.State != "CompleteCommit" || d.ProducerID != id || d.ProducerEpoch != epoch || len(d.Topics) != 0 {
		t.Fatalf("described %+v, want CompleteCommit of producer %d epoch %d", d, id, epoch)
	}
	listed, err := adm.ListTransactions(ctx, nil, []string{"CompleteCommit"})
	if err != nil {
		t.Fatal(err)
	}
	if ids := listed.TransactionalIDs(); !slices.Equal(ids, []string{"orders-tx"}) {
		t.Fatalf("listed %v", ids)
	}
	if listed, err = adm.ListTransactions(ctx, nil, []string{"Ongoing"}); err != nil || len(listed) != 0 {
		t.Fatalf("listed ongoing %v (%v)", listed.TransactionalIDs(), err)
	}
}

func TestZombieProducerIsFenced(t *testing.T) {
	sb := samsatest.Start(t)
	makeTopic(t, clientFor(t, sb), "txn-zombie", 1, nil)
	ctx := deadlineCtx(t)

	zombie := txnProducer(t, sb, "zombie-tx", "txn-zombie")
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := zombie.ProduceSync(ctx, kgo.StringRecord("from-the-zombie")).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// A second producer with the same id fences the first: its ongoing
	// transaction is aborted before the second gets its epoch.
	fresh := txnProducer(t, sb, "zombie-tx", "txn-zombie")
	produceTxn(t, fresh, kgo.TryCommit, "from-the-new-producer")

	err := zombie.ProduceSync(ctx, kgo.StringRecord("zombie-again")).FirstErr()
	if err == nil {
		err = zombie.EndTransaction(ctx, kgo.TryCommit)
	}
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("the zombie got %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	waitStable(t, sb, "txn-zombie")
	if got := readAll(t, sb, "txn-zombie", true); !slices.Equal(got, []string{"from-the-new-producer"}) {
		t.Fatalf("read_committed read %v", got)
	}

	// The raw request of the zombie's epoch is refused too.
	id, epoch, err := fresh.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = 3
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = "zombie-tx", id, epoch-1
	rt := kmsg.NewAddPartitionsToTxnRequestTopic()
	rt.Topic, rt.Partitions = "txn-zombie", []int32{0}
	req.Topics = append(req.Topics, rt)
	resp := rawRequest(t, sb.Addr(), req).(*kmsg.AddPartitionsToTxnResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.ProducerFenced.Code {
		t.Fatalf("AddPartitionsToTxn at the old epoch: %v", kerr.ErrorForCode(code))
	}
}

func TestAbandonedTransactionTimesOutAndAborts(t *testing.T) {
	sb := samsatest.Start(t)
	makeTopic(t, clientFor(t, sb), "txn-abandoned", 1, nil)
	ctx := deadlineCtx(t)
	cl := txnProducer(t, sb, "abandoned-tx", "txn-abandoned", kgo.TransactionTimeout(time.Second))
	produceTxn(t, cl, kgo.TryCommit, "before")
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, kgo.StringRecord("abandoned")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitTxnState(t, sb, "abandoned-tx", "CompleteAbort")
	waitStable(t, sb, "txn-abandoned")
	if got := readAll(t, sb, "txn-abandoned", true); !slices.Equal(got, []string{"before"}) {
		t.Fatalf("read_committed read %v", got)
	}
	// The timed-out producer's epoch was bumped: it cannot commit.
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("the timed-out transaction committed")
	}
}

func TestTransactionsAcrossARestart(t *testing.T) {
	sb := samsatest.Start(t)
	makeTopic(t, clientFor(t, sb), "txn-restart", 1, nil)
	ctx := deadlineCtx(t)
	cl := txnProducer(t, sb, "restart-tx", "txn-restart", kgo.TransactionTimeout(2*time.Second))

	// A commit answered just before the restart: its markers may not be
	// written yet, and the restarted coordinator writes them.
	produceTxn(t, cl, kgo.TryCommit, "committed")
	sb.Restart()
	waitStable(t, sb, "txn-restart")
	if got := readAll(t, sb, "txn-restart", true); !slices.Equal(got, []string{"committed"}) {
		t.Fatalf("after the first restart read_committed read %v", got)
	}

	// A transaction open across a restart times out and aborts; the last
	// stable offset moves past it.
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, kgo.StringRecord("open")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	sb.Restart()
	waitTxnState(t, sb, "restart-tx", "CompleteAbort")
	waitStable(t, sb, "txn-restart")
	if got := readAll(t, sb, "txn-restart", true); !slices.Equal(got, []string{"committed"}) {
		t.Fatalf("after the timeout read_committed read %v", got)
	}

	// The id is usable again.
	fresh := txnProducer(t, sb, "restart-tx", "txn-restart")
	produceTxn(t, fresh, kgo.TryCommit, "after")
	waitStable(t, sb, "txn-restart")
	if got := readAll(t, sb, "txn-restart", true); !slices.Equal(got, []string{"committed", "after"}) {
		t.Fatalf("at the end read_committed read %v", got)
	}
}
