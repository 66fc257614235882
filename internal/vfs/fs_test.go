package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestConformance runs one suite against both implementations, so that
// MemFS behaves as the real filesystem does where the engine can tell.
func TestConformance(t *testing.T) {
	impls := []struct {
		name string
		new  func(t *testing.T) (FS, string)
	}{
		{"os", func(t *testing.T) (FS, string) { return Default, t.TempDir() }},
		{"mem", func(t *testing.T) (FS, string) {
			m := NewCrashableMem()
			if err := m.MkdirAll("/tmp/conformance", 0o755); err != nil {
				t.Fatal(err)
			}
			return m, "/tmp/conformance"
		}},
	}
	tests := []struct {
		name string
		run  func(t *testing.T, fsys FS, dir string)
	}{
		{"WriteThenReadAt", testWriteThenReadAt},
		{"OpenAppendWritesAtEnd", testOpenAppendWritesAtEnd},
		{"HandlesShareOneFile", testHandlesShareOneFile},
		{"TruncateThenAppend", testTruncateThenAppend},
		{"CreateTruncatesExisting", testCreateTruncatesExisting},
		{"OpenIsReadOnly", testOpenIsReadOnly},
		{"RenameOverKeepsOpenHandle", testRenameOverKeepsOpenHandle},
		{"RemoveWhileOpen", testRemoveWhileOpen},
		{"ListIsSorted", testListIsSorted},
		{"Stat", testStat},
		{"NotExistErrors", testNotExistErrors},
		{"Directories", testDirectories},
		{"ClosedFile", testClosedFile},
		{"Syncs", testSyncs},
	}
	for _, impl := range impls {
		for _, tt := range tests {
			t.Run(impl.name+"/"+tt.name, func(t *testing.T) {
				fsys, dir := impl.new(t)
				tt.run(t, fsys, dir)
			})
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func create(t *testing.T, fsys FS, name, content string) File {
	t.Helper()
	f, err := fsys.Create(name)
	must(t, err)
	_, err = io.WriteString(f, content)
	must(t, err)
	return f
}

// readAll reads f's whole content with ReadAt.
func readAll(t *testing.T, f File) string {
	t.Helper()
	size, err := f.Size()
	must(t, err)
	buf := make([]byte, size)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !(err == io.EOF && n == len(buf)) {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func wantContent(t *testing.T, f File, want string) {
	t.Helper()
	if got := readAll(t, f); got != want {
		t.Fatalf("content = %q, want %q", got, want)
	}
}

func testWriteThenReadAt(t *testing.T, fsys FS, dir string) {
	f := create(t, fsys, filepath.Join(dir, "a"), "hello")
	defer f.Close()
	_, err := f.Write([]byte(" world"))
	must(t, err)
	size, err := f.Size()
	must(t, err)
	if size != 11 {
		t.Fatalf("size = %d, want 11", size)
	}
	buf := make([]byte, 5)
	n, err := f.ReadAt(buf, 6)
	if err != nil || n != 5 || string(buf) != "world" {
		t.Fatalf("ReadAt(6) = %d, %v, %q", n, err, buf)
	}
	n, err = f.ReadAt(buf, 8)
	if err != io.EOF || n != 3 || string(buf[:n]) != "rld" {
		t.Fatalf("ReadAt past end = %d, %v, %q; want 3, EOF, rld", n, err, buf[:n])
	}
	n, err = f.ReadAt(buf, 11)
	if err != io.EOF || n != 0 {
		t.Fatalf("ReadAt at end = %d, %v; want 0, EOF", n, err)
	}
}

func testOpenAppendWritesAtEnd(t *testing.T, fsys FS, dir string) {
	name := filepath.Join(dir, "a")
	must(t, create(t, fsys, name, "abc").Close())
	f, err := fsys.OpenAppend(name)
	must(t, err)
	defer f.Close()
	_, err = f.Write([]byte("def"))
	must(t, err)
	wantContent(t, f, "abcdef")
}

func testHandlesShareOneFile(t *testing.T, fsys FS, dir string) {
	name := filepath.Join(dir, "a")
	w1 := create(t, fsys, name, "one.")
	defer w1.Close()
	w2, err := fsys.OpenAppend(name)
	must(t, err)
	defer w2.Close()
	r, err := fsys.Open(name)
	must(t, err)
	defer r.Close()
	_, err = w2.Write([]byte("two."))
	must(t, err)
	_, err = w1.Write([]byte("three."))
	must(t, err)
	wantContent(t, r, "one.two.three.")
}

func testTruncateThenAppend(t *testing.T, fsys FS, dir string) {
	f := create(t, fsys, filepath.Join(dir, "a"), "abcdef")
	defer f.Close()
	must(t, f.Truncate(3))
	_, err := f.Write([]byte("XY"))
	must(t, err)
	wantContent(t, f, "abcXY")
	must(t, f.Truncate(7))
	wantContent(t, f, "abcXY\x00\x00")
	_, err = f.Write([]byte("!"))
	must(t, err)
	wantContent(t, f, "abcXY\x00\x00!")
}

func testCreateTruncatesExisting(t *testing.T, fsys FS, dir string) {
	name := filepath.Join(dir, "a")
	old := create(t, fsys, name, "old content")
	defer old.Close()
	f := create(t, fsys, name, "new")
	defer f.Close()
	wantContent(t, old, "new") // the same file, truncated
}

func testOpenIsReadOnly(t *testing.T, fsys FS, dir string) {
	name := filepath.Join(dir, "a")
	must(t, create(t, fsys, name, "abc").Close())
	f, err := fsys.Open(name)
	must(t, err)
	defer f.Close()
	if _, err := f.Write([]byte("x")); err == nil {
		t.Fatal("Write on a file opened read-only succeeded")
	}
	if err := f.Truncate(0); err == nil {
		t.Fatal("Truncate on a file opened read-only succeeded")
	}
	wantContent(t, f, "abc")
}

func testRenameOverKeepsOpenHandle(t *testing.T, fsys FS, dir string) {
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	must(t, create(t, fsys, a, "AAA").Close())
	hb := create(t, fsys, b, "BB")
	defer hb.Close()
	must(t, fsys.Rename(a, b))
	if _, err := fsys.Stat(a); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat(old name) after rename: %v, want ErrNotExist", err)
	}
	f, err := fsys.Open(b)
	must(t, err)
	defer f.Close()
	wantContent(t, f, "AAA")
	_, err = hb.Write([]byte("B")) // the replaced file lives on, unnamed
	must(t, err)
	wantContent(t, hb, "BBB")
	wantContent(t, f, "AAA")
}

func testRemoveWhileOpen(t *testing.T, fsys FS, dir string) {
	name := filepath.Join(dir, "a")
	f := create(t, fsys, name, "abc")
	defer f.Close()
	must(t, fsys.Remove(name))
	if _, err := fsys.Stat(name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat after Remove: %v, want ErrNotExist", err)
	}
	_, err := f.Write([]byte("def"))
	must(t, err)
	wantContent(t, f, "abcdef")
	must(t, f.Sync())
	names, err := fsys.List(dir)
	must(t, err)
	if len(names) != 0 {
		t.Fatalf("List after Remove = %q, want none", names)
	}
	g := create(t, fsys, name, "new") // a new file under the old name
	defer g.Close()
	wantContent(t, f, "abcdef")
}

func testListIsSorted(t *testing.T, fsys FS, dir string) {
	for _, n := range []string{"c", "a", "b.log", "b"} {
		must(t, create(t, fsys, filepath.Join(dir, n), n).Close())
	}
	must(t, fsys.MkdirAll(filepath.Join(dir, "d", "e"), 0o755))
	names, err := fsys.List(dir)
	must(t, err)
	if want := []string{"a", "b", "b.log", "c", "d"}; !slices.Equal(names, want) {
		t.Fatalf("List = %q, want %q", names, want)
	}
}

func testStat(t *testing.T, fsys FS, dir string) {
	f := create(t, fsys, filepath.Join(dir, "a"), "12345")
	defer f.Close()
	fi, err := fsys.Stat(filepath.Join(dir, "a"))
	must(t, err)
	if fi.Name() != "a" || fi.Size() != 5 || fi.IsDir() || !fi.Mode().IsRegular() {
		t.Fatalf("Stat(file) = %q size %d dir %v mode %v", fi.Name(), fi.Size(), fi.IsDir(), fi.Mode())
	}
	must(t, fsys.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	fi, err = fsys.Stat(filepath.Join(dir, "sub"))
	must(t, err)
	if fi.Name() != "sub" || !fi.IsDir() || !fi.Mode().IsDir() {
		t.Fatalf("Stat(dir) = %q dir %v mode %v", fi.Name(), fi.IsDir(), fi.Mode())
	}
}

func testNotExistErrors(t *testing.T, fsys FS, dir string) {
	missing := filepath.Join(dir, "missing")
	inMissingDir := filepath.Join(dir, "nodir", "a")
	present := filepath.Join(dir, "present")
	must(t, create(t, fsys, present, "").Close())
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want ErrNotExist", op, err)
		}
		var pe *os.PathError
		var le *os.LinkError
		if !errors.As(err, &pe) && !errors.As(err, &le) {
			t.Errorf("%s: %T is not *os.PathError or *os.LinkError", op, err)
		}
	}
	_, err := fsys.Open(missing)
	check("Open", err)
	_, err = fsys.OpenAppend(missing)
	check("OpenAppend", err)
	_, err = fsys.Create(inMissingDir)
	check("Create in a missing dir", err)
	_, err = fsys.Stat(missing)
	check("Stat", err)
	check("Remove", fsys.Remove(missing))
	check("Rename", fsys.Rename(missing, present))
	check("Rename into a missing dir", fsys.Rename(present, inMissingDir))
	_, err = fsys.List(missing)
	check("List", err)
	check("SyncDir", fsys.SyncDir(missing))
	if err := fsys.RemoveAll(missing); err != nil {
		t.Errorf("RemoveAll(missing) = %v, want nil", err)
	}
}

func testDirectories(t *testing.T, fsys FS, dir string) {
	deep := filepath.Join(dir, "x", "y", "z")
	must(t, fsys.MkdirAll(deep, 0o755))
	must(t, fsys.MkdirAll(deep, 0o755)) // again: no error
	must(t, create(t, fsys, filepath.Join(deep, "f"), "data").Close())
	if err := fsys.MkdirAll(filepath.Join(deep, "f"), 0o755); err == nil {
		t.Error("MkdirAll over a file succeeded")
	}
	if err := fsys.Remove(filepath.Join(dir, "x")); err == nil {
		t.Error("Remove of a non-empty directory succeeded")
	}
	if _, err := fsys.Create(deep); err == nil {
		t.Error("Create over a directory succeeded")
	}
	must(t, fsys.Rename(filepath.Join(dir, "x", "y"), filepath.Join(dir, "w")))
	f, err := fsys.Open(filepath.Join(dir, "w", "z", "f"))
	must(t, err)
	wantContent(t, f, "data")
	must(t, f.Close())
	must(t, fsys.MkdirAll(filepath.Join(dir, "empty"), 0o755))
	must(t, fsys.Remove(filepath.Join(dir, "empty")))
	must(t, fsys.RemoveAll(filepath.Join(dir, "w")))
	names, err := fsys.List(dir)
	must(t, err)
	if want := []string{"x"}; !slices.Equal(names, want) {
		t.Fatalf("List = %q, want %q", names, want)
	}
}

func testClosedFile(t *testing.T, fsys FS, dir string) {
	f := create(t, fsys, filepath.Join(dir, "a"), "abc")
	must(t, f.Close())
	_, err := f.Write([]byte("x"))
	if !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	_, err = f.ReadAt(make([]byte, 1), 0)
	if !errors.Is(err, os.ErrClosed) {
		t.Errorf("ReadAt after Close: %v, want ErrClosed", err)
	}
	if err := f.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
}

func testSyncs(t *testing.T, fsys FS, dir string) {
	f := create(t, fsys, filepath.Join(dir, "a"), "abc")
	defer f.Close()
	must(t, f.Sync())
	must(t, f.Truncate(1))
	must(t, f.Sync())
	must(t, fsys.SyncDir(dir))
	s, ok := fsys.(FSSyncer)
	if !ok {
		t.Skip("no FSSyncer")
	}
	must(t, s.SyncFS(dir))
	if err := s.SyncFS(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SyncFS(missing) = %v, want ErrNotExist", err)
	}
}

func TestOSFileExposesOSFile(t *testing.T) {
	name := filepath.Join(t.TempDir(), "a")
	f := create(t, Default, name, "abc")
	defer f.Close()
	of, ok := f.(OSFiler)
	if !ok {
		t.Fatalf("%T does not implement OSFiler", f)
	}
	osf := of.OSFile()
	if osf == nil || osf.Name() != name {
		t.Fatalf("OSFile() = %v, want the *os.File of %s", osf, name)
	}
	fi, err := osf.Stat()
	must(t, err)
	if fi.Size() != 3 {
		t.Fatalf("size through *os.File = %d, want 3", fi.Size())
	}

	m := NewCrashableMem()
	mf, err := m.Create("a")
	must(t, err)
	if _, ok := mf.(OSFiler); ok {
		t.Fatal("a MemFS file implements OSFiler")
	}
}
