package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/samsa-io/samsa/internal/vfs"
	"github.com/samsa-io/samsa/record"
)

// Open opens the partition log in dir, creating it when it does not exist,
// and recovers it: see the package comment for what recovery checks.
func Open(dir string, cfg Config, opts Options) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Committer == nil {
		opts.Committer = NewCommitter(CommitterOptions{FS: opts.FS, Dir: dir})
	}
	l := &Log{dir: dir, fs: opts.FS, committer: opts.Committer, logger: opts.Logger.With("log", dir), now: opts.Now}
	l.cfg.Store(&cfg)
	_, statErr := l.fs.Stat(dir)
	if err := l.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if statErr != nil && !opts.syncLater {
		// A new directory exists for sure only once its parent is synced.
		if err := l.fs.SyncDir(filepath.Dir(dir)); err != nil {
			return nil, err
		}
	}
	if err := l.load(opts.Clean, opts.syncLater, &cfg); err != nil {
		for _, s := range l.segs {
			s.release()
		}
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	return l, nil
}

// load reads the directory and brings the log to a consistent state;
// syncLater: see Options.
func (l *Log) load(clean, syncLater bool, cfg *Config) error {
	bases, err := l.tidyDir()
	if err != nil {
		return err
	}
	cp, ok, cpMissing := readCheckpoint(l.fs, l.dir)
	if !ok && len(bases) > 0 {
		l.logger.Warn("checkpoint missing or unreadable; recovering every segment")
		clean = false
	}
	l.logStart, l.recoveryPoint, l.cleanedTo = cp.LogStart, cp.RecoveryPoint, cp.CleanedTo

	// The first segment to scan: the one holding the recovery point.
	firstDirty := len(bases)
	if !clean {
		firstDirty = 0
		for i, b := range bases {
			if b <= l.recoveryPoint {
				firstDirty = i
			}
		}
	}
	recovered := false
	for i, base := range bases {
		s, err := openSegmentFiles(l.fs, l.dir, base, l.logger)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, s)
		last := i == len(bases)-1
		nextBase := int64(math.MaxInt64)
		if !last {
			nextBase = bases[i+1]
		}
		if i >= firstDirty {
			cut, err := s.recover(l.next, nextBase, cfg.IndexIntervalBytes)
			if err != nil {
				return err
			}
			// Every segment ends where the next begins (a roll starts the
			// next at the log end; compaction keeps each segment's last
			// batch). One that ends short lost its unsynced tail in a crash
			// while a later segment kept data: nothing after it is sure.
			cut = cut || (!last && s.next.Load() != nextBase)
			recovered = true
			if cut {
				l.next = s.next.Load()
				l.logger.Warn("cut a torn or corrupt tail", "segment", s.path(logSuffix), "size", s.size.Load())
				if err := l.dropSegmentsAfter(i, bases); err != nil {
					return err
				}
				break
			}
		} else {
			if err := s.openTrusted(nextBase, cfg.IndexIntervalBytes); err != nil {
				return err
			}
		}
		l.next = s.next.Load()
	}
	if len(l.segs) == 0 {
		s, err := createSegment(l.fs, l.dir, l.logStart, l.logger)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, s)
		l.next = l.logStart
		// A new log gets its checkpoint now, so that a clean reopen finds
		// one and trusts the log (writing it syncs the directory). Where
		// there was none, it is the zero checkpoint, which a missing or
		// torn one also reads as: it is written in place, without a
		// temporary file and a rename (createCheckpoint). Lost or torn by
		// a crash before the Store's syncfs, it costs a scan of nothing.
		cp, seq := l.checkpointLocked()
		if cpMissing && cp == (checkpoint{}) {
			if err := createCheckpoint(l.fs, l.dir, cp, !syncLater); err != nil {
				return err
			}
			l.cpMu.Lock()
			l.cpWritten = seq
			l.cpMu.Unlock()
		} else if err := l.saveCheckpoint(cp, seq, !syncLater); err != nil {
			return err
		}
	}
	if err := l.settle(recovered && !syncLater); err != nil {
		return err
	}
	for _, s := range l.segs {
		if err := s.closeIndexFiles(); err != nil {
			return err
		}
	}
	return nil
}

