//go:build !linux

package vfs

import "os"

// syncData makes f's data and size durable. Off Linux it is (*os.File).Sync,
// which on darwin uses F_FULLFSYNC. Default does not implement FSSyncer here.
func syncData(f *os.File) error {
	return f.Sync()
}
