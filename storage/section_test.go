package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/samsa-io/samsa/internal/vfs"
	"github.com/samsa-io/samsa/record"
)

// sectionFSes are the filesystems section tests run on: the in-memory one
// (sections are copied) and the real one (sendfile).
var sectionFSes = []string{"mem", "os"}

func openOn(t *testing.T, fsName string, cfg Config) (*Log, func(clean bool) *Log) {
	t.Helper()
	opts := Options{Logger: quietLogger()}
	dir := "/data/sec-0"
	if fsName == "mem" {
		opts.FS = vfs.NewCrashableMem()
	} else {
		dir = filepath.Join(t.TempDir(), "sec-0")
	}
	open := func(clean bool) *Log {
		t.Helper()
		o := opts
		o.Clean = clean
		l, err := Open(dir, cfg, o)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return l
	}
	return open(false), open
}

// mixedBatches appends n batches of sizes from a few bytes to tens of KiB,
// every seventh compressed with zstd.
func mixedBatches(t *testing.T, l *Log, n int) {
	t.Helper()
	for i := range n {
		codec := record.CodecNone
		if i%7 == 6 {
			codec = record.CodecZstd
		}
		size := []int{10, 300, 3000, 20000, 70000}[i%5]
		recs := make([]kv, 1+i%3)
		for j := range recs {
			recs[j] = kv{value: fmt.Sprintf("%d-%d-%s", i, j, strings.Repeat("v", size)), ts: int64(i)}
		}
		mustAppend(t, l, batch(t, codec, recs...))
	}
}

// hasCodec reports whether any batch of b uses codec c.
func hasCodec(t *testing.T, b []byte, c record.Codec) bool {
	for len(b) > 0 {
		h, err := record.ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if h.Attributes.Codec() == c {
			return true
		}
		b = b[h.Size():]
	}
	return false
}

// checkSectionsMatchRead reads from every offset with several limits, with
// Read and with ReadSection, and requires the same batches.
func checkSectionsMatchRead(t *testing.T, l *Log) {
	t.Helper()
	end := l.Offsets().LogEnd
	scratch := make([]byte, scratchMin)
	for off := int64(0); off <= end; off++ {
		for _, maxBytes := range []int{1, 400, 5000, 90000, 1 << 20} {
			for _, upTo := range []int64{end, max(end-4, 0)} {
				res, err := l.Read(nil, off, maxBytes, upTo)
				sec, offs, serr := l.ReadSection(off, maxBytes, upTo, scratch)
				if err != nil || serr != nil {
					t.Fatalf("read at %d: %v / %v", off, err, serr)
				}
				if offs != res.Offsets {
					t.Fatalf("read at %d: offsets %+v, Read gives %+v", off, offs, res.Offsets)
				}
				got, err := sec.AppendTo(nil)
				if err != nil {
					t.Fatal(err)
				}
				var w bytes.Buffer
				if _, err := sec.WriteTo(&w); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, res.Data) || !bytes.Equal(w.Bytes(), res.Data) || sec.Len() != len(res.Data) {
					t.Fatalf("read at %d max %d up to %d: section of %d bytes differs from Read's %d", off, maxBytes, upTo, sec.Len(), len(res.Data))
				}
				if sec.HasCodec(record.CodecZstd) != hasCodec(t, res.Data, record.CodecZstd) {
					t.Fatalf("read at %d: HasCodec(zstd) = %v", off, sec.HasCodec(record.CodecZstd))
				}
				sec.Release()
			}
		}
	}
}

func TestReadSectionFindsWhatReadReturns(t *testing.T) {
	for _, fsName := range sectionFSes {
		t.Run(fsName, func(t *testing.T) {
			cfg := smallConfig()
			cfg.SegmentBytes = 200 << 10
			l, open := openOn(t, fsName, cfg)
			mixedBatches(t, l, 40)
			if len(l.segs) < 3 {
				t.Fatalf("test needs several segments, has %d", len(l.segs))
			}
			checkSectionsMatchRead(t, l) // batches checked at append
			l.Close()
			l = open(true) // nothing checked yet: ReadSection reads and checks
			defer l.Close()
			checkSectionsMatchRead(t, l)
			if _, _, err := l.ReadSection(l.Offsets().LogEnd+1, 100, 1<<60, nil); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("read past the end: %v", err)
			}
		})
	}
}

