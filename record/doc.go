// Package record encodes and decodes Kafka record batches (magic v2), the unit
// in which producers send records, the log stores them and consumers fetch
// them. It checks batches (length, CRC-32C, counts, offsets, timestamps),
// edits the few fields a broker rewrites in place, compresses and
// decompresses record payloads, decodes records and builds batches.
//
// It is on the broker's hot path: ParseHeader, Validate without
// VerifyRecords, SetBaseOffset and friends never allocate, and the
// compressors and decompressors are pooled.
//
// # Batch format
//
// All integers are big-endian. The CRC covers everything from the attributes
// to the end of the batch, so the broker can assign the base offset and the
// leader epoch without recomputing it.
//
//	offset  size  field
//	     0     8  baseOffset            offset of the first record; the broker writes it
//	     8     4  batchLength           bytes that follow this field: the batch is 12+batchLength bytes
//	    12     4  partitionLeaderEpoch  the broker writes it
//	    16     1  magic                 2
//	    17     4  crc                   CRC-32C (Castagnoli) of bytes [21, end)
//	   --------------------------------  the CRC covers from here on
//	    21     2  attributes            see below
//	    23     4  lastOffsetDelta       offset of the last record - baseOffset
//	    27     8  baseTimestamp         first record's timestamp, or the delete horizon
//	    35     8  maxTimestamp          largest record timestamp, or the log append time
//	    43     8  producerId            -1 without idempotence
//	    51     2  producerEpoch         -1 without idempotence
//	    53     4  baseSequence          -1 without idempotence
//	    57     4  recordCount
//	    61     …  records               compressed as one block unless the codec is none
//
// The attribute bits:
//
//	15 ……… 7   6          5        4              3               2 1 0
//	+--------+----------+--------+--------------+---------------+-------+
//	| unused | delete   | control| transactional| timestamp type| codec |
//	|  (0)   | horizon  |        |              | 1=LogAppend   |       |
//	+--------+----------+--------+--------------+---------------+-------+
//
// codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd. With the delete-horizon
// bit (KIP-534) baseTimestamp holds the time after which the log cleaner may
// drop the batch's tombstones; record timestamps stay relative to it.
//
// # Record format
//
// Records follow one another with no padding. "varint" is a zigzag-encoded
// base-128 varint (as encoding/binary's Varint) of at most 5 bytes,
// "varlong" the same of at most 10.
//
//	length          varint   bytes that follow, up to the end of the record
//	attributes      int8     unused, 0
//	timestampDelta  varlong  timestamp - baseTimestamp
//	offsetDelta     varint   offset - baseOffset
//	keyLength       varint   -1 = null key
//	key             keyLength bytes
//	valueLength     varint   -1 = null value (a tombstone)
//	value           valueLength bytes
//	headerCount     varint
//	headers         headerCount times:
//	    keyLength   varint   never null
//	    key         keyLength bytes (UTF-8)
//	    valueLength varint   -1 = null
//	    value       valueLength bytes
//
// # Invariants of a valid batch
//
// As checked by Validate: the length field matches the bytes, the magic is 2,
// the CRC matches, the codec is known and the unused attribute bits are zero;
// it holds recordCount >= 1 records (a control batch exactly one) whose offset
// deltas are 0, 1, …, recordCount-1 = lastOffsetDelta; with CreateTime, no
// record timestamp exceeds maxTimestamp. Batches rewritten by the log cleaner
// may have gaps in their offset deltas and even no records; Validate accepts
// them when asked to (ValidateOptions.AllowCompacted).
//
// # Compression
//
// With a codec other than none, the records section is one compressed block:
// a gzip stream (possibly several members), a snappy block either raw or in
// the xerial framing of the Java client, an LZ4 frame, or a zstd frame.
// Decompression is bounded by MaxDecompressedSize, and sizes that a payload
// declares up front (snappy, zstd) are checked against the limit and against
// what the payload could possibly expand to before anything is allocated, so
// a small batch cannot make the broker allocate much. Snappy is decoded
// strictly: S2 extensions that no Kafka client can read are corrupt. Coders
// are pooled, so steady-state compression and decompression into a reused
// buffer do not allocate.
//
// # Errors
//
// Every error wraps one of ErrCorrupt, ErrInvalidRecord and
// ErrUnsupportedCodec, which map to the Kafka error codes CORRUPT_MESSAGE,
// INVALID_RECORD and UNSUPPORTED_COMPRESSION_TYPE.
package record
