package broker

// A bounds check of flexible request bodies, run before kmsg decodes them.
//
// kmsg (v1.15.0) reads a tagged-field section as "for n := count; n > 0;
// n--": once its reader runs out of bytes every read returns zero at once,
// but the loop still runs the declared count. A body of a few bytes that
// declares 2^32-1 tagged fields costs over a minute of CPU before kmsg
// reports "not enough data", and the connection's reader is stuck in it
// meanwhile; a handful of connections pin every core. kmsg's reader is
// internal, so it cannot be handed a bounded one, and the loop's count is
// read where only the message's layout says a count is. So the broker walks
// the body first, by the layout below, and refuses it when a tagged-field
// count, an array length or a string length claims more than the bytes
// left: a tagged field takes at least two bytes (key and size), an array
// element at least its fixed fields, a string its length. Every step of the
// walk consumes a byte or fails, so it costs at most one pass over the
// frame. The same check keeps kmsg from allocating an array of structs for
// a length that the bytes cannot fill (it only checks one byte per element).
//
// Only flexible versions are walked: without tagged fields, kmsg's own
// length checks bound its work. A walk that succeeds says nothing more than
// that kmsg's loops are bounded; kmsg still decodes and judges the body.
// The layouts mirror kmsg's decoders (readFrom in its generated.go), for
// every version kmsg knows; TestLayoutsAcceptWhatKmsgEncodes checks them
// against kmsg's own encoding of randomly filled requests of every flexible
// version, and that every flexible version the API table serves has one. A
// flexible request without a layout is refused, so a new API cannot be
// served unchecked: add its layout here when adding it to the table.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// errLayout is a flexible request body whose counts or lengths exceed its
// bytes; the connection is closed, as for any body that does not decode.
var errLayout = errors.New("request exceeds its frame")

// fieldKind is how a field of a flexible request is encoded.
type fieldKind uint8

const (
	fixedField  fieldKind = iota // size bytes: integers, booleans, uuids
	stringField                  // compact (nullable) string or bytes: uvarint length+1, then the bytes
	arrayField                   // compact (nullable) array: uvarint length+1, then the elements
)

// field is one field of a request layout, present in versions min to max
// (max < 0: all from min).
type field struct {
	kind     fieldKind
	size     int     // fixedField: its width
	elem     *layout // arrayField: the layout of an element
	min, max int16
}

// layout is a struct of a flexible request: its fields in wire order, then,
// when tagged, a tagged-field section. known lists the tagged fields whose
// value is itself a tagged struct (kmsg decodes those, tags and all); other
// tagged values are opaque to kmsg and need no walk.
type layout struct {
	fields []field
	tagged bool
	known  map[uint32]*layout
}

var (
	wireInt8   = field{kind: fixedField, size: 1, max: -1}
	wireBool   = wireInt8
	wireInt16  = field{kind: fixedField, size: 2, max: -1}
	wireInt32  = field{kind: fixedField, size: 4, max: -1}
	wireInt64  = field{kind: fixedField, size: 8, max: -1}
	wireUUID   = field{kind: fixedField, size: 16, max: -1}
	wireString = field{kind: stringField, max: -1}
)

func (f field) since(v int16) field   { f.min = v; return f }
func (f field) until(v int16) field   { f.max = v; return f }
func (f field) in(version int16) bool { return version >= f.min && (f.max < 0 || version <= f.max) }

// wireStruct is a struct with a tagged-field section.
func wireStruct(fields ...field) *layout { return &layout{fields: fields, tagged: true} }

// wireArray is an array of tagged structs of the given fields.
func wireArray(fields ...field) field {
	return field{kind: arrayField, elem: wireStruct(fields...), max: -1}
}

// wireArrayOf is an array of plain values (int32s, strings), without tags.
func wireArrayOf(f field) field {
	return field{kind: arrayField, elem: &layout{fields: []field{f}}, max: -1}
}

