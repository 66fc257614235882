package storage

import (
	"errors"
	"io"

	"github.com/samsa-io/samsa/internal/vfs"
)

// indexFile is an index file opened only while it is used: when a segment's
// indexes are loaded, rebuilt, or written out at seal and close. In between
// the indexes live in memory, so that a segment holds one open file (its
// .log), and a broker with ten thousand partitions does not run out of file
// descriptors. It is used under Log.mu held for writing, or by the one
// goroutine opening the log.
//
// The file is created by the first write (or by create, when a segment is
// sealed), not with its segment: a new log's empty indexes cost no files.
// Until then the file reads as empty, and truncating or syncing it does
// nothing. Whether a missing index file may be taken for an empty one is
// the segment's business (openTrusted): for the active segment it may, for
// a sealed one it may not.
type indexFile struct {
	fs   vfs.FS
	name string
	f    vfs.File // nil while closed
	// created says this process created the file and has not synced its
	// directory since (segment.sync does).
	created bool
}

// open opens the file; a missing one is created when create is set, else
// the error wraps notExist.
func (x *indexFile) open(create bool) (vfs.File, error) {
	if x.f != nil {
		return x.f, nil
	}
	f, err := x.fs.OpenAppend(x.name)
	if errors.Is(err, notExist) && create {
		f, err = x.fs.Create(x.name)
		x.created = err == nil
	}
	if err != nil {
		return nil, err
	}
	x.f = f
	return f, nil
}

// create makes sure the file exists, and leaves it open.
func (x *indexFile) create() error {
	_, err := x.open(true)
	return err
}

func (x *indexFile) ReadAt(p []byte, off int64) (int, error) {
	f, err := x.open(false)
	if errors.Is(err, notExist) {
		return 0, io.EOF
	}
	if err != nil {
		return 0, err
	}
	return f.ReadAt(p, off)
}

func (x *indexFile) Write(p []byte) (int, error) {
	f, err := x.open(true)
	if err != nil {
		return 0, err
	}
	return f.Write(p)
}

// Sync syncs the file; a missing one has nothing to sync.
func (x *indexFile) Sync() error {
	f, err := x.open(false)
	if errors.Is(err, notExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Sync()
}

// Truncate cuts the file to size; a missing one is already empty.
func (x *indexFile) Truncate(size int64) error {
	f, err := x.open(false)
	if errors.Is(err, notExist) && size == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Truncate(size)
}

// Size returns the file's size; a missing one is empty.
func (x *indexFile) Size() (int64, error) {
	f, err := x.open(false)
	if errors.Is(err, notExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return f.Size()
}

// Close closes the handle; the next use opens the file again.
func (x *indexFile) Close() error {
	if x.f == nil {
		return nil
	}
	err := x.f.Close()
	x.f = nil
	return err
}
