package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// openLogs opens n logs in e's filesystem, closed when the test ends.
func openLogs(t *testing.T, e *testEnv, n int) []*Log {
	t.Helper()
	logs := make([]*Log, n)
	for i := range logs {
		l, err := Open(fmt.Sprintf("/data/watched-%d", i), DefaultConfig(), e.options(false))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		logs[i] = l
	}
	return logs
}

// signalled reports whether w has a signal pending, and takes it. Logs
// signal before the call that changed them returns, so a test may look
// right after the change.
func signalled(w *Waiter) bool {
	select {
	case <-w.C:
		return true
	default:
		return false
	}
}

// watchersOf counts the watches in l's list, checking its links.
func watchersOf(t *testing.T, l *Log) int {
	t.Helper()
	l.watchMu.Lock()
	defer l.watchMu.Unlock()
	n := 0
	var prev *Watch
	for wt := l.watches; wt != nil; wt = wt.next {
		if wt.prev != prev || wt.log != l || wt.w == nil {
			t.Fatalf("watch %d of %s is linked wrong", n, l.Dir())
		}
		prev = wt
		n++
	}
	return n
}

func TestWaiterIsSignalledByEveryChange(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, l *Log)
	}{
		{"append", func(t *testing.T, l *Log) { mustAppend(t, l, valueBatch(t, 1, 1, "more")) }},
		{"truncation", func(t *testing.T, l *Log) {
			if _, err := l.TruncateTo(1); err != nil {
				t.Fatal(err)
			}
		}},
		{"last stable offset", func(t *testing.T, l *Log) { l.SetFirstUnstable(1) }},
		{"close", func(t *testing.T, l *Log) { l.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := openLogs(t, newEnv(t), 1)[0]
			mustAppend(t, l, valueBatch(t, 1, 1, "a"))
			mustAppend(t, l, valueBatch(t, 1, 1, "b"))
			w := NewWaiter()
			w.Watch(l, nil)
			defer w.UnwatchAll()
			before := l.Changes()
			if signalled(w) {
				t.Fatal("signalled before any change")
			}
			tc.change(t, l)
			if !signalled(w) {
				t.Fatalf("no signal after the %s", tc.name)
			}
			if l.Changes() == before {
				t.Fatalf("the change count stayed %d after the %s", before, tc.name)
			}
		})
	}
}

// TestWaiterIsSignalledWhenTheLogStartMoves moves the log start offset of
// a log of two segments, [0, 1] and [2, 3], the first of them old, as
// DeleteRecords and retention do: a reader caught up at the log end
// learns the new start only if the move is a change. A call that leaves
// the start where it is is not one.
func TestWaiterIsSignalledWhenTheLogStartMoves(t *testing.T) {
	deleteRecords := func(offset int64) func(*testing.T, *Log) {
		return func(t *testing.T, l *Log) {
			if err := l.SetLogStartOffset(offset); err != nil {
				t.Fatal(err)
			}
		}
	}
	retention := func(t *testing.T, l *Log) {
		if _, err := l.EnforceRetention(); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name      string
		configure func(*Config)
		move      func(*testing.T, *Log)
		start     int64 // the log start after the move; 0: it stays
		segments  int   // the segments left
	}{
		{"DeleteRecords within the first segment", nil, deleteRecords(1), 1, 2},
		{"DeleteRecords past the first segment", nil, deleteRecords(3), 3, 1},
		{"retention by time", func(c *Config) { c.Retention = time.Hour }, retention, 2, 1},
		{"retention by size", func(c *Config) { c.Retention, c.RetentionBytes = -1, 1 }, retention, 2, 1},
		{"DeleteRecords at the start", nil, deleteRecords(0), 0, 2},
		{"retention with nothing expired", nil, retention, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := DefaultConfig()
			if tc.configure != nil {
				tc.configure(&cfg)
			}
			l := e.open(cfg, false)
			defer l.Close()
			now := e.clock.Now().UnixMilli()
			mustAppend(t, l, valueBatch(t, 2, now-2*time.Hour.Milliseconds(), "old"))
			if err := l.Roll(); err != nil {
				t.Fatal(err)
			}
			mustAppend(t, l, valueBatch(t, 2, now, "new"))
			w := NewWaiter()
			w.Watch(l, "watched")
			defer w.UnwatchAll()
			before := l.Changes()

			tc.move(t, l)
			moved := tc.start != 0
			if got := l.Offsets().LogStart; got != tc.start {
				t.Fatalf("log start %d, want %d", got, tc.start)
			}
			if got := len(l.segs); got != tc.segments {
				t.Fatalf("%d segments left, want %d", got, tc.segments)
			}
			if got := signalled(w); got != moved {
				t.Fatalf("signalled: %v, want %v", got, moved)
			}
			if got := l.Changes() != before; got != moved {
				t.Fatalf("the change count moved: %v, want %v", got, moved)
			}
			var want []any
			if moved {
				want = []any{"watched"}
			}
			if got := w.Changed(nil); !slices.Equal(got, want) {
				t.Fatalf("Changed named %v, want %v", got, want)
			}
		})
	}
}

