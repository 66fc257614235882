package storage

import (
	"errors"
	"slices"

	"github.com/samsa-io/samsa/internal/vfs"
)

// Sealing. When the active segment rolls, the new segment starts at once and
// the old one is fsynced in the background by a sealer goroutine, so that an
// append never waits for a whole segment to reach the disk. Until its fsync
// is done a sealed segment is in Log.unsynced, where a group commit (which
// must make its tail durable too) and Close find it. Once synced, the
// recovery point moves past it and the checkpoint records that.

// rollLocked seals the active segment and starts a new one at the log end.
func (l *Log) rollLocked() error {
	old := l.active()
	old.addTimeEntry()
	// The sealed segment's index files are made here, not by the sealer,
	// so that the directory sync below makes their names durable with the
	// new segment's.
	if err := old.createIndexFiles(); err != nil {
		return err
	}
	s, err := createSegment(l.fs, l.dir, l.next, l.logger)
	if err != nil {
		return err
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		s.remove()
		return err
	}
	l.segs = append(l.segs, s)
	if old.acquire() {
		l.unsynced = append(l.unsynced, old)
	}
	if !l.sealing {
		l.sealing = true
		l.sealers.Add(1)
		go l.runSealer()
	}
	return nil
}

// runSealer fsyncs sealed segments until none is left.
func (l *Log) runSealer() {
	defer l.sealers.Done()
	for {
		l.mu.Lock()
		if len(l.unsynced) == 0 || l.closed || l.failed != nil {
			l.sealing = false
			l.mu.Unlock()
			return
		}
		// A segment deleted or replaced by a compacted copy meanwhile needs
		// no fsync.
		for _, s := range slices.Clone(l.unsynced) {
			if !slices.Contains(l.segs, s) {
				l.forgetUnsyncedLocked(s)
			}
		}
		batch := slices.Clone(l.unsynced)
		files, err := l.prepareSealLocked(batch)
		l.mu.Unlock()

		for _, s := range batch {
			err = errors.Join(err, s.log.Sync())
		}
		for _, f := range files {
			err = errors.Join(err, f.Sync(), f.Close())
		}
		for _, s := range batch {
			s.release()
		}

		l.mu.Lock()
		if l.closed {
			l.sealing = false // Close synced what was left
			l.mu.Unlock()
			return
		}
		if err != nil {
			l.failLocked(err)
			l.sealing = false
			l.mu.Unlock()
			return
		}
		for _, s := range batch {
			l.forgetUnsyncedLocked(s)
		}
		rp := l.active().base
		if len(l.unsynced) > 0 {
			rp = l.unsynced[0].base
		}
		moved := rp > l.recoveryPoint
		l.recoveryPoint = max(l.recoveryPoint, rp)
		cp, seq := l.checkpointLocked()
		l.mu.Unlock()
		if moved {
			if err := l.saveCheckpoint(cp, seq, true); err != nil {
				l.mu.Lock()
				l.failLocked(err)
				l.mu.Unlock()
			}
		}
	}
}

// prepareSealLocked writes out the indexes of the segments in batch and
// opens handles of their index files for the sealer to fsync outside the
// lock; it takes a reference on each segment for that time.
func (l *Log) prepareSealLocked(batch []*segment) ([]vfs.File, error) {
	var files []vfs.File
	var err error
	for _, s := range batch {
		s.acquire()
		if e := errors.Join(s.idx.persist(), s.tidx.persist(), s.closeIndexFiles()); e != nil {
			err = errors.Join(err, e)
			continue
		}
		for _, suffix := range []string{indexSuffix, timeIndexSuffix} {
			f, e := l.fs.OpenAppend(s.path(suffix))
			if e != nil {
				err = errors.Join(err, e)
				continue
			}
			files = append(files, f)
		}
	}
	return files, err
}

// forgetUnsyncedLocked takes s off the unsynced list, if it is there.
func (l *Log) forgetUnsyncedLocked(s *segment) {
	if i := slices.Index(l.unsynced, s); i >= 0 {
		l.unsynced = slices.Delete(l.unsynced, i, i+1)
		s.release()
	}
}

// syncUnsyncedLocked fsyncs every sealed segment still waiting for the
// sealer, for operations that rewrite segments (truncation).
func (l *Log) syncUnsyncedLocked() error {
	for len(l.unsynced) > 0 {
		s := l.unsynced[0]
		if err := s.sync(); err != nil {
			return err
		}
		l.forgetUnsyncedLocked(s)
	}
	return nil
}

// checkpointLocked takes the checkpoint to write, numbered so that an
// older one written late never replaces a newer one.
func (l *Log) checkpointLocked() (checkpoint, uint64) {
	l.cpSeq++
	return checkpoint{LogStart: l.logStart, RecoveryPoint: l.recoveryPoint, CleanedTo: l.cleanedTo}, l.cpSeq
}

// saveCheckpoint writes cp unless a newer one has been written; sync
// false leaves it to a syncfs by the caller (writeCheckpoint).
func (l *Log) saveCheckpoint(cp checkpoint, seq uint64, sync bool) error {
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	if seq < l.cpWritten {
		return nil
	}
	if err := writeCheckpoint(l.fs, l.dir, cp, sync); err != nil {
		return err
	}
	l.cpWritten = seq
	return nil
}

// writeCheckpointLocked writes the checkpoint now (the caller holds mu).
func (l *Log) writeCheckpointLocked() error {
	cp, seq := l.checkpointLocked()
	return l.saveCheckpoint(cp, seq, true)
}
