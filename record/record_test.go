package record

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

var allCodecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

// testRecords returns n records at offsets base, base+1, … with timestamps
// ts, ts+1, …, values of valueSize bytes and a key and a header on every
// other record.
func testRecords(n int, base, ts int64, valueSize int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		r := &recs[i]
		r.Offset = base + int64(i)
		r.Timestamp = ts + int64(i)
		r.Value = bytes.Repeat([]byte{byte('a' + i%26)}, valueSize)
		if i%2 == 0 {
			r.Key = []byte(fmt.Sprintf("key-%d", i))
			r.Headers = []RecordHeader{{Key: "h", Value: []byte(fmt.Sprint(i))}}
		}
	}
	return recs
}

func mustBuild(t testing.TB, opts BuildOptions, recs []Record) []byte {
	t.Helper()
	b, err := Build(opts, recs)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return b
}

// sameRecords compares decoded records with the ones built, telling null
// keys, values and header values apart from empty ones.
func sameRecords(t *testing.T, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if len(w.Headers) == 0 {
			w.Headers = nil
		}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, g, w)
		}
		// Null and empty must stay apart.
		if (g.Key == nil) != (w.Key == nil) || (g.Value == nil) != (w.Value == nil) {
			t.Fatalf("record %d: null-ness of key/value lost: got key %v value %v", i, g.Key == nil, g.Value == nil)
		}
		for j := range w.Headers {
			if (g.Headers[j].Value == nil) != (w.Headers[j].Value == nil) {
				t.Fatalf("record %d header %d: null-ness of value lost", i, j)
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		recs []Record
	}{
		{"one record", testRecords(1, 0, 1000, 10)},
		{"null key and value", []Record{{Offset: 0, Timestamp: 5}}},
		{"empty key and value", []Record{{Offset: 0, Timestamp: 5, Key: []byte{}, Value: []byte{}}}},
		{"headers", []Record{{
			Offset: 0, Timestamp: 7, Key: []byte("k"), Value: []byte("v"),
			Headers: []RecordHeader{
				{Key: "a", Value: []byte("1")},
				{Key: "", Value: []byte{}},
				{Key: "null", Value: nil},
			},
		}}},
		{"attributes byte kept", []Record{{Offset: 0, Timestamp: 1, Attributes: 3, Value: []byte("x")}}},
		{"no timestamps", []Record{{Offset: 0, Timestamp: -1}, {Offset: 1, Timestamp: -1}}},
		{"many records", testRecords(5000, 0, 1_700_000_000_000, 100)},
		{"large values", testRecords(4, 0, 1, 300_000)},
		{"decreasing timestamps", []Record{
			{Offset: 0, Timestamp: 100, Value: []byte("a")},
			{Offset: 1, Timestamp: 50, Value: []byte("b")},
			{Offset: 2, Timestamp: 200, Value: []byte("c")},
		}},
	}
	for _, tc := range cases {
		for _, c := range allCodecs {
			t.Run(tc.name+"/"+c.String(), func(t *testing.T) {
				b := mustBuild(t, BuildOptions{Codec: c, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
					LastOffsetDelta: -1, DeleteHorizon: -1, MaxTimestamp: -1}, tc.recs)
				h, err := Validate(b, ValidateOptions{VerifyRecords: true})
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if h.Attributes.Codec() != c {
					t.Fatalf("codec %v, want %v", h.Attributes.Codec(), c)
				}
				if int(h.NumRecords) != len(tc.recs) || h.Size() != len(b) {
					t.Fatalf("header %+v for %d records, %d bytes", h, len(tc.recs), len(b))
				}
				maxTS := int64(-1)
				for _, r := range tc.recs {
					maxTS = max(maxTS, r.Timestamp)
				}
				if h.BaseTimestamp != tc.recs[0].Timestamp || h.MaxTimestamp != maxTS {
					t.Fatalf("timestamps base %d max %d, want %d %d", h.BaseTimestamp, h.MaxTimestamp, tc.recs[0].Timestamp, maxTS)
				}
				got, err := Records(b)
				if err != nil {
					t.Fatalf("Records: %v", err)
				}
				sameRecords(t, got, tc.recs)
			})
		}
	}
}

