package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/samsa-io/samsa/internal/vfs"
)

// cleanShutdownName is the file whose presence in a data directory says
// every log in it was closed cleanly: nothing needs to be rescanned.
const cleanShutdownName = ".clean-shutdown"

// deletedSuffix marks a partition directory being deleted.
const deletedSuffix = ".deleted"

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

// parseTopicPartition splits a directory name <topic>-<partition>.
func parseTopicPartition(name string) (TopicPartition, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return TopicPartition{}, false
	}
	p, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || p < 0 {
		return TopicPartition{}, false
	}
	return TopicPartition{Topic: name[:i], Partition: int32(p)}, true
}

// StoreOptions configure a Store.
type StoreOptions struct {
	FS     vfs.FS       // vfs.Default when nil
	Logger *slog.Logger // slog.Default when nil
	Now    func() time.Time
	// ConfigFor gives the config of the logs of a topic found on open.
	// DefaultConfig when nil.
	ConfigFor func(topic string) Config
	// SyncFSThreshold: see CommitterOptions. Zero means the default,
	// DefaultSyncFSThreshold; negative never uses syncfs, neither in group
	// commits nor for opening, creating, closing or snapshotting many logs
	// at once (for a filesystem shared with other busy writers, whose dirty
	// data syncfs would write too).
	SyncFSThreshold int
	// RetentionInterval is how often retention runs
	// (log.retention.check.interval.ms, default 5 minutes); negative turns
	// the background loop off.
	RetentionInterval time.Duration
	// CleanerInterval is how often the cleaner looks for dirty compacted
	// logs (log.cleaner.backoff.ms, default 15 seconds); negative turns it
	// off.
	CleanerInterval time.Duration
	// Compact bounds each compaction pass.
	Compact CompactOptions
	// OpenConcurrency is how many logs open at once. Default 8.
	OpenConcurrency int
	// Commits, when not nil, is told of every fsync and group-commit
	// round of the store's Committer (metrics.go).
	Commits CommitObserver
}

// DefaultSyncFSThreshold is the number of logs in one group commit round
// from which a Store's rounds use one syncfs(2) instead of an fsync per log.
// On the measured disk syncfs was slower at one log per round and faster
// from two on (13 times at 10,000); see docs/benchmarks.md, section 4.
// fdatasyncs issued in parallel, with early writeback, were not clearly
// faster at 16 logs and slower at 100 (the broker section's rerun for
// 16-partition produce).
const DefaultSyncFSThreshold = 4

// Store is a data directory of partition logs, one directory each, named
// <topic>-<partition>. It shares one Committer among them, runs retention
// and compaction in the background, and records a clean shutdown so that
// the next open reads no data.
type Store struct {
	dir       string
	opts      StoreOptions
	committer *Committer
	syncer    vfs.FSSyncer // the filesystem's syncfs; nil when it has none
	clean     bool         // the last shutdown was clean; immutable

	mu     sync.RWMutex
	logs   map[TopicPartition]*Log // guarded by mu
	closed bool                    // guarded by mu

	stop context.CancelFunc
	bg   sync.WaitGroup
}

