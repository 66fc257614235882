package broker

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// goroutineID is the id runtime.Stack prints for the calling goroutine.
func goroutineID(t *testing.T) int {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := bytes.Fields(buf) // "goroutine 123 [running]:"
	id, err := strconv.Atoi(string(f[1]))
	if err != nil {
		t.Fatalf("goroutine id from %q: %v", buf, err)
	}
	return id
}

// eventually polls cond until it holds, failing after a generous bound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// blockedTasks runs n tasks on w that all wait until the returned release
// is called, and returns once all n have started: goRun must not make a
// task wait for a busy worker, or this never returns. release returns once
// every task has ended.
func blockedTasks(w *workers, n int) (release func()) {
	gate := make(chan struct{})
	var started, ended sync.WaitGroup
	started.Add(n)
	ended.Add(n)
	for range n {
		w.goRun(func() {
			defer ended.Done()
			started.Done()
			<-gate
		})
	}
	started.Wait()
	return func() {
		close(gate)
		ended.Wait()
	}
}

func TestWorkersRunTasksAtOnceEvenWhenAllAreBusy(t *testing.T) {
	w := newWorkers(2)
	defer w.close()
	blockedTasks(w, 20)()
	eventually(t, "two workers idle", func() bool { return w.idle.Load() == 2 })
}

func TestWorkersReuseAnIdleWorker(t *testing.T) {
	w := newWorkers(1)
	defer w.close()
	ids := make(chan int, 1)
	w.goRun(func() { ids <- goroutineID(t) })
	first := <-ids
	eventually(t, "the worker idle", func() bool { return w.idle.Load() == 1 })
	w.goRun(func() { ids <- goroutineID(t) })
	if second := <-ids; second != first {
		t.Fatalf("second task ran on goroutine %d, want the idle worker %d", second, first)
	}
}

func TestWorkersKeepAtMostMaxIdle(t *testing.T) {
	w := newWorkers(3)
	defer w.close()
	const n = 50
	release := blockedTasks(w, n)
	before := runtime.NumGoroutine()
	release()
	// The 47 workers beyond maxIdle exit.
	eventually(t, "surplus workers exit", func() bool { return runtime.NumGoroutine() <= before-(n-3) })
	eventually(t, "three workers idle", func() bool { return w.idle.Load() == 3 })
}

func TestWorkersCloseEndsIdleWorkers(t *testing.T) {
	w := newWorkers(4)
	blockedTasks(w, 4)()
	eventually(t, "four workers idle", func() bool { return w.idle.Load() == 4 })
	before := runtime.NumGoroutine()
	w.close()
	eventually(t, "idle workers exit", func() bool { return runtime.NumGoroutine() <= before-4 && w.idle.Load() == 0 })
}
