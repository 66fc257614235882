package storage

import (
	"errors"
	"os"
)

// Errors returned by the engine. The broker maps them to Kafka error codes
// at its edge; batch validation errors come from package record
// (record.ErrCorrupt, record.ErrInvalidRecord, record.ErrUnsupportedCodec).
var (
	// ErrOffsetOutOfRange: the offset is below the log start offset or
	// above the log end offset (OFFSET_OUT_OF_RANGE).
	ErrOffsetOutOfRange = errors.New("storage: offset out of range")
	// ErrMessageTooLarge: a batch is larger than max.message.bytes
	// (MESSAGE_TOO_LARGE).
	ErrMessageTooLarge = errors.New("storage: batch larger than max.message.bytes")
	// ErrInvalidTimestamp: a CreateTime timestamp lies outside
	// message.timestamp.before/after.max.ms (INVALID_TIMESTAMP).
	ErrInvalidTimestamp = errors.New("storage: timestamp out of the accepted range")
	// ErrClosed: the log was closed.
	ErrClosed = errors.New("storage: log closed")
	// ErrLogFailed wraps an I/O error after which the log refuses writes
	// until it is reopened (KAFKA_STORAGE_ERROR). A failed fsync leaves the
	// page cache in an unknown state, so no later fsync can be trusted.
	ErrLogFailed = errors.New("storage: log failed")
)

var notExist = os.ErrNotExist
