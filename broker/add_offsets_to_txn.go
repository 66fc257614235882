package broker

// AddOffsetsToTxn (key 25), versions 0–4.
//
// A group's offsets join a producer's transaction: the group's partition of
// __consumer_offsets is added to the transaction (persisted before the
// response), so that the transaction's marker reaches it and settles the
// offsets the producer then commits with TxnOffsetCommit. The errors are
// AddPartitionsToTxn's for one partition (INVALID_PRODUCER_ID_MAPPING,
// PRODUCER_FENCED — INVALID_PRODUCER_EPOCH before v2 —,
// CONCURRENT_TRANSACTIONS), and COORDINATOR_LOAD_IN_PROGRESS while
// __transaction_state loads. v3 is the first flexible version; v4 only
// allows TRANSACTION_ABORTABLE.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group"
	"github.com/samsa-io/samsa/txn"
)

func handleAddOffsetsToTxn(b *Broker, ctx context.Context, r *request, req *kmsg.AddOffsetsToTxnRequest) kmsg.Response {
	p := group.Partition(req.Group, b.groups.partitions)
	return b.txns.call(ctx, r, req, false, func(c *txn.Coordinator, call txn.Call) txn.Output {
		return c.AddOffsetsToTxn(call, req, p)
	})
}
