package record

import (
	"encoding/binary"
)

// Control records (KIP-98). A control batch holds exactly one record whose
// key says what it is and whose value carries its data:
//
//	key:   version int16 (0) | type int16 (0 = abort, 1 = commit)
//	value: version int16 (0) | coordinator epoch int32
//
// as Kafka's ControlRecordType and EndTransactionMarker. The batch has the
// control and transactional attributes and the producer id and epoch of
// the transaction it ends; its base sequence is -1.

// ControlType is the type of a control record.
type ControlType int16

// Control record types.
const (
	ControlAbort  ControlType = 0
	ControlCommit ControlType = 1
)

// Marker is an end-of-transaction marker: the content of a commit or abort
// control record.
type Marker struct {
	Commit           bool
	CoordinatorEpoch int32
}

// MarkerOptions describes the marker batch BuildMarker produces.
type MarkerOptions struct {
	ProducerID           int64
	ProducerEpoch        int16
	PartitionLeaderEpoch int32
	Timestamp            int64 // milliseconds
	Marker
}

// BuildMarker encodes a control batch with one commit or abort marker, at
// base offset 0 (the log assigns the real one).
func BuildMarker(opts MarkerOptions) ([]byte, error) {
	bo := DefaultBuildOptions()
	bo.Control, bo.Transactional = true, true
	bo.ProducerID, bo.ProducerEpoch = opts.ProducerID, opts.ProducerEpoch
	bo.PartitionLeaderEpoch = opts.PartitionLeaderEpoch
	typ := ControlAbort
	if opts.Commit {
		typ = ControlCommit
	}
	key := binary.BigEndian.AppendUint16(make([]byte, 0, 4), 0)
	key = binary.BigEndian.AppendUint16(key, uint16(typ))
	value := binary.BigEndian.AppendUint16(make([]byte, 0, 6), 0)
	value = binary.BigEndian.AppendUint32(value, uint32(opts.CoordinatorEpoch))
	return Build(bo, []Record{{Timestamp: opts.Timestamp, Key: key, Value: value}})
}

// ParseControlKey reads a control record's key: its version and type. A key
// shorter than 4 bytes is ErrCorrupt.
func ParseControlKey(key []byte) (version int16, typ ControlType, err error) {
	if len(key) < 4 {
		return 0, 0, corruptf("control record key of %d bytes, need 4", len(key))
	}
	return int16(binary.BigEndian.Uint16(key)), ControlType(binary.BigEndian.Uint16(key[2:])), nil
}

// ParseMarker reads a transaction marker from a control record's key and
// value; ok is false for a control record of another type (Kafka skips
// unknown control types). A marker of version other than 0, or a short value,
// is ErrCorrupt.
func ParseMarker(key, value []byte) (m Marker, ok bool, err error) {
	_, typ, err := ParseControlKey(key)
	if err != nil {
		return Marker{}, false, err
	}
	if typ != ControlAbort && typ != ControlCommit {
		return Marker{}, false, nil
	}
	if len(value) < 6 {
		return Marker{}, false, corruptf("transaction marker value of %d bytes, need 6", len(value))
	}
	if v := int16(binary.BigEndian.Uint16(value)); v != 0 {
		return Marker{}, false, corruptf("transaction marker version %d, want 0", v)
	}
	return Marker{Commit: typ == ControlCommit, CoordinatorEpoch: int32(binary.BigEndian.Uint32(value[2:]))}, true, nil
}