func TestBuildHeaderFields(t *testing.T) {
	opts := DefaultBuildOptions()
	opts.BaseOffset = 1000
	opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence = 42, 3, 17
	opts.PartitionLeaderEpoch = 9
	opts.Transactional = true
	recs := testRecords(3, 1000, 50, 4)
	b := mustBuild(t, opts, recs)
	h, err := Validate(b, ValidateOptions{VerifyRecords: true})
	if err != nil {
		t.Fatal(err)
	}
	want := Header{
		BaseOffset: 1000, Length: int32(len(b) - 12), PartitionLeaderEpoch: 9, Magic: 2, CRC: ComputeCRC(b),
		Attributes: attrTransactional, LastOffsetDelta: 2, BaseTimestamp: 50, MaxTimestamp: 52,
		ProducerID: 42, ProducerEpoch: 3, BaseSequence: 17, NumRecords: 3,
	}
	if h != want {
		t.Fatalf("header\n got %+v\nwant %+v", h, want)
	}
	if h.LastOffset() != 1002 {
		t.Fatalf("LastOffset %d", h.LastOffset())
	}
	if !h.Attributes.Transactional() || h.Attributes.Control() || h.Attributes.LogAppendTime() || h.Attributes.HasDeleteHorizon() {
		t.Fatalf("attributes %#x", h.Attributes)
	}
}

func TestBuildControlLogAppendTimeDeleteHorizon(t *testing.T) {
	opts := DefaultBuildOptions()
	opts.Control, opts.Transactional, opts.LogAppendTime = true, true, true
	opts.DeleteHorizon = 10
	recs := []Record{{Offset: 0, Timestamp: 25, Key: []byte{0, 0, 0, 1}, Value: []byte{0, 0, 0, 0, 0, 0}}}
	b := mustBuild(t, opts, recs)
	h, err := Validate(b, ValidateOptions{VerifyRecords: true})
	if err != nil {
		t.Fatal(err)
	}
	a := h.Attributes
	if !a.Control() || !a.Transactional() || !a.LogAppendTime() || !a.HasDeleteHorizon() || h.BaseTimestamp != 10 || h.MaxTimestamp != 25 {
		t.Fatalf("header %+v", h)
	}
	got, err := Records(b)
	if err != nil {
		t.Fatal(err)
	}
	// LogAppendTime: every record reports MaxTimestamp.
	if got[0].Timestamp != 25 {
		t.Fatalf("timestamp %d", got[0].Timestamp)
	}
}

func TestDeleteHorizonKeepsRecordTimestamps(t *testing.T) {
	opts := DefaultBuildOptions()
	opts.DeleteHorizon = 5_000
	recs := testRecords(3, 0, 1_000, 1)
	b := mustBuild(t, opts, recs)
	h, err := Validate(b, ValidateOptions{VerifyRecords: true})
	if err != nil {
		t.Fatal(err)
	}
	if !h.Attributes.HasDeleteHorizon() || h.BaseTimestamp != 5_000 || h.MaxTimestamp != 1_002 {
		t.Fatalf("header %+v", h)
	}
	got, err := Records(b)
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, recs)
}

func TestBuildCompactedBatch(t *testing.T) {
	// A cleaner kept offsets 10 and 13 of a batch that covered 10..15.
	opts := DefaultBuildOptions()
	opts.BaseOffset = 10
	opts.LastOffsetDelta = 5
	opts.MaxTimestamp = 999
	recs := []Record{{Offset: 10, Timestamp: 100, Value: []byte("a")}, {Offset: 13, Timestamp: 130, Value: []byte("b")}}
	b := mustBuild(t, opts, recs)
	if _, err := Validate(b, ValidateOptions{VerifyRecords: true}); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("strict Validate of a compacted batch: %v, want ErrInvalidRecord", err)
	}
	h, err := Validate(b, ValidateOptions{VerifyRecords: true, AllowCompacted: true})
	if err != nil {
		t.Fatal(err)
	}
	if h.LastOffset() != 15 || h.NumRecords != 2 || h.MaxTimestamp != 999 {
		t.Fatalf("header %+v", h)
	}
	got, err := Records(b)
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, recs)

	// All records gone, batch kept for its producer state.
	for _, c := range allCodecs {
		opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence = 7, 1, 100
		opts.Codec = c
		b = mustBuild(t, opts, nil)
		if len(b) != HeaderSize {
			t.Fatalf("%v: empty batch of %d bytes", c, len(b))
		}
		h, err = Validate(b, ValidateOptions{VerifyRecords: true, AllowCompacted: true})
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		if h.NumRecords != 0 || h.LastOffset() != 15 || h.MaxTimestamp != 999 || h.BaseTimestamp != 999 {
			t.Fatalf("header %+v", h)
		}
		if recs, err := Records(b); err != nil || len(recs) != 0 {
			t.Fatalf("%v: Records of an empty batch: %v %v", c, recs, err)
		}
		if _, err := Validate(b, ValidateOptions{}); !errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("strict Validate of an empty batch: %v", err)
		}
	}
}

