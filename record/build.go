package record

import (
	"encoding/binary"
	"math"
)

// BuildOptions describes the batch Build produces. Its zero value is not a
// sensible default (producer id 0 is a real producer): start from
// DefaultBuildOptions.
type BuildOptions struct {
	BaseOffset int64
	Codec      Codec

	LogAppendTime, Transactional, Control bool

	ProducerID           int64 // -1 when none
	ProducerEpoch        int16 // -1 when none
	BaseSequence         int32 // -1 when none
	PartitionLeaderEpoch int32

	// LastOffsetDelta, when >= 0, overrides the derived value (last record's
	// offset - BaseOffset), so a cleaner can keep a batch's original last
	// offset after dropping records. -1 means derive. It is required (>= 0)
	// to build a batch with no records.
	LastOffsetDelta int32

	// DeleteHorizon, when >= 0, sets the delete-horizon attribute and is
	// stored as BaseTimestamp; record timestamp deltas are then relative to
	// it. -1 means none.
	DeleteHorizon int64

	// MaxTimestamp, when greater than the largest record timestamp, is
	// stored as the batch's MaxTimestamp instead (a cleaner keeps the
	// original batch's). It also gives a batch with no records its
	// timestamps. -1 means derive.
	MaxTimestamp int64
}

// DefaultBuildOptions returns options for an uncompressed, non-transactional
// batch at offset 0 with no producer id, epoch or sequence (all -1), derived
// LastOffsetDelta and MaxTimestamp (-1), no delete horizon (-1), and
// partition leader epoch -1.
func DefaultBuildOptions() BuildOptions {
	return BuildOptions{
		ProducerID:           -1,
		ProducerEpoch:        -1,
		BaseSequence:         -1,
		PartitionLeaderEpoch: -1,
		LastOffsetDelta:      -1,
		DeleteHorizon:        -1,
		MaxTimestamp:         -1,
	}
}

// Build encodes recs into one batch with a correct length and CRC. It uses
// each record's absolute Offset (which must be >= opts.BaseOffset and
// strictly increasing) and Timestamp. BaseTimestamp is the first record's
// timestamp (or opts.DeleteHorizon), MaxTimestamp the largest record
// timestamp. A control batch must hold exactly one record. Problems with the
// input are ErrInvalidRecord errors; an unknown codec is ErrUnsupportedCodec.
func Build(opts BuildOptions, recs []Record) ([]byte, error) {
	if !opts.Codec.Valid() {
		return nil, unsupportedf("unknown compression codec id %d", opts.Codec)
	}
	if opts.Control && len(recs) != 1 {
		return nil, invalidf("control batch needs exactly 1 record, have %d", len(recs))
	}
	if len(recs) > math.MaxInt32 {
		return nil, invalidf("too many records: %d", len(recs))
	}
	if len(recs) == 0 && opts.LastOffsetDelta < 0 {
		return nil, invalidf("a batch with no records needs an explicit LastOffsetDelta")
	}

	// Offsets and timestamps.
	if estimateSize(recs) > math.MaxInt32 {
		return nil, invalidf("records too large for one batch")
	}
	lastDelta := int64(-1)
	baseTS, maxTS := int64(-1), int64(-1)
	if len(recs) > 0 {
		baseTS = recs[0].Timestamp
	}
	for i := range recs {
		r := &recs[i]
		delta := r.Offset - opts.BaseOffset
		if r.Offset < opts.BaseOffset || delta > math.MaxInt32 || delta <= lastDelta {
			return nil, invalidf("record %d: offset %d is not after the previous one within 2^31 of base offset %d",
				i, r.Offset, opts.BaseOffset)
		}
		lastDelta = delta
		if i == 0 || r.Timestamp > maxTS {
			maxTS = r.Timestamp
		}
	}
	maxTS = max(maxTS, opts.MaxTimestamp)
	if opts.LastOffsetDelta >= 0 {
		if int64(opts.LastOffsetDelta) < lastDelta {
			return nil, invalidf("LastOffsetDelta %d is below the last record's delta %d", opts.LastOffsetDelta, lastDelta)
		}
		lastDelta = int64(opts.LastOffsetDelta)
	}
	if len(recs) == 0 {
		baseTS = maxTS
	}
	attrs := Attributes(opts.Codec)
	if opts.LogAppendTime {
		attrs |= attrLogAppendTime
	}
	if opts.Transactional {
		attrs |= attrTransactional
	}
	if opts.Control {
		attrs |= attrControl
	}
	if opts.DeleteHorizon >= 0 {
		attrs |= attrDeleteHorizon
		baseTS = opts.DeleteHorizon
	}

	// Header, then the records, compressed if asked.
	b := make([]byte, HeaderSize, HeaderSize+estimateSize(recs))
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(opts.BaseOffset))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(opts.PartitionLeaderEpoch))
	b[offMagic] = MagicV2
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(attrs))
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(lastDelta))
	binary.BigEndian.PutUint64(b[offBaseTimestamp:], uint64(baseTS))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(maxTS))
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(opts.ProducerID))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(opts.ProducerEpoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(opts.BaseSequence))
	binary.BigEndian.PutUint32(b[offNumRecords:], uint32(len(recs)))

	switch {
	case len(recs) == 0:
		// No records section at all, as Kafka writes an empty batch.
	case opts.Codec == CodecNone:
		for i := range recs {
			b = appendRecord(b, &recs[i], opts.BaseOffset, baseTS)
		}
	default:
		raw := make([]byte, 0, estimateSize(recs))
		for i := range recs {
			raw = appendRecord(raw, &recs[i], opts.BaseOffset, baseTS)
		}
		var err error
		if b, err = Compress(opts.Codec, b, raw); err != nil {
			return nil, err
		}
	}
	if len(b)-lengthOverhead > math.MaxInt32 {
		return nil, invalidf("batch of %d bytes is too large", len(b))
	}
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-lengthOverhead))
	UpdateCRC(b)
	return b, nil
}