// settle fixes the offsets after the segments are loaded; sync says
// recovery read data that may be only in the page cache.
func (l *Log) settle(sync bool) error {
	first := l.segs[0].base
	l.logStart = max(l.logStart, first)
	if l.logStart > l.next {
		// Data up to a moved log start was lost (a relaxed flush policy and
		// a crash): start empty at the log start, as Kafka does.
		l.logger.Warn("log start offset is past the recovered end; starting empty", "start", l.logStart, "end", l.next)
		if err := l.restartAt(l.logStart); err != nil {
			return err
		}
	}
	l.hw, l.lso, l.firstUnstable = l.next, l.next, -1
	l.cleanedTo = min(max(l.cleanedTo, l.logStart), l.next)
	if sync {
		// What recovery read may be only in the page cache: make it durable
		// before anyone relies on it. (With Options.syncLater the Store
		// does, with one syncfs for all its logs, and the checkpoint keeps
		// the old recovery point until the next one is written.)
		if err := l.active().sync(); err != nil {
			return err
		}
		l.recoveryPoint = l.active().base
		if err := l.writeCheckpointLocked(); err != nil {
			return err
		}
	}
	l.recoveryPoint = max(l.recoveryPoint, l.active().base)
	l.commit.durable = l.next
	return nil
}

// restartAt deletes every segment and starts an empty one at offset.
func (l *Log) restartAt(offset int64) error {
	for _, s := range l.segs {
		if err := s.remove(); err != nil {
			return err
		}
	}
	s, err := createSegment(l.fs, l.dir, offset, l.logger)
	if err != nil {
		return err
	}
	l.segs = []*segment{s}
	l.next = offset
	return l.fs.SyncDir(l.dir)
}

// dropSegmentsAfter removes the segment files of bases[i+1:] (after a torn
// segment at i nothing later can be trusted).
func (l *Log) dropSegmentsAfter(i int, bases []int64) error {
	for _, base := range bases[i+1:] {
		for _, suffix := range []string{indexSuffix, timeIndexSuffix, logSuffix} {
			if err := l.fs.Remove(filepath.Join(l.dir, segmentName(base, suffix))); err != nil && !errors.Is(err, notExist) {
				return err
			}
		}
		l.logger.Warn("removed a segment after a torn one", "base", base)
	}
	return l.fs.SyncDir(l.dir)
}

// tidyDir finishes or undoes interrupted work in the directory and returns
// the base offsets of the segments, in order.
//   - *.cleaned and *.tmp: an unfinished compaction or checkpoint; removed.
//   - *.swap: a finished compaction copy; it replaces the segment of the same
//     base, whose indexes are removed to be rebuilt.
//   - index files without a .log: removed.
func (l *Log) tidyDir() ([]int64, error) {
	names, err := l.fs.List(l.dir)
	if err != nil {
		return nil, err
	}
	remove := func(name string) error {
		if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil && !errors.Is(err, notExist) {
			return err
		}
		return nil
	}
	changed := false
	for _, name := range names {
		switch {
		case strings.HasSuffix(name, cleanedSuffix), strings.HasSuffix(name, ".tmp"):
			if err := remove(name); err != nil {
				return nil, err
			}
			changed = true
		case strings.HasSuffix(name, swapSuffix):
			base, ok := parseSegmentName(name, swapSuffix)
			if !ok {
				continue
			}
			for _, suffix := range []string{indexSuffix, timeIndexSuffix} {
				if err := remove(segmentName(base, suffix)); err != nil {
					return nil, err
				}
			}
			if err := l.fs.Rename(filepath.Join(l.dir, name), filepath.Join(l.dir, segmentName(base, logSuffix))); err != nil {
				return nil, err
			}
			changed = true
		}
	}
	if changed {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return nil, err
		}
		if names, err = l.fs.List(l.dir); err != nil {
			return nil, err
		}
	}
	var bases []int64
	logs := map[int64]bool{}
	for _, name := range names {
		if base, ok := parseSegmentName(name, logSuffix); ok {
			bases = append(bases, base)
			logs[base] = true
		}
	}
	for _, name := range names {
		for _, suffix := range []string{indexSuffix, timeIndexSuffix} {
			if base, ok := parseSegmentName(name, suffix); ok && !logs[base] {
				if err := remove(name); err != nil {
					return nil, err
				}
			}
		}
	}
	slices.Sort(bases)
	return bases, nil
}

