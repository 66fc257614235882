package broker

// EndTxn (key 26), versions 0–5.
//
// Commits or aborts a producer's transaction. The outcome (PrepareCommit or
// PrepareAbort) is persisted in __transaction_state and answered once
// durable, as Kafka does; the driver (transactions.go) then writes a commit
// or abort marker to every partition of the transaction, and the
// transaction is complete (CompleteCommit/CompleteAbort) once they are all
// durable. Until then a new transaction of the id gets
// CONCURRENT_TRANSACTIONS, which clients retry. A retried EndTxn with the
// same outcome succeeds; the opposite outcome, or no transaction, is
// INVALID_TXN_STATE; a fenced epoch PRODUCER_FENCED (INVALID_PRODUCER_EPOCH
// before v2); an unknown id INVALID_PRODUCER_ID_MAPPING. v3 is the first
// flexible version, v4 only allows TRANSACTION_ABORTABLE, and v5 (KIP-890
// part 2) bumps the producer epoch on every EndTxn and answers the producer
// id and epoch to use next; a producer id is reserved for it in case the
// epoch is exhausted.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/txn"
)

func handleEndTxn(b *Broker, ctx context.Context, r *request, req *kmsg.EndTxnRequest) kmsg.Response {
	return b.txns.call(ctx, r, req, r.version >= 5, func(c *txn.Coordinator, call txn.Call) txn.Output {
		return c.EndTxn(call, req)
	})
}