// TestReadSectionRefusesACorruptBatch damages a batch of a cleanly closed
// log: the first read after reopening refuses it, and a read that starts
// before it stops before it. (The corruption tests run every read through
// both Read and ReadSection too.)
func TestReadSectionRefusesACorruptBatch(t *testing.T) {
	e := newEnv(t)
	l := e.open(smallConfig(), false)
	var pos []int64
	for i := range 6 {
		pos = append(pos, l.active().size.Load())
		mustAppend(t, l, valueBatch(t, 3, int64(i), "c"))
	}
	path := l.active().path(logSuffix)
	if err := l.Roll(); err != nil { // sealed: a trusted open does not read it
		t.Fatal(err)
	}
	mustAppend(t, l, valueBatch(t, 1, 7, "c"))
	l.Close()
	data, err := e.fs.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[pos[3]+record.HeaderSize+2] ^= 0x40 // inside batch 3's records
	if err := e.fs.WriteFile(path, data); err != nil {
		t.Fatal(err)
	}
	l = e.open(smallConfig(), true)
	defer l.Close()
	if _, _, err := l.ReadSection(9, 1<<20, 100, nil); !errors.Is(err, record.ErrCorrupt) {
		t.Fatalf("read of the damaged batch: %v, want a corruption error", err)
	}
	sec, _, err := l.ReadSection(0, 1<<20, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sec.Release()
	if int64(sec.Len()) != pos[3]-pos[0] {
		t.Fatalf("read from the start: %d bytes, want the %d before the damaged batch", sec.Len(), pos[3]-pos[0])
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair() (net.Conn, net.Conn, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	server, err := ln.Accept()
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	return server, client, nil
}

// sendOver writes sec to a fresh TCP connection and returns what the other
// end read, and the write's error. With wantSendfile, on Linux, it fails
// unless sendfile was used.
func sendOver(sec *Section, wantSendfile bool) ([]byte, error) {
	w, r, err := tcpPair()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(r)
		got <- b
	}()
	n, handled, err := sendSection(w, sec)
	if !handled {
		if wantSendfile && runtime.GOOS == "linux" {
			err = errors.New("sendfile was not used")
		} else {
			n, err = sec.WriteTo(w)
		}
	}
	w.Close()
	b := <-got
	if int64(len(b)) != n && err == nil {
		err = fmt.Errorf("wrote %d bytes, %d arrived", n, len(b))
	}
	return b, err
}

func TestSectionKeepsItsBytesWhenItsSegmentIsDeleted(t *testing.T) {
	for _, fsName := range sectionFSes {
		t.Run(fsName, func(t *testing.T) {
			l, _ := openOn(t, fsName, smallConfig())
			defer l.Close()
			for i := range 100 {
				mustAppend(t, l, valueBatch(t, 2, int64(i), "d"))
			}
			want, err := l.Read(nil, 0, 1000, 200)
			if err != nil {
				t.Fatal(err)
			}
			sec, _, err := l.ReadSection(0, 1000, 200, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer sec.Release()
			if err := l.SetLogStartOffset(150); err != nil {
				t.Fatal(err)
			}
			if l.segs[0].base == 0 {
				t.Fatal("the first segment was not deleted")
			}
			got, err := sendOver(&sec, fsName == "os")
			if err != nil || !bytes.Equal(got, want.Data) {
				t.Fatalf("section of a deleted segment: %d bytes, err %v; want %d bytes", len(got), err, len(want.Data))
			}
		})
	}
}

func TestSectionKeepsItsBytesWhenItsSegmentIsCompacted(t *testing.T) {
	for _, fsName := range sectionFSes {
		t.Run(fsName, func(t *testing.T) {
			e := newEnv(t)
			l, _ := openOn(t, fsName, compactConfig())
			defer l.Close()
			keyedLog(t, l, e, 30, 3, nil)
			want, err := l.Read(nil, 0, 4096, l.Offsets().LogEnd)
			if err != nil {
				t.Fatal(err)
			}
			sec, _, err := l.ReadSection(0, 4096, l.Offsets().LogEnd, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer sec.Release()
			stats, err := l.Compact(context.Background(), CompactOptions{})
			if err != nil || !stats.Compacted {
				t.Fatalf("compact: %+v, %v", stats, err)
			}
			after, err := l.Read(nil, 0, 4096, l.Offsets().LogEnd)
			if err != nil || bytes.Equal(after.Data, want.Data) {
				t.Fatalf("compaction changed nothing at the start (err %v)", err)
			}
			got, err := sendOver(&sec, fsName == "os")
			if err != nil || !bytes.Equal(got, want.Data) {
				t.Fatalf("section of a compacted segment: %d bytes, err %v; want the %d bytes from before", len(got), err, len(want.Data))
			}
		})
	}
}

func TestSectionIsRefusedAfterItsBytesAreTruncated(t *testing.T) {
	for _, fsName := range sectionFSes {
		t.Run(fsName, func(t *testing.T) {
			cfg := smallConfig()
			cfg.SegmentBytes = 1 << 20
			l, _ := openOn(t, fsName, cfg)
			defer l.Close()
			for i := range 20 {
				mustAppend(t, l, valueBatch(t, 2, int64(i), "before"))
			}
			sec, _, err := l.ReadSection(30, 1<<20, 40, nil)
			if err != nil || sec.Len() == 0 {
				t.Fatalf("read: %d bytes, %v", sec.Len(), err)
			}
			defer sec.Release()
			if _, err := l.TruncateTo(30); err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				mustAppend(t, l, valueBatch(t, 2, int64(i), "after"))
			}
			if _, err := sec.AppendTo(nil); !errors.Is(err, ErrSectionGone) {
				t.Fatalf("AppendTo after truncation: %v, want ErrSectionGone", err)
			}
			if got, err := sendOver(&sec, false); !errors.Is(err, ErrSectionGone) || len(got) != 0 {
				t.Fatalf("send after truncation: %d bytes, %v; want nothing and ErrSectionGone", len(got), err)
			}
			// A section found after the truncation holds the new batches.
			want, err := l.Read(nil, 30, 1<<20, 40)
			if err != nil {
				t.Fatal(err)
			}
			sec2, _, err := l.ReadSection(30, 1<<20, 40, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer sec2.Release()
			if got, err := sendOver(&sec2, fsName == "os"); err != nil || !bytes.Equal(got, want.Data) {
				t.Fatalf("send of a new section: %d bytes, %v", len(got), err)
			}
		})
	}
}

// TestSectionsOfOneSegmentSendConcurrently sends sections of one segment
// from several goroutines while batches are appended to it: each peer must
// get exactly its section's bytes (sendfile must not use the file handle's
// shared offset).
func TestSectionsOfOneSegmentSendConcurrently(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentBytes = 64 << 20
	l, _ := openOn(t, "os", cfg)
	defer l.Close()
	mixedBatches(t, l, 30)
	stop := make(chan struct{})
	var appender sync.WaitGroup
	appender.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := l.Append(valueBatch(t, 5, int64(i), "more")); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var senders sync.WaitGroup
	for g := range 4 {
		senders.Go(func() {
			for i := range 25 {
				off := int64((g*31 + i*7) % 40)
				want, err := l.Read(nil, off, 100_000, 40)
				if err != nil {
					t.Error(err)
					return
				}
				sec, _, err := l.ReadSection(off, 100_000, 40, nil)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := sendOver(&sec, true)
				sec.Release()
				if err != nil || !bytes.Equal(got, want.Data) {
					t.Errorf("section at %d: %d bytes, err %v; want %d bytes", off, len(got), err, len(want.Data))
					return
				}
			}
		})
	}
	senders.Wait()
	close(stop)
	appender.Wait()
}
