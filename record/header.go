package record

import (
	"encoding/binary"
	"hash/crc32"
)

// HeaderSize is the size of a v2 batch header: everything before the first
// record.
const HeaderSize = 61

// MagicV2 is the magic byte of the only batch format this package handles.
const MagicV2 = 2

// Byte offsets of the header fields (see doc.go).
const (
	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offNumRecords      = 57

	// lengthOverhead is the number of bytes not counted by the length field:
	// baseOffset and the length field itself.
	lengthOverhead = 12
)

// Attributes is the batch attributes field.
type Attributes int16

// Attribute bits.
const (
	attrCodecMask     Attributes = 0x07
	attrLogAppendTime Attributes = 0x08
	attrTransactional Attributes = 0x10
	attrControl       Attributes = 0x20
	attrDeleteHorizon Attributes = 0x40
	// attrUnused are the bits no Kafka version assigns; Validate rejects
	// batches that set any of them.
	attrUnused = ^Attributes(0x7f)
)

// Codec returns the compression codec of the batch's records.
func (a Attributes) Codec() Codec { return Codec(a & attrCodecMask) }

// LogAppendTime reports whether the batch's timestamps are the broker's log
// append time (MaxTimestamp) rather than the producer's create time.
func (a Attributes) LogAppendTime() bool { return a&attrLogAppendTime != 0 }

// Transactional reports whether the batch is part of a transaction.
func (a Attributes) Transactional() bool { return a&attrTransactional != 0 }

// Control reports whether the batch holds a control record (a transaction
// marker) rather than user data.
func (a Attributes) Control() bool { return a&attrControl != 0 }

// HasDeleteHorizon reports whether BaseTimestamp holds the delete horizon set
// by the log cleaner (KIP-534) rather than the first record's timestamp.
func (a Attributes) HasDeleteHorizon() bool { return a&attrDeleteHorizon != 0 }

// Header is the decoded fixed-size header of a v2 record batch.
type Header struct {
	BaseOffset           int64
	Length               int32 // bytes after the Length field: the batch is 12+Length bytes
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32 // CRC-32C of the bytes from Attributes to the end
	Attributes           Attributes
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Size returns the size of the whole encoded batch in bytes.
func (h Header) Size() int { return lengthOverhead + int(h.Length) }

// LastOffset returns the offset of the last record the batch covers.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// ParseHeader decodes the fixed header at the start of b. It checks only that
// b holds a whole header, that the length field is at least big enough for the
// header, and that the magic byte is 2; it neither looks at the records nor
// checks the CRC (see Validate). It does not allocate.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, corruptf("truncated batch header: %d bytes, need %d", len(b), HeaderSize)
	}
	h := Header{
		BaseOffset:           int64(binary.BigEndian.Uint64(b[offBaseOffset:])),
		Length:               int32(binary.BigEndian.Uint32(b[offLength:])),
		PartitionLeaderEpoch: int32(binary.BigEndian.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  binary.BigEndian.Uint32(b[offCRC:]),
		Attributes:           Attributes(binary.BigEndian.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:        int64(binary.BigEndian.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:         int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(binary.BigEndian.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(binary.BigEndian.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(binary.BigEndian.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(binary.BigEndian.Uint32(b[offNumRecords:])),
	}
	if h.Length < HeaderSize-lengthOverhead {
		return Header{}, corruptf("batch length %d is smaller than the header", h.Length)
	}
	if h.Magic != MagicV2 {
		return Header{}, corruptf("unsupported magic byte %d, want %d", h.Magic, MagicV2)
	}
	return h, nil
}

// SetBaseOffset writes offset as the batch's base offset. The field lies
// outside the CRC, so the CRC stays valid. b must hold at least a header.
func SetBaseOffset(b []byte, offset int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(offset))
}

// SetPartitionLeaderEpoch writes the batch's partition leader epoch. The
// field lies outside the CRC, so the CRC stays valid.
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
}

// SetLogAppendTime marks the batch's timestamps as log append time, sets
// MaxTimestamp to ts and recomputes the CRC over the whole batch. This is what
// a broker does for topics with message.timestamp.type=LogAppendTime; readers
// then report ts as every record's timestamp. b must be one whole batch.
func SetLogAppendTime(b []byte, ts int64) {
	attrs := binary.BigEndian.Uint16(b[offAttributes:]) | uint16(attrLogAppendTime)
	binary.BigEndian.PutUint16(b[offAttributes:], attrs)
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(ts))
	UpdateCRC(b)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ComputeCRC returns the CRC-32C (Castagnoli) of b[21:], the span the batch
// CRC covers: from the attributes to the end of the batch.
func ComputeCRC(b []byte) uint32 {
	return crc32.Checksum(b[offAttributes:], castagnoli)
}

// UpdateCRC recomputes the batch CRC and stores it in the header.
func UpdateCRC(b []byte) {
	binary.BigEndian.PutUint32(b[offCRC:], ComputeCRC(b))
}
