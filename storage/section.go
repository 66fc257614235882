package storage

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/samsa-io/samsa/record"
)

// A Section is whole batches lying back to back in one segment file, found
// by ReadSection, to be sent to a client without being read into memory
// (WriteTo uses sendfile(2) where it can). It holds a reference on its
// segment, so that the file stays open, and its bytes unchanged, even if
// retention deletes the segment or compaction replaces it meanwhile; Release
// drops it. The zero Section is empty.
//
// A Section is used by one goroutine at a time.
type Section struct {
	seg     *segment // nil when empty or released
	gen     uint64   // seg's truncation generation when the section was found
	pos     int64
	n       int64
	codecs  uint8 // bit c set when a batch is compressed with codec c
	records int64 // records in the batches, as their headers count them
}

// Len returns the section's size in bytes.
func (s *Section) Len() int { return int(s.n) }

// Records returns the number of records in the section's batches.
func (s *Section) Records() int64 { return s.records }

// HasCodec reports whether any batch of the section is compressed with c.
func (s *Section) HasCodec(c record.Codec) bool { return s.codecs&(1<<uint(c)) != 0 }

// Release drops the section's reference on its segment. It may be called
// more than once; the section is empty afterwards.
func (s *Section) Release() {
	if s.seg != nil {
		s.seg.release()
	}
	*s = Section{}
}

// ErrSectionGone is returned when a section's bytes were cut by a
// truncation (TruncateTo) before they were all sent: what follows in the
// file may be other batches now, so nothing more is sent.
var ErrSectionGone = errors.New("storage: section truncated before it was sent")

// AppendTo appends the section's bytes to dst, read from the file.
func (s *Section) AppendTo(dst []byte) ([]byte, error) {
	if s.n == 0 {
		return dst, nil
	}
	start := len(dst)
	dst = grow(dst, int(s.n))
	err := s.seg.guard(s.gen, func() error {
		_, err := s.seg.log.ReadAt(dst[start:], s.pos)
		return err
	})
	if err != nil {
		return dst[:start], err
	}
	return dst, nil
}

// WriteTo writes the section's bytes to w. When w is a socket
// (syscall.Conn) and the segment a file of the operating system, the
// kernel copies them from the page cache with sendfile(2); otherwise they
// are read through a buffer. Either way the bytes are those of the batches
// ReadSection found, or the write fails with ErrSectionGone.
func (s *Section) WriteTo(w io.Writer) (int64, error) {
	if s.n == 0 {
		return 0, nil
	}
	if n, handled, err := sendSection(w, s); handled {
		return n, err
	}
	buf := make([]byte, min(s.n, 64<<10))
	var written int64
	for written < s.n {
		m := min(int64(len(buf)), s.n-written)
		err := s.seg.guard(s.gen, func() error {
			_, err := s.seg.log.ReadAt(buf[:m], s.pos+written)
			return err
		})
		if err != nil {
			return written, err
		}
		k, err := w.Write(buf[:m])
		written += int64(k)
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// sectionGuard keeps a segment's bytes from changing under a section being
// sent. Only truncation (TruncateTo) rewrites bytes of a segment that were
// ever readable; it bumps gen, under the write lock, before cutting. Senders
// hold the read lock across each read or sendfile(2) call and stop when gen
// has moved since the section was found. Appends do not take it: they only
// add bytes after every section.
type sectionGuard struct {
	mu  sync.RWMutex  // held for reading around each transfer, for writing to bump gen
	gen atomic.Uint64 // written under mu (write) and verifyMu
}

// guard runs f, which reads the segment's file, unless the segment was
// truncated since generation gen.
func (s *segment) guard(gen uint64, f func() error) error {
	s.truncGuard.mu.RLock()
	defer s.truncGuard.mu.RUnlock()
	if s.truncGuard.gen.Load() != gen {
		return fmt.Errorf("%w: %s", ErrSectionGone, s.path(logSuffix))
	}
	return f()
}

// verifiedRange is the span [from, to) of a segment's .log, whole batches,
// whose CRCs were checked by this process: on append (from the bytes
// written), by crash recovery, or by a ReadSection that read them.
// Guarded by verifyMu.
type verifiedRange struct {
	from, to int64
}

// markVerified records that the whole batches in [from, to) have passed
// their CRC check, unless the segment was truncated since generation gen.
// The segment keeps one span: a span that touches or overlaps it is
// merged into it; a disjoint one replaces it if it lies after it (readers
// and appends move forward), and is dropped if it lies before it.
func (s *segment) markVerified(gen uint64, from, to int64) {
	if from >= to {
		return
	}
	s.verifyMu.Lock()
	defer s.verifyMu.Unlock()
	if s.truncGuard.gen.Load() != gen {
		return
	}
	v := &s.verified
	switch {
	case v.from >= v.to || from > v.to: // empty, or the new span is after it
		v.from, v.to = from, to
	case to >= v.from: // touching or overlapping
		v.from, v.to = min(v.from, from), max(v.to, to)
	}
}

// verifiedSpan returns the verified span.
func (s *segment) verifiedSpan() verifiedRange {
	s.verifyMu.Lock()
	defer s.verifyMu.Unlock()
	return s.verified
}

// beginTruncate starts a new truncation generation, waiting for transfers
// of sections in progress, and forgets what was verified at or after pos.
// The caller holds Log.mu for writing, cuts the file, then calls
// endTruncate.
func (s *segment) beginTruncate(pos int64) {
	s.truncGuard.mu.Lock()
	s.verifyMu.Lock()
	s.truncGuard.gen.Add(1)
	s.verified.to = min(s.verified.to, pos)
	if s.verified.from >= s.verified.to {
		s.verified = verifiedRange{}
	}
	s.verifyMu.Unlock()
}

// endTruncate lets senders go on (they find the new generation and stop).
func (s *segment) endTruncate() { s.truncGuard.mu.Unlock() }

// ReadSection finds the whole batches Read would return — starting with the
// one that holds offset, at most maxBytes of them but always at least one,
// none at or beyond upTo, all from one segment — and returns where they lie
// instead of their bytes. The returned Offsets are the log's as of the read.
// An offset below the log start or past the log end is ErrOffsetOutOfRange;
// an offset at the end gives an empty section.
//
// Like Read, ReadSection never hands out a batch whose CRC does not match:
// a batch this process has not checked yet (see verifiedRange) is read
// through scratch and checked first, and a bad one is refused (the first
// batch) or ends the section (a later one). A batch that was checked is not
// read again: its bytes go from the page cache to the socket. The caller
// must Release a non-empty section.
func (l *Log) ReadSection(offset int64, maxBytes int, upTo int64, scratch []byte) (Section, Offsets, error) {
	l.mu.RLock()
	offs := l.offsetsLocked()
	if offset < l.logStart || offset > l.next {
		l.mu.RUnlock()
		return Section{}, offs, fmt.Errorf("%w: %d is outside [%d, %d]", ErrOffsetOutOfRange, offset, l.logStart, l.next)
	}
	upTo = min(upTo, l.next)
	if len(scratch) < scratchMin {
		scratch = make([]byte, sectionScratch)
	}
	after := int64(-1) // as in Read
	i := l.segmentIndexLocked(offset)
	for offset < upTo && i < len(l.segs) {
		s := l.segs[i]
		if !s.loaded {
			l.mu.RUnlock()
			if err := l.loadSegments(s); err != nil {
				return Section{}, offs, err
			}
			l.mu.RLock()
			if after < 0 {
				i = l.segmentIndexLocked(offset)
			} else {
				i = sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > after })
			}
			continue
		}
		startPos := s.lookup(offset)
		if !s.acquire() {
			l.mu.RUnlock()
			return Section{}, offs, ErrClosed
		}
		gen := s.truncGuard.gen.Load() // changes only under l.mu held for writing
		l.mu.RUnlock()
		pos, ok, err := s.locate(offset, startPos, scratch)
		var sec Section
		if err == nil && ok {
			sec, err = s.section(gen, pos, maxBytes, upTo, scratch)
		}
		if err != nil || ok {
			if sec.n == 0 {
				s.release()
			}
			return sec, offs, err
		}
		s.release()
		after = s.base
		l.mu.RLock()
		i = sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > after })
	}
	l.mu.RUnlock()
	return Section{}, offs, nil
}

