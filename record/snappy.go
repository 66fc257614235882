package record

import (
	"bytes"
	"encoding/binary"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
)

// Kafka clients send snappy data in one of two shapes:
//
//   - a raw snappy block (franz-go, librdkafka, sarama by default);
//   - the xerial framing that the Java client's snappy-java writes:
//
//     +----------------------+---------+--------+-----------------------+
//     | \x82 S N A P P Y \x00 | version | compat | block block block ... |
//     |        8 bytes       | int32   | int32  |                       |
//     +----------------------+---------+--------+-----------------------+
//
//     where each block is a big-endian int32 length and that many bytes of
//     raw snappy block.
//
// Decompress tells them apart by the 8-byte magic, as every Kafka client does.

var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = 16 // magic, version, compat

// maxSnappyRatio bounds how much a standard snappy block can expand: its
// densest element is a 3-byte copy of 64 bytes.
const maxSnappyRatio = 22

func compressSnappy(dst, src []byte) []byte {
	start := len(dst)
	dst = grow(dst, s2.MaxEncodedLen(len(src)))
	n := len(s2.EncodeSnappy(dst[start:cap(dst)], src))
	return dst[:start+n]
}

func decompressSnappy(dst, src []byte, limit int) ([]byte, error) {
	if len(src) < xerialHeaderSize || !bytes.Equal(src[:len(xerialMagic)], xerialMagic) {
		return decodeSnappyBlock(dst, src, limit)
	}
	start := len(dst)
	rest := src[xerialHeaderSize:]
	for len(rest) > 0 {
		if len(rest) < 4 {
			return dst[:start], corruptf("snappy: truncated xerial block length")
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return dst[:start], corruptf("snappy: xerial block of %d bytes, only %d left", n, len(rest))
		}
		var err error
		dst, err = decodeSnappyBlock(dst, rest[:n], limit-(len(dst)-start))
		if err != nil {
			return dst[:start], err
		}
		rest = rest[n:]
	}
	return dst, nil
}

// decodeSnappyBlock appends the decoding of one raw snappy block to dst.
//
// It uses the strict standard-snappy decoder: the looser s2 decoder also
// accepts S2 extensions that no Kafka client can read, and a broker should
// not let such a batch into the log.
func decodeSnappyBlock(dst, src []byte, limit int) ([]byte, error) {
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return dst, corruptf("cannot decompress snappy payload: %v", err)
	}
	if n > limit {
		return dst, corruptf("snappy: decompressed size %d exceeds the %d byte limit", n, limit)
	}
	// The size comes first and is allocated up front: refuse one the
	// block cannot produce, so that a few bytes cannot make us allocate
	// up to the limit.
	if n > maxSnappyRatio*len(src) {
		return dst, corruptf("snappy: block of %d bytes claims %d decompressed bytes", len(src), n)
	}
	start := len(dst)
	dst = grow(dst, n)
	if _, err := snappy.DecodeStrict(dst[start:start+n], src); err != nil {
		return dst[:start], corruptf("cannot decompress snappy payload: %v", err)
	}
	return dst[:start+n], nil
}
