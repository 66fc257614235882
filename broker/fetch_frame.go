package broker

// A Fetch response's record sets are not copied into the encoded response:
// the handler leaves them in their segment files (storage.Section), and the
// connection's writer sends them from there with sendfile(2), between the
// bytes kmsg encoded around them (DESIGN.md, decision 6).
//
// kmsg encodes everything but the record bytes. Each partition's
// RecordBatches is set to a marker of markerLen bytes — 12 random bytes
// drawn once per process, never sent, and the set's number — and the
// response is encoded; each marker is then found, in order, right after
// its length prefix (int32 before v12, unsigned varint of length+1 from
// v12, KIP-482), and the frame is cut there: the bytes before the prefix,
// a new prefix for the section's length, the section, and on. Everything
// after a record set (tagged fields from v12, the next partitions) is
// kmsg's. TestFetchFrameMatchesKmsg checks the result byte for byte against
// kmsg's encoding of the same response with the bytes in it, for every
// version.

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/storage"
)

// fetchResponse is a Fetch response whose record sets are still in the
// segment files: sets[i]'s bytes are the RecordBatches of partition
// Topics[topic].Partitions[partition], which holds an empty slice.
type fetchResponse struct {
	*kmsg.FetchResponse
	sets []fetchSet

	// What a response with few record sets needs, in the same allocation
	// (newFetchResponse): the kmsg response itself, and the sets, frame
	// parts and markers of up to inlineSets record sets.
	body   kmsg.FetchResponse
	inline struct {
		sets    [inlineSets]fetchSet
		parts   [3*inlineSets + 1]framePart
		markers [inlineSets * markerLen]byte
	}
}

// inlineSets is how many record sets a fetchResponse holds without
// allocating for them.
const inlineSets = 4

// newFetchResponse returns an empty response of version v.
func newFetchResponse(v int16) *fetchResponse {
	r := &fetchResponse{body: kmsg.NewFetchResponse()}
	r.body.SetVersion(v)
	r.FetchResponse = &r.body
	return r
}

// fetchSet is one partition's record set.
type fetchSet struct {
	topic, partition int
	sec              storage.Section
}

func (r *fetchResponse) part(s *fetchSet) *kmsg.FetchResponseTopicPartition {
	return &r.Topics[s.topic].Partitions[s.partition]
}

// release releases every section.
func (r *fetchResponse) release() {
	for i := range r.sets {
		r.sets[i].sec.Release()
	}
}

// materialize reads the record sets into the response and releases them,
// making it a plain kmsg response (for tests, and the fallback). A set that
// cannot be read any more (truncated meanwhile) is sent empty: the client
// fetches again.
func (r *fetchResponse) materialize() *kmsg.FetchResponse {
	for i := range r.sets {
		s := &r.sets[i]
		if b, err := s.sec.AppendTo(nil); err == nil {
			r.part(s).RecordBatches = b
		}
		s.sec.Release()
	}
	r.sets = nil
	return r.FetchResponse
}

// markerLen is the size of a record-set marker.
const markerLen = 16

// markerPrefix starts every marker; random, so that no topic name or other
// field a client sends can pass for one. Immutable after init.
var markerPrefix = func() (p [markerLen - 4]byte) {
	rand.Read(p[:]) // crypto/rand.Read never fails
	return p
}()

// frame encodes the response as an outFrame whose record sets are the
// sections. The frame owns the sections from then on.
func (r *fetchResponse) frame(b *Broker, req *request) outFrame {
	if len(r.sets) == 0 {
		return b.encodePooled(req, r.FetchResponse)
	}
	markers := r.inline.markers[:0]
	parts := r.inline.parts[:0]
	if len(r.sets) > inlineSets {
		markers = make([]byte, 0, markerLen*len(r.sets))
		parts = make([]framePart, 0, 3*len(r.sets)+1)
	}
	for i := range r.sets {
		markers = append(markers, markerPrefix[:]...)
		markers = binary.BigEndian.AppendUint32(markers, uint32(i))
		r.part(&r.sets[i]).RecordBatches = markers[i*markerLen : (i+1)*markerLen]
	}
	bp := b.bufs.take(sizeHint(r.FetchResponse) + 5*len(r.sets))
	buf := encodeResponseInto(*bp, req, r.FetchResponse)
	for i := range r.sets {
		r.part(&r.sets[i]).RecordBatches = []byte{}
	}
	flexible := r.IsFlexible()
	f := outFrame{buf: buf, pooled: bp, parts: parts}
	body := len(buf)
	from := 0
	size := -4 // the size field does not count itself
	for i := range r.sets {
		m := markers[i*markerLen : (i+1)*markerLen]
		at := bytes.Index(buf[from:body], m)
		if at < 0 || !markerPrefixed(buf[:from+at], flexible) {
			// Cannot happen with kmsg's encoding (the test checks every
			// version); copying is still correct.
			f.parts, f.fetch = nil, nil
			f.release(b)
			return b.encodePooled(req, r.materialize())
		}
		at += from
		prefixLen := 4
		if flexible {
			prefixLen = 1 // uvarint(markerLen+1)
		}
		sec := &r.sets[i].sec
		start := len(f.buf)
		if flexible {
			f.buf = binary.AppendUvarint(f.buf, uint64(sec.Len())+1)
		} else {
			f.buf = binary.BigEndian.AppendUint32(f.buf, uint32(sec.Len()))
		}
		f.parts = append(f.parts,
			framePart{from: from, to: at - prefixLen},
			framePart{from: start, to: len(f.buf)},
			framePart{sec: sec})
		size += at - prefixLen - from + len(f.buf) - start + sec.Len()
		from = at + markerLen
	}
	f.parts = append(f.parts, framePart{from: from, to: body})
	size += body - from
	binary.BigEndian.PutUint32(f.buf, uint32(size))
	f.fetch = r
	return f
}

// markerPrefixed reports whether b ends with the length prefix of a
// marker's record set.
func markerPrefixed(b []byte, flexible bool) bool {
	if flexible {
		return len(b) >= 1 && b[len(b)-1] == markerLen+1
	}
	return len(b) >= 4 && binary.BigEndian.Uint32(b[len(b)-4:]) == markerLen
}
