package broker

// A session's reader: which partitions a fetch in a session reads, and the
// watches that tell.
//
// Reading only what changed: a fetch costs the partitions it reads, not
// the session's. The session's reader (fetchWork, lent to one fetch at a
// time) keeps a storage.Waiter watching the log of every partition it has
// read, from before that read until the partition leaves the session or
// the session closes, each watch tagged with its partition. A fetch reads:
//
//   - the partitions the waiter names as changed since the last fetch
//     (Waiter.Changed), and, in its long poll, those it names meanwhile;
//   - the pending ones: new, moved by the request, or not caught up at their
//     last read (records left to send, an error, not read for max_bytes);
//   - every partition, when the metadata image changed since the reader
//     last read them all (a partition may resolve to another log, or fail
//     or recover), when the isolation level did (caught up is not the
//     same), or when a fetch without the reader answered in the session
//     since (what it read and sent, no watch vouches for).
//
// Nothing else has a fetch read every partition: no timer, however long
// the session lives. Any other partition was caught up when last read and
// its log has not changed since: reading it would find the same, and an
// incremental response would not carry it. Whatever gives a caught-up
// partition something new to return or to tell is a change of its log
// (storage/waiter.go): an append, a truncation, a move of the last stable
// offset or of the log start offset (DeleteRecords, retention), closing
// it. Deleting a topic closes its logs, which is a
// change; a topic created again under a name is new logs, watched once a
// read finds them. A second fetch in the session while the reader is lent
// (a client does not send it, but may) reads every partition itself.
//
// Locks: the session's mu is not held while the reader's waiter is called.
// The watch fields of a session's partitions (watch, watched, mark) are
// the reader's holder's alone: only the fetch that holds the reader reads
// or writes them, and lend and giveBack hand it over under the session's
// mu.

import (
	"cmp"
	"slices"

	"github.com/samsa-io/samsa/metadata"
	"github.com/samsa-io/samsa/storage"
)

// fetchWork is what a fetch allocates in proportion to its partitions. A
// session keeps one, its reader, lent to its fetches one at a time.
type fetchWork struct {
	targets []fetchTarget
	// waiter watches the targets' logs during a long poll (fetch.go). The
	// reader's watches each partition of the session from its first read
	// on; another's watches nothing between long polls.
	waiter *storage.Waiter

	// A session's reader's: the session, what its waiter named last, the
	// fetches it served, and in which image and at which isolation level
	// the last that read every partition began.
	session     *fetchSession
	changed     []any
	picked      []*sessionPartition // what a fetch reads of what changed, sorted
	fetches     uint64
	rescannedIn *metadata.Image
	committed   bool
	// What the last fetch read (for tests): how many targets, and
	// whether those were every partition.
	lastTargets int
	lastRescan  bool
}

// watch makes the reader's waiter watch the log each target was resolved
// to, before the targets are read: a change from then on names the
// partition. A target that failed is not watched: it stays pending.
func (w *fetchWork) watch(targets []fetchTarget) {
	for i := range targets {
		ft := &targets[i]
		p := ft.entry
		var l *storage.Log
		if ft.err == nil {
			l = ft.part.log
		}
		if p.watched == l {
			continue
		}
		w.unwatch(p)
		if l != nil {
			p.watch, p.watched = w.waiter.Watch(l, p), l
		}
	}
}

// unwatch ends the reader's watch of p, if it has one.
func (w *fetchWork) unwatch(p *sessionPartition) {
	if p.watch != nil {
		w.waiter.Unwatch(p.watch)
		p.watch, p.watched = nil, nil
	}
}

// lend returns the session's reader, or other work buffers while another
// fetch holds it or the session is closed.
func (s *fetchSession) lend() *fetchWork {
	s.mu.Lock()
	w := s.reader
	s.reader = nil
	var gone []*sessionPartition
	if w != nil {
		gone, s.forgotten = s.forgotten, nil
	}
	s.mu.Unlock()
	if w == nil {
		return &fetchWork{}
	}
	for _, p := range gone {
		w.unwatch(p)
	}
	return w
}

