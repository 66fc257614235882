package vfs

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncData makes f's data and size durable with fdatasync(2).
//
// fdatasync skips only the metadata a later read does not need (such as
// mtime); it does flush a changed file size, so appended bytes and a
// Truncate are durable when it returns, which is all File.Sync promises.
// It saves the inode write that fsync(2) would add to every append.
func syncData(f *os.File) error {
	return control(f, "sync", unix.Fdatasync)
}

// SyncFS makes every file and directory on the filesystem holding dir
// durable, with syncfs(2).
func (osFS) SyncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := control(d, "syncfs", unix.Syncfs); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}

// control calls op on f's descriptor, holding it open against a concurrent
// Close, retrying on EINTR, and wraps the error as *os.PathError.
func control(f *os.File, name string, op func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) {
		for {
			opErr = op(int(fd))
			if opErr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if opErr != nil {
		return &os.PathError{Op: name, Path: f.Name(), Err: opErr}
	}
	return nil
}

// StartWriteback starts writeback of the file's dirty pages with
// sync_file_range(2) (SYNC_FILE_RANGE_WRITE, whole file) and does not wait
// for it. Writeback errors stay for the next fdatasync to report.
func (o osFile) StartWriteback() error {
	return control(o.f, "sync_file_range", func(fd int) error {
		return unix.SyncFileRange(fd, 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	})
}
