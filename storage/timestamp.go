package storage

import "github.com/samsa-io/samsa/record"

// OffsetForTimestamp returns the first offset at or after the log start
// whose record timestamp is >= ts, and that timestamp; ok is false when no
// record is that new (ListOffsets then answers with the log end).
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, ok bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	start := l.logStart
	for _, s := range l.segs {
		if s.maxTs < ts {
			continue
		}
		if err := s.ensureLoaded(); err != nil {
			return 0, 0, false, err
		}
		from := max(s.base+int64(s.tidx.lookup(ts)), start)
		pos, found, err := s.locate(from, s.idx.lookup(uint32(max(from-s.base, 0))))
		if err != nil {
			return 0, 0, false, err
		}
		if !found {
			continue
		}
		sc := scanner{f: s.log, size: s.size.Load(), pos: pos}
		for sc.next() {
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
	l.mu.RLock()
	defer l.mu.RUnlock()
	var best *segment
	for _, s := range l.segs {
		if s.maxTs >= 0 && (best == nil || s.maxTs > best.maxTs) {
			best = s
		}
	}
	if best == nil {
		return 0, 0, false, nil
	}
	if err := best.ensureLoaded(); err != nil {
		return 0, 0, false, err
	}
	pos, found, err := best.locate(best.maxTsOffset, best.idx.lookup(uint32(best.maxTsOffset-best.base)))
	if err != nil || !found {
		return 0, 0, false, err
	}
	sc := scanner{f: best.log, size: best.size.Load(), pos: pos}
	if !sc.next() {
		return 0, 0, false, sc.err
	}
	return firstRecordAtOrAfter(sc.b, best.maxTs, 0)
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
