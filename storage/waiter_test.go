package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
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
	var prev *watch
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
			w.Watch(l)
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

func TestWaiterFoldsSignalsAndCountsEveryChange(t *testing.T) {
	l := openLogs(t, newEnv(t), 1)[0]
	w := NewWaiter()
	w.Watch(l)
	w.Watch(l) // twice: still one signal
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
	w.Watch(l)
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
			w.Watch(o)
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
			w.Watch(l)
		}
		other.Watch(logs[50])
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
					w.Watch(logs[(r+j)%len(logs)])
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