func TestWaiterFoldsSignalsAndCountsEveryChange(t *testing.T) {
	l := openLogs(t, newEnv(t), 1)[0]
	w := NewWaiter()
	w.Watch(l, nil)
	w.Watch(l, nil) // twice: still one signal
	defer w.UnwatchAll()
	before := l.Changes()
	for range 3 {
		mustAppend(t, l, valueBatch(t, 1, 1, "v"))
	}
	if !signalled(w) || signalled(w) {
		t.Fatal("three appends did not leave exactly one signal")
	}
	if got := l.Changes() - before; got != 3 {
		t.Fatalf("three appends moved the change count by %d", got)
	}
}

// TestChangeBeforeWatchMovesTheCount is the case a reader's check after
// watching is for: a change between its read and its watch signals
// nothing, but the count the read noted has moved.
func TestChangeBeforeWatchMovesTheCount(t *testing.T) {
	l := openLogs(t, newEnv(t), 1)[0]
	noted := l.Changes()
	mustAppend(t, l, valueBatch(t, 1, 1, "between"))
	w := NewWaiter()
	w.Watch(l, nil)
	defer w.UnwatchAll()
	if l.Changes() == noted {
		t.Fatal("a change between the read and the watch left the count as the read noted it")
	}
	if signalled(w) {
		t.Fatal("a change before the watch signalled it")
	}
}

// TestWaiterMissesNoChangeRacingTheWatch races one append per round with a
// reader that notes the count, reads, watches and checks the count again,
// as a long poll does: when the count has not moved, the append must
// signal the waiter.
func TestWaiterMissesNoChangeRacingTheWatch(t *testing.T) {
	logs := openLogs(t, newEnv(t), 8)
	w := NewWaiter()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const rounds = 500
	start, appended := make(chan *Log), make(chan struct{})
	go func() {
		b := valueBatch(t, 1, 1, "race")
		for l := range start {
			for range rand.IntN(4) {
				runtime.Gosched()
			}
			if _, err := l.Append(b); err != nil {
				t.Error(err)
			}
			appended <- struct{}{}
		}
	}()
	defer close(start)
	waited := 0
	for round := range rounds {
		l := logs[round%len(logs)]
		noted := make([]uint64, len(logs))
		for i, o := range logs {
			noted[i] = o.Changes()
			o.Offsets() // the read
		}
		start <- l
		for _, o := range logs {
			w.Watch(o, nil)
		}
		moved := false
		for i, o := range logs {
			moved = moved || o.Changes() != noted[i]
		}
		if !moved {
			waited++
			select {
			case <-w.C:
			case <-ctx.Done():
				t.Fatalf("round %d: the append to %s neither moved a count nor signalled the waiter", round, l.Dir())
			}
		}
		<-appended
		w.UnwatchAll()
	}
	for _, l := range logs {
		if n := watchersOf(t, l); n != 0 {
			t.Fatalf("%s keeps %d watches after UnwatchAll", l.Dir(), n)
		}
	}
	t.Logf("%d of %d rounds waited for the signal", waited, rounds)
}

