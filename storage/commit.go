package storage

import (
	"errors"
	"sync"
	"time"

	"github.com/samsa-io/samsa/internal/vfs"
)

// Committer makes appends durable in groups. A caller that needs its append
// durable queues its log for the next round and waits; a round takes every
// log queued since the previous round began, fsyncs them, and wakes every
// waiter, so one fsync covers every append that arrived meanwhile, across
// all the logs that share the Committer.
//
// With Writeback, a caller first starts the writeback of its logs' active
// segments (sync_file_range(2); it makes nothing durable), so that their
// data goes to the disk while the round in flight runs and the round that
// covers them has less to write.
//
// Up to Pipeline rounds (default 1) run at once. A caller runs a round
// itself when fewer are running; otherwise it waits for one to end. With
// one, a request that arrives just after a round began waits for that round
// and then for a round of its own; with two, its round starts at once and
// its fsyncs overlap the previous round's (measured: no clear gain on a
// shared disk, see docs/benchmarks.md).
//
// A round fsyncs its logs' files one after another, or up to
// SyncParallelism at once (ext4 serves concurrent fdatasyncs with one
// journal commit where they meet; each blocks an OS thread). A round that
// covers at least SyncFSThreshold logs makes them durable with one
// syncfs(2) of the whole filesystem instead, when the filesystem offers it.
//
// A Store uses neither Writeback, Pipeline nor SyncParallelism: on the
// measured (shared) disk none was clearly faster at 16 partitions, and
// parallel fdatasync with writeback cost a third more broker CPU per GB
// (docs/benchmarks.md, "Rerun for 16-partition produce").
//
// A log's durable point only rises, to the end the log had when a round
// took it, once that round's sync succeeded: a round takes the log end
// before it syncs, so what it marks durable is what the sync is sure to
// cover. Rounds may end out of order; each raises the point to its own
// target if that is higher. A truncation lowers the point, and a round that
// took its target before the truncation raises nothing.
type Committer struct {
	fs          vfs.FS
	dir         string         // a directory on the filesystem to syncfs
	threshold   int            // immutable
	pipeline    int            // immutable
	parallelism int            // immutable
	writeback   bool           // immutable
	observer    CommitObserver // nil when none (metrics.go); immutable

	mu      sync.Mutex
	cond    sync.Cond
	running int      // rounds in flight; guarded by mu
	pending []*Log   // logs waiting for the next round; guarded by mu
	spare   []*round // ended rounds, reused; guarded by mu

	stats CommitStats // guarded by mu
}

// CommitStats counts the committer's work, for metrics.
type CommitStats struct {
	Rounds      int64         // group commits run
	LogsSynced  int64         // logs covered, summed over rounds
	SyncFSCalls int64         // rounds that used syncfs
	SyncTime    time.Duration // time rounds spent syncing, summed (rounds may overlap)
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
	// Pipeline is how many rounds may run at once; zero or less means 1.
	Pipeline int
	// SyncParallelism is how many files one round fsyncs at once; zero or
	// less means 1, one after another.
	SyncParallelism int
	// Writeback has each waiter start the writeback of its logs' new data
	// before it waits, so that it overlaps the round in flight.
	Writeback bool
}

// NewCommitter returns a Committer for logs on one filesystem.
func NewCommitter(opts CommitterOptions) *Committer {
	c := &Committer{
		fs:          opts.FS,
		dir:         opts.Dir,
		threshold:   opts.SyncFSThreshold,
		pipeline:    max(opts.Pipeline, 1),
		parallelism: max(opts.SyncParallelism, 1),
		writeback:   opts.Writeback,
		observer:    opts.Observer,
	}
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
	// truncations counts truncations; written holding both Log.mu and
	// Committer.mu, so either is enough to read it.
	truncations int64
}

// round is one group commit: its logs and, for each, what its sync covers.
type round struct {
	points []syncPoint
	syncs  []syncJob // the files to fsync, when not syncfs
}

// syncPoint is what a round makes durable of one log. Written by the
// goroutine running the round, read under Committer.mu after it ends.
type syncPoint struct {
	log         *Log
	target      int64      // the log end when the round took it
	truncations int64      // the log's commitState.truncations then
	segs        []*segment // referenced; the files whose fsync covers target
	err         error
}

// syncJob is one file a round fsyncs, and the log it belongs to.
type syncJob struct {
	seg   *segment
	point *syncPoint
	err   error
}

