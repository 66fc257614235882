package storage

import (
	"sync"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/vfs"
)

// recordingObserver is a CommitObserver that remembers what it was told.
type recordingObserver struct {
	mu      sync.Mutex
	fsyncs  int
	syncfss int
	rounds  []int
}

func (o *recordingObserver) Synced(syncfs bool, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if d < 0 {
		panic("negative sync duration")
	}
	if syncfs {
		o.syncfss++
	} else {
		o.fsyncs++
	}
}

func (o *recordingObserver) Committed(logs int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rounds = append(o.rounds, logs)
}

func TestCommitObserverSeesEachSyncAndRound(t *testing.T) {
	for _, tc := range []struct {
		name      string
		threshold int // SyncFSThreshold
		syncfs    bool
	}{
		{name: "fsync per file", threshold: -1},
		{name: "syncfs", threshold: 1, syncfs: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &recordingObserver{}
			s, err := OpenStore("/data", StoreOptions{
				FS: vfs.NewCrashableMem(), Logger: quietLogger(), Now: newClock().Now,
				RetentionInterval: -1, CleanerInterval: -1,
				SyncFSThreshold: tc.threshold, Commits: obs,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var logs []*Log
			var ends []int64
			for i := range 3 {
				l, err := s.Create(TopicPartition{"obs", int32(i)}, DefaultConfig())
				if err != nil {
					t.Fatal(err)
				}
				res, err := l.Append(valueBatch(t, 2, 1, "o"))
				if err != nil {
					t.Fatal(err)
				}
				logs, ends = append(logs, l), append(ends, res.LastOffset+1)
			}
			if err := WaitDurableAll(logs, ends); err != nil {
				t.Fatal(err)
			}
			obs.mu.Lock()
			defer obs.mu.Unlock()
			if len(obs.rounds) != 1 || obs.rounds[0] != 3 {
				t.Errorf("rounds %v, want one round of 3 logs", obs.rounds)
			}
			if tc.syncfs {
				if obs.syncfss != 1 || obs.fsyncs != 0 {
					t.Errorf("%d syncfs and %d fsyncs, want 1 syncfs", obs.syncfss, obs.fsyncs)
				}
			} else if obs.fsyncs != 3 || obs.syncfss != 0 {
				t.Errorf("%d fsyncs and %d syncfs, want an fsync per log's segment (3)", obs.fsyncs, obs.syncfss)
			}
		})
	}
}

func TestSectionCountsRecords(t *testing.T) {
	e := newEnv(t)
	l := e.open(DefaultConfig(), false)
	defer l.Close()
	mustAppend(t, l, valueBatch(t, 3, 1, "a"))
	mustAppend(t, l, valueBatch(t, 5, 1, "b"))
	for _, tc := range []struct {
		from int64
		want int64
	}{
		{from: 0, want: 8},
		{from: 4, want: 5}, // the second batch, whole
		{from: 8, want: 0}, // the end: nothing
	} {
		sec, _, err := l.ReadSection(tc.from, 1<<20, 1<<60, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := sec.Records(); got != tc.want {
			t.Errorf("section from %d has %d records, want %d", tc.from, got, tc.want)
		}
		sec.Release()
	}
}
