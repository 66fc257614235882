package storage

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Cleanup policies (Kafka's cleanup.policy values).
const (
	CleanupDelete  = "delete"
	CleanupCompact = "compact"
)

// Config holds a partition log's settings. Each field is the Kafka topic
// config named in its comment, with Kafka's default except where noted.
// Durations use time.Duration; a negative duration or size means "no limit",
// as -1 does in Kafka.
type Config struct {
	// SegmentBytes (segment.bytes): roll a new segment when the active one
	// would grow past this size. Default 1 GiB.
	SegmentBytes int64
	// SegmentAge (segment.ms): roll when the active segment's first batch is
	// older than this. Default 7 days.
	SegmentAge time.Duration
	// IndexIntervalBytes (index.interval.bytes): bytes of log between
	// entries of the offset and time indexes. Default 4096.
	IndexIntervalBytes int64
	// MaxMessageBytes (max.message.bytes): the largest batch accepted.
	// Default 1 MiB + 12 bytes of batch overhead, as in Kafka.
	MaxMessageBytes int64

	// Retention (retention.ms): delete segments whose newest record is
	// older than this. Default 7 days; negative keeps forever.
	Retention time.Duration
	// RetentionBytes (retention.bytes): delete the oldest segments while the
	// log is larger than this. Default -1 (no limit).
	RetentionBytes int64

	// Compact and Delete are cleanup.policy: "delete" (the default),
	// "compact", or "compact,delete".
	Compact bool
	Delete  bool
	// DeleteRetention (delete.retention.ms): how long tombstones survive
	// after the cleaner has first seen them. Default 1 day.
	DeleteRetention time.Duration
	// MinCompactionLag (min.compaction.lag.ms): records younger than this
	// are never compacted. Default 0.
	MinCompactionLag time.Duration
	// MinCleanableDirtyRatio (min.cleanable.dirty.ratio): compact only when
	// the uncompacted part is at least this share of the log. Default 0.5.
	MinCleanableDirtyRatio float64

	// FlushMessages (flush.messages): fsync after this many records. Samsa's
	// default is 1: every append is fsynced (with group commit) before it is
	// reported durable. Kafka's default, math.MaxInt64, leaves it to the OS.
	FlushMessages int64
	// FlushInterval (flush.ms): fsync at least this often. Default: no limit
	// (negative), which with FlushMessages == 1 changes nothing.
	FlushInterval time.Duration

	// LogAppendTime is message.timestamp.type=LogAppendTime: the broker
	// stamps every batch with its own clock. Default CreateTime (false).
	LogAppendTime bool
	// TimestampBeforeMax and TimestampAfterMax are
	// message.timestamp.before.max.ms and message.timestamp.after.max.ms:
	// how far a CreateTime timestamp may lie before or after the broker's
	// clock. Default: no limit (negative).
	TimestampBeforeMax time.Duration
	TimestampAfterMax  time.Duration
	// VerifyRecords decompresses every batch on append and checks each
	// record, not only the batch header and CRC. Always done for compacted
	// logs, which must reject records without a key. Default false.
	VerifyRecords bool
}

// DefaultConfig returns Kafka's topic defaults, except FlushMessages (see
// there).
func DefaultConfig() Config {
	return Config{
		SegmentBytes:           1 << 30,
		SegmentAge:             7 * 24 * time.Hour,
		IndexIntervalBytes:     4096,
		MaxMessageBytes:        1<<20 + 12,
		Retention:              7 * 24 * time.Hour,
		RetentionBytes:         -1,
		Delete:                 true,
		DeleteRetention:        24 * time.Hour,
		MinCompactionLag:       0,
		MinCleanableDirtyRatio: 0.5,
		FlushMessages:          1,
		FlushInterval:          -1,
		TimestampBeforeMax:     -1,
		TimestampAfterMax:      -1,
	}
}

// SyncEveryAppend reports whether every append is fsynced before it is
// reported durable (the default policy).
func (c Config) SyncEveryAppend() bool { return c.FlushMessages <= 1 }

// Validate reports the first setting that is out of range.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.SegmentBytes >= 14 && c.SegmentBytes <= math.MaxInt32,
		"segment.bytes must be between 14 and %d, got %d", math.MaxInt32, c.SegmentBytes)
	check(c.SegmentAge >= time.Millisecond, "segment.ms must be at least 1, got %d", c.SegmentAge.Milliseconds())
	check(c.IndexIntervalBytes >= 0, "index.interval.bytes must be >= 0, got %d", c.IndexIntervalBytes)
	check(c.MaxMessageBytes >= 0, "max.message.bytes must be >= 0, got %d", c.MaxMessageBytes)
	check(c.Compact || c.Delete, "cleanup.policy must be delete, compact or both")
	check(c.DeleteRetention >= 0, "delete.retention.ms must be >= 0")
	check(c.MinCompactionLag >= 0, "min.compaction.lag.ms must be >= 0")
	check(c.MinCleanableDirtyRatio >= 0 && c.MinCleanableDirtyRatio <= 1,
		"min.cleanable.dirty.ratio must be between 0 and 1, got %v", c.MinCleanableDirtyRatio)
	check(c.FlushMessages >= 1, "flush.messages must be >= 1, got %d", c.FlushMessages)
	return errors.Join(errs...)
}

// CleanupPolicy returns cleanup.policy as Kafka spells it.
func (c Config) CleanupPolicy() string {
	switch {
	case c.Compact && c.Delete:
		return CleanupCompact + "," + CleanupDelete
	case c.Compact:
		return CleanupCompact
	default:
		return CleanupDelete
	}
}
