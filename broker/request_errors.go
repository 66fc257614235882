package broker

// Errors per API: samsa_request_errors_total{api,error} counts the error
// codes in the responses the broker sends, as Kafka's
// kafka.network:type=RequestMetrics,name=ErrorsPerSec,request=…,error=…
// does: each ErrorCode field a response carries in its version — at its
// top, and in each topic, partition, group, coordinator or resource entry
// — counts once under its code's name. NONE (0) is not counted;
// samsa_requests_total counts the requests.
//
// The connection counts a response once it is encoded (conn.handle), and
// a response without an error costs little and allocates nothing:
//
//   - Produce and Fetch, the hot path, are counted by hand: a compare per
//     partition.
//   - Any other response is first looked at for a code that is not 0: by
//     loops for those with a code per partition (Metadata, ListOffsets,
//     OffsetCommit, OffsetFetch, TxnOffsetCommit, OffsetForLeaderEpoch),
//     by reflection for the rest, along the paths from its kmsg type to
//     its ErrorCode fields, which newErrorPaths finds once per type when
//     the broker starts. Only when one is found is the encoded response
//     decoded and the decoded copy's codes counted, so that what is counted
//     is what the client reads: a handler may set a field its version does
//     not send (setTxnError sets AddPartitionsToTxn's top-level code, which
//     v0–v3 do not have).
//
// Counts are kept per API in a table indexed by code, made on the API's
// first error, and read at scrape time.

