package storage

import "github.com/samsa-io/samsa/record"

// OffsetForTimestamp returns the first offset at or after the log start
// whose record timestamp is >= ts, and that timestamp; ok is false when no
// record is that new (ListOffsets then answers with the log end).
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, ok bool, err error) {
	candidate := func(s *segment) bool { return s.maxTs >= ts }
	if err := l.rlockLoaded(candidate); err != nil {
		return 0, 0, false, err
	}
	defer l.mu.RUnlock()
	start := l.logStart
	for _, s := range l.segs {
		if !candidate(s) {
			continue
		}
		// Every batch before the one the time index names has an older max
		// timestamp; a damaged entry is ignored and the segment scanned.
		from := s.base
		if entryTs, rel, ok := s.tidx.lookupEntry(ts); ok && s.timeEntryHolds(entryTs, rel) {
			from = s.base + int64(rel)
		}
		from = max(from, start)
		pos, found, err := s.locate(from, s.lookup(from), nil)
		if err != nil {
			return 0, 0, false, err
		}
		if !found {
			continue
		}
		next := s.next.Load()
		sc := scanner{f: s.log, size: s.size.Load(), pos: pos}
		for sc.next() {
			if sc.h.BaseOffset < s.base || sc.h.LastOffset() >= next {
				return 0, 0, false, corruptf(s, sc.pos, "batch offsets [%d,%d] outside the segment", sc.h.BaseOffset, sc.h.LastOffset())
			}
			if sc.h.MaxTimestamp < ts || sc.h.LastOffset() < start {
				continue
			}
			if off, t, ok, err := firstRecordAtOrAfter(sc.b, ts, start); err != nil || ok {
				return off, t, ok, err
			}
		}
		if sc.err != nil {
			return 0, 0, false, sc.err
		}
	}
	return 0, 0, false, nil
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp (the first such record), ok false for an empty log.
func (l *Log) MaxTimestamp() (offset, timestamp int64, ok bool, err error) {
	var best *segment
	for {
		l.mu.RLock()
		best = nil
		for _, s := range l.segs {
			if s.maxTs >= 0 && (best == nil || s.maxTs > best.maxTs) {
				best = s
			}
		}
		if best == nil || best.loaded {
			break
		}
		l.mu.RUnlock()
		if err := l.loadSegments(best); err != nil {
			return 0, 0, false, err
		}
	}
	defer l.mu.RUnlock()
	if best == nil {
		return 0, 0, false, nil
	}
	pos, found, err := best.locate(best.maxTsOffset, best.lookup(best.maxTsOffset), nil)
	if err != nil || !found {
		return 0, 0, false, err
	}
	sc := scanner{f: best.log, size: best.size.Load(), pos: pos}
	if !sc.next() {
		return 0, 0, false, sc.err
	}
	return firstRecordAtOrAfter(sc.b, best.maxTs, 0)
}

// rlockLoaded takes the read lock once every segment that need selects has
// its indexes loaded, loading them under the write lock first. The caller
// releases the read lock.
func (l *Log) rlockLoaded(need func(*segment) bool) error {
	for {
		l.mu.RLock()
		var missing []*segment
		for _, s := range l.segs {
			if need(s) && !s.loaded {
				missing = append(missing, s)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		l.mu.RUnlock()
		if err := l.loadSegments(missing...); err != nil {
			return err
		}
	}
}

// firstRecordAtOrAfter returns the first record of batch b at or after
// offset from whose timestamp is >= ts.
func firstRecordAtOrAfter(b []byte, ts, from int64) (int64, int64, bool, error) {
	recs, err := record.Records(b)
	if err != nil {
		return 0, 0, false, err
	}
	for _, r := range recs {
		if r.Offset >= from && r.Timestamp >= ts {
			return r.Offset, r.Timestamp, true, nil
		}
	}
	return 0, 0, false, nil
}