func TestUnwatchAllEndsEveryWatch(t *testing.T) {
	logs := openLogs(t, newEnv(t), 100) // more than the first chunks of watches hold
	w, other := NewWaiter(), NewWaiter()
	for range 2 { // the second time with the chunks of the first
		for _, l := range logs {
			w.Watch(l, nil)
		}
		other.Watch(logs[50], nil)
		for i, l := range logs {
			mustAppend(t, l, valueBatch(t, 1, 1, "v"))
			if !signalled(w) {
				t.Fatalf("log %d did not signal its waiter", i)
			}
		}
		mustAppend(t, logs[0], valueBatch(t, 1, 1, "pending"))
		w.UnwatchAll()
		if signalled(w) {
			t.Fatal("UnwatchAll left a signal pending")
		}
		for i, l := range logs {
			want := 0
			if i == 50 {
				want = 1
			}
			if got := watchersOf(t, l); got != want {
				t.Fatalf("log %d has %d watches after UnwatchAll, want %d", i, got, want)
			}
			mustAppend(t, l, valueBatch(t, 1, 1, "after"))
		}
		if signalled(w) {
			t.Fatal("a log signalled a waiter that no longer watches it")
		}
		if !signalled(other) {
			t.Fatal("UnwatchAll of one waiter ended another's watch")
		}
		other.UnwatchAll()
	}
}