import (
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// errorCodeSlots is the size of an API's table of error counts: codes -1
// to errorCodeSlots-2. Kafka's codes run from -1 to 136 today; one past the
// table is counted in requestErrors.beyond.
const errorCodeSlots = 256

// errorCounts is one API's count of each error code, at index code+1.
type errorCounts [errorCodeSlots]atomic.Uint64

// requestErrors counts the error codes of responses, by API key and code.
type requestErrors struct {
	desc *prometheus.Desc // immutable
	// byKey[key] is the API's counts, set on its first error; the slice is
	// sized from the API table and immutable.
	byKey []atomic.Pointer[errorCounts]
	// paths[key] is where the API's kmsg response keeps its error codes,
	// nil for Produce and Fetch (walked by hand) and for an API without
	// codes. Immutable.
	paths []*errorPaths

	beyondMu sync.Mutex
	beyond   map[[2]int16]uint64 // by key and code, for codes past the tables; guarded by beyondMu
}

func newRequestErrors(apis apiTable) *requestErrors {
	maxKey := int16(-1)
	for _, a := range apis {
		maxKey = max(maxKey, a.key)
	}
	e := &requestErrors{
		desc: prometheus.NewDesc("samsa_request_errors_total",
			"Error codes in responses, by API and error, one per code a response carries (at its top and in each topic, partition, group or resource entry); NONE is not counted (Kafka: kafka.network RequestMetrics ErrorsPerSec).",
			[]string{"api", "error"}, nil),
		byKey:  make([]atomic.Pointer[errorCounts], maxKey+1),
		paths:  make([]*errorPaths, maxKey+1),
		beyond: map[[2]int16]uint64{},
	}
	for _, a := range apis {
		if a.key != int16(kmsg.Produce) && a.key != int16(kmsg.Fetch) {
			e.paths[a.key] = newErrorPaths(reflect.TypeOf(kmsg.ResponseForKey(a.key)), nil)
		}
	}
	return e
}

// responseErrors counts the error codes of req's response, resp, which out
// holds encoded. It must be called before the writer has out.
func (m *brokerMetrics) responseErrors(req *request, resp kmsg.Response, out *outFrame) {
	if m == nil || req.key < 0 || int(req.key) >= len(m.errors.paths) {
		return
	}
	e := m.errors
	switch r := resp.(type) {
	case *kmsg.ProduceResponse:
		e.produceErrors(req.key, r)
		return
	case *fetchResponse:
		e.fetchErrors(req.key, r.FetchResponse)
		return
	case *kmsg.FetchResponse:
		e.fetchErrors(req.key, r)
		return
	}
	paths := e.paths[req.key]
	if paths == nil || reflect.TypeOf(resp) != paths.typ || !paths.mayHaveErrors(resp) {
		return
	}
	if sent := decodeSent(req, out); sent != nil {
		paths.count(reflect.ValueOf(sent).Elem(), e, req.key)
	}
}

// produceErrors counts a Produce response's codes: each partition's, the
// only ones it has in every version.
func (e *requestErrors) produceErrors(key int16, r *kmsg.ProduceResponse) {
	for i := range r.Topics {
		ps := r.Topics[i].Partitions
		for j := range ps {
			if ps[j].ErrorCode != 0 {
				e.count(key, ps[j].ErrorCode)
			}
		}
	}
}

// fetchErrors counts a Fetch response's codes: the top-level one (v7+, the
// versions that have it) and each partition's.
func (e *requestErrors) fetchErrors(key int16, r *kmsg.FetchResponse) {
	if r.ErrorCode != 0 && r.Version >= 7 {
		e.count(key, r.ErrorCode)
	}
	for i := range r.Topics {
		ps := r.Topics[i].Partitions
		for j := range ps {
			if ps[j].ErrorCode != 0 {
				e.count(key, ps[j].ErrorCode)
			}
		}
	}
}

// mayHaveErrors reports whether a code anywhere in resp, a response of
// p's type, is not 0, whether or not its version sends it. The responses
// with a code per partition are looked at by loops (anyPartitionCode,
// which the compiler inlines with its accessors): a reflective walk costs
// half of what encoding them does, a loop a twentieth
// (BenchmarkResponseErrors). TestMayHaveErrorsSeesEveryCode checks that
// the loops miss no code.
func (p *errorPaths) mayHaveErrors(resp kmsg.Response) bool {
	switch r := resp.(type) {
	case *kmsg.MetadataResponse:
		return r.ErrorCode != 0 ||
			anyOf(r.Topics, func(t *kmsg.MetadataResponseTopic) bool { return t.ErrorCode != 0 }) ||
			anyPartitionCode(r.Topics,
				func(t *kmsg.MetadataResponseTopic) []kmsg.MetadataResponseTopicPartition { return t.Partitions },
				func(p *kmsg.MetadataResponseTopicPartition) int16 { return p.ErrorCode })
	case *kmsg.ListOffsetsResponse:
		return anyPartitionCode(r.Topics,
			func(t *kmsg.ListOffsetsResponseTopic) []kmsg.ListOffsetsResponseTopicPartition { return t.Partitions },
			func(p *kmsg.ListOffsetsResponseTopicPartition) int16 { return p.ErrorCode })
	case *kmsg.OffsetCommitResponse:
		return anyPartitionCode(r.Topics,
			func(t *kmsg.OffsetCommitResponseTopic) []kmsg.OffsetCommitResponseTopicPartition { return t.Partitions },
			func(p *kmsg.OffsetCommitResponseTopicPartition) int16 { return p.ErrorCode })
	case *kmsg.TxnOffsetCommitResponse:
		return anyPartitionCode(r.Topics,
			func(t *kmsg.TxnOffsetCommitResponseTopic) []kmsg.TxnOffsetCommitResponseTopicPartition {
				return t.Partitions
			},
			func(p *kmsg.TxnOffsetCommitResponseTopicPartition) int16 { return p.ErrorCode })
	case *kmsg.OffsetForLeaderEpochResponse:
		return anyPartitionCode(r.Topics,
			func(t *kmsg.OffsetForLeaderEpochResponseTopic) []kmsg.OffsetForLeaderEpochResponseTopicPartition {
				return t.Partitions
			},
			func(p *kmsg.OffsetForLeaderEpochResponseTopicPartition) int16 { return p.ErrorCode })
	case *kmsg.OffsetFetchResponse:
		return r.ErrorCode != 0 ||
			anyPartitionCode(r.Topics,
				func(t *kmsg.OffsetFetchResponseTopic) []kmsg.OffsetFetchResponseTopicPartition { return t.Partitions },
				func(p *kmsg.OffsetFetchResponseTopicPartition) int16 { return p.ErrorCode }) ||
			anyOf(r.Groups, func(g *kmsg.OffsetFetchResponseGroup) bool {
				return g.ErrorCode != 0 || anyPartitionCode(g.Topics,
					func(t *kmsg.OffsetFetchResponseGroupTopic) []kmsg.OffsetFetchResponseGroupTopicPartition {
						return t.Partitions
					},
					func(p *kmsg.OffsetFetchResponseGroupTopicPartition) int16 { return p.ErrorCode })
			})
	}
	return p.any(reflect.ValueOf(resp).Elem())
}

// anyOf reports whether f holds for an element of s. Not for topics and
// their partitions: an anyOf in f's literal calls its own f indirectly,
// once per partition (Metadata's took 2.5 times as long), where
// anyPartitionCode is inlined whole.
func anyOf[E any](s []E, f func(*E) bool) bool {
	for i := range s {
		if f(&s[i]) {
			return true
		}
	}
	return false
}

// anyPartitionCode reports whether the code of a partition of one of
// topics is not 0: partitions and code read the fields, which a generic
// function cannot name.
func anyPartitionCode[T, P any](topics []T, partitions func(*T) []P, code func(*P) int16) bool {
	for i := range topics {
		ps := partitions(&topics[i])
		for j := range ps {
			if code(&ps[j]) != 0 {
				return true
			}
		}
	}
	return false
}

// requestError counts an error code of a response made without a handler
// (conn.serve's answer to an ApiVersions version it does not know).
func (m *brokerMetrics) requestError(key, code int16) {
	if m != nil {
		m.errors.count(key, code)
	}
}

// decodeSent decodes the response in out, as its client will; nil when
// there is none or it does not decode (which a test rules out).
func decodeSent(req *request, out *outFrame) kmsg.Response {
	if out.buf == nil || out.parts != nil {
		return nil
	}
	resp := kmsg.ResponseForKey(req.key)
	if resp == nil {
		return nil
	}
	resp.SetVersion(req.version)
	body := out.buf[8:] // size and correlation id
	if resp.IsFlexible() && req.key != apiVersionsKey {
		body = body[1:] // the header's tagged fields: none (encodeResponseInto)
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil
	}
	return resp
}

// count counts one error code of a response to API key.
func (e *requestErrors) count(key, code int16) {
	if code == 0 || key < 0 || int(key) >= len(e.byKey) {
		return
	}
	i := int(code) + 1
	if i < 0 || i >= errorCodeSlots {
		e.beyondMu.Lock()
		e.beyond[[2]int16{key, code}]++
		e.beyondMu.Unlock()
		return
	}
	counts := e.byKey[key].Load()
	if counts == nil {
		e.byKey[key].CompareAndSwap(nil, new(errorCounts)) // a racing first error keeps the other's
		counts = e.byKey[key].Load()
	}
	counts[i].Add(1)
}

// collect reports each API's count of each code seen.
func (e *requestErrors) collect(ch chan<- prometheus.Metric) {
	for key := range e.byKey {
		counts := e.byKey[key].Load()
		if counts == nil {
			continue
		}
		api := kmsg.NameForKey(int16(key))
		for i := range counts {
			if n := counts[i].Load(); n > 0 {
				ch <- prometheus.MustNewConstMetric(e.desc, prometheus.CounterValue, float64(n), api, errorName(int16(i-1)))
			}
		}
	}
	e.beyondMu.Lock()
	defer e.beyondMu.Unlock()
	for kc, n := range e.beyond {
		ch <- prometheus.MustNewConstMetric(e.desc, prometheus.CounterValue, float64(n), kmsg.NameForKey(kc[0]), errorName(kc[1]))
	}
}

// errorName is a code's name in Kafka (UNKNOWN_TOPIC_OR_PARTITION), as
// kerr has it, or its number when kerr does not know it. Code 6 has the
// name Kafka gave it in 2.7, which kerr keeps the older name of.
func errorName(code int16) string {
	if code == kerr.NotLeaderForPartition.Code {
		return "NOT_LEADER_OR_FOLLOWER"
	}
	if err, ok := kerr.ErrorForCode(code).(*kerr.Error); ok && err.Code == code {
		return err.Message
	}
	return strconv.Itoa(int(code))
}

// errorPaths is where values of a struct type keep error codes: its own
// int16 fields named ErrorCode, and the fields (structs, pointers to them,
// slices of either) that lead to more. Immutable.
type errorPaths struct {
	typ    reflect.Type // the type walked: a pointer to the struct at the top, the struct below
	codes  []int        // indexes of its ErrorCode fields
	nested []nestedPaths
}

// nestedPaths is a field of a struct that leads to error codes.
type nestedPaths struct {
	field int
	kind  reflect.Kind // reflect.Struct, Pointer or Slice
	ptr   bool         // a slice's elements are pointers
	elem  *errorPaths
}

// newErrorPaths finds the error codes under t, a struct or a pointer to
// one; nil when there are none. within holds the types being searched
// already, so that a recursive type ends the search.
func newErrorPaths(t reflect.Type, within []reflect.Type) *errorPaths {
	top := t
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	for _, w := range within {
		if w == t {
			return nil
		}
	}
	within = append(within, t)
	p := &errorPaths{typ: top}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if f.Name == "ErrorCode" && f.Type.Kind() == reflect.Int16 {
			p.codes = append(p.codes, i)
			continue
		}
		n := nestedPaths{field: i, kind: f.Type.Kind()}
		switch ft := f.Type; ft.Kind() {
		case reflect.Struct, reflect.Pointer:
			n.elem = newErrorPaths(ft, within)
		case reflect.Slice:
			n.ptr = ft.Elem().Kind() == reflect.Pointer
			n.elem = newErrorPaths(ft.Elem(), within)
		}
		if n.elem != nil {
			p.nested = append(p.nested, n)
		}
	}
	if len(p.codes) == 0 && len(p.nested) == 0 {
		return nil
	}
	return p
}

