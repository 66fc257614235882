package storage

import (
	"fmt"
)

// SetLogStartOffset moves the log start offset forward (DeleteRecords):
// offsets below it are hidden at once, and segments that fall wholly below it
// are deleted. The move is a change of the log (waiter.go). The new start is
// durable when it returns. An offset past the high watermark is
// ErrOffsetOutOfRange; one at or below the start changes nothing.
func (l *Log) SetLogStartOffset(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	if offset > l.hw {
		return fmt.Errorf("%w: log start %d past the high watermark %d", ErrOffsetOutOfRange, offset, l.hw)
	}
	if offset <= l.logStart {
		return nil
	}
	l.moveStartLocked(offset)
	l.cleanedTo = max(l.cleanedTo, offset)
	if err := l.writeCheckpointLocked(); err != nil {
		l.failLocked(err)
		return err
	}
	_, err := l.deleteSegmentsLocked(func(s, next *segment) bool { return next != nil && next.base <= offset })
	return err
}

// deleteSegmentsLocked deletes old segments from the front of the log while
// drop says so for a segment and the one after it (nil for the active one).
// The active segment is rolled first when drop wants it too, so that a log
// always has one segment. The log start follows the first segment left. It
// returns the number deleted.
func (l *Log) deleteSegmentsLocked(drop func(s, next *segment) bool) (int, error) {
	n := 0
	for len(l.segs) > 0 {
		s := l.segs[0]
		var next *segment
		if len(l.segs) > 1 {
			next = l.segs[1]
		}
		if !drop(s, next) {
			break
		}
		if next == nil {
			if s.size.Load() == 0 {
				break
			}
			if err := l.rollLocked(); err != nil {
				l.failLocked(err)
				return n, err
			}
		}
		l.segs = l.segs[1:]
		l.forgetUnsyncedLocked(s)
		if err := s.remove(); err != nil {
			l.failLocked(err)
			return n, err
		}
		n++
	}
	if n == 0 {
		return 0, nil
	}
	l.moveStartLocked(l.segs[0].base)
	l.cleanedTo = max(l.cleanedTo, l.logStart)
	return n, l.fs.SyncDir(l.dir)
}

// moveStartLocked moves the log start offset forward to offset, if it is
// ahead: every move is a change, which signals the log's watchers as an
// append does, so that a reader caught up on the log learns the new start.
func (l *Log) moveStartLocked(offset int64) {
	if offset > l.logStart {
		l.logStart = offset
		l.notifyLocked()
	}
}

// EnforceRetention deletes the segments that retention.ms and
// retention.bytes expire, oldest first, when cleanup.policy includes delete.
// A segment expires by time when its newest timestamp is older than
// retention.ms; by size while the log without it is still at least
// retention.bytes. The active segment is rolled and deleted too when it has
// expired by time. It returns how many segments were deleted.
func (l *Log) EnforceRetention() (int, error) {
	cfg := l.cfg.Load()
	if !cfg.Delete {
		return 0, nil
	}
	nowMs := l.now().UnixMilli()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return 0, err
	}
	var total int64
	for _, s := range l.segs {
		total += s.size.Load()
	}
	byTime := func(s, next *segment) bool {
		return cfg.Retention >= 0 && s.maxTs >= 0 && nowMs-s.maxTs > cfg.Retention.Milliseconds()
	}
	bySize := func(s, next *segment) bool {
		if cfg.RetentionBytes < 0 || next == nil || total-s.size.Load() < cfg.RetentionBytes {
			return false
		}
		total -= s.size.Load()
		return true
	}
	n, err := l.deleteSegmentsLocked(byTime)
	if err != nil {
		return n, err
	}
	total = 0
	for _, s := range l.segs {
		total += s.size.Load()
	}
	m, err := l.deleteSegmentsLocked(bySize)
	return n + m, err
}
