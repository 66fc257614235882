package storage

import (
	"errors"

	"github.com/samsa-io/samsa/internal/vfs"
)

// indexFile is an index file opened only while it is used: when a segment's
// indexes are loaded, rebuilt, or written out at seal and close. In between
// the indexes live in memory, so that a segment holds one open file (its
// .log), and a broker with ten thousand partitions does not run out of file
// descriptors. It is used under Log.mu held for writing, or by the one
// goroutine opening the log.
type indexFile struct {
	fs   vfs.FS
	name string
	f    vfs.File // nil while closed
}

func (x *indexFile) open() (vfs.File, error) {
	if x.f != nil {
		return x.f, nil
	}
	f, err := x.fs.OpenAppend(x.name)
	if errors.Is(err, notExist) {
		f, err = x.fs.Create(x.name)
	}
	if err != nil {
		return nil, err
	}
	x.f = f
	return f, nil
}

func (x *indexFile) ReadAt(p []byte, off int64) (int, error) {
	f, err := x.open()
	if err != nil {
		return 0, err
	}
	return f.ReadAt(p, off)
}

func (x *indexFile) Write(p []byte) (int, error) {
	f, err := x.open()
	if err != nil {
		return 0, err
	}
	return f.Write(p)
}

func (x *indexFile) Sync() error {
	f, err := x.open()
	if err != nil {
		return err
	}
	return f.Sync()
}

func (x *indexFile) Truncate(size int64) error {
	f, err := x.open()
	if err != nil {
		return err
	}
	return f.Truncate(size)
}

func (x *indexFile) Size() (int64, error) {
	f, err := x.open()
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
