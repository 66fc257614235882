package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/samsa-io/samsa/internal/vfs"
	"github.com/samsa-io/samsa/record"
)

// File name suffixes of a segment.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	cleanedSuffix   = ".cleaned" // a compacted copy being written
	swapSuffix      = ".swap"    // a compacted copy ready to replace its .log
)

// segmentName returns the file name of the segment with the given base offset.
func segmentName(base int64, suffix string) string {
	return fmt.Sprintf("%020d%s", base, suffix)
}

// parseSegmentName returns the base offset of a file named
// <20 digits><suffix>.
func parseSegmentName(name, suffix string) (int64, bool) {
	stem, ok := strings.CutSuffix(name, suffix)
	if !ok || len(stem) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(stem, 10, 64)
	return base, err == nil && base >= 0
}

// defaultIndexInterval is the index density of indexes rebuilt from a log
// (index.interval.bytes' default).
const defaultIndexInterval = 4096

// prefixLen is how much of a batch header locating a batch needs: base
// offset, length, and (at 23) the last offset delta.
const prefixLen = 27

// segment is one file of the log and its two indexes.
//
// A segment is written only by its Log, under Log.mu. Readers read the .log
// file concurrently, up to size, which is published after each write.
type segment struct {
	fs     vfs.FS
	dir    string
	base   int64 // immutable: offset of the first batch it may hold
	logger *slog.Logger

	log vfs.File // immutable handle

	// size is the length of the whole batches in log, next the offset after
	// the last of them. Written under Log.mu, read by anyone.
	size atomic.Int64
	next atomic.Int64

	// Guarded by Log.mu.
	maxTs           int64 // largest batch max timestamp, -1 when none
	maxTsOffset     int64 // base offset of the batch that carries maxTs
	firstTs         int64 // max timestamp of the first batch, -1 when empty: segment.ms counts from it
	bytesSinceIndex int64 // bytes appended since the last offset index entry

	// loaded says the indexes are in memory. A sealed segment opened
	// trusted loads them on first use (Log.loadSegments). Written under
	// Log.mu held for writing, like idx and tidx.
	loaded       bool
	indexMissing bool // an index file was missing on open: a sealed segment rebuilds both
	idx          offsetIndex
	tidx         timeIndex

	badIndexWarned atomic.Bool // a damaged offset index entry was logged

	// truncGuard keeps the bytes of sections being sent from changing
	// (section.go); verified is the span whose CRCs were checked, guarded
	// by verifyMu (taken after truncGuard.mu).
	truncGuard sectionGuard
	verifyMu   sync.Mutex
	verified   verifiedRange

	// refs counts the log's own reference and each reader's. The files are
	// closed when it drops to zero.
	refs atomic.Int32
}

func (s *segment) path(suffix string) string {
	return filepath.Join(s.dir, segmentName(s.base, suffix))
}

func (s *segment) indexFile(suffix string) *indexFile {
	return &indexFile{fs: s.fs, name: s.path(suffix)}
}

// createIndexFiles creates the index files that do not exist yet, empty,
// and leaves them open for the writes that follow. A sealed segment has
// both files, empty or not: a missing one says its index was lost, and it
// is rebuilt from the log (openTrusted). The caller syncs the directory.
func (s *segment) createIndexFiles() error {
	return errors.Join(s.idx.file.create(), s.tidx.file.create())
}

// closeIndexFiles closes the index files' handles (they reopen on use).
func (s *segment) closeIndexFiles() error {
	var err error
	if s.idx.file != nil {
		err = s.idx.file.Close()
	}
	if s.tidx.file != nil {
		err = errors.Join(err, s.tidx.file.Close())
	}
	return err
}

// createSegment makes an empty segment: its .log only. Its index files
// are created when first written, or when it is sealed
// (createIndexFiles). The caller syncs the directory.
func createSegment(fs vfs.FS, dir string, base int64, logger *slog.Logger) (*segment, error) {
	s := &segment{fs: fs, dir: dir, base: base, logger: logger, maxTs: -1, maxTsOffset: -1, firstTs: -1, loaded: true}
	var err error
	if s.log, err = fs.Create(s.path(logSuffix)); err != nil {
		return nil, err
	}
	s.idx.file, s.tidx.file = s.indexFile(indexSuffix), s.indexFile(timeIndexSuffix)
	s.next.Store(base)
	s.refs.Store(1)
	return s, nil
}

// openSegmentFiles opens an existing segment's .log for appending. Its size,
// next offset and indexes are set by the caller (recovery or trusted open).
func openSegmentFiles(fs vfs.FS, dir string, base int64, logger *slog.Logger) (*segment, error) {
	s := &segment{fs: fs, dir: dir, base: base, logger: logger, maxTs: -1, maxTsOffset: -1, firstTs: -1}
	var err error
	if s.log, err = fs.OpenAppend(s.path(logSuffix)); err != nil {
		return nil, err
	}
	s.next.Store(base)
	s.refs.Store(1)
	return s, nil
}

