package cli

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// endTracker knows, for `consume --exit-at-end`, which partitions still
// have records below the end offsets listed at start-up.
type endTracker struct {
	mu      sync.Mutex
	ends    map[string]map[int32]int64
	pending map[string]map[int32]bool // partitions not yet read to their end
	// A group member counts only the partitions assigned to it, and is not
	// done before its first assignment.
	group    bool
	assigned map[string]map[int32]bool
}

// newEndTracker tracks the partitions whose start position is below their
// end offset.
func newEndTracker(ends kadm.ListedOffsets, starts map[string]map[int32]int64, group bool) *endTracker {
	t := &endTracker{
		ends:    make(map[string]map[int32]int64),
		pending: make(map[string]map[int32]bool),
		group:   group,
	}
	ends.Each(func(o kadm.ListedOffset) {
		if t.ends[o.Topic] == nil {
			t.ends[o.Topic] = make(map[int32]int64)
		}
		t.ends[o.Topic][o.Partition] = o.Offset
	})
	for topic, ps := range starts {
		for p, start := range ps {
			if start < t.ends[topic][p] {
				if t.pending[topic] == nil {
					t.pending[topic] = make(map[int32]bool)
				}
				t.pending[topic][p] = true
			}
		}
	}
	return t
}

func (t *endTracker) assign(a map[string][]int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.assigned == nil {
		t.assigned = make(map[string]map[int32]bool)
	}
	for topic, ps := range a {
		if t.assigned[topic] == nil {
			t.assigned[topic] = make(map[int32]bool)
		}
		for _, p := range ps {
			t.assigned[topic][p] = true
		}
	}
}

func (t *endTracker) revoke(r map[string][]int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for topic, ps := range r {
		for _, p := range ps {
			delete(t.assigned[topic], p)
		}
	}
}

// beyondEnd reports whether r was written after start-up.
func (t *endTracker) beyondEnd(r *kgo.Record) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	end, ok := t.ends[r.Topic][r.Partition]
	return !ok || r.Offset >= end
}

// saw records that r was printed.
func (t *endTracker) saw(r *kgo.Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.Offset+1 >= t.ends[r.Topic][r.Partition] {
		delete(t.pending[r.Topic], r.Partition)
	}
}

// done reports whether every tracked partition is read to its end. A group
// member's partition also counts as done when the group's committed offset
// has reached the end (another member read it).
func (t *endTracker) done(committed map[string]map[int32]kgo.EpochOffset) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.group && t.assigned == nil {
		return false
	}
	for topic, ps := range t.pending {
		for p := range ps {
			if c, ok := committed[topic][p]; ok && c.Offset >= t.ends[topic][p] {
				delete(ps, p)
				continue
			}
			if t.group && !t.assigned[topic][p] {
				continue
			}
			return false
		}
	}
	return true
}

// progress shows a count on a terminal while records go elsewhere: it is
// silent when errOut is not a terminal, or when out is one (the records
// themselves show progress there).
type progress struct {
	w     io.Writer // nil: silent
	total int64
	last  time.Time
	shown bool
}

func newProgress(errOut, out io.Writer, total int64) *progress {
	p := &progress{total: total}
	if IsTerminal(errOut) && !IsTerminal(out) {
		p.w = errOut
	}
	return p
}

func (p *progress) update(n int64) {
	if p.w == nil || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.shown = true
	if p.total > 0 {
		fmt.Fprintf(p.w, "\r%d/%d records (%d%%)", n, p.total, n*100/p.total)
		return
	}
	fmt.Fprintf(p.w, "\r%d records", n)
}

func (p *progress) finish() {
	if p.w != nil && p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
