// Package txn is the transaction coordinator: a pure state machine that
// takes requests (InitProducerId with a transactional id, AddPartitionsToTxn,
// AddOffsetsToTxn, EndTxn), the outcome of writing transaction markers, and
// timer ticks, and returns the responses now due, the records to persist in
// the internal compacted topic __transaction_state (Kafka's own
// TxnMetadataKey/TxnMetadataValue schema), and the commit or abort markers
// to write to the partitions of a transaction. It does no I/O and reads no
// clock: the broker's driver (broker/transactions.go) appends the records,
// waits until they are durable, and only then sends the replies and writes
// the markers.
//
// The state of one transactional id follows Kafka's TransactionMetadata:
// Empty → Ongoing → PrepareCommit/PrepareAbort → CompleteCommit/CompleteAbort
// (→ Ongoing on the next transaction's first partition, → Empty on the next
// InitProducerId). A second InitProducerId fences an ongoing transaction:
// the epoch is bumped and the transaction aborted (Kafka's
// PrepareEpochFence, persisted as PrepareAbort), and the InitProducerId is
// answered, with the epoch bumped again, once the abort is complete. A
// transaction past its timeout is aborted the same way. An idle id expires
// after transactional.id.expiration.ms (a tombstone; Kafka's Dead).
//
// Files: coordinator.go (types, New, Partition), state.go (states, one
// id's metadata, deadlines), init.go (InitProducerId), add.go
// (AddPartitionsToTxn, AddOffsetsToTxn, InTransaction), hold.go (adds
// waiting for the previous transaction's markers), end.go (EndTxn and
// the coordinator's own aborts), markers.go (markers and completion),
// timeout.go (Tick, Deadline), records.go (the record schema), replay.go
// (start-up), describe.go (DescribeTransactions, ListTransactions).
//
// Where it differs from Kafka:
//   - A fencing InitProducerId waits for the abort's markers and is then
//     answered with the new epoch; Kafka answers CONCURRENT_TRANSACTIONS
//     and the client retries to the same result.
//   - The first add of a producer's next transaction, while the markers of
//     the one it ended are being written, waits for them (up to a second)
//     and is then handled; Kafka answers CONCURRENT_TRANSACTIONS and the
//     client retries after a backoff (hold.go).
//   - A transaction version 2 EndTxn (v5) at the current epoch after a
//     completed transaction gets INVALID_TXN_STATE (nothing to end);
//     Kafka 4.0 answers PRODUCER_FENCED.
//   - Deadlines are exact rather than checked every
//     transaction.abort.timed.out.transaction.cleanup.interval.ms.
//   - The epoch before the last bump (Kafka's lastProducerEpoch, which
//     lets a KIP-360 retry be recognized) is not persisted, as in Kafka,
//     so such a retry across a restart is fenced.
//
// Invariants:
//   - A transactional id has one producer id and epoch at a time; epochs only
//     grow for a producer id, and a fenced epoch is refused everywhere.
//   - A transaction's outcome is persisted (PrepareCommit/PrepareAbort)
//     before any marker is written, and it is complete only when every
//     partition's marker is durable (or its partition is gone).
//   - Every change that must survive a restart is returned as a record in
//     the same Output as the reply it enables.
//   - Every request is answered exactly once.
package txn