// openIndexFiles prepares the segment's index files, noting when one is
// missing (see openTrusted for what that means). It creates nothing.
func (s *segment) openIndexFiles() error {
	for _, suffix := range []string{indexSuffix, timeIndexSuffix} {
		if _, err := s.fs.Stat(s.path(suffix)); errors.Is(err, notExist) {
			s.indexMissing = true
		} else if err != nil {
			return err
		}
	}
	if s.idx.file == nil {
		s.idx.file = s.indexFile(indexSuffix)
	}
	if s.tidx.file == nil {
		s.tidx.file = s.indexFile(timeIndexSuffix)
	}
	return nil
}

// openTrusted opens a segment of a cleanly closed log, or one below the
// recovery point, without reading its data. nextBase is the next segment's
// base, or math.MaxInt64 for the active (last) segment. The active segment's
// indexes are loaded and its tail after the last index entry is walked to
// find the log end. A sealed segment's indexes are loaded on first use; only
// its newest time index entry is read now, for retention.
//
// Index files are created when a segment is sealed or its indexes are first
// written, not with the segment. So a sealed segment whose index file is
// missing lost it: both are rebuilt from the log, never taken as empty. The
// active segment's may never have been written: a missing file is read as
// empty, as a short one is, while the offset index is empty too (the walk
// then reads the whole segment and indexes every batch); next to offset
// index entries, a missing time index is a lost one, and both are rebuilt.
func (s *segment) openTrusted(nextBase, indexInterval int64) error {
	size, err := s.log.Size()
	if err != nil {
		return err
	}
	s.size.Store(size)
	if err := s.openIndexFiles(); err != nil {
		return err
	}
	if err := s.readFirstTimestamp(); err != nil {
		return err
	}
	if nextBase != math.MaxInt64 {
		// Sealed: its exact end is not needed, only an upper bound.
		s.next.Store(nextBase)
		if s.indexMissing {
			return s.loadIndexes()
		}
		ok, damaged := s.peekMaxTimestamp()
		if ok {
			return nil
		}
		if size, err := s.tidx.file.Size(); damaged || (err == nil && size == 0 && s.firstTs >= 0) {
			// Sealing wrote a time index entry for timestamps like these.
			s.indexMissing = true // rebuild both
		}
		return s.loadIndexes()
	}
	if s.indexMissing {
		size, err := s.idx.file.Size()
		if err != nil {
			return err
		}
		s.indexMissing = size > 0
	}
	if err := s.loadIndexes(); err != nil {
		return err
	}
	// Walk the batches after the last index entry.
	var from int64
	if _, pos, ok := s.idx.last(); ok {
		from = int64(pos)
	}
	return s.walk(from, indexInterval)
}

// readFirstTimestamp reads the first batch's max timestamp (segment.ms
// counts from it).
func (s *segment) readFirstTimestamp() error {
	if s.size.Load() < record.HeaderSize {
		return nil
	}
	var hdr [record.HeaderSize]byte
	if _, err := s.log.ReadAt(hdr[:], 0); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if h, err := record.ParseHeader(hdr[:]); err == nil {
		s.firstTs = h.MaxTimestamp
	}
	return nil
}

