package storage

// Change notification, for readers that long-poll many logs.
//
// Every change that can give a reader something new (an append, a
// truncation, a move of the last stable offset, closing the log) adds one
// to the log's change count and signals each Waiter watching the log. A
// reader that waits for any of many logs to change:
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
// Watching and unwatching cost O(1) per log, a change one non-blocking
// channel send per waiter watching that log, and waiting one channel
// however many logs are watched.
//
// The log start offset moves (retention, DeleteRecords) without a change.
//
// Locks: a log's watchMu guards its list of watches, and is taken last:
// under Log.mu when a change signals, alone by Watch and UnwatchAll, and
// nothing is taken while it is held.

// A Waiter is signalled on C when a log it watches changes. It may watch any
// number of logs, and is reused after UnwatchAll. Its methods are called by
// one goroutine at a time; the logs signal it from any.
type Waiter struct {
	// C receives after a change of a watched log. It holds one signal:
	// changes while one is pending add nothing to it.
	C <-chan struct{}
	c chan struct{} // C, to send on

	// chunks hold the waiter's watches. Logs link to them, so a chunk is
	// never grown or moved: a new one, twice as large, follows a full one.
	// The watches in use are chunks[:cur] and chunks[cur][:at].
	chunks  [][]watch
	cur, at int
}

// watch is one log's registration of a waiter: an element of the log's
// list of watches.
type watch struct {
	w          *Waiter // nil when not in use
	log        *Log
	prev, next *watch // in log.watches; guarded by log.watchMu
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

// Watch makes every change of l from now on signal w. A log watched twice
// is signalled once per change.
func (w *Waiter) Watch(l *Log) {
	wt := w.slot()
	wt.w, wt.log = w, l
	l.watchMu.Lock()
	wt.next = l.watches
	if wt.next != nil {
		wt.next.prev = wt
	}
	l.watches = wt
	l.watchMu.Unlock()
}

// UnwatchAll ends every watch of w and drops a pending signal, so that
// the next use of w starts afresh. Once it returns no log signals w.
func (w *Waiter) UnwatchAll() {
	for i := 0; i <= w.cur && i < len(w.chunks); i++ {
		used := w.chunks[i]
		if i == w.cur {
			used = used[:w.at]
		}
		for j := range used {
			used[j].unlink()
		}
	}
	w.cur, w.at = 0, 0
	select {
	case <-w.c:
	default:
	}
}

// slot returns a watch not in use, from the waiter's chunks.
func (w *Waiter) slot() *watch {
	if w.cur < len(w.chunks) && w.at == len(w.chunks[w.cur]) {
		w.cur, w.at = w.cur+1, 0
	}
	if w.cur == len(w.chunks) {
		n := firstWatches
		if k := len(w.chunks); k > 0 {
			n = min(2*len(w.chunks[k-1]), maxWatchChunk)
		}
		w.chunks = append(w.chunks, make([]watch, n))
	}
	wt := &w.chunks[w.cur][w.at]
	w.at++
	return wt
}

// signal gives w a signal unless one is pending.
func (w *Waiter) signal() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

// unlink takes wt out of its log's list, and clears it.
func (wt *watch) unlink() {
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
	*wt = watch{}
}

// Changes counts the log's changes: appends, truncations, moves of the last
// stable offset, and closing it. A reader that notes the count before a
// read and finds it the same later knows that reading again would find the
// same, but for the log start offset.
func (l *Log) Changes() uint64 { return l.changes.Load() }

// notifyLocked records a change: it moves the change count and signals the
// waiters watching l.
func (l *Log) notifyLocked() {
	l.changes.Add(1)
	l.watchMu.Lock()
	for wt := l.watches; wt != nil; wt = wt.next {
		wt.w.signal()
	}
	l.watchMu.Unlock()
}
