package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
)

// payloads returns inputs of several sizes and shapes.
func payloads() map[string][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 200_000)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog; "), 30_000) // ~1.3 MB
	return map[string][]byte{
		"empty":  {},
		"byte":   {42},
		"small":  []byte("hello, kafka"),
		"random": random,
		"text":   text,
		"zeros":  make([]byte, 3<<20),
	}
}

func TestCompressRoundTrip(t *testing.T) {
	for name, p := range payloads() {
		for _, c := range allCodecs {
			t.Run(c.String()+"/"+name, func(t *testing.T) {
				prefix := []byte("prefix")
				z, err := Compress(c, bytes.Clone(prefix), p)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(z, prefix) {
					t.Fatal("Compress did not append to dst")
				}
				out, err := Decompress(c, bytes.Clone(prefix), z[len(prefix):])
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out[len(prefix):], p) || !bytes.HasPrefix(out, prefix) {
					t.Fatalf("round trip mismatch: %d bytes in, %d out", len(p), len(out)-len(prefix))
				}
				// Into a buffer with room to spare, and a nil one.
				out, err = Decompress(c, make([]byte, 0, len(p)+10), z[len(prefix):])
				if err != nil || !bytes.Equal(out, p) {
					t.Fatalf("with capacity: %v", err)
				}
				out, err = Decompress(c, nil, z[len(prefix):])
				if err != nil || !bytes.Equal(out, p) {
					t.Fatalf("nil dst: %v", err)
				}
			})
		}
	}
}

// xerialFrame builds by hand the framing snappy-java writes: magic, version
// and compatible version, then blocks of big-endian length + raw snappy.
func xerialFrame(p []byte, blockSize int) []byte {
	b := []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}
	b = binary.BigEndian.AppendUint32(b, 1) // version
	b = binary.BigEndian.AppendUint32(b, 1) // compatible version
	for len(p) > 0 {
		n := min(blockSize, len(p))
		block := snappy.Encode(nil, p[:n])
		b = binary.BigEndian.AppendUint32(b, uint32(len(block)))
		b = append(b, block...)
		p = p[n:]
	}
	return b
}

func TestSnappyXerialFraming(t *testing.T) {
	for name, p := range payloads() {
		t.Run(name, func(t *testing.T) {
			framed := xerialFrame(p, 32<<10) // snappy-java's default block size
			out, err := Decompress(CodecSnappy, []byte("x"), framed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out[1:], p) {
				t.Fatalf("mismatch: %d bytes in, %d out", len(p), len(out)-1)
			}
		})
	}
	// A record batch whose snappy payload is xerial-framed decodes.
	recs := testRecords(20, 0, 1, 100)
	b := mustBuild(t, DefaultBuildOptions(), recs)
	framed := append(bytes.Clone(b[:HeaderSize]), xerialFrame(b[HeaderSize:], 128)...)
	binary.BigEndian.PutUint16(framed[offAttributes:], uint16(CodecSnappy))
	binary.BigEndian.PutUint32(framed[offLength:], uint32(len(framed)-12))
	UpdateCRC(framed)
	if _, err := Validate(framed, ValidateOptions{VerifyRecords: true}); err != nil {
		t.Fatal(err)
	}
	got, err := Records(framed)
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, recs)

	bad := []struct {
		name string
		b    []byte
	}{
		{"truncated block length", append(xerialFrame(nil, 1), 0, 0)},
		{"block longer than input", append(xerialFrame(nil, 1), 0, 0, 1, 0, 1, 2, 3)},
		{"garbage block", append(xerialFrame(nil, 1), 0, 0, 0, 3, 0xff, 0xff, 0xff)},
	}
	for _, tc := range bad {
		if _, err := Decompress(CodecSnappy, nil, tc.b); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
}

