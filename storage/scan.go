package storage

import (
	"errors"
	"fmt"
	"io"

	"github.com/samsa-io/samsa/internal/vfs"
	"github.com/samsa-io/samsa/record"
)

// scanner walks the batches of a segment file in large reads.
//
// What it makes of a bad batch depends on its mode. By default, for
// readers, every batch's CRC is checked and offsets must grow from batch to
// batch: a bad batch, or bytes after the last good one, are an error
// wrapping record.ErrCorrupt (err). With strict, for recovery, every batch
// is validated (CRC and header) and a bad one just ends the walk. With
// lenient, for rebuilding indexes, only the framing is checked (a batch
// with a bad CRC is walked over, and refused when read), and bad framing
// ends the walk.
type scanner struct {
	chunk   int64 // read-ahead size; scanChunk when zero
	f       vfs.File
	size    int64 // bytes of the file to walk
	strict  bool
	lenient bool

	pos int64         // position of the current batch
	end int64         // position after the last good batch
	h   record.Header // the current batch's header
	b   []byte        // the current batch, valid until the next call

	buf      []byte
	bufStart int64 // file position of buf[0]
	err      error // an I/O error, or by default corruption

	prevLast int64 // last offset of the previous batch, when b != nil
}

const scanChunk = 1 << 20

// next moves to the next good batch; false at the end, at a torn or corrupt
// batch, or on an I/O error (err).
func (sc *scanner) next() bool {
	if sc.b != nil {
		sc.pos = sc.end
	} else {
		sc.end = sc.pos
	}
	if sc.pos >= sc.size {
		return false
	}
	if sc.size-sc.pos < record.HeaderSize {
		return sc.bad("partial batch header")
	}
	hdr, ok := sc.window(sc.pos, record.HeaderSize)
	if !ok {
		return false
	}
	h, err := record.ParseHeader(hdr)
	if err != nil {
		return sc.bad(err.Error())
	}
	if int64(h.Size()) > sc.size-sc.pos {
		return sc.bad(fmt.Sprintf("batch of %d bytes runs past the end", h.Size()))
	}
	b, ok := sc.window(sc.pos, h.Size())
	if !ok {
		return false
	}
	switch {
	case sc.strict:
		// Compaction leaves batches with fewer records than offsets.
		if _, err := record.Validate(b, record.ValidateOptions{AllowCompacted: true}); err != nil {
			return false
		}
	case !sc.lenient:
		if crc := record.ComputeCRC(b); crc != h.CRC {
			return sc.bad(fmt.Sprintf("crc 0x%08x, computed 0x%08x", h.CRC, crc))
		}
		if h.LastOffsetDelta < 0 || (sc.b != nil && h.BaseOffset <= sc.prevLast) {
			return sc.bad(fmt.Sprintf("batch offsets %d+%d out of order", h.BaseOffset, h.LastOffsetDelta))
		}
	}
	sc.h, sc.b, sc.prevLast = h, b, h.LastOffset()
	sc.end = sc.pos + int64(h.Size())
	return true
}

// bad ends the walk at a bad batch: quietly in strict and lenient modes,
// with a corruption error by default.
func (sc *scanner) bad(detail string) bool {
	if !sc.strict && !sc.lenient {
		sc.err = &CorruptionError{Pos: sc.pos, Detail: detail}
	}
	return false
}

// window returns n bytes of the file at pos, reading ahead in chunks.
func (sc *scanner) window(pos int64, n int) ([]byte, bool) {
	if pos >= sc.bufStart && pos+int64(n) <= sc.bufStart+int64(len(sc.buf)) {
		off := pos - sc.bufStart
		return sc.buf[off : off+int64(n)], true
	}
	chunk := int64(scanChunk)
	if sc.chunk > 0 {
		chunk = sc.chunk
	}
	want := min(max(int64(n), chunk), sc.size-pos)
	if int64(cap(sc.buf)) < want {
		sc.buf = make([]byte, want)
	}
	sc.buf = sc.buf[:want]
	if _, err := sc.f.ReadAt(sc.buf, pos); err != nil && !errors.Is(err, io.EOF) {
		sc.err = err
		return nil, false
	}
	sc.bufStart = pos
	return sc.buf[:n], true
}
