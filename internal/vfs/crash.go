package vfs

import (
	"maps"
	"math/rand/v2"
	"slices"
)

// CrashOptions says how CrashClone crashes.
type CrashOptions struct {
	// Rand, when non-nil, makes the crash adversarial like a real disk: for
	// each file, a random prefix of the bytes written since its last Sync is
	// kept (possibly none, possibly all), and each unsynced directory change
	// is independently kept or lost (see MemFS). When nil, exactly the
	// synced state is kept.
	Rand *rand.Rand
}

// CrashClone returns a new, independent MemFS holding what would be on disk
// had the machine lost power now; m keeps working. See MemFS for the model.
func (m *MemFS) CrashClone(opts CrashOptions) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := crasher{
		rand:   opts.Rand,
		placed: map[*memNode]bool{},
		files:  map[*memNode]*memNode{},
	}
	return &MemFS{root: c.dir(m.root)}
}

// crasher builds a crash clone. Nodes are visited in name order, so that a
// seeded Rand gives the same clone every time.
type crasher struct {
	rand   *rand.Rand
	placed map[*memNode]bool     // directories already in the clone
	files  map[*memNode]*memNode // original file -> its clone (kept hard links)
}

func (c *crasher) coin() bool { return c.rand.IntN(2) == 1 }

func (c *crasher) dir(n *memNode) *memNode {
	c.placed[n] = true
	entries := maps.Clone(n.syncedChildren)
	if c.rand != nil {
		for _, ch := range n.pending {
			if c.coin() {
				for _, e := range ch {
					e.apply(entries)
				}
			}
		}
	}
	clone := newDirNode()
	clone.modTime = n.modTime
	for _, name := range slices.Sorted(maps.Keys(entries)) {
		child := entries[name]
		switch {
		case !child.isDir:
			clone.children[name] = c.file(child)
		case !c.placed[child]:
			// Kept changes of several directories can name one directory
			// twice, or inside itself; the first name wins.
			clone.children[name] = c.dir(child)
		}
	}
	clone.syncedChildren = maps.Clone(clone.children)
	return clone
}

func (c *crasher) file(n *memNode) *memNode {
	if clone, ok := c.files[n]; ok {
		return clone
	}
	data := n.synced
	changed := len(n.data) != len(n.synced) || n.minLen != len(n.synced)
	if c.rand != nil && changed {
		switch {
		case n.minLen >= len(n.synced): // only appended to
			data = n.data[:len(n.synced)+c.rand.IntN(len(n.data)-len(n.synced)+1)]
		case c.coin(): // cut into synced bytes, and the cut is kept
			data = n.data[:n.minLen+c.rand.IntN(len(n.data)-n.minLen+1)]
		}
	}
	data = data[:len(data):len(data)]
	clone := &memNode{modTime: n.modTime, data: data, synced: data, minLen: len(data)}
	c.files[n] = clone
	return clone
}