// estimateSize returns roughly the encoded size of recs, for preallocation.
func estimateSize(recs []Record) int {
	n := 0
	for i := range recs {
		r := &recs[i]
		n += 2*binary.MaxVarintLen32 + 2*binary.MaxVarintLen64 + len(r.Key) + len(r.Value)
		for _, h := range r.Headers {
			n += 2*binary.MaxVarintLen32 + len(h.Key) + len(h.Value)
		}
	}
	return n
}

// appendRecord appends the encoding of r to b.
func appendRecord(b []byte, r *Record, baseOffset, baseTS int64) []byte {
	tsDelta := r.Timestamp - baseTS
	offsetDelta := r.Offset - baseOffset
	// The body's size comes first, so compute it before writing.
	size := 1 + varintLen(tsDelta) + varintLen(offsetDelta) +
		bytesLen(r.Key) + bytesLen(r.Value) + varintLen(int64(len(r.Headers)))
	for _, h := range r.Headers {
		size += varintLen(int64(len(h.Key))) + len(h.Key) + bytesLen(h.Value)
	}
	b = binary.AppendVarint(b, int64(size))
	b = append(b, byte(r.Attributes))
	b = binary.AppendVarint(b, tsDelta)
	b = binary.AppendVarint(b, offsetDelta)
	b = appendBytes(b, r.Key)
	b = appendBytes(b, r.Value)
	b = binary.AppendVarint(b, int64(len(r.Headers)))
	for _, h := range r.Headers {
		b = binary.AppendVarint(b, int64(len(h.Key)))
		b = append(b, h.Key...)
		b = appendBytes(b, h.Value)
	}
	return b
}

// appendBytes appends a nullable byte field: varint length (-1 = nil), bytes.
func appendBytes(b, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(b, -1)
	}
	b = binary.AppendVarint(b, int64(len(v)))
	return append(b, v...)
}

func bytesLen(v []byte) int {
	if v == nil {
		return 1
	}
	return varintLen(int64(len(v))) + len(v)
}

// varintLen returns the size of v as a zigzag varint.
func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}