// any reports whether any error code under v, a struct of p's type, is
// not 0.
func (p *errorPaths) any(v reflect.Value) bool {
	return !p.each(v, func(code int16) bool { return code == 0 })
}

// count counts each error code under v, a struct of p's type, that is
// not 0.
func (p *errorPaths) count(v reflect.Value, e *requestErrors, key int16) {
	p.each(v, func(code int16) bool {
		e.count(key, code) // 0 is not counted
		return true
	})
}

// each calls f with every error code under v, a struct of p's type, in
// order, while f returns true; it reports whether f always did.
func (p *errorPaths) each(v reflect.Value, f func(code int16) bool) bool {
	for _, i := range p.codes {
		if !f(int16(v.Field(i).Int())) {
			return false
		}
	}
	for _, n := range p.nested {
		fv := v.Field(n.field)
		switch n.kind {
		case reflect.Struct:
			if !n.elem.each(fv, f) {
				return false
			}
		case reflect.Pointer:
			if !fv.IsNil() && !n.elem.each(fv.Elem(), f) {
				return false
			}
		case reflect.Slice:
			for j := range fv.Len() {
				el := fv.Index(j)
				if n.ptr {
					if el.IsNil() {
						continue
					}
					el = el.Elem()
				}
				if !n.elem.each(el, f) {
					return false
				}
			}
		}
	}
	return true
}