// peekMaxTimestamp reads the newest time index entry of a sealed segment
// (written when it was sealed) as the segment's max timestamp, after
// checking that it names a batch that carries that timestamp, and that the
// last batch's is not larger. It reports false when there is no entry or it
// cannot be trusted, and the indexes must be loaded; damaged says that they
// must be rebuilt: a damaged entry would hide the segment from retention,
// OffsetForTimestamp or MaxTimestamp.
func (s *segment) peekMaxTimestamp() (ok, damaged bool) {
	size, err := s.tidx.file.Size()
	if err != nil || size == 0 {
		return false, false
	}
	if size%timeEntrySize != 0 {
		return false, true
	}
	var e [timeEntrySize]byte
	if _, err := s.tidx.file.ReadAt(e[:], size-timeEntrySize); err != nil {
		return false, false
	}
	x := timeIndex{buf: e[:]}
	ts, rel := x.entry(0)
	if ts < 0 {
		return false, true
	}
	startPos, err := indexFileLookup(s.idx.file, rel)
	if err != nil {
		return false, false
	}
	if maxTs, _, ok := s.findBatch(s.base+int64(rel), startPos); !ok || maxTs != ts {
		return false, true
	}
	if lastPos, err := indexFileLookup(s.idx.file, math.MaxUint32); err != nil {
		return false, false
	} else if lastTs, ok := s.lastBatchMaxTs(max(lastPos, startPos)); !ok || lastTs > ts {
		return false, true
	}
	s.maxTs, s.maxTsOffset = ts, s.base+int64(rel)
	return true, false
}