// acquire takes a reader's reference. It fails when the segment was already
// released by its log and closed.
func (s *segment) acquire() bool {
	for {
		n := s.refs.Load()
		if n <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference and closes the files with the last one.
func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		s.closeFiles()
	}
}

func (s *segment) closeFiles() error {
	err := s.log.Close()
	if s.idx.file != nil {
		err = errors.Join(err, s.idx.file.Close())
	}
	if s.tidx.file != nil {
		err = errors.Join(err, s.tidx.file.Close())
	}
	return err
}

// remove deletes the segment's files and drops the log's reference. Readers
// holding a reference finish on the open handles.
func (s *segment) remove() error {
	var err error
	for _, suffix := range []string{indexSuffix, timeIndexSuffix, logSuffix} {
		if e := s.fs.Remove(s.path(suffix)); e != nil && !errors.Is(e, notExist) {
			err = errors.Join(err, e)
		}
	}
	s.release()
	return err
}

// fits reports whether a batch of n bytes whose last offset is last can go
// into this segment without overflowing its 32-bit relative offsets and
// positions or growing past segmentBytes. An empty segment takes any batch.
func (s *segment) fits(n int, last int64, segmentBytes int64) bool {
	size := s.size.Load()
	if size == 0 {
		return last-s.base <= math.MaxUint32
	}
	return size+int64(n) <= segmentBytes && size+int64(n) <= math.MaxUint32 && last-s.base <= math.MaxUint32
}

// append writes one batch whose base offset is already set. It leaves the
// segment unchanged when the write fails part way (the torn bytes are cut).
func (s *segment) append(b []byte, h record.Header, indexInterval int64) error {
	pos := s.size.Load()
	// Index entries stay in memory until the segment is sealed or closed;
	// after a crash recovery rebuilds the active segment's indexes anyway.
	s.index(h.BaseOffset, pos, indexInterval)
	if _, err := s.log.Write(b); err != nil {
		if terr := s.log.Truncate(pos); terr != nil {
			return errors.Join(err, terr)
		}
		return err
	}
	s.noteBatch(h, int64(len(b)))
	// Append validated b's CRC before writing it.
	s.markVerified(s.truncGuard.gen.Load(), pos, pos+int64(len(b)))
	// next before size: a reader that sees the new size must see the new
	// next too, or locate would take the new batch for one past the end.
	s.next.Store(h.LastOffset() + 1)
	s.size.Store(pos + int64(len(b)))
	return nil
}

// noteBatch updates the in-memory summary for a batch placed at the end.
func (s *segment) noteBatch(h record.Header, size int64) {
	if s.firstTs < 0 {
		s.firstTs = h.MaxTimestamp
	}
	if h.MaxTimestamp > s.maxTs {
		s.maxTs, s.maxTsOffset = h.MaxTimestamp, h.BaseOffset
	}
	s.bytesSinceIndex += size
}

// index adds index entries, in memory, for a batch with base offset off
// about to be placed at pos: an offset index entry once indexInterval bytes
// have gone by since the last one, and with it a time index entry if the
// running max timestamp grew since the last one.
func (s *segment) index(off, pos, indexInterval int64) {
	if pos == 0 || s.bytesSinceIndex < indexInterval {
		return
	}
	s.idx.append(uint32(off-s.base), uint32(pos))
	s.bytesSinceIndex = 0
	s.addTimeEntry()
}

func (s *segment) addTimeEntry() {
	if s.maxTs < 0 {
		return
	}
	if ts, _, ok := s.tidx.last(); ok && ts >= s.maxTs {
		return
	}
	s.tidx.append(s.maxTs, uint32(s.maxTsOffset-s.base))
}

// sync writes out the indexes and makes the segment durable, with the
// names of the index files created since (an index first written now).
func (s *segment) sync() error {
	if err := s.flushIndexes(); err != nil {
		return err
	}
	err := errors.Join(s.log.Sync(), s.idx.file.Sync(), s.tidx.file.Sync())
	if err == nil && (s.idx.file.created || s.tidx.file.created) {
		if err = s.fs.SyncDir(s.dir); err == nil {
			s.idx.file.created, s.tidx.file.created = false, false
		}
	}
	return errors.Join(err, s.closeIndexFiles())
}

// flushIndexes writes out the indexes without syncing them, for a syncfs
// by the caller to make durable.
func (s *segment) flushIndexes() error {
	return errors.Join(s.idx.persist(), s.tidx.persist())
}

