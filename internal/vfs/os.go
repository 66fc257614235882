package vfs

import (
	"os"
)

// Default is the real filesystem, through package os.
//
// Its files implement OSFiler. On Linux it also implements FSSyncer (with
// syncfs(2)), and File.Sync is fdatasync(2); elsewhere File.Sync is
// (*os.File).Sync.
var Default FS = osFS{}

// osFS is the FS of package os. It has no state.
type osFS struct{}

func (osFS) Create(name string) (File, error) {
	return openOSFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
}

func (osFS) Open(name string) (File, error) {
	return openOSFile(name, os.O_RDONLY, 0)
}

func (osFS) OpenAppend(name string) (File, error) {
	return openOSFile(name, os.O_RDWR|os.O_APPEND, 0)
}

func (osFS) Remove(name string) error                    { return os.Remove(name) }
func (osFS) RemoveAll(name string) error                 { return os.RemoveAll(name) }
func (osFS) Rename(oldname, newname string) error        { return os.Rename(oldname, newname) }
func (osFS) MkdirAll(dir string, perm os.FileMode) error { return os.MkdirAll(dir, perm) }
func (osFS) Stat(name string) (os.FileInfo, error)       { return os.Stat(name) }

func (osFS) List(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, nil
}

// SyncDir opens dir, fsyncs it and closes it: on Linux that makes the
// directory's entries durable.
func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}

func openOSFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f: f}, nil
}

// osFile wraps an *os.File. It does not embed it, so that callers see only
// the File methods (no WriteAt, no Seek) unless they ask for OSFile.
type osFile struct {
	f *os.File // immutable
}

func (o osFile) ReadAt(p []byte, off int64) (int, error) { return o.f.ReadAt(p, off) }
func (o osFile) Write(p []byte) (int, error)             { return o.f.Write(p) }
func (o osFile) Close() error                            { return o.f.Close() }
func (o osFile) Truncate(size int64) error               { return o.f.Truncate(size) }
func (o osFile) Sync() error                             { return syncData(o.f) }
func (o osFile) OSFile() *os.File                        { return o.f }

func (o osFile) Size() (int64, error) {
	fi, err := o.f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
