package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samsa-io/samsa/internal/vfs"
	"github.com/samsa-io/samsa/record"
)

// Options are the parts of a Log's environment that are not topic config.
type Options struct {
	// FS is the filesystem; vfs.Default when nil.
	FS vfs.FS
	// Committer groups fsyncs with other logs; a private one when nil.
	Committer *Committer
	// Logger receives recovery and failure messages; slog.Default when nil.
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Clean says the log was closed cleanly (the store's clean-shutdown
	// marker was present): its indexes are trusted and no data is rescanned.
	Clean bool

	// syncLater leaves durability to the caller, a Store opening or
	// creating many logs at once: Open fsyncs nothing (not the new
	// directory, not the checkpoint, not what recovery read), and the
	// Store makes the whole filesystem durable with one syncfs before
	// anyone uses the logs.
	syncLater bool
}

// Offsets are a partition log's positions, read together.
type Offsets struct {
	LogStart      int64 // first offset a reader may read
	LogEnd        int64 // offset the next append gets
	HighWatermark int64 // offsets below are committed (replication moves it)
	LastStable    int64 // offsets below have no open transaction (transactions move it)
}

// AppendResult tells where an append went.
type AppendResult struct {
	BaseOffset    int64
	LastOffset    int64
	LogAppendTime int64 // the broker's timestamp, or -1 for CreateTime
	LogStart      int64
	// SegmentBase is the base offset of the segment the batch went to: a
	// change tells the caller that the log rolled (producer state
	// snapshots are taken then).
	SegmentBase int64
}

// ReadResult is what a read returns: whole batches, and the log's offsets as
// of the read.
type ReadResult struct {
	Data []byte
	Offsets
}

// Log is one partition: a directory of segments. It is safe for concurrent
// use: appends are serialised, reads run in parallel with them.
//
// Lock order: Log.mu, then cpMu, then Committer.mu. A round of the
// Committer takes Log.mu without holding Committer.mu; the sealer takes
// cpMu without holding Log.mu. watchMu comes after them all (waiter.go).
type Log struct {
	dir       string
	fs        vfs.FS
	committer *Committer
	logger    *slog.Logger
	now       func() time.Time

	cfg atomic.Pointer[Config] // replaced whole by SetConfig

	mu       sync.RWMutex
	segs     []*segment // by base offset; the last is active; guarded by mu
	next     int64      // log end offset; guarded by mu
	logStart int64      // guarded by mu; once open, moved by moveStartLocked alone
	hw, lso  int64      // guarded by mu; hw equals next until replication
	// firstUnstable is the first offset of the earliest open transaction,
	// -1 when none; lso is min(firstUnstable, hw) (txn.go). Guarded by mu.
	firstUnstable int64
	recoveryPoint int64      // guarded by mu
	cleanedTo     int64      // guarded by mu
	closed        bool       // guarded by mu
	failed        error      // sticky I/O failure; guarded by mu
	unflushed     int64      // records since the last flush; guarded by mu
	unsynced      []*segment // sealed, fsync pending (seal.go), each referenced; guarded by mu
	sealing       bool       // a sealer goroutine runs; guarded by mu
	sealers       sync.WaitGroup
	cpSeq         uint64     // checkpoints taken; guarded by mu
	cpMu          sync.Mutex // serialises checkpoint writes; after mu
	cpWritten     uint64     // the newest checkpoint written; guarded by cpMu
	flushTimer    *time.Timer

	// Change notification (waiter.go).
	changes atomic.Uint64 // Changes; moved under mu
	watchMu sync.Mutex    // guards watches; after mu, before a waiter's mu (waiter.go)
	watches *Watch        // the waiters watching, a doubly linked list; guarded by watchMu

	commit commitState

	cleanMu    sync.Mutex                                 // one compaction at a time
	txnDiscard atomic.Pointer[func(h record.Header) bool] // SetTxnDiscard
}

// Dir returns the log's directory.
func (l *Log) Dir() string { return l.dir }

// Config returns the log's current config.
func (l *Log) Config() Config { return *l.cfg.Load() }

// SetConfig replaces the config; it applies from the next append, roll,
// retention or compaction.
func (l *Log) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.cfg.Store(&cfg)
	return nil
}

