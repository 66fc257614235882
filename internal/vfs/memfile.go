package vfs

import (
	"io"
	"maps"
	"os"
	"slices"
	"syscall"
	"time"
)

// memNode is a file or a directory (an inode) of a MemFS. All its fields but isDir are
// guarded by the mu of the MemFS that holds it.
type memNode struct {
	isDir   bool // immutable
	modTime time.Time

	// Files.
	data   []byte // current content
	synced []byte // content as of the last Sync
	minLen int    // smallest len(data) since the last Sync

	// Directories.
	children       map[string]*memNode // current entries
	syncedChildren map[string]*memNode // entries as of the last SyncDir
	pending        []dirChange         // changes since the last SyncDir, oldest first
}

// dirChange is a set of directory entry changes that a crash keeps or loses
// together.
type dirChange []dirEntry

// dirEntry sets name to node in a directory, or removes it if node is nil.
type dirEntry struct {
	name string
	node *memNode
}

func newDirNode() *memNode {
	return &memNode{
		isDir:          true,
		modTime:        time.Now(),
		children:       map[string]*memNode{},
		syncedChildren: map[string]*memNode{},
	}
}

func (e dirEntry) apply(entries map[string]*memNode) {
	if e.node == nil {
		delete(entries, e.name)
	} else {
		entries[e.name] = e.node
	}
}

// change applies entries to d now, and records them as one change that a
// crash keeps or loses whole.
func (d *memNode) change(entries ...dirEntry) {
	for _, e := range entries {
		e.apply(d.children)
	}
	d.pending = append(d.pending, dirChange(entries))
	d.modTime = time.Now()
}

// setDurable sets name to n both now and in the synced entries, and drops
// the pending changes to name, which n supersedes.
func (d *memNode) setDurable(name string, n *memNode) {
	d.children[name] = n
	d.syncedChildren[name] = n
	pending := d.pending[:0]
	for _, ch := range d.pending {
		ch = slices.DeleteFunc(ch, func(e dirEntry) bool { return e.name == name })
		if len(ch) > 0 {
			pending = append(pending, ch)
		}
	}
	clear(d.pending[len(pending):])
	d.pending = pending
	d.modTime = time.Now()
}

func (d *memNode) syncDir() {
	d.syncedChildren = maps.Clone(d.children)
	d.pending = nil
}

func (n *memNode) syncFile() {
	n.synced = n.data
	n.minLen = len(n.data)
}

func (n *memNode) truncate(size int) {
	if size < len(n.data) {
		n.data = n.data[:size:size] // the next append must not overwrite
	} else {
		n.data = appendBytes(n.data, make([]byte, size-len(n.data)))
	}
	n.minLen = min(n.minLen, size)
	n.modTime = time.Now()
}

// appendBytes appends p to data, at least doubling the capacity when it
// must grow, so that appends cost O(1) a byte however large the file (the
// runtime's append grows large slices by only 1.25x).
func appendBytes(data, p []byte) []byte {
	if n := len(data) + len(p); n > cap(data) {
		grown := make([]byte, len(data), max(2*cap(data), n, 512))
		copy(grown, data)
		data = grown
	}
	return append(data, p...)
}

// memFile is a handle on a MemFS file.
type memFile struct {
	fs       *MemFS   // immutable
	node     *memNode // immutable
	name     string   // immutable
	writable bool     // immutable
	closed   bool     // guarded by fs.mu
}

// check returns the error for op on f, if f is closed or, for a write, not
// writable. It is called with f.fs.mu held.
func (f *memFile) check(op string, write bool) error {
	switch {
	case f.closed:
		return &os.PathError{Op: op, Path: f.name, Err: os.ErrClosed}
	case write && !f.writable:
		return &os.PathError{Op: op, Path: f.name, Err: syscall.EBADF}
	}
	return nil
}

// ReadAt implements io.ReaderAt. It copies outside the lock: bytes below
// len(data) are never written in place.
func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	err := f.check("read", false)
	data := f.node.data
	f.fs.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &os.PathError{Op: "readat", Path: f.name, Err: syscall.EINVAL}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= int64(len(data)) {
		return 0, io.EOF
	}
	n := copy(p, data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Write appends p to the file.
func (f *memFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("write", true); err != nil {
		return 0, err
	}
	f.node.data = appendBytes(f.node.data, p)
	f.node.modTime = time.Now()
	return len(p), nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("close", false); err != nil {
		return err
	}
	f.closed = true
	return nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("sync", false); err != nil {
		return err
	}
	f.node.syncFile()
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("truncate", true); err != nil {
		return err
	}
	if size < 0 {
		return &os.PathError{Op: "truncate", Path: f.name, Err: syscall.EINVAL}
	}
	f.node.truncate(int(size))
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("stat", false); err != nil {
		return 0, err
	}
	return int64(len(f.node.data)), nil
}

// memFileInfo is a snapshot of a node, taken by Stat.
type memFileInfo struct {
	name    string
	isDir   bool
	size    int64
	modTime time.Time
}

func (fi memFileInfo) Name() string       { return fi.name }
func (fi memFileInfo) Size() int64        { return fi.size }
func (fi memFileInfo) ModTime() time.Time { return fi.modTime }
func (fi memFileInfo) IsDir() bool        { return fi.isDir }
func (fi memFileInfo) Sys() any           { return nil }

func (fi memFileInfo) Mode() os.FileMode {
	if fi.isDir {
		return os.ModeDir | 0o755
	}
	return 0o644
}