// locate returns the position of the first batch in the segment whose last
// offset is >= offset, and ok false when there is none. The indexes must be
// loaded. startPos comes from an index: when the batch header there does not
// make sense, or starts after offset (the index entry was damaged), the walk
// starts again from the beginning of the segment.
//
// The walk reads only batch headers, so it checks what it can of them
// without the CRC: the magic byte, the length, and offsets that grow from
// batch to batch within [base, next). A damaged header is a corruption
// error. When offset falls in a gap between batches (as compaction leaves
// them, or a damaged last offset delta would fake), the batch before the
// gap has its CRC checked, so that a damaged batch is refused rather than
// skipped.
func (s *segment) locate(offset int64, startPos int64, scratch []byte) (pos int64, ok bool, err error) {
	if len(scratch) < prefixLen {
		scratch = make([]byte, prefixLen)
	}
	pos, ok, err = s.locateFrom(offset, startPos, startPos > 0, scratch[:prefixLen])
	if errors.Is(err, errBadIndexEntry) {
		if !s.badIndexWarned.Swap(true) {
			s.logger.Warn("offset index entry does not point at a batch; scanning the segment", "segment", s.path(logSuffix), "pos", startPos)
		}
		pos, ok, err = s.locateFrom(offset, 0, false, scratch[:prefixLen])
	}
	return pos, ok, err
}

var errBadIndexEntry = errors.New("storage: offset index entry does not point at a batch")

func (s *segment) locateFrom(offset, startPos int64, fromIndex bool, hdr []byte) (pos int64, ok bool, err error) {
	size := s.size.Load()
	next := s.next.Load()
	prevPos, prevBase, prevLast := int64(-1), s.base-1, s.base-1
	for pos = startPos; pos < size; {
		h, err := s.readPrefix(hdr, pos, size)
		if err == nil && h.base <= prevLast && prevPos >= 0 && s.checkCRC(prevPos) != nil {
			// The previous batch is corrupt, its last offset delta too
			// perhaps: it is refused when read; go on after it.
			prevLast = prevBase
		}
		if err == nil && (h.base <= prevLast || h.last >= next) {
			err = corruptf(s, pos, "batch offsets [%d,%d] out of order (previous ends at %d, segment at %d)", h.base, h.last, prevLast, next)
		}
		if fromIndex && pos == startPos && (err != nil || h.base > offset) {
			return 0, false, errBadIndexEntry
		}
		if err != nil {
			return 0, false, err
		}
		if h.last >= offset {
			if offset < h.base && prevPos >= 0 && offset > prevLast {
				if err := s.checkCRC(prevPos); err != nil {
					return 0, false, err
				}
			}
			return pos, true, nil
		}
		prevPos, prevBase, prevLast = pos, h.base, h.last
		pos += h.size
	}
	if prevPos >= 0 && offset < next {
		if err := s.checkCRC(prevPos); err != nil {
			return 0, false, err
		}
	}
	return 0, false, nil
}

// batchPrefix is what locate reads of a batch header.
type batchPrefix struct {
	base, last, size int64
}

// readPrefix reads the start of the batch header at pos into buf and checks
// it: magic byte, a length that fits the segment of size bytes, offsets not
// below the segment's base.
func (s *segment) readPrefix(buf []byte, pos, size int64) (batchPrefix, error) {
	if size-pos < record.HeaderSize {
		return batchPrefix{}, corruptf(s, pos, "partial batch header")
	}
	if _, err := s.log.ReadAt(buf, pos); err != nil {
		return batchPrefix{}, err
	}
	base := int64(binary.BigEndian.Uint64(buf[0:]))
	length := int64(int32(binary.BigEndian.Uint32(buf[8:])))
	delta := int64(int32(binary.BigEndian.Uint32(buf[23:])))
	if buf[16] != record.MagicV2 {
		return batchPrefix{}, corruptf(s, pos, "magic byte %d", int8(buf[16]))
	}
	if length < record.HeaderSize-12 || pos+12+length > size {
		return batchPrefix{}, corruptf(s, pos, "batch length %d", length)
	}
	if base < s.base || delta < 0 || base > math.MaxInt64-delta {
		return batchPrefix{}, corruptf(s, pos, "batch offsets %d+%d outside the segment at %d", base, delta, s.base)
	}
	return batchPrefix{base: base, last: base + delta, size: 12 + length}, nil
}

// checkCRC reads the batch at pos whole and checks its CRC.
func (s *segment) checkCRC(pos int64) error {
	var hdr [prefixLen]byte
	p, err := s.readPrefix(hdr[:], pos, s.size.Load())
	if err != nil {
		return err
	}
	var buf [4096]byte
	h, crc, err := s.crcAt(pos, p.size, buf[:])
	if err != nil {
		return err
	}
	if crc != h.CRC {
		return corruptf(s, pos, "crc 0x%08x, computed 0x%08x", h.CRC, crc)
	}
	return nil
}