// Offsets returns the log's offsets.
func (l *Log) Offsets() Offsets {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.offsetsLocked()
}

func (l *Log) offsetsLocked() Offsets {
	return Offsets{LogStart: l.logStart, LogEnd: l.next, HighWatermark: l.hw, LastStable: l.lso}
}

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

// Size returns the bytes of all segments.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.segs {
		n += s.size.Load()
	}
	return n
}

// Append validates one record batch, gives it the next offsets, and writes
// it. It modifies b in place (base offset, and for LogAppendTime the
// timestamp and CRC) and does not keep it. The partition leader epoch field
// is left as the caller set it.
//
// Append does not wait for durability; WaitDurable does. A bad batch is
// rejected with an error wrapping record.ErrCorrupt, record.ErrInvalidRecord,
// record.ErrUnsupportedCodec, ErrMessageTooLarge or ErrInvalidTimestamp, and
// nothing of it is written; when records are at fault, the error is a
// *RejectedRecordsError that names them.
func (l *Log) Append(b []byte) (AppendResult, error) {
	cfg := l.cfg.Load()
	if int64(len(b)) > cfg.MaxMessageBytes {
		return AppendResult{}, fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, len(b), cfg.MaxMessageBytes)
	}
	h, err := record.Validate(b, record.ValidateOptions{VerifyRecords: cfg.VerifyRecords || cfg.Compact})
	if err != nil {
		return AppendResult{}, err
	}
	nowMs := l.now().UnixMilli()
	if err := checkRecords(b, h, nowMs, cfg); err != nil {
		return AppendResult{}, err
	}
	res := AppendResult{LogAppendTime: -1}
	if cfg.LogAppendTime {
		record.SetLogAppendTime(b, nowMs)
		h.MaxTimestamp = nowMs
		res.LogAppendTime = nowMs
	}

	l.mu.Lock()
	if err := l.writableLocked(); err != nil {
		l.mu.Unlock()
		return AppendResult{}, err
	}
	last := l.next + int64(h.LastOffsetDelta)
	if l.shouldRollLocked(len(b), last, h.MaxTimestamp, cfg) {
		if err := l.rollLocked(); err != nil {
			l.failLocked(err)
			l.mu.Unlock()
			return AppendResult{}, err
		}
	}
	h.BaseOffset = l.next
	record.SetBaseOffset(b, l.next)
	if err := l.active().append(b, h, cfg.IndexIntervalBytes); err != nil {
		l.failLocked(err)
		l.mu.Unlock()
		return AppendResult{}, err
	}
	l.next = last + 1
	if h.Attributes.Transactional() && !h.Attributes.Control() && l.firstUnstable < 0 {
		// With no transaction open, a transactional batch opens one (its
		// owner confirms with SetFirstUnstable); with one open, the
		// earliest stays earliest.
		l.firstUnstable = h.BaseOffset
	}
	l.hw = l.next
	l.lso = l.stableLocked()
	l.unflushed += int64(h.NumRecords)
	l.notifyLocked()
	res.BaseOffset, res.LastOffset, res.LogStart = h.BaseOffset, last, l.logStart
	res.SegmentBase = l.active().base
	flushNow := !cfg.SyncEveryAppend() && l.unflushed >= cfg.FlushMessages
	if !cfg.SyncEveryAppend() && !flushNow && cfg.FlushInterval >= 0 && l.flushTimer == nil {
		l.flushTimer = time.AfterFunc(cfg.FlushInterval, l.timedFlush)
	}
	l.mu.Unlock()

	if flushNow {
		if err := l.Flush(); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (l *Log) writableLocked() error {
	if l.closed {
		return ErrClosed
	}
	if l.failed != nil {
		return l.failed
	}
	return nil
}

func (l *Log) failLocked(err error) {
	if l.failed == nil {
		l.failed = fmt.Errorf("%w: %s: %w", ErrLogFailed, l.dir, err)
		l.logger.Error("log failed; it refuses writes until reopened", "dir", l.dir, "err", err)
	}
}

// shouldRollLocked reports whether a batch must go into a new segment.
func (l *Log) shouldRollLocked(n int, last, maxTs int64, cfg *Config) bool {
	s := l.active()
	if s.size.Load() == 0 {
		return false
	}
	if !s.fits(n, last, cfg.SegmentBytes) {
		return true
	}
	return s.firstTs >= 0 && maxTs-s.firstTs > cfg.SegmentAge.Milliseconds()
}

// Roll starts a new segment now, unless the active one is empty.
func (l *Log) Roll() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	if l.active().size.Load() == 0 {
		return nil
	}
	if err := l.rollLocked(); err != nil {
		l.failLocked(err)
		return err
	}
	return nil
}

