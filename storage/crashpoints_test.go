package storage

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/samsa-io/samsa/internal/vfs"
)

// crashPromise is what had been reported durable at some moment of a
// crash test.
type crashPromise struct {
	created  bool  // CreateAll returned
	durable  int64 // records (one per batch) of each log reported durable
	logStart int64 // DeleteRecords returned with this log start
}

// crashPoints is a MemFS that, while recording, takes a crash clone after
// every operation that changes the filesystem or makes a change durable:
// one keeping exactly what was synced, one keeping a random part of what
// was not (seeded by the operation's number). Each clone carries the
// promise made before it was taken.
type crashPoints struct {
	*vfs.MemFS
	recording atomic.Bool
	promise   atomic.Pointer[crashPromise]

	mu     sync.Mutex
	points []crashPoint // guarded by mu

	counting         atomic.Bool
	creates, renames atomic.Int64
	// syncs counts file syncs, directory syncs and syncfs while counting.
	fileSyncs, dirSyncs, fsSyncs atomic.Int64
}

type crashPoint struct {
	fs      *vfs.MemFS
	op      string
	promise crashPromise
}

func (c *crashPoints) crash(op string, name string) {
	if !c.recording.Load() {
		return
	}
	p := *c.promise.Load() // before the clone: the clone holds at least what it says
	c.mu.Lock()
	defer c.mu.Unlock()
	n := uint64(len(c.points))
	what := fmt.Sprintf("op %d (%s %s)", n/2, op, name)
	c.points = append(c.points,
		crashPoint{c.MemFS.CrashClone(vfs.CrashOptions{}), what + ", synced state", p},
		crashPoint{c.MemFS.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(n, 0xc4a5))}), what + ", adversarial", p})
}

func (c *crashPoints) Create(name string) (vfs.File, error) {
	if c.counting.Load() {
		c.creates.Add(1)
	}
	f, err := c.MemFS.Create(name)
	c.crash("create", name)
	if err != nil {
		return nil, err
	}
	return crashPointFile{f, c, name}, nil
}

func (c *crashPoints) OpenAppend(name string) (vfs.File, error) {
	f, err := c.MemFS.OpenAppend(name)
	if err != nil {
		return nil, err
	}
	return crashPointFile{f, c, name}, nil
}

func (c *crashPoints) Remove(name string) error {
	err := c.MemFS.Remove(name)
	c.crash("remove", name)
	return err
}

func (c *crashPoints) RemoveAll(name string) error {
	err := c.MemFS.RemoveAll(name)
	c.crash("remove all", name)
	return err
}

func (c *crashPoints) Rename(oldname, newname string) error {
	if c.counting.Load() {
		c.renames.Add(1)
	}
	err := c.MemFS.Rename(oldname, newname)
	c.crash("rename", oldname+" "+newname)
	return err
}

func (c *crashPoints) MkdirAll(dir string, perm os.FileMode) error {
	err := c.MemFS.MkdirAll(dir, perm)
	c.crash("mkdir", dir)
	return err
}

func (c *crashPoints) SyncDir(dir string) error {
	if c.counting.Load() {
		c.dirSyncs.Add(1)
	}
	err := c.MemFS.SyncDir(dir)
	c.crash("sync dir", dir)
	return err
}

func (c *crashPoints) SyncFS(dir string) error {
	if c.counting.Load() {
		c.fsSyncs.Add(1)
	}
	err := c.MemFS.SyncFS(dir)
	c.crash("syncfs", dir)
	return err
}

type crashPointFile struct {
	vfs.File
	c    *crashPoints
	name string
}

func (f crashPointFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	f.c.crash("write", f.name)
	return n, err
}

func (f crashPointFile) Sync() error {
	if f.c.counting.Load() {
		f.c.fileSyncs.Add(1)
	}
	err := f.File.Sync()
	f.c.crash("sync", f.name)
	return err
}

func (f crashPointFile) Truncate(size int64) error {
	err := f.File.Truncate(size)
	f.c.crash("truncate", f.name)
	return err
}

// recordingHandler keeps the messages logged through it.
type recordingHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler            { return h }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	h.msgs = append(h.msgs, b.String())
	h.mu.Unlock()
	return nil
}

// find returns the first message that starts with prefix, or "".
func (h *recordingHandler) find(prefix string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.msgs {
		if strings.HasPrefix(m, prefix) {
			return m
		}
	}
	return ""
}
