package storage

import (
	"fmt"
	"math"

	"github.com/samsa-io/samsa/record"
)

// RecordError names a record for which its batch was refused: its index in
// the batch and the reason. Produce v8+ returns them as record_errors.
type RecordError struct {
	Index   int
	Message string
}

// RejectedRecordsError is a batch refused for some of its records, all of
// which it names. It wraps ErrInvalidTimestamp when a timestamp is among
// the faults and record.ErrInvalidRecord otherwise, as Kafka chooses the
// batch's error code.
type RejectedRecordsError struct {
	err     error
	Records []RecordError // at least one, in batch order
}

func (e *RejectedRecordsError) Error() string {
	first := e.Records[0]
	if len(e.Records) == 1 {
		return fmt.Sprintf("%v: record %d: %s", e.err, first.Index, first.Message)
	}
	return fmt.Sprintf("%v: %d records are at fault, the first is record %d: %s",
		e.err, len(e.Records), first.Index, first.Message)
}

func (e *RejectedRecordsError) Unwrap() error { return e.err }

// checkRecords applies a topic's per-record rules to batch b: a key on every
// record of a compacted topic, and CreateTime timestamps within
// message.timestamp.before/after.max.ms. The timestamps are first checked on
// the header (the first and the largest), and the records are decoded only
// when a rule may be broken. A header out of range with no record to blame
// (a largest timestamp no record has) refuses the batch as a whole.
func checkRecords(b []byte, h record.Header, nowMs int64, cfg *Config) error {
	needKeys := cfg.Compact && !h.Attributes.Control()
	var tsErr error
	if !cfg.LogAppendTime {
		tsErr = checkTimestamps(h, nowMs, cfg)
	}
	if !needKeys && tsErr == nil {
		return nil
	}
	recs, err := record.Records(b)
	if err != nil {
		return err
	}
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if cfg.TimestampBeforeMax >= 0 {
		lo = nowMs - cfg.TimestampBeforeMax.Milliseconds()
	}
	if cfg.TimestampAfterMax >= 0 {
		hi = nowMs + cfg.TimestampAfterMax.Milliseconds()
	}
	var faults []RecordError
	badTimestamp := false
	for i, r := range recs {
		switch {
		case needKeys && r.Key == nil:
			faults = append(faults, RecordError{Index: i,
				Message: "a compacted topic cannot accept a record without a key"})
		case tsErr != nil && r.Timestamp != -1 && (r.Timestamp < lo || r.Timestamp > hi):
			badTimestamp = true
			faults = append(faults, RecordError{Index: i,
				Message: fmt.Sprintf("timestamp %d is outside the accepted range [%d, %d]", r.Timestamp, lo, hi)})
		}
	}
	switch {
	case len(faults) == 0:
		return tsErr
	case badTimestamp:
		return &RejectedRecordsError{err: ErrInvalidTimestamp, Records: faults}
	default:
		return &RejectedRecordsError{err: record.ErrInvalidRecord, Records: faults}
	}
}

// checkTimestamps applies message.timestamp.before/after.max.ms to a
// CreateTime batch's first and largest timestamps.
func checkTimestamps(h record.Header, nowMs int64, cfg *Config) error {
	if cfg.TimestampBeforeMax >= 0 && h.BaseTimestamp < nowMs-cfg.TimestampBeforeMax.Milliseconds() {
		return fmt.Errorf("%w: timestamp %d is more than %v before the broker's clock",
			ErrInvalidTimestamp, h.BaseTimestamp, cfg.TimestampBeforeMax)
	}
	if cfg.TimestampAfterMax >= 0 && h.MaxTimestamp > nowMs+cfg.TimestampAfterMax.Milliseconds() {
		return fmt.Errorf("%w: timestamp %d is more than %v after the broker's clock",
			ErrInvalidTimestamp, h.MaxTimestamp, cfg.TimestampAfterMax)
	}
	return nil
}
