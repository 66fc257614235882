package storage

// What the log keeps for transactions: the first unstable offset, which
// bounds the last stable offset (LSO), a compaction filter for aborted
// data, and producer state snapshots. The producer state itself belongs to
// the log's owner (package txn/producers); storage keeps its snapshots as
// opaque, owner-checked files.

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/samsa-io/samsa/record"
)

// snapshotSuffix names producer state snapshots: <offset>.snapshot, the
// offset in 20 digits as segments are named.
const snapshotSuffix = ".snapshot"

// snapshotsKept is how many snapshots WriteSnapshot leaves: the newest and
// the one before, in case the newest is found corrupt.
const snapshotsKept = 2

func (l *Log) stableLocked() int64 {
	if l.firstUnstable >= 0 {
		return min(l.firstUnstable, l.hw)
	}
	return l.hw
}

// SetFirstUnstable tells the log the first offset of its earliest open
// transaction (-1: none), which the last stable offset does not pass. An
// append of a transactional batch while none is open sets it to the
// batch's base offset at once, so that the batch is never stable before
// its owner has seen it; the owner moves it forward when transactions end.
func (l *Log) SetFirstUnstable(offset int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if offset >= l.next {
		offset = -1
	}
	l.firstUnstable = offset
	if lso := l.stableLocked(); lso != l.lso {
		l.lso = lso
		l.notifyLocked()
	}
}

// SetTxnDiscard sets the filter that compaction asks about every
// transactional data batch: true drops it (its transaction was aborted).
// Compaction never reaches the last stable offset, so every batch it sees
// belongs to a finished transaction. nil removes the filter.
func (l *Log) SetTxnDiscard(f func(h record.Header) bool) {
	if f == nil {
		l.txnDiscard.Store(nil)
		return
	}
	g := func(h record.Header) bool {
		return h.Attributes.Transactional() && !h.Attributes.Control() && h.ProducerID >= 0 && f(h)
	}
	l.txnDiscard.Store(&g)
}

// Snapshots returns the offsets of the log's producer state snapshots,
// ascending.
func (l *Log) Snapshots() ([]int64, error) {
	names, err := l.fs.List(l.dir)
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, name := range names {
		if off, ok := parseSegmentName(name, snapshotSuffix); ok {
			out = append(out, off)
		}
	}
	slices.Sort(out)
	return out, nil
}

// ReadSnapshot returns the content of the snapshot at offset.
func (l *Log) ReadSnapshot(offset int64) ([]byte, error) {
	f, err := l.fs.Open(filepath.Join(l.dir, segmentName(offset, snapshotSuffix)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if size > 1<<30 {
		return nil, fmt.Errorf("storage: snapshot %d of %s is %d bytes", offset, l.dir, size)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && int64(len(b)) != size {
		return nil, err
	}
	return b, nil
}

// WriteSnapshot stores data as the snapshot at offset, durably (temporary
// file, fsync, rename, directory fsync), and removes all snapshots but the
// newest two. Store.WriteSnapshots writes many logs' at once.
func (l *Log) WriteSnapshot(offset int64, data []byte) error {
	if err := l.writeSnapshotFile(offset, data, true); err != nil {
		return err
	}
	return l.installSnapshot(offset, true)
}

func (l *Log) snapshotPath(offset int64) string {
	return filepath.Join(l.dir, segmentName(offset, snapshotSuffix))
}

// writeSnapshotFile writes data to the temporary file of the snapshot at
// offset, synced if sync; on failure it leaves no temporary file.
func (l *Log) writeSnapshotFile(offset int64, data []byte, sync bool) error {
	tmp := l.snapshotPath(offset) + ".tmp"
	f, err := l.fs.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if sync {
		err = errors.Join(err, f.Sync())
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return errors.Join(err, removeIfExists(l, tmp))
	}
	return nil
}

// installSnapshot renames the temporary file of the snapshot at offset, whose
// data must be durable, into place, syncs the directory if sync, and removes
// all snapshots but the newest two. The older ones go only after the new one
// is in place: a crash meanwhile leaves the one before it.
func (l *Log) installSnapshot(offset int64, sync bool) error {
	name := l.snapshotPath(offset)
	err := l.fs.Rename(name+".tmp", name)
	if err == nil && sync {
		err = l.fs.SyncDir(l.dir)
	}
	if err != nil {
		return errors.Join(err, removeIfExists(l, name+".tmp"))
	}
	offs, err := l.Snapshots()
	if err != nil {
		return err
	}
	for len(offs) > snapshotsKept {
		if err := l.RemoveSnapshot(offs[0]); err != nil {
			return err
		}
		offs = offs[1:]
	}
	return nil
}

// RemoveSnapshot deletes the snapshot at offset, if any.
func (l *Log) RemoveSnapshot(offset int64) error {
	return removeIfExists(l, filepath.Join(l.dir, segmentName(offset, snapshotSuffix)))
}
