// Package group is the consumer-group coordinator: a pure state machine that
// takes requests (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
// OffsetFetch, ConsumerGroupHeartbeat, …) and timer ticks, and returns the
// responses now due and the records to persist in the internal compacted
// topic __consumer_offsets. It does no I/O and reads no clock: the broker's
// driver (broker/groups.go) appends the records, waits until they are
// durable, and only then sends the replies.
//
// The groups themselves live in sub-packages, one state machine per group:
// classic (the JoinGroup/SyncGroup protocol, eager and cooperative) and
// consumer (KIP-848's ConsumerGroupHeartbeat, with the server-side assignors
// of package assign). This package owns the namespace of group ids,
// committed offsets, the record encoding (Kafka's own key and value schemas,
// so that Kafka's tools could read the topic), replay at start-up and
// expiry.
//
// Invariants:
//   - A group id names at most one group, classic or consumer.
//   - Committed offsets change only through OffsetCommit (or its
//     transactional form), OffsetDelete, DeleteGroups and expiry.
//   - Every change to a group or an offset that must survive a restart is
//     returned as a record in the same Output as the reply it enables.
package group
