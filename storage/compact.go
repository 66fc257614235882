package storage

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/time/rate"

	"github.com/samsa-io/samsa/record"
)

// CompactOptions bound the work of one compaction pass.
type CompactOptions struct {
	// MaxKeyMapBytes bounds the memory of the map from key to latest offset
	// (Kafka's log.cleaner.dedupe.buffer.size). When it fills, the pass
	// compacts only the part of the log the map covers; the next pass goes on
	// from there. Default 128 MiB.
	MaxKeyMapBytes int64
	// Limiter bounds the bytes read and written per second (Kafka's
	// log.cleaner.io.max.bytes.per.second); nil is unlimited. Its burst must
	// be at least 64 KiB.
	Limiter *rate.Limiter
	// DiscardBatch, when set, is asked about every batch before its records
	// are: true drops the batch whole. Transactions use it to drop aborted
	// data. Control batches are kept unless it drops them.
	DiscardBatch func(h record.Header) bool
}

// keyMapEntryBytes is what one key costs in the map: a 16-byte digest, an
// 8-byte offset, and Go's map overhead.
const keyMapEntryBytes = 48

// CompactStats reports what a pass did.
type CompactStats struct {
	Compacted         bool  // false: nothing was dirty enough
	DirtyStart        int64 // the first offset not compacted before this pass
	CleanedTo         int64 // the first offset not compacted after it
	SegmentsRewritten int
	BytesRead         int64
	BytesWritten      int64
	RecordsRemoved    int64
	TombstonesKept    int64
}

// Compact runs one compaction pass when cleanup.policy includes compact and
// the dirty part of the log is at least min.cleanable.dirty.ratio of it:
// every record whose key has a later record in the compacted range is
// removed, tombstones are removed once their delete horizon (set when the
// cleaner first keeps them, delete.retention.ms later) has passed, offsets
// stay as they were. The active segment and records younger than
// min.compaction.lag.ms are never touched. Readers keep reading throughout;
// each rewritten segment replaces its original atomically.
func (l *Log) Compact(ctx context.Context, opts CompactOptions) (CompactStats, error) {
	cfg := l.cfg.Load()
	if !cfg.Compact {
		return CompactStats{}, nil
	}
	if opts.MaxKeyMapBytes <= 0 {
		opts.MaxKeyMapBytes = 128 << 20
	}
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()

	c, err := l.planCompaction(cfg)
	if err != nil || c == nil {
		return CompactStats{}, err
	}
	defer c.release()
	c.opts = opts
	if f := l.txnDiscard.Load(); f != nil {
		c.txnDiscard = *f
	}
	c.now = l.now().UnixMilli()
	c.deleteRetention = cfg.DeleteRetention.Milliseconds()
	c.stats.DirtyStart = c.dirtyStart
	if err := c.buildKeyMap(ctx); err != nil {
		return c.stats, err
	}
	for _, s := range c.segs {
		if s.base >= c.end {
			break
		}
		if err := c.rewrite(ctx, l, s); err != nil {
			return c.stats, err
		}
	}
	l.mu.Lock()
	l.cleanedTo = max(l.cleanedTo, c.end)
	err = l.writeCheckpointLocked()
	l.mu.Unlock()
	c.stats.Compacted, c.stats.CleanedTo = true, c.end
	return c.stats, err
}

// compaction is one pass's state.
type compaction struct {
	segs            []*segment // sealed segments, referenced
	dirtyStart      int64      // first offset not compacted before
	end             int64      // first offset this pass does not compact
	keys            map[[md5.Size]byte]int64
	opts            CompactOptions
	now             int64
	deleteRetention int64
	stats           CompactStats
	txnDiscard      func(h record.Header) bool // the log's (SetTxnDiscard), or nil
}

func (c *compaction) release() {
	for _, s := range c.segs {
		s.release()
	}
}

// planCompaction picks the range to compact, or returns nil when the log is
// not dirty enough.
func (l *Log) planCompaction(cfg *Config) (*compaction, error) {
	nowMs := l.now().UnixMilli()
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.writableLocked(); err != nil {
		return nil, err
	}
	sealed := l.segs[:len(l.segs)-1]
	// The first offset that may not be compacted: the active segment, the
	// last stable offset (open transactions), records within
	// min.compaction.lag.ms.
	end := min(l.active().base, l.lso)
	lag := cfg.MinCompactionLag.Milliseconds()
	for _, s := range sealed {
		if lag > 0 && s.maxTs > nowMs-lag {
			end = min(end, s.base)
			break
		}
	}
	var clean, dirty int64
	for i, s := range sealed {
		next := l.segs[i+1].base
		switch {
		case next <= l.cleanedTo:
			clean += s.size.Load()
		case s.base < end:
			dirty += s.size.Load()
		}
	}
	if dirty == 0 || float64(dirty)/float64(clean+dirty) < cfg.MinCleanableDirtyRatio {
		return nil, nil
	}
	c := &compaction{dirtyStart: l.cleanedTo, end: end}
	for _, s := range sealed {
		if s.base >= end || !s.acquire() {
			break
		}
		c.segs = append(c.segs, s)
	}
	return c, nil
}