// TestWaitersWatchAndUnwatchConcurrently runs waiters that watch and
// unwatch overlapping logs while the logs change, for the race detector
// and the lists' links.
func TestWaitersWatchAndUnwatchConcurrently(t *testing.T) {
	logs := openLogs(t, newEnv(t), 6)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i, l := range logs {
		wg.Go(func() {
			b := valueBatch(t, 1, 1, fmt.Sprint(i))
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := l.Append(b); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var readers sync.WaitGroup
	for r := range 4 {
		readers.Go(func() {
			w := NewWaiter()
			for i := range 300 {
				for j := range 1 + (r+i)%len(logs) {
					w.Watch(logs[(r+j)%len(logs)], nil)
				}
				<-w.C // the logs change all the time
				w.UnwatchAll()
			}
		})
	}
	readers.Wait()
	close(stop)
	wg.Wait()
	for _, l := range logs {
		if n := watchersOf(t, l); n != 0 {
			t.Fatalf("%s keeps %d watches", l.Dir(), n)
		}
	}
}

// changedTags is what w.Changed returns, as sorted ints.
func changedTags(w *Waiter) []int {
	var out []int
	for _, tag := range w.Changed(nil) {
		out = append(out, tag.(int))
	}
	slices.Sort(out)
	return out
}

func TestWaiterChangedNamesEachChangedLogOnce(t *testing.T) {
	logs := openLogs(t, newEnv(t), 10)
	w := NewWaiter()
	defer w.UnwatchAll()
	for i, l := range logs {
		w.Watch(l, i)
	}
	if got := changedTags(w); got != nil {
		t.Fatalf("Changed before any change: %v", got)
	}
	mustAppend(t, logs[3], valueBatch(t, 1, 1, "a"))
	mustAppend(t, logs[7], valueBatch(t, 1, 1, "b"))
	mustAppend(t, logs[3], valueBatch(t, 1, 1, "c"))
	if got := changedTags(w); !slices.Equal(got, []int{3, 7}) {
		t.Fatalf("Changed after changes of logs 3 (twice) and 7: %v", got)
	}
	if signalled(w) {
		t.Fatal("Changed left the signal of the changes it returned")
	}
	if got := changedTags(w); got != nil {
		t.Fatalf("Changed again, with no change since: %v", got)
	}
	mustAppend(t, logs[3], valueBatch(t, 1, 1, "d"))
	if !signalled(w) {
		t.Fatal("a change after Changed did not signal")
	}
	if got := changedTags(w); !slices.Equal(got, []int{3}) {
		t.Fatalf("Changed after another change of log 3: %v", got)
	}
}

func TestUnwatchEndsOneWatch(t *testing.T) {
	logs := openLogs(t, newEnv(t), 3)
	w := NewWaiter()
	defer w.UnwatchAll()
	var watches []*Watch
	for i, l := range logs {
		watches = append(watches, w.Watch(l, i))
	}
	w.Unwatch(watches[1])
	if n := watchersOf(t, logs[1]); n != 0 {
		t.Fatalf("log 1 keeps %d watches after Unwatch", n)
	}
	mustAppend(t, logs[1], valueBatch(t, 1, 1, "a"))
	if signalled(w) || changedTags(w) != nil {
		t.Fatal("an unwatched log signalled or was named")
	}
	for _, l := range logs {
		mustAppend(t, l, valueBatch(t, 1, 1, "b"))
	}
	if got := changedTags(w); !slices.Equal(got, []int{0, 2}) {
		t.Fatalf("Changed after changes of all three, 1 unwatched: %v", got)
	}

	// Unwatched while queued: not named, and its watch not handed out
	// again before Changed has taken it from the queue.
	mustAppend(t, logs[2], valueBatch(t, 1, 1, "c"))
	w.Unwatch(watches[2])
	watches[1] = w.Watch(logs[1], 10)
	if got := changedTags(w); got != nil {
		t.Fatalf("Changed after a queued watch was unwatched and another begun: %v", got)
	}
	watches[2] = w.Watch(logs[2], 20)
	mustAppend(t, logs[1], valueBatch(t, 1, 1, "d"))
	mustAppend(t, logs[2], valueBatch(t, 1, 1, "e"))
	if got := changedTags(w); !slices.Equal(got, []int{10, 20}) {
		t.Fatalf("Changed after changes of watches begun again: %v", got)
	}
	for _, wt := range watches {
		w.Unwatch(wt)
	}
	for i, l := range logs {
		if n := watchersOf(t, l); n != 0 {
			t.Fatalf("log %d keeps %d watches after Unwatch", i, n)
		}
	}
}

// TestWaiterChangedMissesNoChange appends to logs from several goroutines
// while a reader waits on C, asks Changed, and now and then ends a watch
// and begins it again, as a fetch session does. Each change after the
// reader last looked at a log's count must be named by the next Changed
// that begins after it, and signal C: the reader checks the first against
// the counts, and for the second waits only on C, until it has read every
// change (or the deadline passes).
func TestWaiterChangedMissesNoChange(t *testing.T) {
	const n, perWriter, writers = 8, 400, 4
	logs := openLogs(t, newEnv(t), n)
	w := NewWaiter()
	defer w.UnwatchAll()
	watches := make([]*Watch, n)
	seen := make([]uint64, n) // each log's count when the reader last read it
	for i, l := range logs {
		watches[i] = w.Watch(l, i)
		seen[i] = counts(logs[i : i+1])[0] // watched, then read
	}
	var wg sync.WaitGroup
	var stop atomic.Bool // the reader failed
	defer func() { stop.Store(true); wg.Wait() }()
	for r := range writers {
		wg.Go(func() {
			b := valueBatch(t, 1, 1, fmt.Sprint(r))
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			for range perWriter {
				if stop.Load() {
					return
				}
				for range rng.IntN(3) {
					runtime.Gosched()
				}
				if _, err := logs[rng.IntN(n)].Append(b); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	rng := rand.New(rand.NewPCG(1, 2))
	for rounds := 0; ; rounds++ {
		select {
		case <-w.C:
		case <-done:
			done = nil // the writers are done: what the reader has not read yet is signalled
			if slices.Equal(seen, counts(logs)) {
				return
			}
			continue
		case <-deadline.C:
			t.Fatalf("round %d: counts %v, last read at %v: a change signalled nothing", rounds, counts(logs), seen)
		}
		now := counts(logs)
		named := map[int]bool{}
		for _, tag := range w.Changed(nil) {
			named[tag.(int)] = true
		}
		after := counts(logs) // the reads after Changed
		for i := range logs {
			switch {
			case named[i]:
				seen[i] = after[i]
			case now[i] != seen[i]:
				t.Fatalf("round %d: log %d changed (count %d, read at %d) but Changed did not name it", rounds, i, now[i], seen[i])
			}
		}
		if i := rng.IntN(4 * n); i < n { // end a watch and begin it again, then read
			w.Unwatch(watches[i])
			watches[i] = w.Watch(logs[i], i)
			seen[i] = counts(logs[i : i+1])[0]
		}
		if done == nil && slices.Equal(seen, counts(logs)) {
			return
		}
	}
}

// counts is each log's change count, read as a reader of the log sees it:
// under the log's lock, so that a change is counted once it is whole
// (queued on its watches, as a change is before it unlocks the log), not
// from the moment the count moves.
func counts(logs []*Log) []uint64 {
	out := make([]uint64, len(logs))
	for i, l := range logs {
		l.mu.RLock()
		out[i] = l.Changes()
		l.mu.RUnlock()
	}
	return out
}
