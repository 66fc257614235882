package record

import (
	"encoding/binary"
	"math"
)

// RecordHeader is one record header: a non-null key and a nullable value.
type RecordHeader struct {
	Key   string
	Value []byte // nil = null
}

// Record is one decoded record, with its offset and timestamp made absolute.
type Record struct {
	Attributes int8 // record-level attributes; unused by Kafka so far
	// Offset is the batch's BaseOffset plus the record's offset delta.
	Offset int64
	// Timestamp is the batch's BaseTimestamp plus the record's timestamp
	// delta; in a LogAppendTime batch it is the batch's MaxTimestamp, which
	// is what Kafka reports.
	Timestamp int64
	Key       []byte // nil = null key
	Value     []byte // nil = null value (a tombstone)
	Headers   []RecordHeader
}

// minRecordSize is the smallest encoding of a record: one byte each for the
// length, attributes, timestamp delta, offset delta, key length, value length
// and header count.
const minRecordSize = 7

// rawRecord is a record as it sits in the batch, before deltas are applied
// and before its headers are decoded.
type rawRecord struct {
	attributes     int8
	timestampDelta int64
	offsetDelta    int32
	key, value     []byte // nil = null
	headerCount    int
	headers        []byte // the encoded headers
}

// Kafka encodes int32 fields as zigzag varints of at most 5 bytes and int64
// fields as zigzag varlongs of at most 10; binary.Varint is the same zigzag.

// varint32 decodes a varint that must fit in an int32. n <= 0 means failure.
func varint32(b []byte) (v int32, n int) {
	if len(b) > 0 && b[0] < 0x80 { // one byte: the common case
		u := uint32(b[0])
		return int32(u>>1) ^ -int32(u&1), 1
	}
	x, n := binary.Varint(b)
	if n <= 0 || n > 5 || x < math.MinInt32 || x > math.MaxInt32 {
		return 0, -1
	}
	return int32(x), n
}

// varint64 decodes a varlong. n <= 0 means failure.
func varint64(b []byte) (v int64, n int) {
	if len(b) > 0 && b[0] < 0x80 {
		u := uint64(b[0])
		return int64(u>>1) ^ -int64(u&1), 1
	}
	return binary.Varint(b)
}

// bytesField decodes a varint length (-1 = null) and that many bytes.
func bytesField(b []byte, what string) (field []byte, n int, err error) {
	l, n := varint32(b)
	if n <= 0 {
		return nil, 0, corruptf("malformed %s length", what)
	}
	if l < -1 || int(l) > len(b)-n {
		return nil, 0, corruptf("%s length %d out of range (%d bytes left)", what, l, len(b)-n)
	}
	if l == -1 {
		return nil, n, nil
	}
	return b[n : n+int(l) : n+int(l)], n + int(l), nil
}

// parseRecord decodes the record at the start of b and returns it and its
// encoded size. It checks the record's structure fully, headers included,
// without allocating.
func parseRecord(b []byte) (r rawRecord, size int, err error) {
	length, n := varint32(b)
	if n <= 0 {
		return r, 0, corruptf("malformed record length")
	}
	if length < minRecordSize-1 || int(length) > len(b)-n {
		return r, 0, corruptf("record length %d out of range (%d bytes left)", length, len(b)-n)
	}
	size = n + int(length)
	body := b[n:size]

	r.attributes = int8(body[0])
	p := 1
	if r.timestampDelta, n = varint64(body[p:]); n <= 0 {
		return r, 0, corruptf("malformed record timestamp delta")
	}
	p += n
	if r.offsetDelta, n = varint32(body[p:]); n <= 0 {
		return r, 0, corruptf("malformed record offset delta")
	}
	p += n
	if r.key, n, err = bytesField(body[p:], "key"); err != nil {
		return r, 0, err
	}
	p += n
	if r.value, n, err = bytesField(body[p:], "value"); err != nil {
		return r, 0, err
	}
	p += n
	count, n := varint32(body[p:])
	if n <= 0 {
		return r, 0, corruptf("malformed record header count")
	}
	p += n
	if count < 0 {
		return r, 0, corruptf("negative record header count %d", count)
	}
	r.headerCount = int(count)
	r.headers = body[p:]
	for i := range count {
		if len(body)-p < 2 {
			return r, 0, corruptf("record header %d of %d truncated", i, count)
		}
		k, n, err := bytesField(body[p:], "header key")
		if err != nil {
			return r, 0, err
		}
		if k == nil {
			return r, 0, corruptf("null record header key")
		}
		p += n
		if _, n, err = bytesField(body[p:], "header value"); err != nil {
			return r, 0, err
		}
		p += n
	}
	if p != len(body) {
		return r, 0, corruptf("record length %d, but its fields take %d bytes", length, p)
	}
	return r, size, nil
}

// appendHeaders decodes the headers of a record that parseRecord accepted.
func appendHeaders(dst []RecordHeader, r *rawRecord) []RecordHeader {
	b := r.headers
	for range r.headerCount {
		k, n, _ := bytesField(b, "")
		b = b[n:]
		v, n, _ := bytesField(b, "")
		b = b[n:]
		dst = append(dst, RecordHeader{Key: string(k), Value: v})
	}
	return dst
}