func TestBuildRejects(t *testing.T) {
	d := DefaultBuildOptions()
	cases := []struct {
		name string
		opts func(*BuildOptions)
		recs []Record
		kind error
	}{
		{"no records", nil, nil, ErrInvalidRecord},
		{"offset below base", func(o *BuildOptions) { o.BaseOffset = 5 }, []Record{{Offset: 4}}, ErrInvalidRecord},
		{"offsets not increasing", nil, []Record{{Offset: 1}, {Offset: 1}}, ErrInvalidRecord},
		{"offset delta overflow", nil, []Record{{Offset: 1 << 31}}, ErrInvalidRecord},
		{"control with two records", func(o *BuildOptions) { o.Control = true }, []Record{{Offset: 0}, {Offset: 1}}, ErrInvalidRecord},
		{"last offset delta too small", func(o *BuildOptions) { o.LastOffsetDelta = 0 }, []Record{{Offset: 0}, {Offset: 1}}, ErrInvalidRecord},
		{"bad codec", func(o *BuildOptions) { o.Codec = 5 }, []Record{{Offset: 0}}, ErrUnsupportedCodec},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := d
			if tc.opts != nil {
				tc.opts(&o)
			}
			if _, err := Build(o, tc.recs); !errors.Is(err, tc.kind) {
				t.Fatalf("Build: %v, want %v", err, tc.kind)
			}
		})
	}
}

func TestInPlaceEdits(t *testing.T) {
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			b := mustBuild(t, DefaultBuildOptions(), testRecords(3, 0, 100, 8))
			crc := ComputeCRC(b)
			SetBaseOffset(b, 1<<40)
			SetPartitionLeaderEpoch(b, 77)
			if ComputeCRC(b) != crc {
				t.Fatal("base offset or leader epoch changed the CRC span")
			}
			h, err := Validate(b, ValidateOptions{VerifyRecords: true})
			if err != nil {
				t.Fatal(err)
			}
			if h.BaseOffset != 1<<40 || h.PartitionLeaderEpoch != 77 {
				t.Fatalf("header %+v", h)
			}
			recs, err := Records(b)
			if err != nil {
				t.Fatal(err)
			}
			if recs[2].Offset != 1<<40+2 {
				t.Fatalf("offset %d", recs[2].Offset)
			}

			SetLogAppendTime(b, 5_000)
			h, err = Validate(b, ValidateOptions{VerifyRecords: true})
			if err != nil {
				t.Fatalf("after SetLogAppendTime: %v", err)
			}
			if !h.Attributes.LogAppendTime() || h.MaxTimestamp != 5_000 || h.BaseTimestamp != 100 {
				t.Fatalf("header %+v", h)
			}
			recs, err = Records(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if r.Timestamp != 5_000 {
					t.Fatalf("record timestamp %d, want the log append time", r.Timestamp)
				}
			}
		})
	}
}

func TestParseHeader(t *testing.T) {
	b := mustBuild(t, DefaultBuildOptions(), testRecords(2, 0, 1, 1))
	h, err := ParseHeader(b[:HeaderSize])
	if err != nil {
		t.Fatal(err)
	}
	if h.Size() != len(b) || h.NumRecords != 2 {
		t.Fatalf("header %+v", h)
	}
	// ParseHeader does not check the CRC.
	b[len(b)-1] ^= 0xff
	if _, err := ParseHeader(b); err != nil {
		t.Fatalf("ParseHeader checked the CRC: %v", err)
	}
	if _, err := ParseHeader(b[:HeaderSize-1]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short: %v", err)
	}
	short := bytes.Clone(b)
	short[offLength+3] = 48 // Length 48 < 49
	if _, err := ParseHeader(short); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("small length: %v", err)
	}
	magic := bytes.Clone(b)
	magic[offMagic] = 1
	if _, err := ParseHeader(magic); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("magic 1: %v", err)
	}
}