// OpenStore opens every log under dir, in parallel.
func OpenStore(dir string, opts StoreOptions) (*Store, error) {
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ConfigFor == nil {
		opts.ConfigFor = func(string) Config { return DefaultConfig() }
	}
	if opts.RetentionInterval == 0 {
		opts.RetentionInterval = 5 * time.Minute
	}
	if opts.CleanerInterval == 0 {
		opts.CleanerInterval = 15 * time.Second
	}
	if opts.OpenConcurrency <= 0 {
		opts.OpenConcurrency = 8
	}
	if opts.SyncFSThreshold == 0 {
		opts.SyncFSThreshold = DefaultSyncFSThreshold
	}
	fs := opts.FS
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &Store{
		dir:       dir,
		opts:      opts,
		committer: NewCommitter(CommitterOptions{FS: fs, Dir: dir, SyncFSThreshold: opts.SyncFSThreshold, Observer: opts.Commits}),
		logs:      map[TopicPartition]*Log{},
	}
	if opts.SyncFSThreshold > 0 {
		// A negative threshold keeps the store off syncfs too: start-up,
		// topic creation, shutdown and snapshots sync each file instead.
		s.syncer, _ = fs.(vfs.FSSyncer)
	}
	_, err := fs.Stat(filepath.Join(dir, cleanShutdownName))
	s.clean = err == nil
	if err := s.openAll(); err != nil {
		s.closeLogs()
		return nil, err
	}
	// From here on logs change: the next open must not trust them blindly.
	if s.clean {
		if err := fs.Remove(filepath.Join(dir, cleanShutdownName)); err != nil {
			s.closeLogs()
			return nil, err
		}
		if err := fs.SyncDir(dir); err != nil {
			s.closeLogs()
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.startLoop(ctx, opts.RetentionInterval, s.runRetention)
	s.startLoop(ctx, opts.CleanerInterval, s.runCleaner)
	return s, nil
}

// openAll opens every partition directory, and finishes deleting the ones
// whose deletion a crash interrupted.
func (s *Store) openAll() error {
	names, err := s.opts.FS.List(s.dir)
	if err != nil {
		return err
	}
	type job struct {
		tp  TopicPartition
		dir string
	}
	var jobs []job
	for _, name := range names {
		path := filepath.Join(s.dir, name)
		if strings.HasSuffix(name, deletedSuffix) {
			if err := s.opts.FS.RemoveAll(path); err != nil {
				return err
			}
			continue
		}
		if tp, ok := parseTopicPartition(name); ok {
			jobs = append(jobs, job{tp, path})
		}
	}
	var mu sync.Mutex // guards s.logs while the jobs run
	err = inParallel(jobs, s.opts.OpenConcurrency, func(j job) error {
		l, err := Open(j.dir, s.opts.ConfigFor(j.tp.Topic), s.logOptions(s.clean))
		if err != nil {
			return err
		}
		mu.Lock()
		s.logs[j.tp] = l
		mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	return s.syncLater()
}

// syncLater makes durable, with one syncfs, what logs opened, created or
// closed with Options.syncLater left in the page cache. Without syncfs
// those logs synced themselves.
func (s *Store) syncLater() error {
	if s.syncer == nil {
		return nil
	}
	return s.syncer.SyncFS(s.dir)
}

// Snapshot is a producer state snapshot of a log at an offset, for
// WriteSnapshots.
type Snapshot struct {
	Log    *Log
	Offset int64
	Data   []byte
}

// WriteSnapshots writes each log's snapshot as Log.WriteSnapshot does, with
// two syncfs for all of them where the store uses syncfs instead of three
// syncs per log: a clean shutdown of 10,000 partitions otherwise spends
// seconds in them. Every snapshot goes to its temporary file, one syncfs
// makes them durable, the renames put them in place (and the older
// snapshots go), and a second syncfs makes that durable. A crash before it
// leaves, per log, the new snapshot or the ones before it, each whole
// (temporary files are removed at open). Without syncfs each log writes
// its own, OpenConcurrency at a time. The logs must be the store's.
func (s *Store) WriteSnapshots(snaps []Snapshot) error {
	if s.syncer == nil {
		return inParallel(snaps, s.opts.OpenConcurrency, func(sn Snapshot) error {
			return sn.Log.WriteSnapshot(sn.Offset, sn.Data)
		})
	}
	var mu sync.Mutex
	var written []Snapshot
	err := inParallel(snaps, s.opts.OpenConcurrency, func(sn Snapshot) error {
		if err := sn.Log.writeSnapshotFile(sn.Offset, sn.Data, false); err != nil {
			return err
		}
		mu.Lock()
		written = append(written, sn)
		mu.Unlock()
		return nil
	})
	if serr := s.syncer.SyncFS(s.dir); serr != nil {
		// Nothing is known durable: install none.
		for _, sn := range written {
			err = errors.Join(err, removeIfExists(sn.Log, sn.Log.snapshotPath(sn.Offset)+".tmp"))
		}
		return errors.Join(err, serr)
	}
	err = errors.Join(err, inParallel(written, s.opts.OpenConcurrency, func(sn Snapshot) error {
		return sn.Log.installSnapshot(sn.Offset, false)
	}))
	return errors.Join(err, s.syncer.SyncFS(s.dir))
}

// inParallel calls f on every item, n at a time, and joins the errors.
func inParallel[T any](items []T, n int, f func(T) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
		queue = make(chan T)
	)
	for range min(n, len(items)) {
		wg.Go(func() {
			for item := range queue {
				if err := f(item); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, item := range items {
		queue <- item
	}
	close(queue)
	wg.Wait()
	return errors.Join(errs...)
}

func (s *Store) logOptions(clean bool) Options {
	return Options{FS: s.opts.FS, Committer: s.committer, Logger: s.opts.Logger, Now: s.opts.Now, Clean: clean,
		syncLater: s.syncer != nil}
}

// WasCleanShutdown reports whether the store had been closed cleanly before
// this open.
func (s *Store) WasCleanShutdown() bool { return s.clean }

// Committer returns the group committer shared by the store's logs.
func (s *Store) Committer() *Committer { return s.committer }

// Log returns a partition's log.
func (s *Store) Log(tp TopicPartition) (*Log, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l, ok := s.logs[tp]
	return l, ok
}

// Partitions lists the partitions held, sorted.
func (s *Store) Partitions() []TopicPartition {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]TopicPartition, 0, len(s.logs))
	for tp := range s.logs {
		out = append(out, tp)
	}
	slices.SortFunc(out, func(a, b TopicPartition) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
	return out
}

// ErrExists: the partition already has a log.
var ErrExists = errors.New("storage: partition exists")

// Create makes a new, empty log for a partition.
func (s *Store) Create(tp TopicPartition, cfg Config) (*Log, error) {
	logs, err := s.CreateAll([]NewLog{{Partition: tp, Config: cfg}})
	if err != nil {
		return nil, err
	}
	return logs[0], nil
}

// NewLog describes a log for CreateAll to make.
type NewLog struct {
	Partition TopicPartition
	Config    Config
	// Files are written into the new log's directory with it, durable
	// when CreateAll returns (the broker's partition.metadata). The names
	// must not be the log's own.
	Files map[string][]byte
}

// CreateAll makes new, empty logs, in parallel, and makes them durable
// together: with one syncfs where the filesystem has it, so that creating
// 10,000 partitions costs one sync rather than 50,000. Either every log is
// created or, on an error, none is kept.
func (s *Store) CreateAll(news []NewLog) ([]*Log, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	seen := make(map[TopicPartition]bool, len(news))
	for _, n := range news {
		if _, ok := s.logs[n.Partition]; ok || seen[n.Partition] {
			return nil, fmt.Errorf("%w: %s", ErrExists, n.Partition)
		}
		seen[n.Partition] = true
	}
	logs := make([]*Log, len(news))
	err := inParallel(indexes(len(news)), s.opts.OpenConcurrency, func(i int) error {
		l, err := Open(filepath.Join(s.dir, news[i].Partition.String()), news[i].Config, s.logOptions(false))
		if err != nil {
			return err
		}
		logs[i] = l
		return writeFiles(s.opts.FS, l.dir, news[i].Files, s.syncer == nil)
	})
	if err == nil {
		err = s.syncLater()
	}
	if err == nil && s.syncer == nil {
		err = s.opts.FS.SyncDir(s.dir)
	}
	if err != nil {
		for _, l := range logs {
			if l != nil {
				err = errors.Join(err, l.Delete())
			}
		}
		return nil, err
	}
	for i, l := range logs {
		s.logs[news[i].Partition] = l
	}
	return logs, nil
}

// indexes returns 0, 1, …, n-1.
func indexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// writeFiles writes files into dir; with sync set it syncs them and then
// dir, for their names.
func writeFiles(fs vfs.FS, dir string, files map[string][]byte, sync bool) error {
	for name, data := range files {
		if name != filepath.Base(name) || isLogFile(name) {
			return fmt.Errorf("storage: %q is not a name for an extra file of a log", name)
		}
		f, err := fs.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		if err == nil && sync {
			err = f.Sync()
		}
		if err = errors.Join(err, f.Close()); err != nil {
			return err
		}
	}
	if !sync || len(files) == 0 {
		return nil
	}
	return fs.SyncDir(dir)
}

// Delete closes a partition's log and removes its data. The directory is
// first renamed, so that a crash part way through never leaves a half
// deleted log that would be opened again.
func (s *Store) Delete(tp TopicPartition) error {
	s.mu.Lock()
	l, ok := s.logs[tp]
	delete(s.logs, tp)
	s.mu.Unlock()
	if !ok {
		return nil
	}
	l.Close()
	gone := l.dir + "." + strconv.FormatInt(s.opts.Now().UnixNano(), 36) + deletedSuffix
	if err := s.opts.FS.Rename(l.dir, gone); err != nil {
		return err
	}
	if err := s.opts.FS.SyncDir(s.dir); err != nil {
		return err
	}
	return s.opts.FS.RemoveAll(gone)
}

// Close stops the background work, closes every log, and records the clean
// shutdown.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.stop()
	s.bg.Wait()
	if err := s.closeLogs(); err != nil {
		return err
	}
	f, err := s.opts.FS.Create(filepath.Join(s.dir, cleanShutdownName))
	if err != nil {
		return err
	}
	err = errors.Join(f.Sync(), f.Close())
	if err != nil {
		return err
	}
	return s.opts.FS.SyncDir(s.dir)
}

// closeLogs closes every log, in parallel, and makes them durable.
func (s *Store) closeLogs() error {
	sync := s.syncer == nil
	err := inParallel(s.snapshot(), s.opts.OpenConcurrency, func(l *Log) error { return l.close(sync) })
	if err != nil {
		return err
	}
	return s.syncLater()
}

func (s *Store) startLoop(ctx context.Context, every time.Duration, run func(context.Context)) {
	if every < 0 {
		return
	}
	s.bg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				run(ctx)
			}
		}
	})
}

func (s *Store) snapshot() []*Log {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Log, 0, len(s.logs))
	for _, l := range s.logs {
		out = append(out, l)
	}
	return out
}

