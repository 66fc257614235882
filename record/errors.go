package record

import (
	"errors"
	"fmt"
)

// The kinds of error this package returns. Every error from ParseHeader,
// Validate, Decompress, Records and Iter wraps exactly one of them, so that a
// caller can classify it with errors.Is and map it to a Kafka error code:
//
//	ErrCorrupt          -> CORRUPT_MESSAGE: the bytes do not decode (bad size,
//	                       truncation, CRC mismatch, bad magic, malformed
//	                       varints or lengths, undecompressible payload,
//	                       trailing garbage).
//	ErrInvalidRecord    -> INVALID_RECORD: the bytes decode but break a rule
//	                       of the format (record count or offset deltas that
//	                       disagree with the header, unknown attribute bits,
//	                       a record timestamp above MaxTimestamp).
//	ErrUnsupportedCodec -> UNSUPPORTED_COMPRESSION_TYPE: a compression codec
//	                       id or name this package does not know.
var (
	ErrCorrupt          = errors.New("record: corrupt batch")
	ErrInvalidRecord    = errors.New("record: invalid record")
	ErrUnsupportedCodec = errors.New("record: unsupported compression codec")
)

// Error is the concrete type of the errors this package returns. Kind is one
// of ErrCorrupt, ErrInvalidRecord or ErrUnsupportedCodec; Msg describes the
// problem and is the whole of Error().
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the error's kind, so errors.Is(err, ErrCorrupt) works.
func (e *Error) Unwrap() error { return e.Kind }

// Errors are built only on failure paths; the happy paths never call these.

func corruptf(format string, args ...any) error {
	return &Error{Kind: ErrCorrupt, Msg: "record: " + fmt.Sprintf(format, args...)}
}

func invalidf(format string, args ...any) error {
	return &Error{Kind: ErrInvalidRecord, Msg: "record: " + fmt.Sprintf(format, args...)}
}

func unsupportedf(format string, args ...any) error {
	return &Error{Kind: ErrUnsupportedCodec, Msg: "record: " + fmt.Sprintf(format, args...)}
}
