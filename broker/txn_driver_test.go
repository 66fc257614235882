package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group"
	"github.com/samsa-io/samsa/txn"
)

func TestTxnRequestsBeforeLoadingEndsGetLoadInProgress(t *testing.T) {
	b := startBroker(t, nil)
	asIfLoading(t, &b.txns.coordDriver)
	ctx := context.Background()
	want := kerr.CoordinatorLoadInProgress.Code

	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = kmsg.StringPtr("tx"), 60000
	if got := handleDirect(ctx, b, init, 4).(*kmsg.InitProducerIDResponse); got.ErrorCode != want || got.ProducerID != -1 {
		t.Errorf("InitProducerId: %+v", got)
	}
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.TransactionalID = "tx"
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "t", Partitions: []int32{0, 1}}}
	if got := handleDirect(ctx, b, add, 3).(*kmsg.AddPartitionsToTxnResponse); len(got.Topics) != 1 || len(got.Topics[0].Partitions) != 2 || got.Topics[0].Partitions[1].ErrorCode != want {
		t.Errorf("AddPartitionsToTxn v3: %+v", got)
	}
	add = kmsg.NewPtrAddPartitionsToTxnRequest()
	add.Transactions = []kmsg.AddPartitionsToTxnRequestTransaction{{TransactionalID: "tx"}}
	if got := handleDirect(ctx, b, add, 5).(*kmsg.AddPartitionsToTxnResponse); got.ErrorCode != want {
		t.Errorf("AddPartitionsToTxn v5: %+v", got)
	}
	offsets := kmsg.NewPtrAddOffsetsToTxnRequest()
	offsets.TransactionalID, offsets.Group = "tx", "g"
	if got := handleDirect(ctx, b, offsets, 4).(*kmsg.AddOffsetsToTxnResponse); got.ErrorCode != want {
		t.Errorf("AddOffsetsToTxn: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID = "tx"
	if got := handleDirect(ctx, b, end, 5).(*kmsg.EndTxnResponse); got.ErrorCode != want || got.ProducerID != -1 {
		t.Errorf("EndTxn: %+v", got)
	}
	commit := kmsg.NewPtrTxnOffsetCommitRequest()
	commit.TransactionalID, commit.Group = "tx", "g"
	commit.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0}, {Partition: 1}}}}
	if got := handleDirect(ctx, b, commit, 3).(*kmsg.TxnOffsetCommitResponse); len(got.Topics) != 1 || len(got.Topics[0].Partitions) != 2 || got.Topics[0].Partitions[1].ErrorCode != want {
		t.Errorf("TxnOffsetCommit: %+v", got)
	}
	describe := kmsg.NewPtrDescribeTransactionsRequest()
	describe.TransactionalIDs = []string{"tx", "ty"}
	if got := handleDirect(ctx, b, describe, 0).(*kmsg.DescribeTransactionsResponse); len(got.TransactionStates) != 2 || got.TransactionStates[1].ErrorCode != want || got.TransactionStates[1].TransactionalID != "ty" {
		t.Errorf("DescribeTransactions: %+v", got)
	}
	if got := handleDirect(ctx, b, kmsg.NewPtrListTransactionsRequest(), 1).(*kmsg.ListTransactionsResponse); got.ErrorCode != want {
		t.Errorf("ListTransactions: %v", kerr.ErrorForCode(got.ErrorCode))
	}
}

// A request whose reply is due later gets COORDINATOR_NOT_AVAILABLE when
// the broker closes, and one whose context ends gives up.
func TestWaitingTxnRequestIsAnsweredWhenItsContextOrTheBrokerEnds(t *testing.T) {
	b := startBroker(t, nil)
	waitLoaded(t, &b.txns.coordDriver)
	wait := func(ctx context.Context) <-chan kmsg.Response {
		req := kmsg.NewPtrEndTxnRequest()
		req.Version = 4
		r := &request{key: req.Key(), version: 4, body: req, conn: &conn{b: b, logger: b.logger}}
		out := make(chan kmsg.Response, 1)
		go func() {
			out <- b.txns.call(ctx, r, req, false, func(*txn.Coordinator, txn.Call) txn.Output { return txn.Output{} })
		}()
		return out
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := wait(ctx)
	cancel()
	if resp := (<-out).(*kmsg.EndTxnResponse); resp.ErrorCode != kerr.CoordinatorNotAvailable.Code || resp.Version != 4 {
		t.Fatalf("EndTxn whose context ended: %+v", resp)
	}
	b.txns.mu.Lock()
	n := len(b.txns.waiting)
	b.txns.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d replies still awaited after the handler gave up", n)
	}

	out = wait(context.Background())
	closeCtx, closeCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer closeCancel()
	if err := b.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	if resp := (<-out).(*kmsg.EndTxnResponse); resp.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("EndTxn at close: %+v", resp)
	}
}