// Iter decodes the records of one batch one at a time. Use it as
//
//	var it record.Iter
//	if err := it.Init(batch, scratch); err != nil { ... }
//	for it.Next() {
//		rec := it.Record()
//		...
//	}
//	if err := it.Err(); err != nil { ... }
//	scratch = it.Buffer() // reuse the decompression buffer next time
//
// A record's Key and Value alias the batch (uncompressed batches) or the
// decompression buffer (compressed ones), and its Headers slice is reused by
// the next call to Next: copy what must outlive the batch, the buffer, or the
// next record. Header keys are strings, so decoding headers allocates; an
// uncompressed batch whose records have no headers iterates without
// allocating, and so does a compressed one once the buffer is big enough.
//
// Iter does not check the CRC or the offset deltas; Validate does.
type Iter struct {
	hdr     Header
	data    []byte // the encoded records not yet decoded
	buf     []byte // decompression buffer, kept for reuse
	left    int32  // records the header promises that Next has not yet decoded
	found   int32  // records decoded so far
	rec     Record
	headers []RecordHeader // backing store of rec.Headers, reused
	err     error
}

// NewIter returns an Iter over the batch b; see Iter.Init.
func NewIter(b []byte, scratch []byte) (*Iter, error) {
	it := new(Iter)
	if err := it.Init(b, scratch); err != nil {
		return nil, err
	}
	return it, nil
}

// Init makes it iterate over the records of b, which must be exactly one
// batch. If the batch is compressed its records are decompressed into
// scratch[:0] (grown if need be; nil is fine). Init checks the header's
// structure but not the CRC. If it fails, Next returns false and Err returns
// the same error.
func (it *Iter) Init(b []byte, scratch []byte) error {
	headers := it.headers[:0]
	*it = Iter{buf: scratch, headers: headers}
	if err := it.init(b, scratch); err != nil {
		it.err = err
		it.data = nil
		return err
	}
	return nil
}

func (it *Iter) init(b []byte, scratch []byte) error {
	h, err := ParseHeader(b)
	if err != nil {
		return err
	}
	if h.Size() != len(b) {
		return corruptf("batch length field says %d bytes, have %d", h.Size(), len(b))
	}
	if h.NumRecords < 0 {
		return invalidf("negative record count %d", h.NumRecords)
	}
	it.hdr = h
	it.left = h.NumRecords
	it.data = b[HeaderSize:]
	c := h.Attributes.Codec()
	if !c.Valid() {
		return unsupportedf("unknown compression codec id %d", c)
	}
	// An empty records section is no records, whatever the codec: the log
	// cleaner leaves such batches behind.
	if c != CodecNone && len(it.data) > 0 {
		out, err := Decompress(c, scratch[:0], it.data)
		it.buf = out
		if err != nil {
			return err
		}
		it.data = out
	}
	return nil
}

// Header returns the batch header.
func (it *Iter) Header() Header { return it.hdr }

// Buffer returns the decompression buffer, to be passed as scratch to a later
// Init once nothing refers to the records decoded from it.
func (it *Iter) Buffer() []byte { return it.buf[:0] }

// Next decodes the next record, reporting whether there was one. It returns
// false at the end of the batch or on an error; see Err.
func (it *Iter) Next() bool {
	if it.err != nil {
		return false
	}
	if it.left == 0 {
		if len(it.data) > 0 {
			it.err = trailingError(it.data, it.found)
			it.data = nil
		}
		return false
	}
	if len(it.data) == 0 {
		it.err = invalidf("record count mismatch: header says %d records, batch holds %d", it.hdr.NumRecords, it.found)
		return false
	}
	r, n, err := parseRecord(it.data)
	if err != nil {
		it.err = err
		return false
	}
	it.data = it.data[n:]
	it.left--
	it.found++
	it.rec = Record{
		Attributes: r.attributes,
		Offset:     it.hdr.BaseOffset + int64(r.offsetDelta),
		Timestamp:  it.hdr.BaseTimestamp + r.timestampDelta,
		Key:        r.key,
		Value:      r.value,
	}
	if it.hdr.Attributes.LogAppendTime() {
		it.rec.Timestamp = it.hdr.MaxTimestamp
	}
	if r.headerCount > 0 {
		it.headers = appendHeaders(it.headers[:0], &r)
		it.rec.Headers = it.headers
	}
	return true
}

// Record returns the record Next decoded.
func (it *Iter) Record() Record { return it.rec }

// Err returns the error that stopped Next, if any.
func (it *Iter) Err() error { return it.err }

// trailingError describes bytes left after the records the header counts:
// more whole records mean the count is wrong, anything else is garbage.
func trailingError(rest []byte, found int32) error {
	extra := 0
	for b := rest; len(b) > 0; extra++ {
		_, n, err := parseRecord(b)
		if err != nil {
			return corruptf("%d trailing bytes after the last record", len(rest))
		}
		b = b[n:]
	}
	return invalidf("record count mismatch: header says %d records, batch holds %d", found, int(found)+extra)
}

// Records decodes every record of the batch b (exactly one batch),
// decompressing as needed. Keys and values alias b or a fresh decompression
// buffer. It checks the structure of the batch and of every record, but not
// the CRC or the offset deltas; call Validate for those.
func Records(b []byte) ([]Record, error) {
	var it Iter
	if err := it.Init(b, nil); err != nil {
		return nil, err
	}
	// Each record takes at least minRecordSize bytes: never trust the count
	// for more than the data can hold.
	recs := make([]Record, 0, min(int(it.hdr.NumRecords), len(it.data)/minRecordSize))
	var headers []RecordHeader // one backing array for all the records' headers
	for it.Next() {
		r := it.Record()
		if len(r.Headers) > 0 {
			start := len(headers)
			headers = append(headers, r.Headers...)
			r.Headers = headers[start:len(headers):len(headers)]
		}
		recs = append(recs, r)
	}
	if it.err != nil {
		return nil, it.err
	}
	return recs, nil
}