func TestSnappyRejectsS2Extensions(t *testing.T) {
	// S2's repeat-offset copies are not standard snappy; no Kafka client
	// could read them.
	p := bytes.Repeat([]byte("abcdefgh12345678"), 10_000)
	p = append(p, bytes.Repeat([]byte("xyz"), 10_000)...)
	z := s2.Encode(nil, p)
	if _, err := s2.Decode(nil, z); err != nil {
		t.Fatal(err)
	}
	if _, err := Decompress(CodecSnappy, nil, z); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Decompress of s2-only data: %v", err)
	}
}

func TestLZ4FrameLikeJava(t *testing.T) {
	// The Java client writes 64 KiB blocks; readers size their buffers by
	// the frame's declared block size, so Compress must not declare more.
	z, err := Compress(CodecLZ4, nil, make([]byte, 300_000))
	if err != nil {
		t.Fatal(err)
	}
	if binary.LittleEndian.Uint32(z) != 0x184D2204 {
		t.Fatalf("not an LZ4 frame: % x", z[:4])
	}
	if bd := z[5] >> 4 & 7; bd != 4 {
		t.Fatalf("block size id %d, want 4 (64 KiB)", bd)
	}
}

func TestGzipMultipleMembers(t *testing.T) {
	var b []byte
	for _, part := range []string{"first ", "second ", "third"} {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write([]byte(part))
		w.Close()
		b = append(b, buf.Bytes()...)
	}
	out, err := Decompress(CodecGzip, nil, b)
	if err != nil || string(out) != "first second third" {
		t.Fatalf("%q %v", out, err)
	}
}

func TestDecompressLimit(t *testing.T) {
	const limit = 1 << 20
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			for _, size := range []int{limit, limit + 1, 4 * limit} {
				z, err := Compress(c, nil, make([]byte, size))
				if err != nil {
					t.Fatal(err)
				}
				out, err := decompress(c, []byte("keep"), z, limit)
				if size <= limit {
					if err != nil || len(out) != size+4 {
						t.Fatalf("size %d at the limit: %d bytes, %v", size, len(out), err)
					}
					continue
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("size %d over the limit: %v", size, err)
				}
				if string(out) != "keep" {
					t.Fatalf("on error dst became %q", out[:min(len(out), 10)])
				}
			}
		})
	}
	// Xerial blocks count together toward the limit.
	framed := xerialFrame(make([]byte, limit+1), 32<<10)
	if _, err := decompress(CodecSnappy, nil, framed, limit); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("xerial over the limit: %v", err)
	}
}

// allocated returns the bytes f allocates on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestDecompressBombHeaders(t *testing.T) {
	// Sizes declared up front must be refused before anything that size is
	// allocated, whether they exceed the limit or only what the input could
	// possibly produce.
	zstdHeader := func(size uint64) []byte {
		h := zstd.Header{HasFCS: true, FrameContentSize: size, WindowSize: 1 << 20}
		b, err := h.AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		return append(b, 1, 0, 0) // an empty last raw block would follow
	}
	small, _ := Compress(CodecZstd, nil, []byte("small first frame"))
	snappyHeader := func(size uint64) []byte { return append(binary.AppendUvarint(nil, size), 0, 0, 0, 0) }
	xerialBlock := func(block []byte) []byte {
		return append(binary.BigEndian.AppendUint32(xerialFrame(nil, 1), uint32(len(block))), block...)
	}
	for _, tc := range []struct {
		name string
		c    Codec
		b    []byte
	}{
		{"zstd over the limit", CodecZstd, zstdHeader(MaxDecompressedSize + 1)},
		{"zstd over what the input can hold", CodecZstd, zstdHeader(100 << 20)},
		{"zstd second frame", CodecZstd, append(bytes.Clone(small), zstdHeader(100<<20)...)},
		{"snappy over the limit", CodecSnappy, snappyHeader(MaxDecompressedSize + 1)},
		{"snappy over what the input can hold", CodecSnappy, snappyHeader(100 << 20)},
		{"xerial over the limit", CodecSnappy, xerialBlock(snappyHeader(MaxDecompressedSize + 1))},
		{"xerial over what the input can hold", CodecSnappy, xerialBlock(snappyHeader(100 << 20))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			Decompress(tc.c, nil, tc.b) // warm the pools
			n := allocated(func() {
				if _, err := Decompress(tc.c, nil, tc.b); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Decompress: %v", err)
				}
			})
			// Nothing near the declared size; for zstd, a small multiple
			// of what the input could legitimately expand to (32768:1),
			// which the growing retries may try.
			bound := uint64(1 << 20)
			if tc.c == CodecZstd {
				bound += 4 * maxZstdRatio * uint64(len(tc.b))
			}
			if n > bound {
				t.Fatalf("allocated %d bytes for %d bytes of input", n, len(tc.b))
			}
		})
	}
}

