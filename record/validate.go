package record

import (
	"math"
	"sync"
)

// ValidateOptions selects how thoroughly Validate checks a batch.
type ValidateOptions struct {
	// VerifyRecords decompresses the batch and checks every record: count
	// equals NumRecords, offset deltas are 0..NumRecords-1 in order, lengths
	// consistent, no trailing bytes, and (CreateTime) each record timestamp
	// <= MaxTimestamp. Without it only the header and CRC are checked.
	VerifyRecords bool

	// AllowCompacted accepts batches as the log cleaner leaves them, for
	// checking a log that was already written rather than a producer's
	// input: LastOffsetDelta may exceed NumRecords-1, NumRecords may be 0
	// (a batch kept only for its producer state), and, with VerifyRecords,
	// offset deltas need only increase strictly and stay within
	// 0..LastOffsetDelta.
	AllowCompacted bool
}

// Validate checks that b is exactly one well-formed v2 batch and returns its
// header. It checks that b is at least a header long and exactly 12+Length
// bytes, the magic byte is 2, the CRC matches, the codec is one of 0..4 and
// the unused attribute bits (7..15) are zero, NumRecords >= 1 (exactly 1 for
// a control batch), LastOffsetDelta == NumRecords-1, and MaxTimestamp >= -1.
// With opts.VerifyRecords it also checks every record (see ValidateOptions).
//
// Without VerifyRecords, Validate does not allocate; with it, decompression
// uses pooled buffers and decoders.
func Validate(b []byte, opts ValidateOptions) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Header{}, err
	}
	if h.Size() != len(b) {
		return Header{}, corruptf("batch length field says %d bytes, have %d", h.Size(), len(b))
	}
	if crc := ComputeCRC(b); crc != h.CRC {
		return Header{}, corruptf("crc mismatch: stored %#08x, computed %#08x", h.CRC, crc)
	}
	if c := h.Attributes.Codec(); !c.Valid() {
		return Header{}, unsupportedf("unknown compression codec id %d", c)
	}
	if bits := h.Attributes & attrUnused; bits != 0 {
		return Header{}, invalidf("unused attribute bits set: %#04x", uint16(bits))
	}
	if err := checkCounts(h, opts.AllowCompacted); err != nil {
		return Header{}, err
	}
	if h.MaxTimestamp < -1 {
		return Header{}, invalidf("invalid max timestamp %d", h.MaxTimestamp)
	}
	if opts.VerifyRecords {
		if err := verifyRecords(b, h, opts.AllowCompacted); err != nil {
			return Header{}, err
		}
	}
	return h, nil
}

// checkCounts checks NumRecords and LastOffsetDelta against each other.
func checkCounts(h Header, compacted bool) error {
	minRecords := int32(1)
	if compacted {
		minRecords = 0
	}
	switch {
	case h.NumRecords < minRecords:
		return invalidf("batch has %d records", h.NumRecords)
	case h.Attributes.Control() && h.NumRecords != 1:
		return invalidf("control batch has %d records, want 1", h.NumRecords)
	case h.LastOffsetDelta < 0:
		return invalidf("negative last offset delta %d", h.LastOffsetDelta)
	case h.BaseOffset > math.MaxInt64-int64(h.LastOffsetDelta):
		return invalidf("last offset overflows: base %d + delta %d", h.BaseOffset, h.LastOffsetDelta)
	case !compacted && h.LastOffsetDelta != h.NumRecords-1:
		return invalidf("last offset delta %d does not match %d records", h.LastOffsetDelta, h.NumRecords)
	case compacted && h.LastOffsetDelta < h.NumRecords-1:
		return invalidf("last offset delta %d is too small for %d records", h.LastOffsetDelta, h.NumRecords)
	}
	return nil
}

// scratchPool holds decompression buffers for verifyRecords.
var scratchPool = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledScratch is the largest buffer returned to scratchPool, so that one
// huge batch does not pin its buffer.
const maxPooledScratch = 16 << 20

// verifyRecords checks every record of a batch whose header Validate has
// already checked.
func verifyRecords(b []byte, h Header, compacted bool) error {
	data := b[HeaderSize:]
	// An empty records section is no records, whatever the codec (see Iter.Init).
	if c := h.Attributes.Codec(); c != CodecNone && len(data) > 0 {
		bufp := scratchPool.Get().(*[]byte)
		out, err := Decompress(c, (*bufp)[:0], data)
		defer func() {
			if cap(out) <= maxPooledScratch {
				*bufp = out[:0]
				scratchPool.Put(bufp)
			}
		}()
		if err != nil {
			return err
		}
		data = out
	}
	if h.NumRecords > int32(len(data)/minRecordSize) {
		return invalidf("record count mismatch: header says %d records, %d bytes can hold at most %d",
			h.NumRecords, len(data), len(data)/minRecordSize)
	}
	checkTime := !h.Attributes.LogAppendTime()
	next := int32(0) // the smallest offset delta the next record may have
	for i := int32(0); i < h.NumRecords; i++ {
		if len(data) == 0 {
			return invalidf("record count mismatch: header says %d records, batch holds %d", h.NumRecords, i)
		}
		r, n, err := parseRecord(data)
		if err != nil {
			return err
		}
		data = data[n:]
		switch {
		case !compacted && r.offsetDelta != i:
			return invalidf("record %d has offset delta %d, want %d", i, r.offsetDelta, i)
		case compacted && (r.offsetDelta < next || r.offsetDelta > h.LastOffsetDelta):
			return invalidf("record %d has offset delta %d, want %d..%d", i, r.offsetDelta, next, h.LastOffsetDelta)
		}
		next = r.offsetDelta + 1
		if checkTime {
			if ts := h.BaseTimestamp + r.timestampDelta; ts > h.MaxTimestamp {
				return invalidf("record %d has timestamp %d after the batch's max timestamp %d", i, ts, h.MaxTimestamp)
			}
		}
	}
	if len(data) > 0 {
		return trailingError(data, h.NumRecords)
	}
	return nil
}
