package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

// newMem returns a MemFS with a durable directory /d.
func newMem(t *testing.T) *MemFS {
	t.Helper()
	m := NewCrashableMem()
	must(t, m.MkdirAll("/d", 0o755))
	return m
}

func crash(m *MemFS) *MemFS { return m.CrashClone(CrashOptions{}) }

// wantFile checks that name holds want in m.
func wantFile(t *testing.T, m *MemFS, name, want string) {
	t.Helper()
	got, err := m.ReadFile(name)
	must(t, err)
	if string(got) != want {
		t.Fatalf("%s = %q, want %q\n%s", name, got, want, m)
	}
}

func wantAbsent(t *testing.T, m *MemFS, name string) {
	t.Helper()
	if _, err := m.Stat(name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat(%s) = %v, want ErrNotExist\n%s", name, err, m)
	}
}

func TestCrashLosesUnsyncedData(t *testing.T) {
	m := newMem(t)
	f := create(t, m, "/d/a", "abc")
	must(t, f.Sync())
	must(t, m.SyncDir("/d"))
	_, err := f.Write([]byte("def"))
	must(t, err)
	wantFile(t, crash(m), "/d/a", "abc")
	must(t, f.Sync())
	wantFile(t, crash(m), "/d/a", "abcdef")
}

func TestCrashLosesFileInUnsyncedDir(t *testing.T) {
	m := newMem(t)
	f := create(t, m, "/d/a", "abc")
	must(t, f.Sync())
	c := crash(m)
	wantAbsent(t, c, "/d/a")
	names, err := c.List("/d")
	must(t, err)
	if len(names) != 0 {
		t.Fatalf("List = %q, want none", names)
	}
	must(t, m.SyncDir("/d"))
	wantFile(t, crash(m), "/d/a", "abc")
}

func TestCrashKeepsMkdirAll(t *testing.T) {
	m := NewCrashableMem()
	must(t, m.MkdirAll("/x/y/z", 0o755))
	fi, err := crash(m).Stat("/x/y/z")
	must(t, err)
	if !fi.IsDir() {
		t.Fatal("/x/y/z is not a directory after crash")
	}
}

func TestCrashRevertsUnsyncedRename(t *testing.T) {
	m := newMem(t)
	must(t, create(t, m, "/d/a.tmp", "new").Sync())
	must(t, create(t, m, "/d/a", "old").Sync())
	must(t, m.SyncDir("/d"))
	must(t, m.Rename("/d/a.tmp", "/d/a"))
	c := crash(m)
	wantFile(t, c, "/d/a", "old")
	wantFile(t, c, "/d/a.tmp", "new")
	must(t, m.SyncDir("/d"))
	c = crash(m)
	wantFile(t, c, "/d/a", "new")
	wantAbsent(t, c, "/d/a.tmp")
}

func TestCrashRenameAcrossDirsNeedsBothSynced(t *testing.T) {
	m := newMem(t)
	must(t, m.MkdirAll("/e", 0o755))
	must(t, create(t, m, "/d/a", "abc").Sync())
	must(t, m.SyncDir("/d"))
	must(t, m.Rename("/d/a", "/e/a"))
	must(t, m.SyncDir("/d"))
	c := crash(m) // the removal from /d is durable, the entry in /e is not
	wantAbsent(t, c, "/d/a")
	wantAbsent(t, c, "/e/a")
	must(t, m.SyncDir("/e"))
	c = crash(m)
	wantAbsent(t, c, "/d/a")
	wantFile(t, c, "/e/a", "abc")
}

func TestCrashKeepsUnsyncedRemove(t *testing.T) {
	m := newMem(t)
	f := create(t, m, "/d/a", "abc")
	must(t, f.Sync())
	must(t, m.SyncDir("/d"))
	must(t, m.Remove("/d/a"))
	_, err := f.Write([]byte("def")) // through the open handle
	must(t, err)
	must(t, f.Sync())
	wantFile(t, crash(m), "/d/a", "abcdef")
	must(t, m.SyncDir("/d"))
	wantAbsent(t, crash(m), "/d/a")
}

func TestCrashKeepsSyncedTruncate(t *testing.T) {
	m := newMem(t)
	f := create(t, m, "/d/a", "0123456789")
	must(t, f.Sync())
	must(t, m.SyncDir("/d"))
	must(t, f.Truncate(4))
	_, err := f.Write([]byte("xy"))
	must(t, err)
	wantFile(t, crash(m), "/d/a", "0123456789")
	must(t, f.Sync())
	wantFile(t, crash(m), "/d/a", "0123xy")
}

