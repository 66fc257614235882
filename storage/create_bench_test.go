//go:build unix

package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/samsa-io/samsa/internal/vfs"
)

// BenchmarkCreateAll creates the logs of a 1,000-partition topic with one
// CreateAll, each with a partition.metadata file, as the broker does. Run it
// on the disk under test: -storage.benchdir, or TMPDIR for the test's temp
// dir (not tmpfs). syncfs=false hides syncfs, as on a filesystem without it
// (each log then syncs its own files). The filesystem is synced before
// each timed CreateAll. It reports the files each new log left in its
// directory.
func BenchmarkCreateAll(b *testing.B) {
	for _, syncfs := range []bool{true, false} {
		b.Run(fmt.Sprintf("logs=1000/syncfs=%v", syncfs), func(b *testing.B) {
			benchCreateAll(b, 1000, syncfs)
		})
	}
}

func benchCreateAll(b *testing.B, n int, syncfs bool) {
	root := benchRoot(b)
	var fs vfs.FS = vfs.Default
	if !syncfs {
		fs = noSyncFS{vfs.Default}
	}
	news := manyPartitions(n)
	files := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		dir := filepath.Join(root, strconv.Itoa(i))
		s, err := OpenStore(dir, StoreOptions{FS: fs, Logger: quietLogger(), RetentionInterval: -1, CleanerInterval: -1})
		if err != nil {
			b.Fatal(err)
		}
		// Leave nothing dirty of the previous iteration (its files'
		// removal) for this one's syncfs to write.
		if syncer, ok := vfs.Default.(vfs.FSSyncer); ok {
			if err := syncer.SyncFS(root); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		logs, err := s.CreateAll(news)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			for _, l := range logs {
				names, err := os.ReadDir(l.Dir())
				if err != nil {
					b.Fatal(err)
				}
				files += len(names)
			}
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(files)/float64(n), "files/log")
}
