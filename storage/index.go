package storage

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/samsa-io/samsa/internal/vfs"
)

const (
	offsetEntrySize = 8  // relative offset uint32, position uint32
	timeEntrySize   = 12 // timestamp int64, relative offset uint32
)

// offsetIndex is a segment's sparse offset index: entries in increasing order
// of relative offset, each naming the byte position in the .log file where the
// batch with that base offset starts. It is held in memory in the same bytes
// as on disk; the file is only appended to.
type offsetIndex struct {
	file    *indexFile
	buf     []byte // the entries, as on disk
	written int    // bytes of buf already in file
}

func (x *offsetIndex) len() int { return len(x.buf) / offsetEntrySize }

func (x *offsetIndex) entry(i int) (rel, pos uint32) {
	e := x.buf[i*offsetEntrySize:]
	return binary.BigEndian.Uint32(e), binary.BigEndian.Uint32(e[4:])
}

// lookup returns the position of the last indexed batch whose relative base
// offset is <= rel, or 0.
func (x *offsetIndex) lookup(rel uint32) int64 {
	n := x.len()
	i := sort.Search(n, func(i int) bool { r, _ := x.entry(i); return r > rel })
	if i == 0 {
		return 0
	}
	_, pos := x.entry(i - 1)
	return int64(pos)
}

// last returns the last entry, or ok false when the index is empty.
func (x *offsetIndex) last() (rel, pos uint32, ok bool) {
	if n := x.len(); n > 0 {
		rel, pos = x.entry(n - 1)
		return rel, pos, true
	}
	return 0, 0, false
}

// append adds an entry in memory; persist writes it out.
func (x *offsetIndex) append(rel, pos uint32) {
	x.buf = binary.BigEndian.AppendUint32(x.buf, rel)
	x.buf = binary.BigEndian.AppendUint32(x.buf, pos)
}

func (x *offsetIndex) persist() error { return persist(x.file, x.buf, &x.written) }

// reset empties the index, in memory and on disk.
func (x *offsetIndex) reset() error {
	x.buf, x.written = x.buf[:0], 0
	return x.file.Truncate(0)
}

// check verifies what can be known of an offset index without the log:
// whole entries, strictly increasing offsets and positions, positions inside
// a log of logSize bytes.
func (x *offsetIndex) check(logSize int64) error {
	if len(x.buf)%offsetEntrySize != 0 {
		return fmt.Errorf("offset index size %d is not a multiple of %d", len(x.buf), offsetEntrySize)
	}
	for i := range x.len() {
		rel, pos := x.entry(i)
		if int64(pos) >= logSize {
			return fmt.Errorf("offset index entry %d points at %d, past the log's %d bytes", i, pos, logSize)
		}
		if i > 0 {
			prel, ppos := x.entry(i - 1)
			if rel <= prel || pos <= ppos {
				return fmt.Errorf("offset index entry %d (%d@%d) does not follow %d@%d", i, rel, pos, prel, ppos)
			}
		}
	}
	return nil
}

// timeIndex is a segment's sparse time index: entries in increasing order of
// timestamp, each holding the largest timestamp seen so far in the segment and
// the relative base offset of the batch that carried it. Every batch before
// that batch has a max timestamp no larger than the entry's.
type timeIndex struct {
	file    *indexFile
	buf     []byte
	written int
}

func (x *timeIndex) len() int { return len(x.buf) / timeEntrySize }

func (x *timeIndex) entry(i int) (ts int64, rel uint32) {
	e := x.buf[i*timeEntrySize:]
	return int64(binary.BigEndian.Uint64(e)), binary.BigEndian.Uint32(e[8:])
}

// last returns the newest entry, or ok false when the index is empty.
func (x *timeIndex) last() (ts int64, rel uint32, ok bool) {
	if n := x.len(); n > 0 {
		ts, rel = x.entry(n - 1)
		return ts, rel, true
	}
	return 0, 0, false
}

// lookupEntry returns the entry from which to scan for the first batch
// with a max timestamp >= ts: the batch it names has none, nor has any batch
// before it, so the scan may start there. ok is false when no entry is
// below ts.
func (x *timeIndex) lookupEntry(ts int64) (entryTs int64, rel uint32, ok bool) {
	i := sort.Search(x.len(), func(i int) bool { t, _ := x.entry(i); return t >= ts })
	if i == 0 {
		return 0, 0, false
	}
	entryTs, rel = x.entry(i - 1)
	return entryTs, rel, true
}

func (x *timeIndex) append(ts int64, rel uint32) {
	x.buf = binary.BigEndian.AppendUint64(x.buf, uint64(ts))
	x.buf = binary.BigEndian.AppendUint32(x.buf, rel)
}

func (x *timeIndex) persist() error { return persist(x.file, x.buf, &x.written) }

func (x *timeIndex) reset() error {
	x.buf, x.written = x.buf[:0], 0
	return x.file.Truncate(0)
}

// persist writes buf[*written:] to f.
func persist(f vfs.File, buf []byte, written *int) error {
	if *written == len(buf) {
		return nil
	}
	if _, err := f.Write(buf[*written:]); err != nil {
		return err
	}
	*written = len(buf)
	return nil
}

// check verifies whole entries with non-decreasing timestamps and offsets.
func (x *timeIndex) check() error {
	if len(x.buf)%timeEntrySize != 0 {
		return fmt.Errorf("time index size %d is not a multiple of %d", len(x.buf), timeEntrySize)
	}
	for i := 1; i < x.len(); i++ {
		ts, rel := x.entry(i)
		pts, prel := x.entry(i - 1)
		if ts <= pts || rel < prel {
			return fmt.Errorf("time index entry %d (%d@%d) does not follow %d@%d", i, ts, rel, pts, prel)
		}
	}
	return nil
}

// readAll reads a whole file into memory.
func readAll(f vfs.File) ([]byte, error) {
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	if n, err := f.ReadAt(buf, 0); n < len(buf) {
		return nil, err
	}
	return buf, nil
}