// sectionScratch is the size of the buffer ReadSection reads headers (and
// batches to verify) through when the caller gives none; scratchMin the
// least it works with.
const (
	sectionScratch = 16 << 10
	scratchMin     = 4 << 10
)

// section walks the batches from pos as readFrom does, checking the same
// things, but reads only their headers, and whole batches only when their
// CRC has not been checked yet. The section holds the caller's reference
// on s when it is not empty.
func (s *segment) section(gen uint64, pos int64, maxBytes int, upTo int64, scratch []byte) (Section, error) {
	size := s.size.Load()
	ver := s.verifiedSpan()
	// Headers are read in windows: a whole scratch buffer after a small
	// batch (the next headers are likely in it), just a header after a
	// large one.
	var win []byte
	winPos := int64(0)
	header := func(at int64, wide bool) ([]byte, error) {
		if at >= winPos && at+record.HeaderSize <= winPos+int64(len(win)) {
			return win[at-winPos:], nil
		}
		n := int64(record.HeaderSize)
		if wide {
			n = int64(len(scratch))
		}
		n = min(n, size-at)
		if _, err := s.log.ReadAt(scratch[:n], at); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		win, winPos = scratch[:n], at
		return win, nil
	}
	end := pos
	prevLast := int64(math.MinInt64)
	var codecs uint8
	var records int64
	wide := true
	for end < size {
		first := end == pos
		b, err := header(end, wide)
		if err != nil {
			return Section{}, err
		}
		h, err := record.ParseHeader(b)
		if err == nil && h.LastOffsetDelta < 0 {
			err = fmt.Errorf("negative last offset delta %d", h.LastOffsetDelta)
		}
		if err == nil && (h.BaseOffset <= prevLast || h.BaseOffset < s.base) {
			err = fmt.Errorf("batch at offset %d follows one ending at %d", h.BaseOffset, prevLast)
		}
		if err == nil && int64(h.Size()) > size-end {
			err = fmt.Errorf("batch of %d bytes runs past the end", h.Size())
		}
		if err != nil {
			if !first {
				break // serve the good batches before it; the next read fails
			}
			return Section{}, corruptf(s, end, "%v", err)
		}
		n := int64(h.Size())
		if h.BaseOffset >= upTo || (!first && end-pos+n > int64(maxBytes)) {
			break
		}
		if end < ver.from || end+n > ver.to {
			// Not checked yet: read it whole and check its CRC.
			win = nil // crcAt reuses scratch
			_, crc, err := s.crcAt(end, n, scratch)
			if err != nil {
				return Section{}, err
			}
			if crc != h.CRC {
				if !first {
					break
				}
				return Section{}, corruptf(s, end, "crc 0x%08x, computed 0x%08x", h.CRC, crc)
			}
		}
		codecs |= 1 << uint(h.Attributes.Codec()&7)
		records += int64(h.NumRecords)
		prevLast = h.LastOffset()
		end += n
		wide = n < int64(len(scratch))/4
	}
	s.markVerified(gen, pos, end)
	if end == pos {
		return Section{}, nil
	}
	return Section{seg: s, gen: gen, pos: pos, n: end - pos, codecs: codecs, records: records}, nil
}
