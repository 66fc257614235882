package vfs

import (
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MemFS is an in-memory FS that can be crashed: CrashClone returns what a
// disk would hold had the machine lost power at that instant. It is safe
// for concurrent use.
//
// Names are resolved from one root; "/a/b", "a/b" and "./a/../a/b" are the
// same file. Files are inodes as in POSIX: handles on one file see each
// other's writes, and a removed or renamed-over file stays usable through
// the handles already open on it. Parent directories must exist (MkdirAll).
// Errors are *os.PathError or *os.LinkError wrapping os.ErrNotExist,
// os.ErrClosed or a syscall.Errno (EISDIR, ENOTDIR, ENOTEMPTY, EBADF,
// EINVAL), so errors.Is works as with package os. Unlike package os, a
// directory cannot be opened as a file.
//
// # Crash model
//
// Each file keeps its current content and the content as of its last Sync;
// each directory keeps its current entries, the entries as of its last
// SyncDir, and the list of entry changes made since. A create or remove is
// one change in the directory holding the name; a rename within one
// directory is one change (it is atomic, as on a journaling filesystem); a
// rename across directories is two, one in each, so it needs both synced.
// Directories made by MkdirAll are durable at once, with no SyncDir of the
// parent; WriteFile's file is durable at once too. The crash clone holds:
//
//   - with CrashOptions.Rand nil, exactly the synced state: the synced
//     entries of every directory, and the synced content of every file they
//     name.
//   - with Rand set, each directory's synced entries plus each change made
//     since, kept or lost independently (a coin flip each, applied in
//     order); and for each file, if it was never shorter than its synced
//     content since the last Sync (it was only appended to), the synced
//     content extended by a random prefix, possibly empty, possibly all, of
//     the bytes appended since; else (a Truncate cut into synced bytes) a
//     coin flip between the synced content and a prefix of the current
//     content no shorter than the shortest the file was since the last Sync.
//
// A file that is open but no longer named is not in the clone. Content is
// never invented: the clone's bytes are ones that were written.
//
// # Cost
//
// Write is an append; Sync and CrashClone copy no file content. Bytes below
// the length of any slice that a node holds are never written in place: a
// Write appends past len(data), and a Truncate that shrinks the file caps
// the slice's capacity so that the next Write reallocates. So the synced
// content, the current content and every clone's content share one backing
// array until a Truncate cuts into them.
type MemFS struct {
	mu   sync.Mutex
	root *memNode // guarded by mu, with every node reachable from it
}

// memNode is a file or a directory (an inode). All its fields but isDir are
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

// CrashOptions says how CrashClone crashes.
type CrashOptions struct {
	// Rand, when non-nil, makes the crash adversarial like a real disk: for
	// each file, a random prefix of the bytes written since its last Sync is
	// kept (possibly none, possibly all), and each unsynced directory change
	// is independently kept or lost (see MemFS). When nil, exactly the
	// synced state is kept.
	Rand *rand.Rand
}

// NewCrashableMem returns an empty MemFS holding only its root directory.
func NewCrashableMem() *MemFS {
	return &MemFS{root: newDirNode()}
}

func newDirNode() *memNode {
	return &memNode{
		isDir:          true,
		modTime:        time.Now(),
		children:       map[string]*memNode{},
		syncedChildren: map[string]*memNode{},
	}
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
		n.data = append(n.data, make([]byte, size-len(n.data))...)
	}
	n.minLen = min(n.minLen, size)
	n.modTime = time.Now()
}