func TestZstdFrames(t *testing.T) {
	// Frames without a declared size (as streaming encoders, the Java
	// client's among them, write them) and several frames in a row.
	rng := rand.New(rand.NewPCG(5, 6))
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(rng.IntN(4))
	}
	stream := func(p []byte) []byte {
		var buf bytes.Buffer
		w, _ := zstd.NewWriter(&buf)
		w.Write(p)
		w.Close()
		return buf.Bytes()
	}
	oneShot := func(p []byte) []byte { z, _ := Compress(CodecZstd, nil, p); return z }
	var h zstd.Header
	if err := h.Decode(stream(big)); err != nil || h.HasFCS {
		t.Fatalf("streamed frame declares its size (%v): the test needs one that does not", err)
	}
	for _, tc := range []struct {
		name string
		z    []byte
		want []byte
	}{
		{"streamed", stream(big), big},
		{"streamed small", stream([]byte("tiny")), []byte("tiny")},
		{"small then big", append(oneShot([]byte("tiny")), oneShot(big)...), append([]byte("tiny"), big...)},
		{"streamed then one-shot", append(stream(big[:1000]), oneShot(big)...), append(bytes.Clone(big[:1000]), big...)},
	} {
		for _, dst := range [][]byte{nil, make([]byte, 3, 100), make([]byte, 0, 4<<20)} {
			out, err := Decompress(CodecZstd, dst, tc.z)
			if err != nil || !bytes.Equal(out[len(dst):], tc.want) {
				t.Fatalf("%s into cap %d: %d bytes, %v", tc.name, cap(dst), len(out), err)
			}
		}
	}
}

func TestDecompressGarbage(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	inputs := [][]byte{nil, {0}, {0xff}, []byte("definitely not compressed")}
	for range 200 {
		b := make([]byte, rng.IntN(300))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		inputs = append(inputs, b)
	}
	// Truncations and bit flips of valid output.
	for _, c := range allCodecs[1:] {
		z, _ := Compress(c, nil, bytes.Repeat([]byte("some text to compress "), 500))
		for _, n := range []int{1, 4, 10, len(z) / 2, len(z) - 1} {
			inputs = append(inputs, z[:n])
		}
		for i := range 50 {
			f := bytes.Clone(z)
			f[rng.IntN(len(f))] ^= byte(1 << (i % 8))
			inputs = append(inputs, f)
		}
	}
	for _, c := range allCodecs[1:] {
		for _, in := range inputs {
			_, err := Decompress(c, nil, in)
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%v: error of the wrong kind: %v", c, err)
			}
		}
		if _, err := Decompress(c, nil, []byte("definitely not compressed")); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%v accepted garbage: %v", c, err)
		}
	}
}

func TestUnknownCodec(t *testing.T) {
	for _, c := range []Codec{5, 7, -1} {
		if _, err := Compress(c, nil, []byte("x")); !errors.Is(err, ErrUnsupportedCodec) {
			t.Fatalf("Compress %v: %v", c, err)
		}
		if _, err := Decompress(c, nil, []byte("x")); !errors.Is(err, ErrUnsupportedCodec) {
			t.Fatalf("Decompress %v: %v", c, err)
		}
	}
}
