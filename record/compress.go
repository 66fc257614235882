package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxDecompressedSize bounds what Decompress (and so Records, Iter and
// Validate with VerifyRecords) will inflate one batch to. A payload that
// would decompress to more is rejected with ErrCorrupt, so a small
// "decompression bomb" cannot make the broker allocate without bound.
const MaxDecompressedSize = 256 << 20

// Compress appends the compressed form of src to dst and returns the
// extended slice (dst may be nil). The output is what Kafka clients write:
// a gzip member (level 6), a raw snappy block (as franz-go and librdkafka
// write it; the Java client also reads it), an LZ4 frame with 64 KiB
// independent blocks, or a zstd frame (level 3). CodecNone appends src as is.
func Compress(c Codec, dst, src []byte) ([]byte, error) {
	switch c {
	case CodecNone:
		return append(dst, src...), nil
	case CodecGzip:
		return compressStream(&gzipWriters, CodecGzip, dst, src)
	case CodecSnappy:
		return compressSnappy(dst, src), nil
	case CodecLZ4:
		return compressStream(&lz4Writers, CodecLZ4, dst, src)
	case CodecZstd:
		return compressZstd(dst, src), nil
	}
	return dst, unsupportedf("cannot compress with %v", c)
}

// Decompress appends the decompressed form of src to dst and returns the
// extended slice (dst may be nil; give it spare capacity to avoid
// allocating). Snappy input may be a raw block or xerial-framed, as the Java
// client writes it; LZ4 input is the LZ4 frame format; gzip input may hold
// several members. Output beyond MaxDecompressedSize, or input that does not
// decode, is an ErrCorrupt error; an unknown codec is ErrUnsupportedCodec. On
// error the returned slice has dst's original length (its spare capacity may
// have grown and been scribbled on). Decompress never panics on garbage.
func Decompress(c Codec, dst, src []byte) ([]byte, error) {
	return decompress(c, dst, src, MaxDecompressedSize)
}

// decompress is Decompress with an explicit output limit; the fuzz tests use
// a small one to stay fast.
func decompress(c Codec, dst, src []byte, limit int) ([]byte, error) {
	switch c {
	case CodecNone:
		if len(src) > limit {
			return dst, corruptf("none: %d bytes exceed the %d byte limit", len(src), limit)
		}
		return append(dst, src...), nil
	case CodecGzip:
		return decompressGzip(dst, src, limit)
	case CodecSnappy:
		return decompressSnappy(dst, src, limit)
	case CodecLZ4:
		return decompressLZ4(dst, src, limit)
	case CodecZstd:
		return decompressZstd(dst, src, limit)
	}
	return dst, unsupportedf("cannot decompress %v", c)
}

// appendWriter is an io.Writer that appends to a slice; pooled compressors
// write into it so that Compress can append to the caller's dst.
// streamWriter is a pooled stream compressor (gzip, lz4) writing into a
// slice.
type streamWriter struct {
	out appendWriter
	zw  interface {
		io.WriteCloser
		Reset(io.Writer)
	}
}

// compressStream compresses src with a streamWriter from pool and appends
// the result to dst.
func compressStream(pool *sync.Pool, c Codec, dst, src []byte) ([]byte, error) {
	w := pool.Get().(*streamWriter)
	defer pool.Put(w)
	w.out.b = dst
	w.zw.Reset(&w.out)
	_, err := w.zw.Write(src)
	if err == nil {
		err = w.zw.Close()
	}
	out := w.out.b
	w.out.b = nil
	if err != nil {
		return dst, corruptf("cannot compress with %s: %v", c, err)
	}
	return out, nil
}

type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// readAll appends everything r yields to dst, failing once more than limit
// bytes have come out. hint, if positive, is the expected output size.
func readAll(c Codec, r io.Reader, dst []byte, limit, hint int) ([]byte, error) {
	start := len(dst)
	end := start + limit // the longest dst may become
	if hint > 0 {
		dst = grow(dst, min(hint, limit)+1)
	}
	for {
		if len(dst) == cap(dst) {
			// Double the output so far, but read at least 64 KiB at a time:
			// the LZ4 reader decodes straight into a buffer that can hold a
			// whole block.
			dst = grow(dst, max(64<<10, len(dst)-start))
		}
		// Offer one byte past the limit, to notice output that exceeds it.
		n, err := r.Read(dst[len(dst):min(cap(dst), end+1)])
		dst = dst[:len(dst)+n]
		if len(dst) > end {
			return dst[:start], corruptf("%v: decompressed size exceeds the %d byte limit", c, limit)
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst[:start], corruptf("cannot decompress %v payload: %v", c, err)
		}
	}
}

// grow returns dst with room for at least n more bytes.
func grow(dst []byte, n int) []byte { return slices.Grow(dst, n) }

// gzip.

type gzipReader struct {
	src bytes.Reader
	zr  gzip.Reader
}

var (
	gzipReaders = sync.Pool{New: func() any { return new(gzipReader) }}
	gzipWriters = sync.Pool{New: func() any {
		zw, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
		return &streamWriter{zw: zw}
	}}
)

// maxDeflateRatio is about the most deflate can expand its input (1032:1);
// it bounds the size hint taken from the gzip trailer.
const maxDeflateRatio = 1032

func decompressGzip(dst, src []byte, limit int) ([]byte, error) {
	r := gzipReaders.Get().(*gzipReader)
	defer func() {
		r.src.Reset(nil)
		gzipReaders.Put(r)
	}()
	r.src.Reset(src)
	if err := r.zr.Reset(&r.src); err != nil {
		return dst, corruptf("cannot decompress gzip payload: %v", err)
	}
	// The trailer's ISIZE is the last member's size mod 2^32: only a hint.
	hint := 0
	if len(src) >= 4 {
		hint = min(int(binary.LittleEndian.Uint32(src[len(src)-4:])), len(src)*maxDeflateRatio)
	}
	return readAll(CodecGzip, &r.zr, dst, limit, hint)
}

// lz4.

type lz4Reader struct {
	src bytes.Reader
	zr  *lz4.Reader
}

var (
	lz4Readers = sync.Pool{New: func() any { return &lz4Reader{zr: lz4.NewReader(nil)} }}
	lz4Writers = sync.Pool{New: func() any {
		zw := lz4.NewWriter(nil)
		// 64 KiB blocks, as the Java client writes them; the default 4 MiB
		// would make every reader allocate 4 MiB block buffers.
		_ = zw.Apply(lz4.BlockSizeOption(lz4.Block64Kb))
		return &streamWriter{zw: zw}
	}}
)

func decompressLZ4(dst, src []byte, limit int) ([]byte, error) {
	r := lz4Readers.Get().(*lz4Reader)
	defer func() {
		r.zr.Reset(nil)
		r.src.Reset(nil)
		lz4Readers.Put(r)
	}()
	r.src.Reset(src)
	r.zr.Reset(&r.src)
	if len(src) == 0 {
		return dst, corruptf("lz4: empty input")
	}
	return readAll(CodecLZ4, r.zr, dst, limit, min(4*len(src), 1<<20))
}

// zstd. Each pooled decoder and encoder runs one operation at a time
// (concurrency 1), so it starts no goroutines and needs no Close.

var (
	zstdDecoders = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(MaxDecompressedSize),
			zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			panic(err) // only on invalid options
		}
		return d
	}}
	zstdEncoders = sync.Pool{New: func() any {
		e, err := zstd.NewWriter(nil,
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithZeroFrames(true))
		if err != nil {
			panic(err) // only on invalid options
		}
		return e
	}}
)