// splitPath cleans name and splits it into its elements; the root is nil.
func splitPath(name string) []string {
	p := path.Clean("/" + filepath.ToSlash(name))
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

// walk returns the directory named by parts.
func (m *MemFS) walk(op, name string, parts []string) (*memNode, error) {
	d := m.root
	for _, p := range parts {
		c := d.children[p]
		if c == nil {
			return nil, &os.PathError{Op: op, Path: name, Err: os.ErrNotExist}
		}
		if !c.isDir {
			return nil, &os.PathError{Op: op, Path: name, Err: syscall.ENOTDIR}
		}
		d = c
	}
	return d, nil
}

// parent returns the directory holding name, and name's last element.
func (m *MemFS) parent(op, name string) (*memNode, string, error) {
	parts := splitPath(name)
	if len(parts) == 0 {
		return nil, "", &os.PathError{Op: op, Path: name, Err: syscall.EINVAL}
	}
	d, err := m.walk(op, name, parts[:len(parts)-1])
	return d, parts[len(parts)-1], err
}

// lookupFile returns the file called name.
func (m *MemFS) lookupFile(op, name string) (*memNode, error) {
	d, base, err := m.parent(op, name)
	if err != nil {
		return nil, err
	}
	n := d.children[base]
	if n == nil {
		return nil, &os.PathError{Op: op, Path: name, Err: os.ErrNotExist}
	}
	if n.isDir {
		return nil, &os.PathError{Op: op, Path: name, Err: syscall.EISDIR}
	}
	return n, nil
}

// Create implements FS.
func (m *MemFS) Create(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, err := m.parent("open", name)
	if err != nil {
		return nil, err
	}
	n := d.children[base]
	switch {
	case n == nil:
		n = &memNode{modTime: time.Now()}
		d.change(dirEntry{base, n})
	case n.isDir:
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.EISDIR}
	default:
		n.truncate(0)
	}
	return &memFile{fs: m, node: n, name: name, writable: true}, nil
}

// Open implements FS.
func (m *MemFS) Open(name string) (File, error) { return m.open(name, false) }

// OpenAppend implements FS.
func (m *MemFS) OpenAppend(name string) (File, error) { return m.open(name, true) }

func (m *MemFS) open(name string, writable bool) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupFile("open", name)
	if err != nil {
		return nil, err
	}
	return &memFile{fs: m, node: n, name: name, writable: writable}, nil
}

// Remove implements FS.
func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, err := m.parent("remove", name)
	if err != nil {
		return err
	}
	n := d.children[base]
	if n == nil {
		return &os.PathError{Op: "remove", Path: name, Err: os.ErrNotExist}
	}
	if n.isDir && len(n.children) > 0 {
		return &os.PathError{Op: "remove", Path: name, Err: syscall.ENOTEMPTY}
	}
	d.change(dirEntry{base, nil})
	return nil
}

// RemoveAll implements FS. Like os.RemoveAll it returns nil if name does
// not exist. It is one change in the parent directory.
func (m *MemFS) RemoveAll(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, err := m.parent("unlinkat", name)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	if d.children[base] != nil {
		d.change(dirEntry{base, nil})
	}
	return nil
}

