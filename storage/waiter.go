package storage

// Change notification, for readers that long-poll many logs.
//
// Every change that can give a reader something new (an append, a
// truncation, a move of the last stable offset or of the log start offset,
// closing the log) adds one to the log's change count and signals each
// Waiter watching the log. A
// reader that waits for any of many logs to change, once:
//
//  1. notes a log's change count (Log.Changes) before reading it;
//  2. when what it read is not enough, watches every log with one Waiter;
//  3. looks at the change counts again: a log whose count moved changed
//     between the read and the watch, and is read again without waiting;
//  4. otherwise waits on the Waiter's C, and reads again after a signal;
//  5. unwatches them all (UnwatchAll) when it is done.
//
// A change after step 2 signals the waiter; one before moved the count that
// step 3 looks at: none is missed. Signals fold into one and may come for a
// change the reader has already read, so a reader checks again after each.
//
// A reader that keeps many logs watched for long, and wants to read only
// those that changed, tags each watch and asks the waiter which changed
// (Changed): a change queues its watch on the waiter, once until the next
// Changed, and signals C. A log watched before it is read, and read again
// after each Changed that names it, is never read stale: a change after
// Changed took the queue queues its watch again. Unwatch ends one watch.
//
// Watching and unwatching cost O(1) per log, a change one compare-and-swap
// per waiter watching the log (a queue append and a non-blocking channel
// send the first time), Changed the watches it returns, and waiting one
// channel however many logs are watched.
//
// The log start offset moves by DeleteRecords and by retention deleting
// segments (retention.go); either move is a change. Recovery moves it only
// while opening the log, before anyone can watch it, and compaction keeps
// the segments' bases, so never moves it.
//
// Locks: a log's watchMu guards its list of watches, and a waiter's mu its
// queue. When a change signals, Log.mu, then watchMu, then the waiter's mu
// are taken, in that order. Watch and Unwatch take watchMu alone; Changed
// takes the waiter's mu alone; nothing is taken under the waiter's mu.

import (
	"sync"
	"sync/atomic"
)

// A Waiter is signalled on C when a log it watches changes, and lists the
// watches whose log changed. It may watch any number of logs, and is reused
// after UnwatchAll. Its methods are called by one goroutine at a time; the
// logs signal it from any.
type Waiter struct {
	// C receives after a change of a watched log. It holds one signal:
	// changes while one is pending add nothing to it.
	C <-chan struct{}
	c chan struct{} // C, to send on

	// chunks hold the waiter's watches. Logs link to them, so a chunk is
	// never grown or moved: a new one, twice as large, follows a full one.
	// The watches handed out since UnwatchAll are chunks[:cur] and
	// chunks[cur][:at]; those of them unwatched and not queued are in the
	// list free.
	chunks  [][]Watch
	cur, at int
	free    *Watch // linked by next

	mu    sync.Mutex
	queue []*Watch // watches whose log changed since Changed; guarded by mu
	spare []*Watch // the queue Changed took last, emptied, to take turns with queue
}

// A Watch is one log's registration of a waiter: an element of the log's
// list of watches. It is the waiter's, and is valid until Unwatch or
// UnwatchAll.
type Watch struct {
	w   *Waiter // nil when not in use; set and cleared while not linked
	log *Log
	tag any
	// queued is set by the change that puts the watch in w.queue, and
	// cleared by the Changed that takes it from there, or UnwatchAll.
	queued     atomic.Bool
	prev, next *Watch // in log.watches; guarded by log.watchMu; next links w.free too
}

// Chunks of watches grow from firstWatches up to maxWatchChunk.
const (
	firstWatches  = 16
	maxWatchChunk = 4096
)

// NewWaiter returns a waiter that watches nothing yet.
func NewWaiter() *Waiter {
	c := make(chan struct{}, 1)
	return &Waiter{C: c, c: c}
}

// Watch makes every change of l from now on signal w, and Changed return
// tag, until the watch returned ends. A log watched twice is signalled once
// per change, and its tags are returned each.
func (w *Waiter) Watch(l *Log, tag any) *Watch {
	wt := w.slot()
	wt.w, wt.log, wt.tag = w, l, tag
	l.watchMu.Lock()
	wt.next = l.watches
	if wt.next != nil {
		wt.next.prev = wt
	}
	l.watches = wt
	l.watchMu.Unlock()
	return wt
}

