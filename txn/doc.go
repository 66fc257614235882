// Package txn is the transaction coordinator: a pure state machine that
// takes requests (InitProducerId with a transactional id, AddPartitionsToTxn,
// AddOffsetsToTxn, EndTxn), the outcome of writing transaction markers, and
// timer ticks, and returns the responses now due, the records to persist in
// the internal compacted topic __transaction_state (Kafka's own
// TxnMetadataKey/TxnMetadataValue schema), and the commit or abort markers
// to write to the partitions of a transaction. It does no I/O and reads no
// clock: the broker's driver (broker/transactions.go) appends the records,
// waits until they are durable, writes the markers, and only then sends the
// replies.
//
// The state of one transactional id follows Kafka's: Empty → Ongoing →
// PrepareCommit/PrepareAbort → CompleteCommit/CompleteAbort (→ Empty on the
// next transaction), with PrepareEpochFence when a new InitProducerId fences
// an ongoing transaction, and Dead once expired.
//
// Invariants:
//   - A transactional id has one producer id and epoch at a time; epochs only
//     grow for a producer id, and a fenced epoch is refused everywhere.
//   - A transaction's outcome is persisted (PrepareCommit/PrepareAbort)
//     before any marker is written, and it is complete only when every
//     partition's marker is durable.
//   - Every change that must survive a restart is returned as a record in
//     the same Output as the reply it enables.
package txn