// Rename implements FS.
func (m *MemFS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	fail := func(err error) error {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	oldDir, oldBase, err := m.parent("rename", oldname)
	if err != nil {
		return fail(underlying(err))
	}
	n := oldDir.children[oldBase]
	if n == nil {
		return fail(os.ErrNotExist)
	}
	newDir, newBase, err := m.parent("rename", newname)
	if err != nil {
		return fail(underlying(err))
	}
	if oldDir == newDir && oldBase == newBase {
		return nil
	}
	if target := newDir.children[newBase]; target != nil {
		switch {
		case n.isDir && !target.isDir:
			return fail(syscall.ENOTDIR)
		case !n.isDir && target.isDir:
			return fail(syscall.EISDIR)
		case target.isDir && len(target.children) > 0:
			return fail(syscall.ENOTEMPTY)
		}
	}
	if n.isDir {
		oldParts, newParts := splitPath(oldname), splitPath(newname)
		if len(newParts) > len(oldParts) && slices.Equal(oldParts, newParts[:len(oldParts)]) {
			return fail(syscall.EINVAL) // into itself
		}
	}
	if oldDir == newDir {
		oldDir.change(dirEntry{oldBase, nil}, dirEntry{newBase, n})
	} else {
		oldDir.change(dirEntry{oldBase, nil})
		newDir.change(dirEntry{newBase, n})
	}
	return nil
}

func underlying(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// MkdirAll implements FS. The directories it makes are durable at once.
func (m *MemFS) MkdirAll(dir string, perm os.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.root
	for _, p := range splitPath(dir) {
		c := d.children[p]
		if c == nil {
			c = newDirNode()
			d.setDurable(p, c)
		} else if !c.isDir {
			return &os.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		d = c
	}
	return nil
}

// List implements FS.
func (m *MemFS) List(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.walk("open", dir, splitPath(dir))
	if err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(d.children)), nil
}

// Stat implements FS.
func (m *MemFS) Stat(name string) (os.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	parts := splitPath(name)
	if len(parts) == 0 {
		return memFileInfo{name: "/", isDir: true, modTime: m.root.modTime}, nil
	}
	d, base, err := m.parent("stat", name)
	if err != nil {
		return nil, err
	}
	n := d.children[base]
	if n == nil {
		return nil, &os.PathError{Op: "stat", Path: name, Err: os.ErrNotExist}
	}
	return memFileInfo{name: base, isDir: n.isDir, size: int64(len(n.data)), modTime: n.modTime}, nil
}

// SyncDir implements FS.
func (m *MemFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.walk("sync", dir, splitPath(dir))
	if err != nil {
		return err
	}
	d.syncDir()
	return nil
}

// SyncFS implements FSSyncer: it syncs every file and directory of m (not
// only those under dir, as syncfs(2) syncs a whole filesystem).
func (m *MemFS) SyncFS(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.walk("syncfs", dir, splitPath(dir)); err != nil {
		return err
	}
	var syncAll func(d *memNode)
	syncAll = func(d *memNode) {
		d.syncDir()
		for _, c := range d.children {
			if c.isDir {
				syncAll(c)
			} else {
				c.syncFile()
			}
		}
	}
	syncAll(m.root)
	return nil
}

// ReadFile returns a copy of the current content of the named file.
func (m *MemFS) ReadFile(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupFile("open", name)
	if err != nil {
		return nil, err
	}
	return slices.Clone(n.data), nil
}

// WriteFile sets the content of the named file to a copy of data, creating
// the file if needed, and makes both the content and the name durable at
// once. It is for setting up tests: to flip bytes, or to cut a file short.
// Handles open on an existing file see the new content.
func (m *MemFS) WriteFile(name string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, err := m.parent("open", name)
	if err != nil {
		return err
	}
	n := d.children[base]
	switch {
	case n == nil:
		n = &memNode{}
		d.setDurable(base, n)
	case n.isDir:
		return &os.PathError{Op: "open", Path: name, Err: syscall.EISDIR}
	case d.syncedChildren[base] != n:
		d.setDurable(base, n)
	}
	n.data = slices.Clip(slices.Clone(data))
	n.modTime = time.Now()
	n.syncFile()
	return nil
}

// String lists every directory and file of m, one a line, in name order,
// with the current and synced sizes of files and the directory entries
// that are not synced:
//
//	/data/
//	/data/a.log 120 (synced 100)
//	/data/b.log 0 (synced 0) [name not synced]
//	/data/c.log [removal not synced]
func (m *MemFS) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	var dump func(dir string, d *memNode)
	dump = func(dir string, d *memNode) {
		b.WriteString(dir + "\n")
		names := slices.Collect(maps.Keys(d.children))
		for name := range d.syncedChildren {
			if d.children[name] == nil {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		for _, name := range names {
			n, synced := d.children[name], d.syncedChildren[name]
			switch {
			case n == nil:
				b.WriteString(dir + name + " [removal not synced]\n")
				continue
			case n.isDir:
				dump(dir+name+"/", n)
				continue
			}
			b.WriteString(dir + name)
			b.WriteString(" " + strconv.Itoa(len(n.data)) + " (synced " + strconv.Itoa(len(n.synced)) + ")")
			if synced != n {
				b.WriteString(" [name not synced]")
			}
			b.WriteString("\n")
		}
	}
	dump("/", m.root)
	return b.String()
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
	f.node.data = append(f.node.data, p...)
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