// runRetention applies retention to every log.
func (s *Store) runRetention(ctx context.Context) {
	for _, l := range s.snapshot() {
		if ctx.Err() != nil {
			return
		}
		if n, err := l.EnforceRetention(); err != nil && !errors.Is(err, ErrClosed) {
			s.opts.Logger.Error("retention failed", "log", l.dir, "err", err)
		} else if n > 0 {
			s.opts.Logger.Debug("retention deleted segments", "log", l.dir, "segments", n)
		}
	}
}

// runCleaner compacts every compacted log that is dirty enough.
func (s *Store) runCleaner(ctx context.Context) {
	for _, l := range s.snapshot() {
		if ctx.Err() != nil {
			return
		}
		st, err := l.Compact(ctx, s.opts.Compact)
		switch {
		case err != nil && !errors.Is(err, ErrClosed) && ctx.Err() == nil:
			s.opts.Logger.Error("compaction failed", "log", l.dir, "err", err)
		case st.Compacted:
			s.opts.Logger.Debug("compacted", "log", l.dir, "removed", st.RecordsRemoved, "segments", st.SegmentsRewritten)
		}
	}
}

// isLogFile says whether name is, or could be, one of a log's own files.
func isLogFile(name string) bool {
	if name == checkpointName {
		return true
	}
	for _, suffix := range []string{logSuffix, indexSuffix, timeIndexSuffix, cleanedSuffix, swapSuffix, snapshotSuffix, ".tmp"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}