// giveBack returns work buffers to the session, emptied so that they hold
// on to no partition or segment; the reader ends the watches of the
// partitions forgotten meanwhile first, and all its watches when the
// session has closed.
func (s *fetchSession) giveBack(w *fetchWork) {
	w.lastTargets = len(w.targets)
	clear(w.targets)
	w.targets = w.targets[:0]
	if w.session != s {
		return
	}
	for {
		s.mu.Lock()
		gone := s.forgotten
		s.forgotten = nil
		closed := s.closed
		if !closed && len(gone) == 0 {
			s.reader = w
		}
		s.mu.Unlock()
		if closed {
			w.waiter.UnwatchAll()
			return
		}
		if len(gone) == 0 {
			return
		}
		for _, p := range gone {
			w.unwatch(p)
		}
	}
}

// close ends the session's watches: at once, or when the fetch holding its
// reader gives it back. Called once the cache has dropped it.
func (s *fetchSession) close() {
	s.mu.Lock()
	s.closed = true
	w := s.reader
	s.reader = nil
	s.mu.Unlock()
	if w != nil {
		w.waiter.UnwatchAll()
	}
}

// targets sets w.targets to what a fetch, finding partitions in img,
// reads first: with the session's reader, the partitions its waiter names
// as changed and the pending ones, in the session's order, or every
// partition when img is not the image of the reader's last read of them
// all, a fetch without the reader answered since, or the fetch's isolation
// level is not the last one's (caught up is not the same); without it,
// every partition. It returns how many partitions the session has.
func (s *fetchSession) targets(w *fetchWork, img *metadata.Image, committed bool) int {
	own := w.session == s
	if own {
		w.fetches++
		w.changed = w.waiter.Changed(w.changed[:0])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dst := w.targets[:0]
	rescan := !own || s.mustRescan || w.rescannedIn != img || committed != w.committed
	w.lastRescan = rescan
	if rescan {
		if own {
			s.mustRescan, w.rescannedIn, w.committed = false, img, committed
			for _, p := range s.pending {
				p.pending = false
			}
			clear(w.changed)
			w.changed = w.changed[:0]
		}
		for p := s.first; p != nil; p = p.next {
			dst = append(dst, fetchTarget{key: p.key, pos: p.pos, entry: p, seq: p.seq})
			if own {
				p.mark = w.fetches
			}
		}
	} else {
		s.pick(w, s.pending)
		dst = appendPicked(dst, w)
	}
	if own {
		clear(s.pending)
		s.pending = s.pending[:0]
	}
	w.targets = dst
	return len(s.parts)
}

// pick sets w.picked to the partitions that w.changed names and those of
// more, but those gone or already targets of w's fetch, in the session's
// order; it empties w.changed and clears the pending flags of more.
// Called with mu held.
func (s *fetchSession) pick(w *fetchWork, more []*sessionPartition) {
	picked := w.picked[:0]
	add := func(p *sessionPartition) {
		if !p.gone && p.mark != w.fetches {
			p.mark = w.fetches
			picked = append(picked, p)
		}
	}
	for _, tag := range w.changed {
		add(tag.(*sessionPartition))
	}
	for _, p := range more {
		p.pending = false
		add(p)
	}
	clear(w.changed)
	w.changed = w.changed[:0]
	slices.SortFunc(picked, func(a, b *sessionPartition) int { return cmp.Compare(a.seq, b.seq) })
	w.picked = picked
}

// appendPicked appends a target for each partition of w.picked, and
// empties it. A target keeps its partition's memo, so that a partition
// named again for a change already read is not read again. Called with
// the session's mu held.
func appendPicked(dst []fetchTarget, w *fetchWork) []fetchTarget {
	for _, p := range w.picked {
		dst = append(dst, fetchTarget{key: p.key, pos: p.pos, entry: p, memo: p.memo, seq: p.seq})
	}
	clear(w.picked)
	w.picked = w.picked[:0]
	return dst
}

// addChanged appends to w.targets those partitions that w's waiter names
// as changed and are not targets yet, in the long poll of a fetch with the
// session's reader, keeping the targets in the session's order, and
// returns them.
func (s *fetchSession) addChanged(w *fetchWork) []fetchTarget {
	n := len(w.targets)
	w.changed = w.waiter.Changed(w.changed[:0])
	s.mu.Lock()
	s.pick(w, nil)
	w.targets = appendPicked(w.targets, w)
	s.mu.Unlock()
	added := w.targets[n:]
	if n > 0 && len(added) > 0 && w.targets[n-1].seq > added[0].seq {
		// Rare: a long poll finds a partition ahead of those read.
		slices.SortFunc(w.targets, func(a, b fetchTarget) int { return cmp.Compare(a.seq, b.seq) })
		return w.targets
	}
	return added
}
