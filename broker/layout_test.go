package broker

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The layouts must accept every body kmsg encodes, in every flexible
// version kmsg knows, and walk it to its last byte: a layout that differs
// from kmsg's decoder would refuse good requests (or check nothing). The
// requests are filled at random: arrays, null and empty values, unknown
// tagged fields, and the known tagged structs. Every flexible version the
// API table serves must have a layout.
func TestLayoutsAcceptWhatKmsgEncodes(t *testing.T) {
	for _, a := range newAPITable() {
		for v := a.min; v <= a.max; v++ {
			req := kmsg.RequestForKey(a.key)
			req.SetVersion(v)
			if _, ok := requestLayouts[a.key]; req.IsFlexible() && !ok {
				t.Errorf("%s v%d is served and flexible but has no layout: it would always be refused",
					kmsg.NameForKey(a.key), v)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for key, l := range requestLayouts {
		for v := int16(0); v <= kmsg.RequestForKey(key).MaxVersion(); v++ {
			req := kmsg.RequestForKey(key)
			req.SetVersion(v)
			if !req.IsFlexible() {
				continue
			}
			for i := range 300 {
				req := kmsg.RequestForKey(key)
				fillRandom(rng, reflect.ValueOf(req).Elem(), 0)
				req.SetVersion(v)
				body := req.AppendTo(nil)
				w := walker{rest: body, version: v}
				if err := w.walk(l); err != nil {
					t.Fatalf("%s v%d, request %d: %v\n%x", kmsg.NameForKey(key), v, i, err, body)
				}
				if len(w.rest) != 0 {
					t.Fatalf("%s v%d, request %d: %d of %d bytes left after the walk\n%x",
						kmsg.NameForKey(key), v, i, len(w.rest), len(body), body)
				}
			}
		}
	}
}

// fillRandom sets the exported fields of v to random values: numbers,
// strings and bytes (some nil), arrays of up to three elements (some nil),
// and unknown tagged fields.
func fillRandom(rng *rand.Rand, v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(rng.IntN(2) == 0)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		switch rng.IntN(3) {
		case 0:
			v.SetInt(0)
		case 1:
			v.SetInt(-1)
		default:
			v.SetInt(rng.Int64() >> (64 - v.Type().Bits()))
		}
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(rng.Uint64() >> (64 - v.Type().Bits()))
	case reflect.String:
		v.SetString(randomText(rng))
	case reflect.Array:
		for i := range v.Len() {
			fillRandom(rng, v.Index(i), depth+1)
		}
	case reflect.Pointer:
		if rng.IntN(3) == 0 {
			v.SetZero()
			return
		}
		p := reflect.New(v.Type().Elem())
		fillRandom(rng, p.Elem(), depth+1)
		v.Set(p)
	case reflect.Slice:
		if rng.IntN(4) == 0 {
			v.SetZero()
			return
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte(randomText(rng)))
			return
		}
		n := rng.IntN(4)
		if depth > 6 {
			n = 0
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fillRandom(rng, s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Struct:
		if tags, ok := v.Addr().Interface().(*kmsg.Tags); ok {
			for range rng.IntN(3) {
				// Keys above every known tag: a known key would be decoded
				// as that field, and random bytes are not one.
				tags.Set(uint32(10+rng.IntN(1000)), []byte(randomText(rng)))
			}
			return
		}
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() && f.Name != "Version" {
				fillRandom(rng, v.Field(i), depth+1)
			}
		}
	}
}

func randomText(rng *rand.Rand) string {
	b := make([]byte, rng.IntN(3)*rng.IntN(40))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return string(b)
}

// uvarint32 appends v as an unsigned varint.
func uvarint32(b []byte, v uint32) []byte { return binary.AppendUvarint(b, uint64(v)) }

// Bodies of a few bytes that declare 2^32-1 tagged fields, or arrays longer
// than their bytes, are refused by the layout check, before kmsg would spend
// minutes in its tag loop (see layout.go). Without the check parseRequest
// would also fail, from kmsg, but only after that loop: the error must come
// from the check.
func TestHugeCountsAreRefusedBeforeDecoding(t *testing.T) {
	const huge = 1<<32 - 1
	var emptyStr byte = 1 // compact string of length 0
	// replica_state (tag 1): id, epoch, then its own tags.
	fetchState := uvarint32([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, huge)
	for _, tc := range []struct {
		name    string
		key, v  int16
		body    []byte
		message string
	}{
		{"Metadata v12, message tags", 3, 12, uvarint32([]byte{0, 1, 0}, huge), "tagged fields"},
		{"Metadata v12, topic tags", 3, 12,
			uvarint32(append([]byte{2}, append(make([]byte, 16), emptyStr)...), huge), "tagged fields"},
		{"Metadata v12, topics past the frame", 3, 12, uvarint32(nil, 1<<31), "array of"},
		{"ApiVersions v3, message tags", apiVersionsKey, 3, uvarint32([]byte{emptyStr, emptyStr}, huge), "tagged fields"},
		{"ApiVersions v4, message tags", apiVersionsKey, 4, uvarint32([]byte{emptyStr, emptyStr}, 1<<20), "tagged fields"},
		{"Produce v9, partition tags", 0, 9,
			uvarint32([]byte{0, 0xff, 0xff, 0, 0, 0, 0, 2, emptyStr, 2, 0, 0, 0, 0, 0}, huge), "tagged fields"},
		{"Fetch v15, tags inside replica_state", 1, 15,
			append(append(make([]byte, 4*5+1), 1, 1, 1, 1, 1, byte(len(fetchState))), fetchState...), "tagged fields"},
		{"ApiVersions v3, string past the frame", apiVersionsKey, 3, uvarint32(nil, 1<<30), "string of"},
		{"CreateTopics v7, topics past the frame", 19, 7, append(uvarint32(nil, 3), make([]byte, 12)...), "array of"},
		{"DescribeCluster v1, tag value past the frame", 60, 1, []byte{0, 0, 1, 5, 100, 1}, "tagged field of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := headerFrame(tc.key, tc.v, 1, nil)
			frame = append(append(frame, 0), tc.body...) // empty header tags, then the body
			_, err := parseRequest(newAPITable(), frame)
			if !errors.Is(err, errLayout) {
				t.Fatalf("parseRequest: %v, want the layout check's refusal", err)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %q does not say %q", err, tc.message)
			}
		})
	}
}