func TestCrashCloneIsIndependent(t *testing.T) {
	m := newMem(t)
	f := create(t, m, "/d/a", "abc")
	must(t, f.Sync())
	must(t, m.SyncDir("/d"))
	c := crash(m)
	// Writes to the original, including over the bytes the clone shares.
	must(t, f.Truncate(1))
	_, err := f.Write([]byte("ZZZZ"))
	must(t, err)
	must(t, f.Sync())
	must(t, m.Remove("/d/a"))
	must(t, m.SyncDir("/d"))
	wantFile(t, c, "/d/a", "abc")
	// Writes to the clone.
	g, err := c.OpenAppend("/d/a")
	must(t, err)
	_, err = g.Write([]byte("def"))
	must(t, err)
	must(t, c.WriteFile("/d/b", []byte("b")))
	wantFile(t, c, "/d/a", "abcdef")
	wantAbsent(t, m, "/d/b")
	wantContent(t, f, "aZZZZ")
	// A clone of the clone.
	wantFile(t, crash(c), "/d/a", "abc")
}

func TestWriteFileIsDurable(t *testing.T) {
	m := newMem(t)
	f := create(t, m, "/d/a", "abcdef")
	must(t, m.WriteFile("/d/a", []byte("ab")))
	wantContent(t, f, "ab") // same file
	must(t, m.WriteFile("/d/b", []byte("b")))
	c := crash(m)
	wantFile(t, c, "/d/a", "ab")
	wantFile(t, c, "/d/b", "b")
	if err := m.WriteFile("/missing/a", nil); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("WriteFile in a missing dir = %v, want ErrNotExist", err)
	}
}

// fileModel tracks what a crash may leave of one file.
type fileModel struct {
	current, synced []byte
	minLen          int // shortest len(current) since the last sync
}

// allows reports whether got is a content that a crash may leave.
func (fm *fileModel) allows(got []byte) bool {
	if fm.minLen >= len(fm.synced) {
		return bytes.HasPrefix(got, fm.synced) && bytes.HasPrefix(fm.current, got)
	}
	return bytes.Equal(got, fm.synced) || (len(got) >= fm.minLen && bytes.HasPrefix(fm.current, got))
}

// TestRandomCrashKeepsPrefixOfUnsyncedData writes, truncates and syncs one
// file at random and crashes it at random points, checking that what
// survives is always allowed by the model, and that every kind of outcome
// happens.
func TestRandomCrashKeepsPrefixOfUnsyncedData(t *testing.T) {
	var sawSynced, sawAll, sawPart, sawTruncKept, sawTruncLost bool
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 1))
		m := newMem(t)
		f := create(t, m, "/d/f", "")
		must(t, m.SyncDir("/d"))
		fm := &fileModel{}
		for step := range 60 {
			switch op := rng.IntN(10); {
			case op < 5:
				p := make([]byte, 1+rng.IntN(20))
				for i := range p {
					p[i] = byte('a' + rng.IntN(26))
				}
				_, err := f.Write(p)
				must(t, err)
				fm.current = append(slices.Clip(fm.current), p...)
			case op < 7:
				must(t, f.Sync())
				fm.synced, fm.minLen = fm.current, len(fm.current)
			case op < 8:
				n := rng.IntN(len(fm.current) + 1)
				must(t, f.Truncate(int64(n)))
				fm.current = fm.current[:n:n]
				fm.minLen = min(fm.minLen, n)
			default:
				c := m.CrashClone(CrashOptions{Rand: rng})
				got, err := c.ReadFile("/d/f")
				must(t, err)
				if !fm.allows(got) {
					t.Fatalf("seed %d step %d: crash left %q; synced %q, current %q, min len %d",
						seed, step, got, fm.synced, fm.current, fm.minLen)
				}
				truncated := fm.minLen < len(fm.synced)
				switch {
				case truncated && bytes.Equal(got, fm.synced):
					sawTruncLost = true
				case truncated:
					sawTruncKept = true
				case len(fm.current) == len(fm.synced):
				case bytes.Equal(got, fm.synced):
					sawSynced = true
				case bytes.Equal(got, fm.current):
					sawAll = true
				default:
					sawPart = true
				}
			}
		}
	}
	if !(sawSynced && sawAll && sawPart && sawTruncKept && sawTruncLost) {
		t.Errorf("outcomes: synced only %v, all %v, part %v, truncate kept %v, truncate lost %v",
			sawSynced, sawAll, sawPart, sawTruncKept, sawTruncLost)
	}
}

