package storage

import "time"

// CommitObserver is told what a Committer's group-commit rounds do, so that
// the broker can export fsync latency and round sizes without storage
// knowing about Prometheus. Its methods are called from the goroutine
// running a round, without the Committer's lock held, and must be quick.
type CommitObserver interface {
	// Synced is called after each fsync(2) of a segment file, or after
	// the syncfs(2) of the filesystem (syncfs true) that covers a whole
	// round, with how long the call took.
	Synced(syncfs bool, d time.Duration)
	// Committed is called after each round with the number of logs it
	// made durable together.
	Committed(logs int)
}

// syncStart is when a sync starts, for the observer; zero when there is
// none, so that a Committer without one does not read the clock.
func (c *Committer) syncStart() time.Time {
	if c.observer == nil {
		return time.Time{}
	}
	return time.Now()
}

// synced tells the observer of a sync that started at start.
func (c *Committer) synced(syncfs bool, start time.Time) {
	if c.observer != nil {
		c.observer.Synced(syncfs, time.Since(start))
	}
}

// committed tells the observer of a round of n logs.
func (c *Committer) committed(n int) {
	if c.observer != nil {
		c.observer.Committed(n)
	}
}
