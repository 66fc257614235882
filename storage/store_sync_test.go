package storage

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/samsa-io/samsa/internal/vfs"
)

// openStoreBig opens a store whose segments never roll in these tests, so
// that nothing is synced behind their back (a roll starts the sealer).
func openStoreBig(t *testing.T, fs vfs.FS, c *clock) *Store {
	t.Helper()
	s, err := OpenStore("/data", StoreOptions{
		FS: fs, Logger: quietLogger(), Now: c.Now,
		ConfigFor:         func(string) Config { return DefaultConfig() },
		RetentionInterval: -1, CleanerInterval: -1,
	})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s
}

func manyPartitions(n int) []NewLog {
	news := make([]NewLog, n)
	for i := range news {
		news[i] = NewLog{
			Partition: TopicPartition{"t", int32(i)},
			Config:    DefaultConfig(),
			Files:     map[string][]byte{"partition.metadata": fmt.Appendf(nil, "partition %d\n", i)},
		}
	}
	return news
}

// A store opens its logs without a sync each and syncs the filesystem once
// before they are used: what recovery read from the page cache after a
// kill must survive a power loss right after the open.
func TestStoreSyncsWhatRecoveryReadBeforeServing(t *testing.T) {
	fs, c := vfs.NewCrashableMem(), newClock()
	s1 := openStoreBig(t, fs, c)
	defer s1.Close()
	logs, err := s1.CreateAll(manyPartitions(20))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range logs {
		for range 5 {
			appendUnsynced(t, l, valueBatch(t, 2, 1, "unsynced"))
		}
	}
	// The process is killed: the page cache, unsynced data included, stays.
	// A new process opens the store and recovers the 10 records of each.
	s2 := openStoreBig(t, fs, c)
	if s2.WasCleanShutdown() {
		t.Fatal("a kill is not a clean shutdown")
	}
	// Then the machine loses power, adversarially.
	crashed := fs.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(1, 2))})
	s3 := openStoreBig(t, crashed, c)
	defer s3.Close()
	for i := range 20 {
		l, ok := s3.Log(TopicPartition{"t", int32(i)})
		if !ok {
			t.Fatalf("partition %d lost", i)
		}
		if n := len(readRecords(t, l, 0)); n != 10 {
			t.Fatalf("partition %d: %d records after power loss, want the 10 the reopened store served", i, n)
		}
	}
	s2.Close()
}

// CreateAll returns once every new log, with its extra files, is durable.
func TestCreateAllIsDurableWhenItReturns(t *testing.T) {
	fs, c := vfs.NewCrashableMem(), newClock()
	s := openStoreBig(t, fs, c)
	defer s.Close()
	news := manyPartitions(50)
	if _, err := s.CreateAll(news); err != nil {
		t.Fatal(err)
	}
	for seed := range uint64(5) {
		crashed := fs.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(seed, 7))})
		s2 := openStoreBig(t, crashed, c)
		if got := len(s2.Partitions()); got != len(news) {
			t.Fatalf("seed %d: %d partitions after power loss, want %d", seed, got, len(news))
		}
		for _, n := range news {
			l, _ := s2.Log(n.Partition)
			b, err := crashed.ReadFile(l.Dir() + "/partition.metadata")
			if want := n.Files["partition.metadata"]; err != nil || string(b) != string(want) {
				t.Fatalf("seed %d: %s partition.metadata %q, %v; want %q", seed, n.Partition, b, err, want)
			}
		}
		s2.Close()
	}
}

// CreateAll creates all or nothing.
func TestCreateAllKeepsNothingOnAnError(t *testing.T) {
	fs, c := vfs.NewCrashableMem(), newClock()
	s := openStoreBig(t, fs, c)
	defer s.Close()
	if _, err := s.Create(TopicPartition{"t", 3}, DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAll(manyPartitions(5)); !errors.Is(err, ErrExists) {
		t.Fatalf("creating an existing partition: %v, want ErrExists", err)
	}
	dup := manyPartitions(2)
	dup[1].Partition = dup[0].Partition
	dup[0].Partition.Topic, dup[1].Partition.Topic = "u", "u"
	if _, err := s.CreateAll(dup); !errors.Is(err, ErrExists) {
		t.Fatalf("the same partition twice: %v, want ErrExists", err)
	}
	bad := manyPartitions(4)
	for i := range bad {
		bad[i].Partition.Topic = "v"
	}
	bad[2].Files = map[string][]byte{"checkpoint": []byte("mine")}
	if _, err := s.CreateAll(bad); err == nil {
		t.Fatal("an extra file named like the log's own was accepted")
	}
	if got := s.Partitions(); len(got) != 1 {
		t.Fatalf("partitions after failed creations: %v, want only t-3", got)
	}
	names, err := fs.List("/data")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != "t-3" {
		t.Fatalf("directories after failed creations: %v, want [t-3]", names)
	}
}

// Close syncs every log with one syncfs before it records the clean
// shutdown: a power loss right after finds every record and a clean store.
func TestStoreCloseIsDurable(t *testing.T) {
	fs, c := vfs.NewCrashableMem(), newClock()
	s := openStoreBig(t, fs, c)
	logs, err := s.CreateAll(manyPartitions(10))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range logs {
		for range 3 {
			appendUnsynced(t, l, valueBatch(t, 4, 1, "unsynced"))
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	crashed := fs.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(3, 4))})
	s2 := openStoreBig(t, crashed, c)
	defer s2.Close()
	if !s2.WasCleanShutdown() {
		t.Fatal("the clean shutdown was lost")
	}
	for _, n := range manyPartitions(10) {
		l, _ := s2.Log(n.Partition)
		if got := len(readRecords(t, l, 0)); got != 12 {
			t.Fatalf("%s: %d records, want 12", n.Partition, got)
		}
	}
}

// appendUnsynced appends without waiting for the fsync, as acks=1 does.
func appendUnsynced(t *testing.T, l *Log, b []byte) {
	t.Helper()
	if _, err := l.Append(b); err != nil {
		t.Fatalf("append: %v", err)
	}
}

// noSyncFS hides MemFS's syncfs, as on a filesystem without one: the store
// then syncs each log and file itself.
type noSyncFS struct{ vfs.FS }

// withSyncFS is fs, with its syncfs hidden (noSyncFS) unless syncfs.
func withSyncFS(fs vfs.FS, syncfs bool) vfs.FS {
	if syncfs {
		return fs
	}
	return noSyncFS{fs}
}

// Without syncfs, CreateAll syncs each new log and its extra files, names
// included, before it returns.
func TestCreateAllWithoutSyncFSIsDurableWhenItReturns(t *testing.T) {
	mem, c := vfs.NewCrashableMem(), newClock()
	s := openStoreBig(t, noSyncFS{mem}, c)
	defer s.Close()
	news := manyPartitions(10)
	if _, err := s.CreateAll(news); err != nil {
		t.Fatal(err)
	}
	for seed := range uint64(5) {
		crashed := mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(seed, 11))})
		for _, n := range news {
			name := "/data/" + n.Partition.String() + "/partition.metadata"
			b, err := crashed.ReadFile(name)
			if want := n.Files["partition.metadata"]; err != nil || string(b) != string(want) {
				t.Fatalf("seed %d: %s %q, %v; want %q", seed, name, b, err, want)
			}
		}
	}
}