// indexFileLookup is offsetIndex.lookup on an index file not loaded: a
// binary search with small reads.
func indexFileLookup(f vfs.File, rel uint32) (int64, error) {
	size, err := f.Size()
	if err != nil {
		return 0, err
	}
	var e [offsetEntrySize]byte
	entry := func(i int64) (uint32, uint32, error) {
		if _, err := f.ReadAt(e[:], i*offsetEntrySize); err != nil {
			return 0, 0, err
		}
		x := offsetIndex{buf: e[:]}
		r, p := x.entry(0)
		return r, p, nil
	}
	lo, hi := int64(0), size/offsetEntrySize
	for lo < hi {
		mid := lo + (hi-lo)/2
		r, _, err := entry(mid)
		if err != nil {
			return 0, err
		}
		if r > rel {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo == 0 {
		return 0, nil
	}
	_, pos, err := entry(lo - 1)
	return int64(pos), err
}

// findBatch walks the batch headers from pos, which must be a batch's
// start, to the batch whose base offset is base, and returns its max
// timestamp and position; ok is false when there is none or a header on
// the way is bad. Of the batch found only the base offset and max timestamp
// are read: it is an index that is being checked, not the batch.
func (s *segment) findBatch(base, pos int64) (maxTs, at int64, ok bool) {
	size := s.size.Load()
	var hdr [record.HeaderSize]byte
	for size-pos >= record.HeaderSize {
		if _, err := s.log.ReadAt(hdr[:], pos); err != nil {
			return 0, 0, false
		}
		switch b := int64(binary.BigEndian.Uint64(hdr[0:])); {
		case b == base:
			return int64(binary.BigEndian.Uint64(hdr[35:])), pos, true
		case b > base:
			return 0, 0, false
		}
		h, err := record.ParseHeader(hdr[:])
		if err != nil || int64(h.Size()) > size-pos {
			return 0, 0, false
		}
		pos += int64(h.Size())
	}
	return 0, 0, false
}

// lastBatchMaxTs walks the batch headers from pos, a batch's start, to the
// end and returns the last batch's max timestamp; ok is false when a header
// on the way is bad or there is no batch.
func (s *segment) lastBatchMaxTs(pos int64) (maxTs int64, ok bool) {
	size := s.size.Load()
	var hdr [record.HeaderSize]byte
	for size-pos >= record.HeaderSize {
		if _, err := s.log.ReadAt(hdr[:], pos); err != nil {
			return 0, false
		}
		h, err := record.ParseHeader(hdr[:])
		if err != nil || int64(h.Size()) > size-pos {
			return 0, false
		}
		maxTs, ok = h.MaxTimestamp, true
		pos += int64(h.Size())
	}
	return maxTs, ok && pos == size
}

// verifyIndexes checks loaded indexes against the log where a damaged
// entry would mislead without a read noticing: the offset index's last
// entry (the walk of an active segment starts there) and the time index's
// last (the segment's max timestamp, for retention and MaxTimestamp). Other
// time index entries are checked when OffsetForTimestamp uses one; offset
// index entries when locate uses one.
func (s *segment) verifyIndexes() error {
	if rel, pos, ok := s.idx.last(); ok {
		if _, _, ok := s.findBatch(s.base+int64(rel), int64(pos)); !ok {
			return fmt.Errorf("offset index entry %d@%d does not point at that batch", rel, pos)
		}
	}
	if ts, rel, ok := s.tidx.last(); ok && !s.timeEntryHolds(ts, rel) {
		return fmt.Errorf("time index entry %d@%d does not match its batch", ts, rel)
	}
	return nil
}

// timeEntryHolds reports whether the batch a time index entry names
// carries the entry's timestamp. A batch that fails its CRC is refused when
// read, so its entry may be right.
func (s *segment) timeEntryHolds(ts int64, rel uint32) bool {
	maxTs, at, ok := s.findBatch(s.base+int64(rel), s.idx.lookup(rel))
	return ok && (maxTs == ts || s.checkCRC(at) != nil)
}

// lookup returns where to start scanning for offset. The indexes must be
// loaded (Log.loadSegments).
func (s *segment) lookup(offset int64) int64 {
	if offset <= s.base {
		return 0
	}
	return s.idx.lookup(uint32(min(offset-s.base, math.MaxUint32)))
}

// loadIndexes reads both index files into memory and checks them, against
// the log too (see verifyIndexes); when a check fails it rebuilds both from
// the log. Caller holds Log.mu for writing or owns s.
func (s *segment) loadIndexes() error {
	var err error
	if s.idx.buf, err = readAll(s.idx.file); err == nil {
		s.tidx.buf, err = readAll(s.tidx.file)
	}
	if err != nil {
		return err
	}
	s.idx.written, s.tidx.written = len(s.idx.buf), len(s.tidx.buf)
	err = errors.Join(s.idx.check(s.size.Load()), s.tidx.check())
	if err == nil {
		err = s.verifyIndexes()
	}
	if err == nil && s.idx.len() > 0 && s.tidx.len() == 0 && s.firstTs >= 0 {
		// Each offset index entry comes with a time index entry once a
		// batch had a timestamp.
		err = errors.New("time index empty")
	}
	if err == nil && s.indexMissing {
		err = errors.New("index file missing")
	}
	if err != nil {
		s.logger.Warn("rebuilding index", "segment", s.path(logSuffix), "reason", err)
		return s.rebuildIndexes()
	}
	if ts, rel, ok := s.tidx.last(); ok && ts > s.maxTs {
		s.maxTs, s.maxTsOffset = ts, s.base+int64(rel)
	}
	s.loaded = true
	return nil
}

// rebuildIndexes rewrites both indexes from the log's batches, and their
// files whole, created even when empty (a sealed segment keeps both). It
// does not cut the log: a sealed segment below the recovery point is only
// read, and a corrupt batch in it is refused when read. A batch that fails
// its CRC, or whose offsets do not follow the previous batch's, is walked
// over but neither indexed nor counted: its header cannot be trusted.
func (s *segment) rebuildIndexes() error {
	if err := errors.Join(s.idx.reset(), s.tidx.reset()); err != nil {
		return err
	}
	s.maxTs, s.maxTsOffset, s.firstTs, s.bytesSinceIndex = -1, -1, -1, 0
	size := s.size.Load()
	// A sealed segment opened trusted knows the next one's base.
	nextBase := s.next.Load()
	if nextBase <= s.base {
		nextBase = math.MaxInt64
	}
	s.next.Store(s.base)
	sc := scanner{f: s.log, size: size, lenient: true}
	for expect := s.base; sc.next(); {
		if record.ComputeCRC(sc.b) != sc.h.CRC || !s.offsetsFit(sc.h, expect, nextBase) {
			continue
		}
		s.index(sc.h.BaseOffset, sc.pos, defaultIndexInterval)
		s.noteBatch(sc.h, int64(sc.h.Size()))
		expect = sc.h.LastOffset() + 1
		s.next.Store(expect)
	}
	s.addTimeEntry()
	if err := errors.Join(s.createIndexFiles(), s.idx.persist(), s.tidx.persist()); err != nil {
		return err
	}
	if sc.err != nil {
		return sc.err
	}
	s.loaded, s.indexMissing = true, false
	return nil
}

// walk reads the batches from position from to the end of a trusted
// segment, adding index entries as appends would, to learn the next offset.
// Each batch's header is read and its CRC computed through one small
// buffer, so that a clean open costs little memory per log. A bad tail
// (which a clean shutdown should not leave) is cut.
func (s *segment) walk(from, indexInterval int64) error {
	size := s.size.Load()
	s.bytesSinceIndex = 0
	expect, good := s.base, from
	if rel, _, ok := s.idx.last(); ok && from > 0 {
		expect = s.base + int64(rel) // the batch at from, which that entry names
	}
	s.next.Store(expect) // in case that batch is cut
	buf := make([]byte, 16<<10)
	for pos := from; size-pos >= record.HeaderSize; {
		if _, err := s.log.ReadAt(buf[:record.HeaderSize], pos); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		h, err := record.ParseHeader(buf[:record.HeaderSize])
		if err != nil || int64(h.Size()) > size-pos || !s.offsetsFit(h, expect, math.MaxInt64) {
			break
		}
		_, crc, err := s.crcAt(pos, int64(h.Size()), buf)
		if err != nil && !errors.Is(err, record.ErrCorrupt) {
			return err
		}
		if err != nil || crc != h.CRC {
			break
		}
		if pos != from || from == 0 {
			s.index(h.BaseOffset, pos, indexInterval) // the batch at from is indexed already
		}
		s.noteBatch(h, int64(h.Size()))
		expect = h.LastOffset() + 1
		s.next.Store(expect)
		pos += int64(h.Size())
		good = pos
	}
	if good < size {
		if err := s.log.Truncate(good); err != nil {
			return err
		}
		s.size.Store(good)
	}
	s.markVerified(s.truncGuard.gen.Load(), from, good)
	return errors.Join(s.idx.persist(), s.tidx.persist())
}

// recover validates every batch of a segment at or after the recovery
// point, rebuilds its indexes, and cuts the log after the last good batch.
// prevNext is the previous segment's end and nextBase the next one's base
// (math.MaxInt64 for the last): offsets must grow and stay between them. It
// reports whether anything was cut. A sealed segment's rebuilt indexes are
// written out, to files created even when empty; the active segment's stay
// in memory, as its appends' do, and its files are emptied or left missing
// (a crash before the next seal or close rebuilds them again).
func (s *segment) recover(prevNext, nextBase, indexInterval int64) (bool, error) {
	size, err := s.log.Size()
	if err != nil {
		return false, err
	}
	if err := s.openIndexFiles(); err != nil {
		return false, err
	}
	if err := errors.Join(s.idx.reset(), s.tidx.reset()); err != nil {
		return false, err
	}
	s.loaded = true
	expect := max(prevNext, s.base)
	sc := scanner{f: s.log, size: size, strict: true}
	for sc.next() {
		if !s.offsetsFit(sc.h, expect, nextBase) {
			break
		}
		s.index(sc.h.BaseOffset, sc.pos, indexInterval)
		s.noteBatch(sc.h, int64(sc.h.Size()))
		expect = sc.h.LastOffset() + 1
		s.next.Store(expect)
		s.size.Store(sc.end)
	}
	if sc.err != nil {
		return false, sc.err
	}
	s.addTimeEntry() // a segment that was active may lack its last entry
	s.indexMissing = false
	if nextBase != math.MaxInt64 {
		if err := errors.Join(s.createIndexFiles(), s.idx.persist(), s.tidx.persist()); err != nil {
			return false, err
		}
	}
	good := s.size.Load()
	s.markVerified(s.truncGuard.gen.Load(), 0, good) // the strict scan checked every CRC
	if good == size {
		return false, nil
	}
	if err := s.log.Truncate(good); err != nil {
		return false, err
	}
	return true, s.sync()
}

// offsetsFit reports whether a batch found in the segment has sane offsets:
// from expect on (offsets grow), below nextBase, and within the 32-bit
// relative offsets of the indexes. The base offset is outside the CRC, so a
// damaged one passes validation.
func (s *segment) offsetsFit(h record.Header, expect, nextBase int64) bool {
	return h.BaseOffset >= expect && h.LastOffset() < nextBase && h.LastOffset()-s.base <= math.MaxUint32
}
