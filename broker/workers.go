package broker

import (
	"sync/atomic"
)

// workers runs request handlers on goroutines that outlive one request.
//
// A goroutine starts with a small stack and grows it, by copying, each
// time a call goes deeper than it has room for. A handler's path through
// produce, the group commit and the fetch reads grows it several times:
// with a new goroutine per request, copying stacks took a tenth of the
// broker's CPU at 50 MB/s of small produce and fetch requests. A worker
// keeps its grown stack for the next request (until the garbage collector
// shrinks a stack it finds mostly unused).
//
// A task goes to an idle worker if there is one, and to a new worker if
// not, so the pool never makes a task wait. A worker that finishes a task
// stays for the next one unless maxIdle workers already wait; the rest
// exit, so a burst (thousands of long polls) leaves no more than maxIdle
// goroutines behind.
type workers struct {
	maxIdle int32         // immutable
	work    chan func()   // unbuffered: a send succeeds only into an idle worker
	stop    chan struct{} // closed by close: idle workers exit
	idle    atomic.Int32  // workers waiting on work
}

// maxIdleWorkers bounds the idle workers a broker keeps. Each holds a
// stack of a few KiB to a few tens of KiB.
const maxIdleWorkers = 256

func newWorkers(maxIdle int) *workers {
	return &workers{maxIdle: int32(maxIdle), work: make(chan func()), stop: make(chan struct{})}
}

// goRun runs task on an idle worker or on a new one; it never waits for a
// worker to be free.
func (w *workers) goRun(task func()) {
	select {
	case w.work <- task:
	default:
		go w.loop(task)
	}
}

func (w *workers) loop(task func()) {
	for {
		task()
		if w.idle.Add(1) > w.maxIdle {
			w.idle.Add(-1)
			return
		}
		select {
		case task = <-w.work:
			w.idle.Add(-1)
		case <-w.stop:
			w.idle.Add(-1)
			return
		}
	}
}

// close makes idle workers exit, and busy ones once their task ends. No
// task may come after.
func (w *workers) close() { close(w.stop) }
