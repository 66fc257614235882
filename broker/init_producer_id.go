package broker

// InitProducerId (key 22), versions 0–5.
//
// A request without a transactional id gets a new producer id with epoch 0,
// as Kafka answers idempotent producers (it ignores the producer id and
// epoch that v3+ may carry for KIP-360, except that they must be both set or
// both -1: INVALID_REQUEST otherwise). v2 made the encoding flexible; v4 and
// v5 changed nothing for idempotent producers.
//
// A transactional id goes to the transaction coordinator (transactions.go,
// package txn): a new id gets a fresh producer id at epoch 0, a known one
// its epoch bumped, fencing the previous producer (its ongoing transaction
// is aborted first, and the reply waits for the abort markers); v3+ carry
// the producer id and epoch of a producer recovering per KIP-360;
// INVALID_TRANSACTION_TIMEOUT above transaction.max.timeout.ms,
// CONCURRENT_TRANSACTIONS while a transaction ends, PRODUCER_FENCED (v4+;
// INVALID_PRODUCER_EPOCH before) for a stale producer, and
// COORDINATOR_LOAD_IN_PROGRESS while __transaction_state loads. An empty
// transactional id is INVALID_REQUEST, as in Kafka.
//
// Producer ids are unique across restarts and brokers: a broker reserves
// blocks of producerIDBlockSize through a metadata record
// (metadata.ProducerIDsRecord, like KRaft's ProducerIdsRecord) before it
// hands out any id of the block. Ids of a block not used before a restart
// are skipped, never reused.

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/metadata"
	"github.com/samsa-io/samsa/txn"
)

func handleInitProducerID(b *Broker, ctx context.Context, r *request, req *kmsg.InitProducerIDRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	switch {
	case req.TransactionalID != nil && *req.TransactionalID == "":
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	case req.TransactionalID != nil:
		return b.txns.call(ctx, r, req, true, func(c *txn.Coordinator, call txn.Call) txn.Output {
			return c.InitProducerID(call, req)
		})
	case (req.ProducerID == -1) != (req.ProducerEpoch == -1):
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	id, err := b.producerIDs.allocate(ctx, b.meta, b.cfg.NodeID)
	if err != nil {
		b.logger.Error("allocating a producer id", "err", err)
		resp.ErrorCode = kerr.UnknownServerError.Code
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp
}

// producerIDBlockSize is how many producer ids a broker reserves at a time
// through the metadata log.
const producerIDBlockSize = 1000

// producerIDAllocator hands out producer ids from blocks reserved through
// the metadata log (metadata.Controller.ReserveProducerIDs), so that ids
// are unique across restarts and, later, across brokers. Its zero value is
// ready.
type producerIDAllocator struct {
	mu          sync.Mutex
	next, limit int64 // ids in [next, limit) are reserved and unused; guarded by mu
}

// allocate returns a producer id never returned before in this cluster.
func (a *producerIDAllocator) allocate(ctx context.Context, meta *metadata.Controller, node int32) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next == a.limit {
		first, err := meta.ReserveProducerIDs(ctx, node, producerIDBlockSize)
		if err != nil {
			return 0, err
		}
		a.next, a.limit = first, first+producerIDBlockSize
	}
	id := a.next
	a.next++
	return id, nil
}