func TestCodecNames(t *testing.T) {
	for _, c := range allCodecs {
		got, err := ParseCodec(c.String())
		if err != nil || got != c {
			t.Fatalf("ParseCodec(%q) = %v, %v", c.String(), got, err)
		}
	}
	if c, err := ParseCodec("uncompressed"); err != nil || c != CodecNone {
		t.Fatalf("uncompressed: %v %v", c, err)
	}
	for _, s := range []string{"producer", "GZIP", "brotli", ""} {
		if _, err := ParseCodec(s); !errors.Is(err, ErrUnsupportedCodec) {
			t.Fatalf("ParseCodec(%q): %v", s, err)
		}
	}
	if s := Codec(6).String(); s != "codec(6)" {
		t.Fatalf("unknown codec string %q", s)
	}
}

func TestIterReusesBuffers(t *testing.T) {
	recs := testRecords(100, 0, 1, 50)
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			o := DefaultBuildOptions()
			o.Codec = c
			b := mustBuild(t, o, recs)
			var it Iter
			var scratch []byte
			for range 3 {
				if err := it.Init(b, scratch); err != nil {
					t.Fatal(err)
				}
				n := 0
				for it.Next() {
					r := it.Record()
					if r.Offset != recs[n].Offset || !bytes.Equal(r.Value, recs[n].Value) {
						t.Fatalf("record %d: %+v", n, r)
					}
					n++
				}
				if it.Err() != nil || n != len(recs) {
					t.Fatalf("n %d err %v", n, it.Err())
				}
				if it.Header().NumRecords != 100 {
					t.Fatal("header")
				}
				scratch = it.Buffer()
			}
			if c != CodecNone && cap(scratch) == 0 {
				t.Fatal("no decompression buffer kept")
			}
			// Uncompressed records without headers iterate without allocating.
			if (c == CodecNone || c == CodecSnappy || c == CodecZstd) && !raceEnabled {
				plain := mustBuild(t, o, []Record{{Offset: 0, Value: []byte("x")}, {Offset: 1, Key: []byte("k")}})
				allocs := testing.AllocsPerRun(100, func() {
					if err := it.Init(plain, scratch); err != nil {
						t.Fatal(err)
					}
					for it.Next() {
					}
				})
				if allocs != 0 {
					t.Fatalf("%v allocations per iteration", allocs)
				}
			}
		})
	}
}

func TestNewIter(t *testing.T) {
	b := mustBuild(t, DefaultBuildOptions(), testRecords(3, 0, 1, 1))
	it, err := NewIter(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for it.Next() {
		n++
	}
	if n != 3 || it.Err() != nil {
		t.Fatal(n, it.Err())
	}
	if _, err := NewIter(b[:len(b)-1], nil); !errors.Is(err, ErrCorrupt) {
		t.Fatal(err)
	}
	// After a failed Init, Next stops at once and Err repeats the error.
	bad := bytes.Clone(b)
	bad[offAttributes+1] |= byte(CodecGzip)
	var it2 Iter
	initErr := it2.Init(bad, nil)
	if !errors.Is(initErr, ErrCorrupt) || it2.Next() || it2.Err() != initErr {
		t.Fatalf("Init: %v, Err: %v", initErr, it2.Err())
	}
}

func TestErrorMessages(t *testing.T) {
	b := mustBuild(t, DefaultBuildOptions(), testRecords(1, 0, 1, 1))
	b[len(b)-1] ^= 1
	_, err := Validate(b, ValidateOptions{})
	var e *Error
	if !errors.As(err, &e) || e.Kind != ErrCorrupt || !strings.Contains(err.Error(), "crc mismatch: stored 0x") {
		t.Fatalf("error %v", err)
	}
}