// wait returns once every offset of l below end is durable.
func (c *Committer) wait(l *Log, end int64) error {
	if c.writeback {
		l.startWriteback()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.await(func() bool { return c.enqueue(l, end) })
	return l.commit.err
}

// waitAll returns once every log's offsets below its end are durable: all
// of them join the same round.
func (c *Committer) waitAll(logs []*Log, ends []int64) error {
	if c.writeback {
		for _, l := range logs {
			l.startWriteback()
		}
	}
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
		if c.running >= c.pipeline || len(c.pending) == 0 {
			c.cond.Wait()
			continue
		}
		c.running++
		r := c.takeRound()
		c.mu.Unlock()
		start := time.Now()
		syncFS := c.run(r)
		took := time.Since(start)
		c.committed(len(r.points))
		c.mu.Lock()
		c.endRound(r, syncFS, took)
		c.running--
		c.cond.Broadcast()
	}
}

// takeRound moves the pending logs into a new round. Caller holds mu.
func (c *Committer) takeRound() *round {
	var r *round
	if n := len(c.spare); n > 0 {
		r, c.spare = c.spare[n-1], c.spare[:n-1]
	} else {
		r = &round{}
	}
	for _, l := range c.pending {
		l.commit.queued = false // it may queue again for a later round
		if n := len(r.points); n < cap(r.points) {
			r.points = r.points[:n+1] // keeps the element's segs for reuse
		} else {
			r.points = append(r.points, syncPoint{})
		}
		r.points[len(r.points)-1].log = l
	}
	clear(c.pending)
	c.pending = c.pending[:0]
	return r
}

// endRound applies a round's outcome to its logs and keeps it for reuse.
// Caller holds mu.
func (c *Committer) endRound(r *round, syncFS bool, took time.Duration) {
	for i := range r.points {
		p := &r.points[i]
		cs := &p.log.commit
		switch {
		case p.err != nil:
			if cs.err == nil {
				cs.err = p.err
			}
		case p.truncations == cs.truncations && p.target > cs.durable:
			cs.durable = p.target
		}
	}
	c.stats.Rounds++
	c.stats.LogsSynced += int64(len(r.points))
	c.stats.SyncTime += took
	if syncFS {
		c.stats.SyncFSCalls++
	}
	for i := range r.points {
		r.points[i].release()
	}
	r.points = r.points[:0]
	clear(r.syncs)
	r.syncs = r.syncs[:0]
	c.spare = append(c.spare, r)
}

// run syncs one round's logs, and reports whether it used syncfs. Each
// log's target is taken before its sync, so that it covers only what the
// sync is sure to cover.
func (c *Committer) run(r *round) (syncFS bool) {
	for i := range r.points {
		p := &r.points[i]
		p.log.syncTarget(p)
	}
	syncer, ok := c.fs.(vfs.FSSyncer)
	if ok && c.threshold > 0 && len(r.points) >= c.threshold {
		start := c.syncStart()
		err := syncer.SyncFS(c.dir)
		c.synced(true, start)
		for i := range r.points {
			if p := &r.points[i]; len(p.segs) > 0 && p.err == nil {
				p.err = err
			}
		}
		return true
	}
	for i := range r.points {
		p := &r.points[i]
		for _, s := range p.segs {
			r.syncs = append(r.syncs, syncJob{seg: s, point: p})
		}
	}
	c.syncFiles(r.syncs)
	for i := range r.syncs {
		if j := &r.syncs[i]; j.err != nil && j.point.err == nil {
			j.point.err = j.err
		}
	}
	return false
}

// syncFile fsyncs one segment file, timed for the observer.
func (c *Committer) syncFile(s *segment) error {
	start := c.syncStart()
	err := s.log.Sync()
	c.synced(false, start)
	return err
}

// syncFiles fsyncs the jobs' files, up to c.parallelism at once; this
// goroutine takes a share.
func (c *Committer) syncFiles(jobs []syncJob) {
	workers := min(c.parallelism, len(jobs))
	if workers <= 1 {
		for i := range jobs {
			jobs[i].err = c.syncFile(jobs[i].seg)
		}
		return
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(jobs); i += workers {
				jobs[i].err = c.syncFile(jobs[i].seg)
			}
		}()
	}
	for i := 0; i < len(jobs); i += workers {
		jobs[i].err = c.syncFile(jobs[i].seg)
	}
	wg.Wait()
}

func (p *syncPoint) release() {
	for i, s := range p.segs {
		s.release()
		p.segs[i] = nil
	}
	*p = syncPoint{segs: p.segs[:0]}
}

// truncated lowers the log's durable point after a truncation, and makes
// rounds that took their target before it raise nothing. Caller holds l.mu.
func (c *Committer) truncated(l *Log, end int64) {
	c.mu.Lock()
	l.commit.durable = min(l.commit.durable, end)
	l.commit.truncations++
	c.mu.Unlock()
}
