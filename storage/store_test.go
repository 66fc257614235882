package storage

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/vfs"
)

func openStore(t *testing.T, fs vfs.FS, c *clock) *Store {
	t.Helper()
	s, err := OpenStore("/data", StoreOptions{
		FS: fs, Logger: quietLogger(), Now: c.Now,
		ConfigFor:         func(string) Config { return smallConfig() },
		RetentionInterval: -1, CleanerInterval: -1,
	})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s
}

func TestStoreReopensCleanlyWithoutRescanning(t *testing.T) {
	fs, c := vfs.NewCrashableMem(), newClock()
	s := openStore(t, fs, c)
	if s.WasCleanShutdown() {
		t.Fatal("a new store was not shut down")
	}
	tps := []TopicPartition{{"orders", 0}, {"orders", 1}, {"my-topic-with-dashes", 12}}
	for i, tp := range tps {
		l, err := s.Create(tp, smallConfig())
		if err != nil {
			t.Fatal(err)
		}
		for range 20 * (i + 1) {
			mustAppend(t, l, valueBatch(t, 3, 1, tp.String()))
		}
	}
	if _, err := s.Create(tps[0], smallConfig()); err == nil {
		t.Fatal("creating an existing partition must fail")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, fs, c)
	defer s.Close()
	if !s.WasCleanShutdown() {
		t.Fatal("clean shutdown not recorded")
	}
	if _, err := fs.Stat(filepath.Join("/data", cleanShutdownName)); err == nil {
		t.Fatal("the clean-shutdown marker must go once the store is open for writing")
	}
	want := slices.Clone(tps)
	slices.SortFunc(want, func(a, b TopicPartition) int { return compareTP(a, b) })
	if got := s.Partitions(); !slices.Equal(got, want) {
		t.Fatalf("partitions %v, want %v", got, want)
	}
	for i, tp := range tps {
		l, _ := s.Log(tp)
		if end := l.Offsets().LogEnd; end != int64(60*(i+1)) {
			t.Fatalf("%s end %d", tp, end)
		}
		if n := len(readRecords(t, l, 0)); n != 60*(i+1) {
			t.Fatalf("%s read %d records", tp, n)
		}
	}
}

func compareTP(a, b TopicPartition) int {
	if a.Topic != b.Topic {
		if a.Topic < b.Topic {
			return -1
		}
		return 1
	}
	return int(a.Partition - b.Partition)
}

func TestStoreRecoversAfterCrash(t *testing.T) {
	fs, c := vfs.NewCrashableMem(), newClock()
	s := openStore(t, fs, c)
	l, _ := s.Create(TopicPartition{"t", 0}, smallConfig())
	for range 30 {
		mustAppend(t, l, valueBatch(t, 2, 1, "x"))
	}
	l.Append(valueBatch(t, 2, 1, "not waited for"))
	crashed := fs.CrashClone(vfs.CrashOptions{})
	s2 := openStore(t, crashed, c)
	defer s2.Close()
	if s2.WasCleanShutdown() {
		t.Fatal("a crash is not a clean shutdown")
	}
	l2, ok := s2.Log(TopicPartition{"t", 0})
	if !ok || l2.Offsets().LogEnd < 60 {
		t.Fatalf("after crash: ok %v, offsets %+v", ok, l2.Offsets())
	}
	s.Close()
}

func TestStoreDeleteSurvivesCrash(t *testing.T) {
	fs, c := vfs.NewCrashableMem(), newClock()
	s := openStore(t, fs, c)
	tp := TopicPartition{"gone", 0}
	l, _ := s.Create(tp, smallConfig())
	mustAppend(t, l, valueBatch(t, 1, 1, "x"))
	if err := s.Delete(tp); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Log(tp); ok {
		t.Fatal("deleted log still served")
	}
	if names, _ := fs.List("/data"); slices.ContainsFunc(names, func(n string) bool { return n != cleanShutdownName }) {
		t.Fatalf("left behind: %v", names)
	}
	// A deletion cut short by a crash is finished on open.
	fs.MkdirAll("/data/half-0.123"+deletedSuffix, 0o755)
	fs.WriteFile("/data/half-0.123"+deletedSuffix+"/00000000000000000000.log", []byte("x"))
	s.Close()
	s = openStore(t, fs, c)
	defer s.Close()
	if len(s.Partitions()) != 0 {
		t.Fatalf("partitions after reopen: %v", s.Partitions())
	}
	if names, _ := fs.List("/data"); len(names) != 0 {
		t.Fatalf("left behind: %v", names)
	}
}