// WaitDurable returns once every offset below end is durable under the
// log's flush policy. With the default policy (flush.messages=1) it joins a
// group commit; with a relaxed one it returns at once, and durability comes
// from the background flush.
func (l *Log) WaitDurable(end int64) error {
	if !l.cfg.Load().SyncEveryAppend() {
		return nil
	}
	return l.committer.wait(l, end)
}

// WaitDurableAll is WaitDurable for several logs at once: the logs that
// share a Committer join one group commit round instead of one round each.
// ends[i] is the end offset to wait for in logs[i].
func WaitDurableAll(logs []*Log, ends []int64) error {
	if len(logs) == 0 {
		return nil
	}
	if c := logs[0].committer; !slices.ContainsFunc(logs, func(l *Log) bool {
		return l.committer != c || !l.cfg.Load().SyncEveryAppend()
	}) {
		return c.waitAll(logs, ends) // the common case: one store, default policy
	}
	var errs []error
	for len(logs) > 0 {
		c := logs[0].committer
		var mine []*Log
		var mineEnds []int64
		var rest []*Log
		var restEnds []int64
		for i, l := range logs {
			switch {
			case l.committer != c:
				rest, restEnds = append(rest, l), append(restEnds, ends[i])
			case l.cfg.Load().SyncEveryAppend():
				mine, mineEnds = append(mine, l), append(mineEnds, ends[i])
			}
		}
		if len(mine) > 0 {
			errs = append(errs, c.waitAll(mine, mineEnds))
		}
		logs, ends = rest, restEnds
	}
	return errors.Join(errs...)
}

// Flush makes everything appended so far durable.
func (l *Log) Flush() error {
	l.mu.Lock()
	end := l.next
	l.unflushed = 0
	if l.flushTimer != nil {
		l.flushTimer.Stop()
		l.flushTimer = nil
	}
	l.mu.Unlock()
	return l.committer.wait(l, end)
}

func (l *Log) timedFlush() {
	if err := l.Flush(); err != nil && !errors.Is(err, ErrClosed) {
		l.logger.Error("timed flush failed", "dir", l.dir, "err", err)
	}
}

// syncTarget sets, for the committer, the log end offset and the segments
// (referenced) whose fsync makes it durable: the active one, and any sealed
// one whose background fsync has not finished.
func (l *Log) syncTarget(p *syncPoint) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	p.segs, p.err = p.segs[:0], nil
	p.truncations = l.commit.truncations
	switch {
	case l.failed != nil:
		p.err = l.failed
		return
	case l.closed:
		p.target = l.next // Close synced everything
		return
	}
	// Not append(l.unsynced, …): rounds run this concurrently, under the
	// read lock, and must not write into l.unsynced's array.
	for _, s := range l.unsynced {
		if s.acquire() {
			p.segs = append(p.segs, s)
		}
	}
	if s := l.active(); s.acquire() {
		p.segs = append(p.segs, s)
	}
	p.target = l.next
}

// startWriteback asks the kernel to start writing the active segment's
// dirty data back, without waiting, so that the fsync round that will cover
// it has less left to write when it runs.
func (l *Log) startWriteback() {
	l.mu.RLock()
	var s *segment
	if !l.closed && l.failed == nil {
		if a := l.active(); a.acquire() {
			s = a
		}
	}
	l.mu.RUnlock()
	if s == nil {
		return
	}
	if w, ok := s.log.(vfs.WritebackStarter); ok {
		_ = w.StartWriteback() // a hint; the round's sync reports errors
	}
	s.release()
}

