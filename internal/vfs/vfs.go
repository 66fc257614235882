// Package vfs is the filesystem seam of Samsa's storage engine.
//
// The storage engine never calls package os directly: it reads and writes
// through FS, so that tests can run it on a crashable in-memory filesystem
// that keeps only what was synced (see NewCrashableMem), and production runs
// it on the real one (Default).
//
// Durability model (the contract both implementations follow, and the one
// POSIX gives on Linux with ext4/xfs):
//   - File data is durable once File.Sync returns.
//   - A file's existence under a name (create, rename, remove) is durable
//     once SyncDir of the directory holding that name returns.
//   - Truncate changes the file's size; like data, the new size is durable
//     once File.Sync returns.
//
// Files opened for writing append: every Write goes to the current end of the
// file, also after Truncate. There is no WriteAt; the engine never rewrites
// bytes in place.
//
// Files: os.go (Default; os_linux.go adds fdatasync and syncfs), memfs.go
// (MemFS and its crash model), memfile.go (its inodes and handles),
// crash.go (CrashClone).
package vfs

import (
	"io"
	"os"
)

// FS is the set of filesystem operations the storage engine uses.
// Names are slash-separated paths as accepted by package os.
type FS interface {
	// Create creates the named file, or truncates it if it exists, and opens
	// it for reading and appending.
	Create(name string) (File, error)
	// Open opens an existing file read-only.
	Open(name string) (File, error)
	// OpenAppend opens an existing file for reading and appending.
	OpenAppend(name string) (File, error)
	// Remove removes a file or an empty directory. Open handles on a removed
	// file keep working until closed.
	Remove(name string) error
	// RemoveAll removes a directory and everything under it.
	RemoveAll(name string) error
	// Rename atomically replaces newname with oldname.
	Rename(oldname, newname string) error
	// MkdirAll creates a directory and any missing parents.
	MkdirAll(dir string, perm os.FileMode) error
	// List returns the names of the entries of dir, sorted.
	List(dir string) ([]string, error)
	// Stat describes the named file.
	Stat(name string) (os.FileInfo, error)
	// SyncDir makes the directory's entries (creates, renames, removes)
	// durable.
	SyncDir(dir string) error
}

// File is an open file.
type File interface {
	io.ReaderAt
	io.Writer
	io.Closer
	// Sync makes the file's data and size durable.
	Sync() error
	// Truncate changes the file's size.
	Truncate(size int64) error
	// Size returns the file's current size.
	Size() (int64, error)
}

// OSFiler is implemented by files backed by an *os.File, so that callers can
// hand the file to the kernel directly (sendfile from a segment to a socket).
type OSFiler interface {
	OSFile() *os.File
}

// FSSyncer is implemented by filesystems that can make every file and
// directory under them durable in one call (Linux syncfs(2)). For many dirty
// files this can be cheaper than one fsync each.
type FSSyncer interface {
	SyncFS(dir string) error
}

// WritebackStarter is implemented by files that can start writing their
// dirty data to the device without waiting for it (Linux
// sync_file_range(2) with SYNC_FILE_RANGE_WRITE). It makes nothing durable:
// it only leaves a later Sync less to write.
type WritebackStarter interface {
	StartWriteback() error
}
