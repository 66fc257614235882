package broker

// AddPartitionsToTxn (key 24), versions 0–5.
//
// Partitions join a producer's transaction before it writes to them; the
// transaction coordinator (package txn) persists the change in
// __transaction_state before the response. v0–v3 are the client's form: one
// transactional id, answered per partition (INVALID_PRODUCER_ID_MAPPING,
// PRODUCER_FENCED — INVALID_PRODUCER_EPOCH before v2 —,
// CONCURRENT_TRANSACTIONS while the previous transaction's markers are
// being written, UNKNOWN_TOPIC_OR_PARTITION for a partition that does not
// exist and OPERATION_NOT_ATTEMPTED for the others). v3 is the first
// flexible version. v4+ (KIP-890) are the brokers' form: a batch of
// transactions, each of which may be verify-only (are these partitions in
// the transaction?), answered per transaction and partition, with a
// top-level error for the whole batch (COORDINATOR_LOAD_IN_PROGRESS while
// __transaction_state loads). v5 only allows TRANSACTION_ABORTABLE.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/txn"
)

func handleAddPartitionsToTxn(b *Broker, ctx context.Context, r *request, req *kmsg.AddPartitionsToTxnRequest) kmsg.Response {
	return b.txns.call(ctx, r, req, false, func(c *txn.Coordinator, call txn.Call) txn.Output {
		return c.AddPartitionsToTxn(call, req)
	})
}