// crcAt reads the batch of size bytes at pos through buf (at least a
// header long) and returns its header and the CRC-32C of its bytes after
// the CRC field, without holding the whole batch in memory.
func (s *segment) crcAt(pos, size int64, buf []byte) (record.Header, uint32, error) {
	n := min(int64(len(buf)), size)
	if _, err := s.log.ReadAt(buf[:n], pos); err != nil && !errors.Is(err, io.EOF) {
		return record.Header{}, 0, err
	}
	h, err := record.ParseHeader(buf[:n])
	if err != nil {
		return record.Header{}, 0, corruptf(s, pos, "%v", err)
	}
	crc := crc32.Update(0, castagnoli, buf[crcStart:n])
	for off := pos + n; off < pos+size; {
		m := min(int64(len(buf)), pos+size-off)
		if _, err := s.log.ReadAt(buf[:m], off); err != nil && !errors.Is(err, io.EOF) {
			return record.Header{}, 0, err
		}
		crc = crc32.Update(crc, castagnoli, buf[:m])
		off += m
	}
	return h, crc, nil
}

// crcStart is where the bytes a batch's CRC covers begin (its attributes).
const crcStart = 21

// readFrom appends to dst the whole batches starting at pos, at most maxBytes
// of them but always the first, stopping before the first batch whose base
// offset is >= upTo. Every batch's CRC is checked: a corrupt batch is never
// served. A bad batch after the first ends the read (the next read, which
// starts with it, fails).
func (s *segment) readFrom(dst []byte, pos int64, maxBytes int, upTo int64) ([]byte, error) {
	size := s.size.Load()
	want := min(int64(maxBytes), size-pos)
	if want < record.HeaderSize {
		want = min(record.HeaderSize, size-pos)
	}
	start := len(dst)
	dst = grow(dst, int(want))
	if _, err := s.log.ReadAt(dst[start:], pos); err != nil && !errors.Is(err, io.EOF) {
		return dst[:start], err
	}
	chunk := dst[start:]
	// The first batch is returned whole even when larger than maxBytes.
	first, err := record.ParseHeader(chunk)
	if err != nil {
		return dst[:start], corruptf(s, pos, "%v", err)
	}
	if int64(first.Size()) > size-pos {
		return dst[:start], corruptf(s, pos, "batch of %d bytes runs past the end", first.Size())
	}
	if first.BaseOffset >= upTo {
		return dst[:start], nil
	}
	if first.Size() > len(chunk) {
		n := len(chunk)
		dst = grow(dst[:start+n], first.Size()-n)
		if _, err := s.log.ReadAt(dst[start+n:], pos+int64(n)); err != nil && !errors.Is(err, io.EOF) {
			return dst[:start], err
		}
		chunk = dst[start:]
	}
	used := 0
	prevLast := int64(math.MinInt64)
	for used+record.HeaderSize <= len(chunk) {
		h, err := record.ParseHeader(chunk[used:])
		if err == nil && h.LastOffsetDelta < 0 {
			err = fmt.Errorf("negative last offset delta %d", h.LastOffsetDelta)
		}
		if err == nil && (h.BaseOffset <= prevLast || h.BaseOffset < s.base) {
			err = fmt.Errorf("batch at offset %d follows one ending at %d", h.BaseOffset, prevLast)
		}
		if err != nil {
			if used > 0 {
				break // serve the good batches before it; the next read fails
			}
			return dst[:start], corruptf(s, pos+int64(used), "%v", err)
		}
		if used+h.Size() > len(chunk) || h.BaseOffset >= upTo {
			break
		}
		b := chunk[used : used+h.Size()]
		if crc := record.ComputeCRC(b); crc != h.CRC {
			if used > 0 {
				break
			}
			return dst[:start], corruptf(s, pos+int64(used), "crc 0x%08x, computed 0x%08x", h.CRC, crc)
		}
		prevLast = h.LastOffset()
		used += h.Size()
	}
	return dst[:start+used], nil
}

// grow extends b by n bytes, reallocating when needed.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, max(2*cap(b), len(b)+n))
	copy(nb, b)
	return nb
}

// CorruptionError reports bad bytes found in a segment file.
type CorruptionError struct {
	File   string
	Pos    int64
	Detail string
}

func (e *CorruptionError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("storage: corrupt data at byte %d: %s", e.Pos, e.Detail)
	}
	return fmt.Sprintf("storage: corrupt data in %s at byte %d: %s", e.File, e.Pos, e.Detail)
}

// Is makes errors.Is(err, record.ErrCorrupt) true for corruption on disk, so
// that the broker maps both to CORRUPT_MESSAGE.
func (e *CorruptionError) Is(target error) bool { return target == record.ErrCorrupt }

func corruptf(s *segment, pos int64, format string, args ...any) error {
	return &CorruptionError{File: s.path(logSuffix), Pos: pos, Detail: fmt.Sprintf(format, args...)}
}