// forEachBatch calls fn for every batch of s, throttled.
func (c *compaction) forEachBatch(ctx context.Context, s *segment, fn func(h record.Header, b []byte) error) error {
	sc := scanner{f: s.log, size: s.size.Load(), strict: true}
	for sc.next() {
		if err := c.throttle(ctx, len(sc.b)); err != nil {
			return err
		}
		c.stats.BytesRead += int64(len(sc.b))
		if err := fn(sc.h, sc.b); err != nil {
			return err
		}
	}
	if sc.err != nil {
		return sc.err
	}
	if sc.end != s.size.Load() {
		return corruptf(s, sc.end, "unreadable batch; compaction stops here")
	}
	return nil
}

func (c *compaction) throttle(ctx context.Context, n int) error {
	if c.opts.Limiter == nil {
		return ctx.Err()
	}
	for n > 0 {
		step := min(n, c.opts.Limiter.Burst())
		if err := c.opts.Limiter.WaitN(ctx, step); err != nil {
			return err
		}
		n -= step
	}
	return nil
}

// buildKeyMap maps each key in [dirtyStart, end) to its latest offset. When
// the map reaches its memory bound the range ends after the last batch that
// fitted.
func (c *compaction) buildKeyMap(ctx context.Context) error {
	limit := int(c.opts.MaxKeyMapBytes / keyMapEntryBytes)
	c.keys = make(map[[md5.Size]byte]int64)
	errFull := errors.New("key map full")
	for _, s := range c.segs {
		if s.base >= c.end {
			break
		}
		err := c.forEachBatch(ctx, s, func(h record.Header, b []byte) error {
			if h.LastOffset() < c.dirtyStart || h.Attributes.Control() || c.discard(h) {
				return nil
			}
			if h.BaseOffset >= c.end {
				return errFull // past the range
			}
			if len(c.keys)+int(h.NumRecords) > limit && len(c.keys) > 0 {
				c.end = h.BaseOffset
				return errFull
			}
			recs, err := record.Records(b)
			if err != nil {
				return err
			}
			for _, r := range recs {
				if r.Offset >= c.dirtyStart && r.Key != nil {
					c.keys[md5.Sum(r.Key)] = r.Offset
				}
			}
			return nil
		})
		if errors.Is(err, errFull) {
			break
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *compaction) discard(h record.Header) bool {
	return (c.opts.DiscardBatch != nil && c.opts.DiscardBatch(h)) || (c.txnDiscard != nil && c.txnDiscard(h))
}

// rewrite writes the compacted copy of one segment and swaps it in. A
// segment from which nothing would go is left alone.
func (c *compaction) rewrite(ctx context.Context, l *Log, s *segment) error {
	cleaned := filepath.Join(l.dir, segmentName(s.base, cleanedSuffix))
	f, err := l.fs.Create(cleaned)
	if err != nil {
		return err
	}
	changed := false
	var written int64
	segEnd := s.next.Load() // a sealed segment ends where the next begins
	err = c.forEachBatch(ctx, s, func(h record.Header, b []byte) error {
		out, keep, err := c.filterBatch(h, b)
		if err != nil {
			return err
		}
		if !keep && h.LastOffset()+1 == segEnd {
			// The last batch of a segment stays, emptied, so that every
			// segment still ends where the next begins: recovery relies on
			// it to tell a torn segment from a compacted one.
			out, err = emptyBatch(h)
			if err != nil {
				return err
			}
			keep = true
		}
		if !keep {
			changed = true
			return nil
		}
		if len(out) != len(b) || &out[0] != &b[0] {
			changed = true
		}
		if err := c.throttle(ctx, len(out)); err != nil {
			return err
		}
		_, err = f.Write(out)
		written += int64(len(out))
		return err
	})
	if err == nil && changed {
		err = f.Sync()
	}
	err = errors.Join(err, f.Close())
	if err != nil || !changed {
		return errors.Join(err, removeIfExists(l, cleaned))
	}
	c.stats.BytesWritten += written
	c.stats.SegmentsRewritten++
	return l.swapIn(s, cleaned)
}

func removeIfExists(l *Log, name string) error {
	if err := l.fs.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// filterBatch returns the batch to keep in place of b (b itself when nothing
// changes), or keep false when nothing of it remains.
func (c *compaction) filterBatch(h record.Header, b []byte) (out []byte, keep bool, err error) {
	if c.discard(h) {
		return nil, false, nil
	}
	if h.Attributes.Control() {
		return b, true, nil
	}
	recs, err := record.Records(b)
	if err != nil {
		return nil, false, err
	}
	horizon := int64(-1)
	if h.Attributes.HasDeleteHorizon() {
		horizon = h.BaseTimestamp
	}
	kept := recs[:0]
	newHorizon := false
	for _, r := range recs {
		if r.Key == nil {
			c.stats.RecordsRemoved++ // a compacted log has no use for it (Kafka drops it too)
			continue
		}
		if latest, ok := c.keys[md5.Sum(r.Key)]; ok && r.Offset < latest {
			c.stats.RecordsRemoved++
			continue
		}
		if r.Value == nil {
			if horizon >= 0 && c.now >= horizon {
				c.stats.RecordsRemoved++
				continue
			}
			if horizon < 0 {
				newHorizon = true
			}
			c.stats.TombstonesKept++
		}
		kept = append(kept, r)
	}
	if len(kept) == len(recs) && !newHorizon {
		return b, true, nil
	}
	if len(kept) == 0 {
		return nil, false, nil
	}
	opts := record.BuildOptions{
		BaseOffset:           h.BaseOffset,
		Codec:                h.Attributes.Codec(),
		LogAppendTime:        h.Attributes.LogAppendTime(),
		Transactional:        h.Attributes.Transactional(),
		ProducerID:           h.ProducerID,
		ProducerEpoch:        h.ProducerEpoch,
		BaseSequence:         h.BaseSequence,
		PartitionLeaderEpoch: h.PartitionLeaderEpoch,
		LastOffsetDelta:      h.LastOffsetDelta,
		DeleteHorizon:        horizon,
		MaxTimestamp:         h.MaxTimestamp,
	}
	if newHorizon {
		opts.DeleteHorizon = c.now + c.deleteRetention
	}
	out, err = record.Build(opts, kept)
	if err != nil {
		return nil, false, fmt.Errorf("storage: rebuilding batch at %d: %w", h.BaseOffset, err)
	}
	return out, true, nil
}

// emptyBatch is a batch with no records in place of h: the same offsets,
// max timestamp and producer fields.
func emptyBatch(h record.Header) ([]byte, error) {
	return record.Build(record.BuildOptions{
		BaseOffset:           h.BaseOffset,
		Codec:                record.CodecNone,
		Transactional:        h.Attributes.Transactional(),
		ProducerID:           h.ProducerID,
		ProducerEpoch:        h.ProducerEpoch,
		BaseSequence:         h.BaseSequence,
		PartitionLeaderEpoch: h.PartitionLeaderEpoch,
		LastOffsetDelta:      h.LastOffsetDelta,
		DeleteHorizon:        -1,
		MaxTimestamp:         h.MaxTimestamp,
	}, nil)
}

// swapIn replaces segment s with the compacted copy in the file cleaned. The
// steps are ordered so that a crash at any point leaves either the original
// or the copy, never a mix (see tidyDir): the copy becomes .swap, the old
// indexes go, the copy becomes .log, the indexes are rebuilt.
func (l *Log) swapIn(s *segment, cleaned string) error {
	swap := filepath.Join(l.dir, segmentName(s.base, swapSuffix))
	if err := l.fs.Rename(cleaned, swap); err != nil {
		return err
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	i := l.segmentIndexLocked(s.base)
	if l.closed || l.segs[i] != s || i == len(l.segs)-1 {
		// Deleted, truncated or closed meanwhile: the copy is not wanted.
		return removeIfExists(l, swap)
	}
	err := func() error {
		for _, suffix := range []string{indexSuffix, timeIndexSuffix} {
			if err := removeIfExists(l, s.path(suffix)); err != nil {
				return err
			}
		}
		if err := l.fs.Rename(swap, s.path(logSuffix)); err != nil {
			return err
		}
		if err := l.fs.SyncDir(l.dir); err != nil {
			return err
		}
		ns, err := openSegmentFiles(l.fs, l.dir, s.base, l.logger)
		if err != nil {
			return err
		}
		size, err := ns.log.Size()
		if err == nil {
			ns.size.Store(size)
			err = ns.openIndexFiles()
		}
		if err == nil {
			err = ns.rebuildIndexes()
		}
		if err == nil {
			err = ns.sync()
		}
		if err != nil {
			ns.release()
			return err
		}
		ns.next.Store(l.segs[i+1].base)
		l.segs[i] = ns
		l.forgetUnsyncedLocked(s) // the synced copy replaces it
		s.release()               // the log's reference; its files are already replaced
		return nil
	}()
	if err != nil {
		l.failLocked(err)
	}
	return err
}