func TestStoreRunsRetentionInTheBackground(t *testing.T) {
	fs, c := vfs.NewCrashableMem(), newClock()
	s, err := OpenStore("/data", StoreOptions{
		FS: fs, Logger: quietLogger(), Now: c.Now,
		RetentionInterval: time.Millisecond, CleanerInterval: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg := smallConfig()
	cfg.Retention = time.Hour
	l, _ := s.Create(TopicPartition{"r", 0}, cfg)
	for range 50 {
		mustAppend(t, l, valueBatch(t, 2, c.Now().UnixMilli(), "old"))
	}
	c.Advance(2 * time.Hour)
	deadline := time.Now().Add(10 * time.Second)
	for l.Offsets().LogStart != 100 {
		if time.Now().After(deadline) {
			t.Fatalf("retention did not run: %+v", l.Offsets())
		}
		time.Sleep(time.Millisecond)
	}
}

// blockingFS holds every File.Sync, once armed, until released.
type blockingFS struct {
	*vfs.MemFS
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

type blockingFile struct {
	vfs.File
	fs *blockingFS
}

func (f blockingFile) Sync() error {
	if !f.fs.armed.Load() {
		return f.File.Sync()
	}
	select {
	case f.fs.entered <- struct{}{}:
	default:
	}
	<-f.fs.release
	return f.File.Sync()
}

func (b *blockingFS) Create(name string) (vfs.File, error) {
	f, err := b.MemFS.Create(name)
	return blockingFile{f, b}, err
}

func TestGroupCommitCoversAppendsThatArriveDuringASync(t *testing.T) {
	fs := &blockingFS{MemFS: vfs.NewCrashableMem(), entered: make(chan struct{}, 1), release: make(chan struct{})}
	c := NewCommitter(CommitterOptions{FS: fs, Dir: "/data"})
	var logs []*Log
	for i := range 3 {
		l, err := Open(filepath.Join("/data", TopicPartition{"g", int32(i)}.String()), DefaultConfig(),
			Options{FS: fs, Committer: c, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		logs = append(logs, l)
	}
	fs.armed.Store(true)
	var wg sync.WaitGroup
	wait := func(l *Log) {
		res, err := l.Append(valueBatch(t, 1, 1, "g"))
		if err != nil {
			t.Error(err)
		}
		wg.Go(func() {
			if err := l.WaitDurable(res.LastOffset + 1); err != nil {
				t.Error(err)
			}
		})
	}
	wait(logs[0])
	<-fs.entered // round 1 is syncing log 0
	wait(logs[1])
	wait(logs[2])
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		n := len(c.pending)
		c.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs 1 and 2 never queued (%d pending)", n)
		}
		time.Sleep(time.Millisecond)
	}
	close(fs.release)
	wg.Wait()
	if st := c.Stats(); st.Rounds != 2 || st.LogsSynced != 3 {
		t.Fatalf("stats %+v: want 2 rounds covering 3 logs (the second round covers both late arrivals)", st)
	}
}

func TestGroupCommitUsesSyncFSForLargeRounds(t *testing.T) {
	fs := vfs.NewCrashableMem()
	c := NewCommitter(CommitterOptions{FS: fs, Dir: "/data", SyncFSThreshold: 1})
	l, err := Open("/data/s-0", DefaultConfig(), Options{FS: fs, Committer: c, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	res := mustAppend(t, l, valueBatch(t, 2, 1, "s"))
	if st := c.Stats(); st.SyncFSCalls != 1 {
		t.Fatalf("stats %+v, want one syncfs", st)
	}
	// What syncfs covered survives a crash.
	crashed := fs.CrashClone(vfs.CrashOptions{})
	l2, err := Open("/data/s-0", DefaultConfig(), Options{FS: crashed, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if got := l2.Offsets().LogEnd; got != res.LastOffset+1 {
		t.Fatalf("end after crash %d, want %d", got, res.LastOffset+1)
	}
}

func TestWaitDurableAllSyncsManyLogsInOneRound(t *testing.T) {
	fs, c := vfs.NewCrashableMem(), newClock()
	s := openStore(t, fs, c)
	defer s.Close()
	var logs []*Log
	var ends []int64
	for i := range 20 {
		l, err := s.Create(TopicPartition{"many", int32(i)}, DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		res, err := l.Append(valueBatch(t, 2, 1, "m"))
		if err != nil {
			t.Fatal(err)
		}
		logs, ends = append(logs, l), append(ends, res.LastOffset+1)
	}
	before := s.Committer().Stats()
	if err := WaitDurableAll(logs, ends); err != nil {
		t.Fatal(err)
	}
	after := s.Committer().Stats()
	if rounds := after.Rounds - before.Rounds; rounds != 1 || after.LogsSynced-before.LogsSynced != 20 {
		t.Fatalf("%d rounds covering %d logs, want 1 round covering 20", rounds, after.LogsSynced-before.LogsSynced)
	}
	crashed := fs.CrashClone(vfs.CrashOptions{})
	s2 := openStore(t, crashed, c)
	defer s2.Close()
	for i := range 20 {
		l, _ := s2.Log(TopicPartition{"many", int32(i)})
		if l.Offsets().LogEnd != 2 {
			t.Fatalf("partition %d lost its durable append", i)
		}
	}
}

// The Committer's options (rounds at once, parallel fsyncs, early
// writeback) change how rounds run, not what they promise: under
// concurrent waiters, everything acknowledged survives a crash.
func TestGroupCommitOptionsKeepAcknowledgedAppends(t *testing.T) {
	for _, opts := range []CommitterOptions{
		{Pipeline: 2},
		{SyncParallelism: 4},
		{Pipeline: 2, SyncParallelism: 4, Writeback: true},
		{Pipeline: 3, SyncFSThreshold: 3},
	} {
		t.Run(fmt.Sprintf("%+v", opts), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			opts.FS, opts.Dir = fs, "/data"
			c := NewCommitter(opts)
			logs := make([]*Log, 6)
			for i := range logs {
				l, err := Open(fmt.Sprintf("/data/o-%d", i), DefaultConfig(), Options{FS: fs, Committer: c, Logger: quietLogger()})
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				logs[i] = l
			}
			var mu sync.Mutex
			acked := make([]int64, len(logs)) // the highest acknowledged end per log; guarded by mu
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					ends := make([]int64, len(logs))
					for range 20 {
						for i, l := range logs {
							res, err := l.Append(valueBatch(t, 1, 1, "o"))
							if err != nil {
								t.Error(err)
								return
							}
							ends[i] = res.LastOffset + 1
						}
						if err := WaitDurableAll(logs, ends); err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						for i, e := range ends {
							acked[i] = max(acked[i], e)
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			crashed := fs.CrashClone(vfs.CrashOptions{})
			for i := range logs {
				l, err := Open(fmt.Sprintf("/data/o-%d", i), DefaultConfig(), Options{FS: crashed, Logger: quietLogger()})
				if err != nil {
					t.Fatal(err)
				}
				if got := l.Offsets().LogEnd; got < acked[i] {
					t.Errorf("log %d: end after crash %d, below the acknowledged %d", i, got, acked[i])
				}
				l.Close()
			}
			if st := c.Stats(); st.Rounds == 0 {
				t.Errorf("stats %+v: no rounds", st)
			}
		})
	}
}
