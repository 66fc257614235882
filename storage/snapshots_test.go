package storage

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/samsa-io/samsa/internal/vfs"
)

// snapData is the content of log i's snapshot at off.
func snapData(i int, off int64) []byte { return fmt.Appendf(nil, "state of log %d at %d", i, off) }

func snapshotsAt(logs []*Log, off int64) []Snapshot {
	snaps := make([]Snapshot, len(logs))
	for i, l := range logs {
		snaps[i] = Snapshot{Log: l, Offset: off, Data: snapData(i, off)}
	}
	return snaps
}

// WriteSnapshots leaves each log its newest two snapshots, and no
// temporary file; with syncfs it syncs twice for all of them, with no
// sync per file or directory.
func TestWriteSnapshotsKeepsTheNewestTwo(t *testing.T) {
	for _, syncfs := range []bool{true, false} {
		t.Run(fmt.Sprintf("syncfs=%v", syncfs), func(t *testing.T) {
			fs := &crashPoints{MemFS: vfs.NewCrashableMem()}
			s := openStoreBig(t, withSyncFS(fs, syncfs), newClock())
			defer s.Close()
			logs, err := s.CreateAll(manyPartitions(5))
			if err != nil {
				t.Fatal(err)
			}
			for _, off := range []int64{10, 20, 30} {
				fs.counting.Store(off == 30)
				if err := s.WriteSnapshots(snapshotsAt(logs, off)); err != nil {
					t.Fatal(err)
				}
			}
			fs.counting.Store(false)
			if syncfs {
				if f, d, a := fs.fileSyncs.Load(), fs.dirSyncs.Load(), fs.fsSyncs.Load(); f != 0 || d != 0 || a != 2 {
					t.Errorf("5 snapshots took %d file syncs, %d directory syncs and %d syncfs; want 0, 0 and 2", f, d, a)
				}
			}
			for i, l := range logs {
				offs, err := l.Snapshots()
				if err != nil || !slices.Equal(offs, []int64{20, 30}) {
					t.Fatalf("%s: snapshots %v (%v), want [20 30]", l.Dir(), offs, err)
				}
				if b, err := l.ReadSnapshot(30); err != nil || string(b) != string(snapData(i, 30)) {
					t.Fatalf("%s: snapshot 30 reads %q, %v", l.Dir(), b, err)
				}
				names, _ := fs.List(l.Dir())
				for _, n := range names {
					if strings.HasSuffix(n, ".tmp") {
						t.Fatalf("%s: %s left behind", l.Dir(), n)
					}
				}
			}
		})
	}
}

// A power loss at any step of WriteSnapshots leaves each log a whole
// snapshot: the new one, or the one it had before.
func TestWriteSnapshotsSurvivesPowerLossAtEveryStep(t *testing.T) {
	for _, syncfs := range []bool{true, false} {
		t.Run(fmt.Sprintf("syncfs=%v", syncfs), func(t *testing.T) {
			fs := &crashPoints{MemFS: vfs.NewCrashableMem()}
			fs.promise.Store(&crashPromise{})
			c := newClock()
			s := openStoreBig(t, withSyncFS(fs, syncfs), c)
			logs, err := s.CreateAll(manyPartitions(3))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.WriteSnapshots(snapshotsAt(logs, 10)); err != nil {
				t.Fatal(err)
			}
			fs.recording.Store(true)
			if err := s.WriteSnapshots(snapshotsAt(logs, 20)); err != nil {
				t.Fatal(err)
			}
			fs.recording.Store(false)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if len(fs.points) < 10 {
				t.Fatalf("only %d crash points", len(fs.points))
			}
			for _, cp := range fs.points {
				s := openStoreBig(t, withSyncFS(cp.fs, syncfs), c)
				for i := range logs {
					l, ok := s.Log(TopicPartition{"t", int32(i)})
					if !ok {
						t.Fatalf("after %s: log %d lost", cp.op, i)
					}
					offs, err := l.Snapshots()
					if err != nil || len(offs) == 0 {
						t.Fatalf("after %s: log %d has snapshots %v (%v), want 10 or 20", cp.op, i, offs, err)
					}
					newest := offs[len(offs)-1]
					if b, err := l.ReadSnapshot(newest); err != nil || string(b) != string(snapData(i, newest)) {
						t.Fatalf("after %s: log %d's snapshot %d reads %q (%v), want it whole", cp.op, i, newest, b, err)
					}
				}
				s.Close()
			}
		})
	}
}

// A store told never to use syncfs (a negative SyncFSThreshold) keeps off
// it everywhere: group commits, creating logs, snapshots and closing.
func TestStoreWithoutSyncFSNeverCallsIt(t *testing.T) {
	fs := &crashPoints{MemFS: vfs.NewCrashableMem()}
	fs.counting.Store(true)
	s, err := OpenStore("/data", StoreOptions{
		FS: fs, Logger: quietLogger(), Now: newClock().Now, SyncFSThreshold: -1,
		ConfigFor:         func(string) Config { return DefaultConfig() },
		RetentionInterval: -1, CleanerInterval: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	logs, err := s.CreateAll(manyPartitions(8))
	if err != nil {
		t.Fatal(err)
	}
	ends := make([]int64, len(logs))
	for i, l := range logs {
		res, err := l.Append(valueBatch(t, 2, 1, "v"))
		if err != nil {
			t.Fatal(err)
		}
		ends[i] = res.LastOffset + 1
	}
	if err := WaitDurableAll(logs, ends); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteSnapshots(snapshotsAt(logs, 2)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := fs.fsSyncs.Load(); n != 0 {
		t.Fatalf("%d syncfs calls, want none", n)
	}
	if fs.fileSyncs.Load() == 0 {
		t.Fatal("no file was synced at all")
	}
}