// initTxn gets a producer id and epoch for a transactional id.
func initTxn(t *testing.T, b *Broker, id string) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID, req.TransactionTimeoutMillis = kmsg.StringPtr(id), 60000
	resp := handleDirect(context.Background(), b, req, 4).(*kmsg.InitProducerIDResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp.ProducerID, resp.ProducerEpoch
}

func txnOffsetCommit(b *Broker, id, groupID string, pid int64, epoch int16, offset int64) int16 {
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = id, groupID, pid, epoch
	req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: offsetsTopic, Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}
	return handleDirect(context.Background(), b, req, 3).(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
}

func TestTxnOffsetCommitNeedsTheGroupInTheTransaction(t *testing.T) {
	b := startBroker(t, nil)
	waitLoaded(t, &b.groups.coordDriver)
	waitLoaded(t, &b.txns.coordDriver)
	ctx := context.Background()
	pid, epoch := initTxn(t, b, "tx")

	if code := txnOffsetCommit(b, "tx", "g", pid, epoch, 5); code != kerr.InvalidTxnState.Code {
		t.Fatalf("TxnOffsetCommit before AddOffsetsToTxn: %v", kerr.ErrorForCode(code))
	}
	if code := txnOffsetCommit(b, "tx", "g", pid+1000, 0, 5); code != kerr.InvalidProducerIDMapping.Code {
		t.Fatalf("TxnOffsetCommit of an unknown producer: %v", kerr.ErrorForCode(code))
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = "tx", pid, epoch, "g"
	if got := handleDirect(ctx, b, add, 3).(*kmsg.AddOffsetsToTxnResponse); got.ErrorCode != 0 {
		t.Fatalf("AddOffsetsToTxn: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	if code := txnOffsetCommit(b, "tx", "g", pid, epoch-1, 5); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("TxnOffsetCommit of an older epoch: %v", kerr.ErrorForCode(code))
	}
	if code := txnOffsetCommit(b, "tx", "g", pid, epoch, 5); code != 0 {
		t.Fatalf("TxnOffsetCommit: %v", kerr.ErrorForCode(code))
	}

	// The offsets went to the group's partition as a transactional batch
	// of the producer.
	p := group.Partition("g", b.groups.partitions)
	part, _ := b.parts.get(offsetsTopic, p)
	n, err := readBatchRecords(ctx, part.log, func(info batchInfo, _ int64, _, _ []byte) {
		if !info.transactional || info.control || info.producerID != pid {
			t.Errorf("record of batch %+v, want a transactional batch of producer %d", info, pid)
		}
	})
	if err != nil || n != 1 {
		t.Fatalf("read %d records of %s-%d (%v), want 1", n, offsetsTopic, p, err)
	}

	// The commit marker makes them visible.
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = "tx", pid, epoch, true
	if got := handleDirect(ctx, b, end, 3).(*kmsg.EndTxnResponse); got.ErrorCode != 0 {
		t.Fatalf("EndTxn: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		fetch := kmsg.NewPtrOffsetFetchRequest()
		fetch.Group, fetch.RequireStable = "g", true
		fetch.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: offsetsTopic, Partitions: []int32{0}}}
		got := handleDirect(ctx, b, fetch, 7).(*kmsg.OffsetFetchResponse).Topics[0].Partitions[0]
		if got.ErrorCode == 0 && got.Offset == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("offset after the commit: %+v", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var control int
	readBatchRecords(ctx, part.log, func(info batchInfo, _ int64, _, _ []byte) {
		if info.control {
			control++
		}
	})
	if control != 1 {
		t.Fatalf("%d control records in %s-%d, want the commit marker", control, offsetsTopic, p)
	}
}
