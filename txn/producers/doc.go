// Package producers is a partition's producer state: what each producer id
// has written to one partition, as Kafka's ProducerStateManager keeps it.
// It is a pure state machine: the broker checks every batch with a producer
// id against it before the append (Check), tells it about the batch once
// written (Append) and about transaction markers (CheckMarker, ApplyMarker),
// and rebuilds it after a restart from a snapshot plus the batches of the
// log after the snapshot (Decode, Observe). It reads no clock and does no
// I/O.
//
// Per producer id it keeps the epoch, the last five batches (sequence range
// and offsets, for duplicate detection), the coordinator epoch of the last
// marker, the timestamp of the last batch (for expiry) and the first offset
// of its ongoing transaction, if any. Per partition it keeps the aborted
// transactions (producer id, first offset, offset of the abort marker) in
// marker order: Kafka's transaction index, which Fetch with read_committed
// returns and compaction uses to drop aborted data.
//
// Invariants:
//   - A producer has at most one ongoing transaction per partition; it
//     starts at the producer's first transactional batch and ends at its
//     next marker.
//   - FirstUnstable is the smallest first offset of an ongoing transaction;
//     a new transaction always starts after every ongoing one.
//   - Aborted transactions are ordered by their marker's offset.
//   - A producer with an ongoing transaction never expires.
//
// # Snapshot format
//
// A snapshot (Encode, Decode) is the whole state as of a log offset: every
// batch below the offset is in it, none at or after. Storage keeps it as
// <offset, 20 digits>.snapshot in the partition directory. All integers are
// big endian:
//
//	magic "SMPS" (4) | version u16 = 1 | crc32c u32 of the rest
//	offset i64 | producer count u32
//	per producer:
//	  id i64 | epoch i16 | coordinator epoch i32 | last timestamp i64
//	  txn first offset i64 (-1: none) | batch count u8
//	  per batch: first seq i32 | last seq i32 | first offset i64
//	             last offset i64 | log append time i64 (-1: create time)
//	aborted count u32
//	per aborted transaction: producer id i64 | first offset i64 | last offset i64
//
// A snapshot whose magic, version, CRC or lengths do not check out is
// ErrCorruptSnapshot; the broker then ignores it and rebuilds from an
// older snapshot or from the log.
package producers