// maxZstdRatio bounds how much zstd can expand its input: a block holds at
// most 128 KiB and takes at least 4 bytes (an RLE block: 3-byte header and
// the byte to repeat).
const maxZstdRatio = (128 << 10) / 4

func decompressZstd(dst, src []byte, limit int) ([]byte, error) {
	// DecodeAll would allocate whatever size a frame header declares, so
	// the decoders run with WithDecodeAllCapLimit: they decode into dst's
	// spare capacity, sized here, and fail rather than grow it.
	if len(src) == 0 {
		return dst, corruptf("zstd: empty input")
	}
	start := len(dst)
	maxOut := min(limit, maxZstdRatio*len(src))
	want := 8 * len(src) // a guess, for input that declares no size
	var fh zstd.Header
	if err := fh.Decode(src); err == nil {
		switch {
		case fh.HasFCS:
			if fh.FrameContentSize > uint64(maxOut) {
				return dst, corruptf("zstd: frame of %d bytes declares %d decompressed bytes, more than the %d byte limit allows",
					len(src), fh.FrameContentSize, limit)
			}
			want = int(fh.FrameContentSize)
		case fh.FirstBlock.OK && fh.FirstBlock.Last && fh.FirstBlock.DecompressedSize > 0:
			want = fh.FirstBlock.DecompressedSize // a frame of one block
		}
	}
	// Spare capacity costs nothing.
	want = max(min(want, maxOut), cap(dst)-start)
	d := zstdDecoders.Get().(*zstd.Decoder)
	defer zstdDecoders.Put(d)
	for {
		dst = grow(dst, want)
		out, err := d.DecodeAll(src, dst[:start])
		if err == nil {
			if len(out)-start > limit {
				break
			}
			return out, nil
		}
		if !errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return dst[:start], corruptf("cannot decompress zstd payload: %v", err)
		}
		if want >= maxOut {
			break
		}
		// A wrong guess, or more frames: try again with more room.
		want = min(maxOut, max(2*want, 64<<10))
	}
	return dst[:start], corruptf("zstd: decompressed size exceeds the %d byte limit", limit)
}

func compressZstd(dst, src []byte) []byte {
	e := zstdEncoders.Get().(*zstd.Encoder)
	defer zstdEncoders.Put(e)
	return e.EncodeAll(src, dst)
}