// requestLayouts maps an API key to the layout of its request body, for its
// flexible versions.
var requestLayouts = map[int16]*layout{
	0: wireStruct( // Produce
		wireString.since(3),  // transactional_id
		wireInt16, wireInt32, // acks, timeout_ms
		wireArray(wireString.until(12), wireUUID.since(13), // topic name, topic id
			wireArray(wireInt32, wireString)), // partition, records
	),
	1: { // Fetch
		fields: []field{
			wireInt32.until(14),  // replica_id
			wireInt32, wireInt32, // max_wait_ms, min_bytes
			wireInt32.since(3), // max_bytes
			wireInt8.since(4),  // isolation_level
			wireInt32.since(7), // session_id
			wireInt32.since(7), // session_epoch
			wireArray(wireString.until(12), wireUUID.since(13), // topic name, topic id
				wireArray(wireInt32, wireInt32.since(9), wireInt64, wireInt32.since(12), wireInt64.since(5), wireInt32)),
			wireArray(wireString.until(12), wireUUID.since(13), wireArrayOf(wireInt32)).since(7), // forgotten topics
			wireString.since(11), // rack_id
		},
		tagged: true,
		known:  map[uint32]*layout{1: wireStruct(wireInt32, wireInt64)}, // replica_state
	},
	2: wireStruct( // ListOffsets
		wireInt32, wireInt8.since(2), // replica_id, isolation_level
		wireArray(wireString, wireArray(wireInt32, wireInt32.since(4), wireInt64, wireInt32.until(0))),
		wireInt32.since(10), // timeout_ms
	),
	3: wireStruct( // Metadata
		wireArray(wireUUID.since(10), wireString), // topics
		wireBool.since(4),                         // allow_auto_topic_creation
		wireBool.since(8).until(10),               // include_cluster_authorized_operations
		wireBool.since(8),                         // include_topic_authorized_operations
	),
	8: wireStruct( // OffsetCommit
		wireString,                              // group
		wireInt32.since(1), wireString.since(1), // generation, member_id
		wireString.since(7),         // group_instance_id
		wireInt64.since(2).until(4), // retention_time_ms
		wireArray(wireString.until(9), wireUUID.since(10), // topic name, topic id
			wireArray(wireInt32, wireInt64, wireInt64.since(1).until(1), wireInt32.since(6), wireString)),
	),
	9: wireStruct( // OffsetFetch
		wireString.until(7), // group
		wireArray(wireString, wireArrayOf(wireInt32)).until(7),
		wireArray(wireString, wireString.since(9), wireInt32.since(9), // groups: id, member_id, member_epoch
			wireArray(wireString.until(9), wireUUID.since(10), wireArrayOf(wireInt32))).since(8),
		wireBool.since(7), // require_stable
	),
	10: wireStruct( // FindCoordinator
		wireString.until(3), wireInt8.since(1), wireArrayOf(wireString).since(4),
	),
	11: wireStruct( // JoinGroup
		wireString, wireInt32, wireInt32.since(1), // group, session and rebalance timeouts
		wireString, wireString.since(5), wireString, // member_id, group_instance_id, protocol_type
		wireArray(wireString, wireString), // protocols: name, metadata
		wireString.since(8),               // reason
	),
	12: wireStruct( // Heartbeat
		wireString, wireInt32, wireString, wireString.since(3),
	),
	13: wireStruct( // LeaveGroup
		wireString, wireString.until(2),
		wireArray(wireString, wireString, wireString.since(5)).since(3), // members
	),
	14: wireStruct( // SyncGroup
		wireString, wireInt32, wireString, wireString.since(3), // group, generation, member_id, group_instance_id
		wireString.since(5), wireString.since(5), // protocol type and name
		wireArray(wireString, wireString), // assignments
	),
	15: wireStruct( // DescribeGroups
		wireArrayOf(wireString), wireBool.since(3),
	),
	16: wireStruct( // ListGroups
		wireArrayOf(wireString).since(4), wireArrayOf(wireString).since(5),
	),
	42: wireStruct( // DeleteGroups
		wireArrayOf(wireString),
	),
	68: wireStruct( // ConsumerGroupHeartbeat
		wireString, wireString, wireInt32, // group, member_id, member_epoch
		wireString, wireString, wireInt32, // group_instance_id, rack_id, rebalance_timeout_ms
		wireArrayOf(wireString),         // subscribed topic names
		wireString.since(1), wireString, // subscribed topic regex, server assignor
		wireArray(wireUUID, wireArrayOf(wireInt32)), // topic partitions
	),
	69: wireStruct( // ConsumerGroupDescribe
		wireArrayOf(wireString), wireBool,
	),
	apiVersionsKey: wireStruct(
		wireString.since(3), wireString.since(3), // client software name and version
		wireString.since(5), wireInt32.since(5),
	),
	19: wireStruct( // CreateTopics
		wireArray(wireString, wireInt32, wireInt16, // name, num_partitions, replication_factor
			wireArray(wireInt32, wireArrayOf(wireInt32)), // assignments
			wireArray(wireString, wireString)),           // configs
		wireInt32, wireBool.since(1), // timeout_ms, validate_only
	),
	20: wireStruct( // DeleteTopics
		wireArrayOf(wireString).until(5),         // topic names
		wireArray(wireString, wireUUID).since(6), // topics
		wireInt32,                                // timeout_ms
	),
	21: wireStruct( // DeleteRecords
		wireArray(wireString, wireArray(wireInt32, wireInt64)),
		wireInt32,
	),
	22: wireStruct( // InitProducerId
		wireString, wireInt32, // transactional_id, transaction_timeout_ms
		wireInt64.since(3), wireInt16.since(3), // producer_id, producer_epoch
	),
	24: wireStruct( // AddPartitionsToTxn
		wireArray(wireString, wireInt64, wireInt16, wireBool, // transactions: id, producer id and epoch, verify_only
			wireArray(wireString, wireArrayOf(wireInt32))).since(4),
		wireString.until(3), wireInt64.until(3), wireInt16.until(3), // transactional_id, producer id and epoch
		wireArray(wireString, wireArrayOf(wireInt32)).until(3), // topics
	),
	25: wireStruct( // AddOffsetsToTxn
		wireString, wireInt64, wireInt16, wireString, // transactional_id, producer id and epoch, group
	),
	26: wireStruct( // EndTxn
		wireString, wireInt64, wireInt16, wireBool, // transactional_id, producer id and epoch, committed
	),
	28: wireStruct( // TxnOffsetCommit
		wireString, wireString, wireInt64, wireInt16, // transactional_id, group, producer id and epoch
		wireInt32, wireString, wireString, // generation, member_id, group_instance_id
		wireArray(wireString.until(5), wireUUID.since(6), // topic name, topic id
			wireArray(wireInt32, wireInt64, wireInt32, wireString)), // partition, offset, leader epoch, metadata
	),
	61: wireStruct( // DescribeProducers
		wireArray(wireString, wireArrayOf(wireInt32)),
	),
	65: wireStruct( // DescribeTransactions
		wireArrayOf(wireString),
	),
	66: wireStruct( // ListTransactions
		wireArrayOf(wireString), wireArrayOf(wireInt64), // state and producer id filters
		wireInt64.since(1), wireString.since(2), // duration filter, transactional id pattern
	),
	23: wireStruct( // OffsetForLeaderEpoch
		wireInt32.since(3), // replica_id
		wireArray(wireString, wireArray(wireInt32, wireInt32.since(2), wireInt32)),
	),
	32: wireStruct( // DescribeConfigs
		wireArray(wireInt8, wireString, wireArrayOf(wireString)),
		wireBool.since(1), wireBool.since(3),
	),
	33: wireStruct( // AlterConfigs
		wireArray(wireInt8, wireString, wireArray(wireString, wireString)),
		wireBool,
	),
	35: wireStruct( // DescribeLogDirs
		wireArray(wireString, wireArrayOf(wireInt32)),
	),
	37: wireStruct( // CreatePartitions
		wireArray(wireString, wireInt32, wireArray(wireArrayOf(wireInt32))),
		wireInt32, wireBool,
	),
	44: wireStruct( // IncrementalAlterConfigs
		wireArray(wireInt8, wireString, wireArray(wireString, wireInt8, wireString)),
		wireBool,
	),
	60: wireStruct( // DescribeCluster
		wireBool, wireInt8.since(1), wireBool.since(2),
	),
}

