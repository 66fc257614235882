package group

import (
	"container/heap"
	"time"
)

// timerHeap is a min-heap of the groups that have a deadline, ordered by
// it, so that Deadline is O(1) and Tick touches only the groups due.
// Each group knows its index (heapIndex, -1 when absent).
type timerHeap []*group

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex = i
	h[j].heapIndex = j
}

func (h *timerHeap) Push(x any) {
	g := x.(*group)
	g.heapIndex = len(*h)
	*h = append(*h, g)
}

func (h *timerHeap) Pop() any {
	old := *h
	g := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	g.heapIndex = -1
	return g
}

// set places g at deadline t, or takes it out when ok is false.
func (h *timerHeap) set(g *group, t time.Time, ok bool) {
	switch {
	case !ok:
		h.remove(g)
	case g.heapIndex >= 0:
		g.deadline = t
		heap.Fix(h, g.heapIndex)
	default:
		g.deadline = t
		heap.Push(h, g)
	}
}

// remove takes g out of the heap if it is in it.
func (h *timerHeap) remove(g *group) {
	if g.heapIndex >= 0 {
		heap.Remove(h, g.heapIndex)
	}
}

// due pops every group whose deadline is not after now.
func (h *timerHeap) due(now time.Time) []*group {
	var gs []*group
	for h.Len() > 0 && !(*h)[0].deadline.After(now) {
		gs = append(gs, heap.Pop(h).(*group))
	}
	return gs
}

// schedule puts g in the timers at its state machine's deadline.
func (c *Coordinator) schedule(g *group) {
	t, ok := g.nextDeadline()
	c.timers.set(g, t, ok)
}

// Deadline is when Tick next has something to do; ok is false when nothing
// is pending.
func (c *Coordinator) Deadline() (t time.Time, ok bool) {
	if c.timers.Len() > 0 {
		t, ok = c.timers[0].deadline, true
	}
	if !c.nextExpiry.IsZero() && (!ok || c.nextExpiry.Before(t)) {
		t, ok = c.nextExpiry, true
	}
	return t, ok
}

// Tick advances time: session and rebalance timeouts, the initial rebalance
// delay, offset expiry.
func (c *Coordinator) Tick(now time.Time) Output {
	c.observe(now)
	var out Output
	for _, g := range c.timers.due(now) {
		switch {
		case g.classic != nil:
			out.Replies = append(out.Replies, g.classic.Tick(now)...)
			c.persistClassic(g, now, &out)
		case g.consumer != nil:
			g.consumer.Tick(now)
			c.persistConsumer(g, &out)
		}
		c.schedule(g)
	}
	if !now.Before(c.nextExpiry) {
		c.expire(now, &out)
		c.nextExpiry = now.Add(c.cfg.OffsetsRetentionCheckInterval)
	}
	return out
}
