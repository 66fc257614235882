package storage

import (
	"errors"
	"sync"

	"github.com/samsa-io/samsa/internal/vfs"
)

// Committer makes appends durable in groups. A caller that needs its append
// durable joins the next round; one caller at a time runs a round, which
// fsyncs every log that asked since the previous round began, then wakes them
// all. While a round's fsyncs run, new requests gather for the next one, so
// one fsync covers every append that arrived meanwhile, across all the logs
// that share the Committer.
//
// A round that covers at least SyncFSThreshold logs makes them durable with
// one syncfs(2) of the whole filesystem instead of an fsync per file, when
// the filesystem offers it (see docs/benchmarks.md for when that pays).
type Committer struct {
	fs        vfs.FS
	dir       string // a directory on the filesystem to syncfs
	threshold int
	observer  CommitObserver // nil when none (metrics.go); immutable

	mu      sync.Mutex
	cond    sync.Cond
	syncing bool   // a round is running; guarded by mu
	pending []*Log // logs waiting for the next round; guarded by mu
	spare   []*Log // the previous round's slice, reused; guarded by mu

	stats CommitStats // guarded by mu
}

// CommitStats counts the committer's work, for metrics.
type CommitStats struct {
	Rounds      int64 // group commits run
	LogsSynced  int64 // logs covered, summed over rounds
	SyncFSCalls int64 // rounds that used syncfs
}

// CommitterOptions configures a Committer.
type CommitterOptions struct {
	// FS and Dir name the filesystem holding the logs; Dir is used for
	// syncfs.
	FS  vfs.FS
	Dir string
	// SyncFSThreshold is the number of logs in one round from which the
	// round uses one syncfs instead of an fsync per log. Zero or negative
	// never uses syncfs.
	SyncFSThreshold int
	// Observer, when not nil, is told of every sync and round (metrics).
	Observer CommitObserver
}

// NewCommitter returns a Committer for logs on one filesystem.
func NewCommitter(opts CommitterOptions) *Committer {
	c := &Committer{fs: opts.FS, dir: opts.Dir, threshold: opts.SyncFSThreshold, observer: opts.Observer}
	c.cond.L = &c.mu
	return c
}

// Stats returns the counters.
func (c *Committer) Stats() CommitStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// commitState is the part of a Log that its Committer guards.
type commitState struct {
	durable int64 // every offset below is durable; guarded by Committer.mu
	queued  bool  // in pending; guarded by Committer.mu
	err     error // a failed sync; sticky; guarded by Committer.mu

	// Written by the goroutine running a round, read after it ends.
	target int64
	segs   []*segment
	rerr   error
}

// wait returns once every offset of l below end is durable.
func (c *Committer) wait(l *Log, end int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.await(func() bool { return c.enqueue(l, end) })
	return l.commit.err
}

// waitAll returns once every log's offsets below its end are durable: all
// of them join the same round.
func (c *Committer) waitAll(logs []*Log, ends []int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.await(func() bool {
		waiting := false
		for i, l := range logs {
			waiting = c.enqueue(l, ends[i]) || waiting
		}
		return waiting
	})
	var errs []error
	for _, l := range logs {
		if l.commit.err != nil {
			errs = append(errs, l.commit.err)
		}
	}
	return errors.Join(errs...)
}

// enqueue reports whether l still waits for offsets below end, queuing it
// for the next round if so. Caller holds mu.
func (c *Committer) enqueue(l *Log, end int64) bool {
	cs := &l.commit
	if cs.durable >= end || cs.err != nil {
		return false
	}
	if !cs.queued {
		cs.queued = true
		c.pending = append(c.pending, l)
	}
	return true
}

// await runs or waits for rounds until waiting reports nothing left to wait
// for. Caller holds mu; it is released while a round syncs.
func (c *Committer) await(waiting func() bool) {
	for waiting() {
		if c.syncing {
			c.cond.Wait()
			continue
		}
		c.syncing = true
		round := c.pending
		c.pending = c.spare[:0]
		c.mu.Unlock()
		c.run(round)
		c.committed(len(round))
		c.mu.Lock()
		for _, x := range round {
			x.commit.queued = false
			if x.commit.rerr != nil {
				x.commit.err = x.commit.rerr
			} else if x.commit.target > x.commit.durable {
				x.commit.durable = x.commit.target
			}
		}
		c.stats.Rounds++
		c.stats.LogsSynced += int64(len(round))
		clear(round)
		c.spare = round[:0]
		c.syncing = false
		c.cond.Broadcast()
	}
}

// run syncs one round's logs. Each log's target is taken before its sync, so
// that it covers only what the sync is sure to cover.
func (c *Committer) run(round []*Log) {
	for _, l := range round {
		l.syncTarget(&l.commit)
	}
	syncer, ok := c.fs.(vfs.FSSyncer)
	if ok && c.threshold > 0 && len(round) >= c.threshold {
		start := c.syncStart()
		err := syncer.SyncFS(c.dir)
		c.synced(true, start)
		c.mu.Lock()
		c.stats.SyncFSCalls++
		c.mu.Unlock()
		for _, l := range round {
			if len(l.commit.segs) > 0 && l.commit.rerr == nil {
				l.commit.rerr = err
			}
			l.commit.releaseSegs()
		}
		return
	}
	for _, l := range round {
		for _, s := range l.commit.segs {
			start := c.syncStart()
			err := s.log.Sync()
			c.synced(false, start)
			if err != nil && l.commit.rerr == nil {
				l.commit.rerr = err
			}
		}
		l.commit.releaseSegs()
	}
}

func (cs *commitState) releaseSegs() {
	for i, s := range cs.segs {
		s.release()
		cs.segs[i] = nil
	}
	cs.segs = cs.segs[:0]
}

// truncated lowers the log's durable point after a truncation.
func (c *Committer) truncated(l *Log, end int64) {
	c.mu.Lock()
	l.commit.durable = min(l.commit.durable, end)
	c.mu.Unlock()
}
