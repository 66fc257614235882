// Package storage is Samsa's partition log: an append-only, offset-addressed
// sequence of Kafka record batches on disk, kept the way Kafka keeps it. It
// has no network code; the broker calls it.
//
// # On disk
//
// A Store is a data directory with one directory per partition:
//
//	<data>/
//	  .clean-shutdown            present only while the store is closed cleanly
//	  orders-0/                  <topic>-<partition>
//	    checkpoint               log start offset, recovery point, cleaned-to
//	    00000000000000000000.log        segment: batches, base offset 0
//	    00000000000000000000.index      its sparse offset index
//	    00000000000000000000.timeindex  its sparse time index
//	    00000000000000052211.log        next segment, base offset 52211
//	    00000000000000052211.snapshot   producer state as of offset 52211
//	    …
//	  orders-1.<nanos>.deleted/  a partition being deleted (finished on open)
//
// A new log has two files of its own, its first segment's .log and its
// checkpoint, and the caller's (NewLog.Files: the broker's
// partition.metadata). Index entries live in memory until the segment is
// sealed (rolled) or its log closed; its index files are created when they
// are first written out then, or when they are rebuilt.
//
// A segment's .log holds record batches (magic v2, see package record)
// back to back, exactly as the producer sent them except for the fields
// outside the CRC that the broker owns (base offset, partition leader epoch)
// and, for message.timestamp.type=LogAppendTime, the timestamp (with the CRC
// recomputed). Offsets increase strictly from batch to batch; gaps appear
// after compaction. A segment is named by the 20-digit base offset it was
// created at; its first batch's base offset is at least that.
//
// The offset index is a sequence of 8-byte entries, big endian:
//
//	+----------------------+----------------------+
//	| relative offset u32  | byte position u32    |
//	+----------------------+----------------------+
//
// naming, every index.interval.bytes of log, the batch whose base offset is
// base+relative offset and where it starts. Entries increase in both fields.
// A lookup finds the last entry at or below the wanted offset and scans
// batch headers forward from its position.
//
// The time index is a sequence of 12-byte entries, big endian:
//
//	+----------------------+----------------------+
//	| max timestamp i64    | relative offset u32  |
//	+----------------------+----------------------+
//
// written with each offset index entry when the segment's running maximum
// timestamp has grown: the timestamp is that maximum and the offset is the
// base offset of the batch that carries it. So every batch before that one has
// a smaller max timestamp, and a search for the first record at or after T
// starts at the last entry below T. When a segment is sealed (rolled) a final
// entry records its maximum, which retention by time reads without loading the
// index.
//
// The checkpoint is a short text file with a CRC-32C line, replaced by
// write-to-temporary, fsync, rename and directory fsync (a new log's first
// one, all zeros, is written in place: a missing or unreadable checkpoint
// reads as zeros too, so a crash that tears it changes nothing):
//
//	samsa-log-checkpoint 1
//	log-start-offset 1200
//	recovery-point 52211
//	cleaned-to 40000
//	crc32c 1b2e33f0
//
// The log start offset is moved by DeleteRecords and by retention; the
// recovery point is the base of the first segment not yet known to be
// fsynced with its indexes (everything below it was); cleaned-to is where
// the last compaction pass stopped.
//
// A .snapshot file is the log owner's producer state (idempotence and
// transactions) as of the offset in its name, in the format of package
// txn/producers (CRC-protected); storage only writes it durably
// (WriteSnapshot: temporary file, fsync, rename), lists, reads and removes
// it, and keeps the newest two. Recovery ignores these files; the owner
// discards snapshots past the recovered log end or below the log start.
//
// # Transactions
//
// Offsets.LastStable (the LSO) is min(first unstable offset, high
// watermark). The first unstable offset is the first offset of the
// earliest open transaction: an append of a transactional data batch while
// none is open sets it at once, and the owner moves it with
// SetFirstUnstable as markers end transactions. Compaction never passes
// the LSO, drops transactional batches the owner's filter names as aborted
// (SetTxnDiscard), and keeps control batches (markers).
//
// # Durability
//
// Append writes a batch to the active segment; it is in the page cache, not
// yet durable. WaitDurable(end) returns once every offset below end is on
// stable storage. The default flush policy (flush.messages=1, Samsa's default;
// Kafka's is to leave flushing to the OS) fsyncs before WaitDurable returns,
// with group commit: one caller at a time runs an fsync round for every log
// that asked since the previous round began, across all the logs of a Store,
// so one fsync covers every append that arrived while the previous one ran
// (the Committer can also overlap rounds, fsync files in parallel and have
// waiters start their writeback early; a Store does none of these, measured
// no faster). A round fdatasyncs its files one after another, or, from
// DefaultSyncFSThreshold logs on, makes them durable with one syncfs(2)
// (StoreOptions.SyncFSThreshold; measured faster from two logs per round).
// A log's durable point rises only to the log end a round took before its
// sync, once that sync succeeded. flush.messages=N>1 fsyncs after N records,
// flush.ms=T at least every T; under those policies WaitDurable does not wait,
// and an append is durable only once a flush has covered it. A segment that
// rolls is fsynced with its indexes in the background, whatever the policy
// (a group commit that needs its tail durable syncs it too), and the
// recovery point then moves past it; the new segment's directory entry is
// synced, with the sealed segment's index files', before it takes an
// append. A failed fsync fails the log: it refuses writes until reopened,
// since the kernel may have dropped the dirty pages it could not write.
//
// # Recovery
//
// Open trusts what it can prove and rescans the rest:
//   - After a clean shutdown (the store's marker) nothing is rescanned: each
//     segment's size is its file's, the active segment's indexes are loaded
//     and checked, and only the batches after its last index entry are read to
//     find the log end. Sealed segments load their indexes on first use.
//   - After a crash, every segment from the one holding the recovery point on
//     is read batch by batch and each batch validated (length, magic, CRC,
//     offsets increasing); the first bad or torn batch and everything after it
//     (including later segments) is cut off, and the indexes are rebuilt.
//   - An index that is missing, of the wrong size, out of order or pointing
//     past its log is rebuilt from the log. A sealed segment always has
//     both index files, so a missing one was lost and is rebuilt, never
//     taken as empty. The active segment's may not have been written yet: a
//     missing one is read as empty, like a short one (the batches after its
//     last entry are indexed again), unless offset index entries sit next
//     to a missing time index, which was then lost: both are rebuilt.
//   - Leftovers of interrupted work are finished or undone: a compaction's
//     .cleaned file is removed, its .swap file replaces its segment, a
//     checkpoint's .tmp is removed, a partition directory marked .deleted is
//     removed.
//
// A Store opens its logs at start-up, creates a topic's logs (CreateAll)
// and closes them at shutdown in parallel without a sync per log — not
// the new directories, not the checkpoints, not what recovery read back
// from the page cache — and then makes them all durable with one
// syncfs(2) before any is used or the clean-shutdown marker is written.
// After a crash the recovery point moves in memory once that syncfs is
// done; the checkpoint file keeps the older one until the next roll writes
// it. A Log opened on its own (Open) syncs each of those itself.
//
// Read checks the CRC of every batch it returns, so a batch corrupted on
// disk after it was written is refused with an error wrapping
// record.ErrCorrupt rather than served. ReadSection, the zero-copy read the
// broker's Fetch uses, returns where the batches lie (a Section: segment,
// position, length) so that they can go from the page cache to the socket
// with sendfile(2), and so does not read them: it checks a batch's CRC
// once per process instead. Each segment keeps the span of its bytes
// whose CRCs were checked — by Append (from the bytes it wrote), by crash
// recovery's scan, by a clean open's scan of the active segment's tail, or
// by an earlier ReadSection — and ReadSection reads and checks any batch
// outside it before handing it out. So a batch damaged on disk before this
// process checked it (across a restart, say) is refused as by Read; one
// damaged on the device after that is sent as it is, and the client's own
// CRC check (Kafka clients' default) catches it.
//
// # Retention and compaction
//
// With cleanup.policy=delete, EnforceRetention deletes whole segments,
// oldest first, whose newest timestamp is older than retention.ms, and while
// the log without its oldest segment still holds retention.bytes. A wholly
// expired active segment is rolled and deleted, so an idle topic empties.
// SetLogStartOffset (DeleteRecords) hides earlier offsets at once and deletes
// segments that fall wholly below it.
//
// With cleanup.policy=compact, Compact keeps the latest record of each key,
// at its original offset; see Compact for the rules, and CompactOptions for
// the memory and I/O bounds. It never touches the active segment.
//
// # Concurrency
//
// A Log serialises appends, retention, truncation and compaction swaps under
// its mutex and lets any number of reads run beside them: a reader takes a
// reference on a segment, so that a segment deleted under it stays readable
// until the read ends. A Section keeps its reference until it is released,
// after its bytes were sent: a segment deleted or replaced by compaction
// meanwhile keeps its open file, whose bytes do not change. TruncateTo, the
// one operation that rewrites bytes a reader may have seen, starts a new
// generation of the segment first, and a section of an older generation
// refuses to send (ErrSectionGone).
package storage