// TestRandomCrashKeepsOrLosesEachDirChange checks that each unsynced change
// survives in some crashes and not in others, that a rename within one
// directory is never half done, and that a seed decides the outcome.
func TestRandomCrashKeepsOrLosesEachDirChange(t *testing.T) {
	m := newMem(t)
	for _, n := range []string{"old", "gone", "tmp"} {
		must(t, create(t, m, "/d/"+n, n).Sync())
	}
	must(t, m.SyncDir("/d"))
	must(t, create(t, m, "/d/new", "new").Sync())
	must(t, m.Remove("/d/gone"))
	must(t, m.Rename("/d/tmp", "/d/old"))

	seen := map[string]bool{}
	for seed := range uint64(64) {
		c := m.CrashClone(CrashOptions{Rand: rand.New(rand.NewPCG(seed, 2))})
		names, err := c.List("/d")
		must(t, err)
		old, err := c.ReadFile("/d/old")
		must(t, err)
		key := fmt.Sprintf("%v %s", names, old)
		switch key {
		case "[gone old tmp] old", "[gone old] tmp", "[old tmp] old", "[old] tmp",
			"[gone new old tmp] old", "[gone new old] tmp", "[new old tmp] old", "[new old] tmp":
		default:
			t.Fatalf("seed %d: crash left %s", seed, key)
		}
		seen[key] = true
		again := m.CrashClone(CrashOptions{Rand: rand.New(rand.NewPCG(seed, 2))})
		if c.String() != again.String() {
			t.Fatalf("seed %d: two crashes differ:\n%s\n%s", seed, c, again)
		}
	}
	if len(seen) != 8 {
		t.Errorf("saw %d of 8 outcomes: %v", len(seen), seen)
	}
}

func TestSyncFSSyncsEverything(t *testing.T) {
	m := newMem(t)
	must(t, m.MkdirAll("/e/f", 0o755))
	f := create(t, m, "/d/a", "abc")
	g := create(t, m, "/e/f/b", "b")
	must(t, m.Rename("/e/f/b", "/e/b"))
	must(t, m.SyncFS("/d"))
	_, err := f.Write([]byte("lost"))
	must(t, err)
	c := m.CrashClone(CrashOptions{})
	wantFile(t, c, "/d/a", "abc")
	wantFile(t, c, "/e/b", "b")
	wantAbsent(t, c, "/e/f/b")
	must(t, g.Close())
}

func TestString(t *testing.T) {
	m := newMem(t)
	f := create(t, m, "/d/a", "abc")
	must(t, f.Sync())
	must(t, m.WriteFile("/d/b", []byte("b")))
	must(t, m.Remove("/d/b"))
	_, err := f.Write([]byte("de"))
	must(t, err)
	want := "/\n/d/\n/d/a 5 (synced 3) [name not synced]\n/d/b [removal not synced]\n"
	if got := m.String(); got != want {
		t.Fatalf("String() =\n%s\nwant\n%s", got, want)
	}
}

// TestConcurrentUse runs writers, readers and crashes at once; run it with
// -race.
func TestConcurrentUse(t *testing.T) {
	m := newMem(t)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			name := fmt.Sprintf("/d/f%d", w)
			f, err := m.Create(name)
			if err != nil {
				t.Error(err)
				return
			}
			r, err := m.Open(name)
			if err != nil {
				t.Error(err)
				return
			}
			chunk := []byte(strings.Repeat(string(rune('a'+w)), 100))
			buf := make([]byte, 100)
			for i := range 200 {
				if _, err := f.Write(chunk); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 {
					_ = f.Sync()
					_ = m.SyncDir("/d")
				}
				if _, err := r.ReadAt(buf, int64(i)*100); err != nil || !bytes.Equal(buf, chunk) {
					t.Errorf("ReadAt: %v, %q", err, buf)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for seed := range uint64(50) {
			c := m.CrashClone(CrashOptions{Rand: rand.New(rand.NewPCG(seed, 3))})
			names, err := c.List("/d")
			if err != nil {
				t.Error(err)
				return
			}
			for _, n := range names {
				data, err := c.ReadFile("/d/" + n)
				if err != nil {
					t.Error(err)
					return
				}
				letter := string(rune('a' + n[1] - '0'))
				if len(bytes.Trim(data, letter)) > 0 {
					t.Errorf("clone /d/%s holds other bytes than %s", n, letter)
					return
				}
			}
		}
	})
	wg.Wait()
}

// BenchmarkAppendSync is the storage engine's pattern: appends of a few KB,
// each synced, to segments rolled at 1 MiB.
func BenchmarkAppendSync(b *testing.B) {
	m := NewCrashableMem()
	chunk := make([]byte, 4096)
	b.SetBytes(int64(len(chunk)))
	var f File
	i := 0
	for b.Loop() {
		if i%256 == 0 {
			var err error
			if f, err = m.Create(fmt.Sprintf("/seg%d", i/256%8)); err != nil {
				b.Fatal(err)
			}
		}
		i++
		if _, err := f.Write(chunk); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}