// checkFlexibleBody walks the body of a flexible request of key and version
// by its layout and fails when a count or length exceeds the bytes left.
func checkFlexibleBody(key, version int16, body []byte) error {
	l, ok := requestLayouts[key]
	if !ok {
		return fmt.Errorf("%w: no layout to check the flexible request against", errLayout)
	}
	w := walker{rest: body, version: version}
	return w.walk(l)
}

// walker reads a body by a layout; rest is what is left of it.
type walker struct {
	rest    []byte
	version int16
}

func (w *walker) walk(l *layout) error {
	for _, f := range l.fields {
		if !f.in(w.version) {
			continue
		}
		if err := w.field(f); err != nil {
			return err
		}
	}
	if l.tagged {
		return w.tags(l.known)
	}
	return nil
}

func (w *walker) field(f field) error {
	switch f.kind {
	case fixedField:
		return w.skip(f.size, "field")
	case stringField:
		n, err := w.uvarint()
		if err != nil || n == 0 { // 0: null
			return err
		}
		return w.skip(int(n-1), "string")
	default:
		n, err := w.uvarint()
		if err != nil || n == 0 { // 0: null
			return err
		}
		n--
		if min := w.minSize(f.elem); uint64(n)*uint64(min) > uint64(len(w.rest)) {
			return fmt.Errorf("%w: an array of %d elements of at least %d bytes with %d bytes left",
				errLayout, n, min, len(w.rest))
		}
		for range n {
			if err := w.walk(f.elem); err != nil {
				return err
			}
		}
		return nil
	}
}

