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
// Files: coordinator.go (types, New, Partition), group.go (one group id:
// its state machine and offsets), classic.go and consumer.go (dispatch to
// the two kinds of group), offsets.go (OffsetCommit, OffsetFetch,
// OffsetDelete), list.go (DescribeGroups, ListGroups, DeleteGroups),
// expiry.go (KIP-211 offset expiry, deletion of empty groups), topics.go
// (SetTopics: deleted topics lose their offsets), records.go (the record
// schema), replay.go (start-up), timers.go (deadlines, Tick).
//
// A group id changes kind only while its group is empty, as in Kafka 4.x:
// a JoinGroup turns an empty consumer group into a classic group, a
// joining ConsumerGroupHeartbeat an empty classic group into a consumer
// group; the old group's records are tombstoned and its offsets kept. A
// group with members is never converted (Kafka's online migration of
// KIP-848 is not implemented): a JoinGroup to it gets
// INCONSISTENT_GROUP_PROTOCOL, a ConsumerGroupHeartbeat GROUP_ID_NOT_FOUND.
//
// Invariants:
//   - A group id names at most one group, classic or consumer.
//   - Committed offsets change only through OffsetCommit (or its
//     transactional form), OffsetDelete, DeleteGroups and expiry.
//   - Every change to a group or an offset that must survive a restart is
//     returned as a record in the same Output as the reply it enables.
package group
