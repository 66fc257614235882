package record

import "strconv"

// Codec is a compression codec, as stored in bits 0-2 of the batch
// attributes.
type Codec int8

// The codecs Kafka defines.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

var codecNames = [...]string{
	CodecNone:   "none",
	CodecGzip:   "gzip",
	CodecSnappy: "snappy",
	CodecLZ4:    "lz4",
	CodecZstd:   "zstd",
}

// Valid reports whether c is one of the five codecs Kafka defines.
func (c Codec) Valid() bool { return c >= CodecNone && c <= CodecZstd }

// String returns Kafka's name for the codec ("none", "gzip", "snappy", "lz4",
// "zstd"), or "codec(N)" for an unknown id.
func (c Codec) String() string {
	if c.Valid() {
		return codecNames[c]
	}
	return "codec(" + strconv.Itoa(int(c)) + ")"
}

// ParseCodec returns the codec with Kafka's compression.type name s: "none",
// "gzip", "snappy", "lz4" or "zstd", and "uncompressed", which the topic-level
// config uses for none. The topic-level value "producer" (keep whatever the
// producer used) is not a codec; the caller handles it. Names are
// case-sensitive, as in Kafka. An unknown name yields ErrUnsupportedCodec.
func ParseCodec(s string) (Codec, error) {
	switch s {
	case "none", "uncompressed":
		return CodecNone, nil
	case "gzip":
		return CodecGzip, nil
	case "snappy":
		return CodecSnappy, nil
	case "lz4":
		return CodecLZ4, nil
	case "zstd":
		return CodecZstd, nil
	}
	return CodecNone, unsupportedf("unknown compression type %q", s)
}
