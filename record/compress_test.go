package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
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

func TestDecompressBombHeaders(t *testing.T) {
	// Headers that declare a huge output must be refused before anything
	// that size is allocated.
	var h zstd.Header
	h.HasFCS, h.FrameContentSize, h.WindowSize = true, MaxDecompressedSize+1, 1<<20
	zhdr, err := h.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	snappyHdr := binary.AppendUvarint(nil, MaxDecompressedSize+1)
	for _, tc := range []struct {
		c Codec
		b []byte
	}{
		{CodecZstd, zhdr},
		{CodecSnappy, snappyHdr},
		{CodecSnappy, append(xerialFrame(nil, 1), append([]byte{0, 0, 0, byte(len(snappyHdr))}, snappyHdr...)...)},
	} {
		allocs := testing.AllocsPerRun(1, func() {
			if _, err := Decompress(tc.c, nil, tc.b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%v: %v", tc.c, err)
			}
		})
		if allocs > 10 {
			t.Fatalf("%v: %v allocations", tc.c, allocs)
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
