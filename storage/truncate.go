package storage

import "fmt"

// TruncateTo removes every batch at or after offset (a follower that
// diverged from its leader needs this). A batch that holds offset but starts
// before it is removed whole, so the new log end may be below offset; it is
// returned. Truncating to or past the end changes nothing; below the log
// start is ErrOffsetOutOfRange. The truncation is durable when it returns.
func (l *Log) TruncateTo(offset int64) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return 0, err
	}
	if offset >= l.next {
		return l.next, nil
	}
	if offset < l.logStart {
		return 0, fmt.Errorf("%w: truncation to %d below the log start %d", ErrOffsetOutOfRange, offset, l.logStart)
	}
	end, err := l.truncateLocked(offset)
	if err != nil {
		l.failLocked(err)
		return 0, err
	}
	return end, nil
}

func (l *Log) truncateLocked(offset int64) (int64, error) {
	if err := l.syncUnsyncedLocked(); err != nil {
		return 0, err
	}
	// Whole segments starting at or after offset go, except the first.
	i := l.segmentIndexLocked(offset)
	for len(l.segs) > i+1 {
		s := l.segs[len(l.segs)-1]
		l.segs = l.segs[:len(l.segs)-1]
		if err := s.remove(); err != nil {
			return 0, err
		}
	}
	s := l.segs[i]
	if !s.loaded {
		if err := s.loadIndexes(); err != nil {
			return 0, err
		}
	}
	pos, ok, err := s.locate(offset, s.lookup(offset), nil)
	if err != nil {
		return 0, err
	}
	if ok {
		// Sections of s being sent stop before the cut bytes are
		// replaced by new ones.
		s.beginTruncate(pos)
		err := s.log.Truncate(pos)
		s.endTruncate()
		if err != nil {
			return 0, err
		}
		s.size.Store(pos)
		s.next.Store(s.base)
		if err := s.rebuildIndexes(); err != nil {
			return 0, err
		}
		if err := s.sync(); err != nil {
			return 0, err
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return 0, err
	}
	l.next = s.next.Load()
	if s.size.Load() == 0 {
		l.next = max(s.base, l.logStart)
	}
	if l.firstUnstable >= l.next {
		l.firstUnstable = -1
	}
	l.hw = min(l.hw, l.next)
	l.lso = l.stableLocked()
	l.cleanedTo = min(l.cleanedTo, l.next)
	l.recoveryPoint = min(l.recoveryPoint, s.base)
	l.notifyLocked()
	l.committer.truncated(l, l.next)
	return l.next, l.writeCheckpointLocked()
}