// tags walks a tagged-field section, and the values of known tagged structs.
func (w *walker) tags(known map[uint32]*layout) error {
	n, err := w.uvarint()
	if err != nil {
		return err
	}
	if uint64(n)*2 > uint64(len(w.rest)) {
		return fmt.Errorf("%w: %d tagged fields with %d bytes left", errLayout, n, len(w.rest))
	}
	for range n {
		key, err := w.uvarint()
		if err != nil {
			return err
		}
		size, err := w.uvarint()
		if err != nil {
			return err
		}
		if uint64(size) > uint64(len(w.rest)) {
			return fmt.Errorf("%w: a tagged field of %d bytes with %d bytes left", errLayout, size, len(w.rest))
		}
		if l, ok := known[key]; ok {
			sub := walker{rest: w.rest[:size], version: w.version}
			if err := sub.walk(l); err != nil {
				return err
			}
		}
		w.rest = w.rest[size:]
	}
	return nil
}

// minSize is the fewest bytes a struct of layout l takes in this version.
func (w *walker) minSize(l *layout) int {
	n := 0
	for _, f := range l.fields {
		switch {
		case !f.in(w.version):
		case f.kind == fixedField:
			n += f.size
		default:
			n++ // a length
		}
	}
	if l.tagged {
		n++ // the tag count
	}
	return max(n, 1)
}

// uvarint reads an unsigned varint as kmsg does: 32 bits at most.
func (w *walker) uvarint() (uint32, error) {
	v, n := binary.Uvarint(w.rest)
	if n <= 0 || v > math.MaxUint32 {
		return 0, fmt.Errorf("%w: bad varint", errLayout)
	}
	w.rest = w.rest[n:]
	return uint32(v), nil
}

func (w *walker) skip(n int, what string) error {
	if n > len(w.rest) {
		return fmt.Errorf("%w: a %s of %d bytes with %d bytes left", errLayout, what, n, len(w.rest))
	}
	w.rest = w.rest[n:]
	return nil
}