// segmentIndexLocked returns the index of the segment holding offset: the
// last one whose base is <= offset, or 0.
func (l *Log) segmentIndexLocked(offset int64) int {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > offset })
	return max(i-1, 0)
}

// Read appends to dst whole batches starting with the one that holds offset,
// at most maxBytes of them but always at least one, none at or beyond upTo
// (pass the high watermark, the last stable offset, or the log end). An
// offset below the log start or past the log end is ErrOffsetOutOfRange; an
// offset at the end reads nothing. Data is read from one segment.
func (l *Log) Read(dst []byte, offset int64, maxBytes int, upTo int64) (ReadResult, error) {
	l.mu.RLock()
	res := ReadResult{Data: dst, Offsets: l.offsetsLocked()}
	if offset < l.logStart || offset > l.next {
		l.mu.RUnlock()
		return res, fmt.Errorf("%w: %d is outside [%d, %d]", ErrOffsetOutOfRange, offset, l.logStart, l.next)
	}
	upTo = min(upTo, l.next)
	// Batch headers are read into dst's spare room: a reused dst makes a
	// read allocate nothing.
	dst = slices.Grow(dst, prefixLen)
	// after is the base of the last segment looked at: the next one to look
	// at is the first with a greater base.
	after := int64(-1)
	i := l.segmentIndexLocked(offset)
	for offset < upTo && i < len(l.segs) {
		s := l.segs[i]
		if !s.loaded {
			l.mu.RUnlock()
			if err := l.loadSegments(s); err != nil {
				return res, err
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
			return res, ErrClosed
		}
		l.mu.RUnlock()
		pos, ok, err := s.locate(offset, startPos, dst[len(dst):cap(dst)])
		if err == nil && ok {
			res.Data, err = s.readFrom(dst, pos, maxBytes, upTo)
		}
		s.release()
		if err != nil || ok {
			return res, err
		}
		after = s.base
		l.mu.RLock()
		i = sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > after })
	}
	l.mu.RUnlock()
	return res, nil
}

// loadSegments loads the indexes of sealed segments opened without them,
// under the write lock (loading may rebuild them, and sets the segment's
// summary fields that readers read under the read lock).
func (l *Log) loadSegments(segs ...*segment) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range segs {
		if s.loaded || s.refs.Load() <= 0 {
			continue
		}
		err := s.loadIndexes()
		if err = errors.Join(err, s.closeIndexFiles()); err != nil {
			return err
		}
	}
	return nil
}

// Close syncs the log and closes its files. After Close the log's data and
// indexes are all durable, so the caller may record a clean shutdown.
func (l *Log) Close() error { return l.close(true) }

// close closes the log; sync false leaves its unsynced data to a syncfs by
// the caller (a Store closing every log).
func (l *Log) close(sync bool) error {
	l.mu.Lock()
	err := l.closeLocked(sync)
	l.mu.Unlock()
	l.sealers.Wait() // a sealer finds the log closed and stops
	if err != nil {
		return fmt.Errorf("storage: close %s: %w", l.dir, err)
	}
	return nil
}

func (l *Log) closeLocked(sync bool) error {
	if l.closed {
		return nil
	}
	l.closed = true
	if l.flushTimer != nil {
		l.flushTimer.Stop()
		l.flushTimer = nil
	}
	l.notifyLocked()
	err := l.failed
	if err == nil {
		for _, s := range slices.Concat(l.unsynced, []*segment{l.active()}) {
			if sync {
				err = errors.Join(err, s.sync())
			} else {
				err = errors.Join(err, s.flushIndexes())
			}
		}
	}
	for _, s := range l.unsynced {
		s.release()
	}
	l.unsynced = nil
	for _, s := range l.segs {
		s.release()
	}
	return err
}

// Delete closes the log and removes its directory.
func (l *Log) Delete() error {
	l.Close()
	return l.fs.RemoveAll(l.dir)
}