// Unwatch ends one watch of w. Once it returns its log does not signal w
// for it, and Changed does not return its tag.
func (w *Waiter) Unwatch(wt *Watch) {
	wt.unlink()
	// No change reaches wt now: queued stays as it is. A queued watch is
	// freed by Changed, which finds it in the queue.
	if !wt.queued.Load() {
		wt.next = w.free
		w.free = wt
	}
}

// UnwatchAll ends every watch of w, empties its queue and drops a pending
// signal, so that the next use of w starts afresh. Once it returns no log
// signals w.
func (w *Waiter) UnwatchAll() {
	for i := 0; i <= w.cur && i < len(w.chunks); i++ {
		used := w.chunks[i]
		if i == w.cur {
			used = used[:w.at]
		}
		for j := range used {
			if used[j].w != nil {
				used[j].unlink()
			}
			used[j].next = nil // of the free list
		}
	}
	w.cur, w.at, w.free = 0, 0, nil
	// No change reaches the watches now.
	w.mu.Lock()
	for _, wt := range w.queue {
		wt.queued.Store(false)
	}
	clear(w.queue)
	w.queue = w.queue[:0]
	w.mu.Unlock()
	w.dropSignal()
}

// Changed drops a pending signal, then appends to dst the tags of the
// watches whose log changed since the last Changed (or since they began),
// each once, and returns it. A change from the moment Changed took them
// queues its watch again, and signals C.
func (w *Waiter) Changed(dst []any) []any {
	w.dropSignal()
	w.mu.Lock()
	q := w.queue
	w.queue = w.spare
	w.mu.Unlock()
	for i, wt := range q {
		q[i] = nil
		if wt.w == nil { // unwatched while queued: free now
			wt.queued.Store(false)
			wt.next = w.free
			w.free = wt
			continue
		}
		dst = append(dst, wt.tag)
		wt.queued.Store(false) // after the tag is read: a change from now on queues wt again
	}
	w.spare = q[:0]
	return dst
}

// slot returns a watch not in use, from the free list or the chunks.
func (w *Waiter) slot() *Watch {
	if wt := w.free; wt != nil {
		w.free, wt.next = wt.next, nil
		return wt
	}
	if w.cur < len(w.chunks) && w.at == len(w.chunks[w.cur]) {
		w.cur, w.at = w.cur+1, 0
	}
	if w.cur == len(w.chunks) {
		n := firstWatches
		if k := len(w.chunks); k > 0 {
			n = min(2*len(w.chunks[k-1]), maxWatchChunk)
		}
		w.chunks = append(w.chunks, make([]Watch, n))
	}
	wt := &w.chunks[w.cur][w.at]
	w.at++
	return wt
}

// changed records a change of wt's log: the first since Changed queues wt
// and signals w. The log's watchMu is held.
func (w *Waiter) changed(wt *Watch) {
	if !wt.queued.CompareAndSwap(false, true) {
		return // queued, and signalled then: Changed has yet to take it
	}
	w.mu.Lock()
	w.queue = append(w.queue, wt)
	w.mu.Unlock()
	w.signal()
}

// signal gives w a signal unless one is pending.
func (w *Waiter) signal() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

// dropSignal takes a pending signal, if there is one.
func (w *Waiter) dropSignal() {
	select {
	case <-w.c:
	default:
	}
}

// unlink takes wt out of its log's list, and marks it not in use.
func (wt *Watch) unlink() {
	l := wt.log
	l.watchMu.Lock()
	if wt.prev != nil {
		wt.prev.next = wt.next
	} else {
		l.watches = wt.next
	}
	if wt.next != nil {
		wt.next.prev = wt.prev
	}
	l.watchMu.Unlock()
	wt.w, wt.log, wt.tag, wt.prev, wt.next = nil, nil, nil, nil, nil
}

// Changes counts the log's changes: appends, truncations, moves of the last
// stable offset and of the log start offset, and closing it. A reader that
// notes the count before a read and finds it the same later knows that
// reading again would find the same.
func (l *Log) Changes() uint64 { return l.changes.Load() }

// Watches is how many watches the log has, of any waiters.
func (l *Log) Watches() int {
	l.watchMu.Lock()
	defer l.watchMu.Unlock()
	n := 0
	for wt := l.watches; wt != nil; wt = wt.next {
		n++
	}
	return n
}

// notifyLocked records a change: it moves the change count and signals the
// waiters watching l.
func (l *Log) notifyLocked() {
	l.changes.Add(1)
	l.watchMu.Lock()
	for wt := l.watches; wt != nil; wt = wt.next {
		wt.w.changed(wt)
	}
	l.watchMu.Unlock()
}
