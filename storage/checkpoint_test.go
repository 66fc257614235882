package storage

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samsa-io/samsa/internal/vfs"
)

// A new log's first checkpoint is written in place. Whatever of it a
// crash leaves (nothing, any prefix, garbage), the log opens as the new,
// empty log it was, takes appends, and keeps them.
func TestNewLogOpensWithItsFirstCheckpointTorn(t *testing.T) {
	e := newEnv(t)
	l := e.open(smallConfig(), false)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cpPath := filepath.Join(e.dir, checkpointName)
	full, err := e.fs.ReadFile(cpPath)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := decodeCheckpoint(full); err != nil || c != (checkpoint{}) {
		t.Fatalf("a new log's checkpoint reads %+v, %v; want the zero checkpoint", c, err)
	}
	type damage struct {
		name string
		data []byte // nil: the file is missing
	}
	var cases []damage
	for n := range len(full) {
		cases = append(cases, damage{fmt.Sprintf("cut@%d", n), full[:n:n]})
	}
	cases = append(cases, damage{"missing", nil}, damage{"zeros", make([]byte, len(full))},
		damage{"garbage", []byte(strings.Repeat("x", len(full)))})
	for _, d := range cases {
		for _, clean := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/clean=%v", d.name, clean), func(t *testing.T) {
				fs := e.fs.CrashClone(vfs.CrashOptions{})
				if d.data == nil {
					if err := fs.Remove(cpPath); err != nil {
						t.Fatal(err)
					}
				} else if err := fs.WriteFile(cpPath, d.data); err != nil {
					t.Fatal(err)
				}
				opts := Options{FS: fs, Logger: quietLogger(), Now: e.clock.Now, Clean: clean}
				l, err := Open(e.dir, smallConfig(), opts)
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				if off := l.Offsets(); off != (Offsets{}) {
					t.Fatalf("offsets %+v, want all zero", off)
				}
				for i := range 20 {
					mustAppend(t, l, valueBatch(t, 5, int64(i), "after"))
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				opts.Clean = true
				l, err = Open(e.dir, smallConfig(), opts)
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				if n := len(readRecords(t, l, 0)); n != 100 {
					t.Fatalf("read %d records after a clean reopen, want 100", n)
				}
			})
		}
	}
}

// A checkpoint that is not a new log's is never written in place: a crash
// part way through replacing it leaves the old one or the new one.
func TestCheckpointOfAnOldLogIsReplacedWhole(t *testing.T) {
	if err := createCheckpoint(vfs.NewCrashableMem(), "/", checkpoint{LogStart: 1}, false); err == nil {
		t.Fatal("createCheckpoint wrote a checkpoint that is not the zero one")
	}
	fs := &crashPoints{MemFS: vfs.NewCrashableMem()}
	c := newClock()
	s := openStoreBig(t, fs, c)
	l, err := s.Create(TopicPartition{"t", 0}, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		mustAppend(t, l, valueBatch(t, 1, int64(i), "r"))
	}
	if err := l.SetLogStartOffset(4); err != nil {
		t.Fatal(err)
	}
	fs.promise.Store(&crashPromise{created: true, durable: 10, logStart: 4})
	fs.recording.Store(true)
	if err := l.SetLogStartOffset(7); err != nil {
		t.Fatal(err)
	}
	fs.recording.Store(false)
	s.Close()
	if len(fs.points) == 0 {
		t.Fatal("no crash points")
	}
	for _, cp := range fs.points {
		s := openStoreBig(t, cp.fs, c)
		l, _ := s.Log(TopicPartition{"t", 0})
		if got := l.Offsets().LogStart; got != 4 && got != 7 {
			t.Fatalf("after %s: log start %d, want 4 or 7", cp.op, got)
		}
		s.Close()
	}
}
