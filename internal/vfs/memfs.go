package vfs

import (
	"maps"
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
// never invented: the clone's bytes were written (or are the zeros of a
// Truncate that grew the file). Kept changes of several directories can
// name one directory twice, or inside itself; the first name in walk order
// wins. Everything in the clone is synced, and nothing is open.
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

// NewCrashableMem returns an empty MemFS holding only its root directory.
func NewCrashableMem() *MemFS {
	return &MemFS{root: newDirNode()}
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
