package broker

// DescribeTransactions (key 65), version 0 (flexible).
//
// The state of each transactional id (KIP-664): Kafka's state name, the
// producer id and epoch, the transaction timeout, the start of the ongoing
// transaction and its partitions. An unknown id is TRANSACTIONAL_ID_NOT_FOUND;
// every id is COORDINATOR_LOAD_IN_PROGRESS while __transaction_state loads.
// This broker coordinates every transactional id, so NOT_COORDINATOR is
// never answered.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/txn"
)

func handleDescribeTransactions(b *Broker, _ context.Context, _ *request, req *kmsg.DescribeTransactionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	now := time.Now()
	code := b.txns.read(func(c *txn.Coordinator) {
		for _, id := range req.TransactionalIDs {
			resp.TransactionStates = append(resp.TransactionStates, c.DescribeTransaction(now, id))
		}
	})
	if code != 0 {
		for _, id := range req.TransactionalIDs {
			s := kmsg.NewDescribeTransactionsResponseTransactionState()
			s.TransactionalID, s.ErrorCode = id, code
			resp.TransactionStates = append(resp.TransactionStates, s)
		}
	}
	return resp
}
