package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// recordsOf returns the encoded records of recs, as Build lays them out.
func recordsOf(recs []Record, baseOffset, baseTS int64) []byte {
	var b []byte
	for i := range recs {
		b = appendRecord(b, &recs[i], baseOffset, baseTS)
	}
	return b
}

// withRecords returns a copy of the header of batch followed by payload
// (compressed with the batch's codec), with length and CRC fixed up.
func withRecords(t *testing.T, batch, payload []byte) []byte {
	t.Helper()
	h, err := ParseHeader(batch)
	if err != nil {
		t.Fatal(err)
	}
	b := bytes.Clone(batch[:HeaderSize])
	if b, err = Compress(h.Attributes.Codec(), b, payload); err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-12))
	UpdateCRC(b)
	return b
}

func TestValidateFailures(t *testing.T) {
	type mutation func(t *testing.T, b []byte) []byte
	// resealed applies f to the bytes and recomputes the CRC, to reach the
	// checks behind it.
	resealed := func(f func(b []byte)) mutation {
		return func(t *testing.T, b []byte) []byte { f(b); UpdateCRC(b); return b }
	}
	setInt32 := func(off int, v int32) mutation {
		return resealed(func(b []byte) { binary.BigEndian.PutUint32(b[off:], uint32(v)) })
	}
	setAttrs := func(f func(Attributes) Attributes) mutation {
		return resealed(func(b []byte) {
			a := Attributes(binary.BigEndian.Uint16(b[offAttributes:]))
			binary.BigEndian.PutUint16(b[offAttributes:], uint16(f(a)))
		})
	}
	recs := testRecords(3, 0, 1000, 20)

	cases := []struct {
		name   string
		mutate mutation
		verify bool // needs VerifyRecords to be caught
		kind   error
	}{
		{"truncated header", func(t *testing.T, b []byte) []byte { return b[:HeaderSize-1] }, false, ErrCorrupt},
		{"truncated records", func(t *testing.T, b []byte) []byte { return b[:len(b)-1] }, false, ErrCorrupt},
		{"empty", func(t *testing.T, b []byte) []byte { return nil }, false, ErrCorrupt},
		{"length too large", setInt32(offLength, 1<<20), false, ErrCorrupt},
		{"length below header", setInt32(offLength, 10), false, ErrCorrupt},
		{"negative length", setInt32(offLength, -1), false, ErrCorrupt},
		{"extra byte after batch", func(t *testing.T, b []byte) []byte { return append(b, 0) }, false, ErrCorrupt},
		{"bad magic", resealed(func(b []byte) { b[offMagic] = 1 }), false, ErrCorrupt},
		{"crc flip in records", func(t *testing.T, b []byte) []byte { b[len(b)-2] ^= 0x10; return b }, false, ErrCorrupt},
		{"crc flip in header", func(t *testing.T, b []byte) []byte { b[offMaxTimestamp] ^= 1; return b }, false, ErrCorrupt},
		{"crc field flip", func(t *testing.T, b []byte) []byte { b[offCRC] ^= 0x80; return b }, false, ErrCorrupt},
		{"codec 5", setAttrs(func(a Attributes) Attributes { return a&^attrCodecMask | 5 }), false, ErrUnsupportedCodec},
		{"codec 7", setAttrs(func(a Attributes) Attributes { return a | 7 }), false, ErrUnsupportedCodec},
		{"unused attribute bit 7", setAttrs(func(a Attributes) Attributes { return a | 0x80 }), false, ErrInvalidRecord},
		{"unused attribute bit 15", setAttrs(func(a Attributes) Attributes { return a | -0x8000 }), false, ErrInvalidRecord},
		{"zero records", resealed(func(b []byte) {
			binary.BigEndian.PutUint32(b[offNumRecords:], 0)
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 0xffffffff)
		}), false, ErrInvalidRecord},
		{"negative record count", setInt32(offNumRecords, -1), false, ErrInvalidRecord},
		{"last offset delta mismatch", setInt32(offLastOffsetDelta, 5), false, ErrInvalidRecord},
		{"negative last offset delta", setInt32(offLastOffsetDelta, -1), false, ErrInvalidRecord},
		{"max timestamp below -1", resealed(func(b []byte) {
			binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(0xfffffffffffffff0))
		}), false, ErrInvalidRecord},
		{"control batch with 3 records", setAttrs(func(a Attributes) Attributes { return a | attrControl }), false, ErrInvalidRecord},
		{"header count above records", resealed(func(b []byte) {
			binary.BigEndian.PutUint32(b[offNumRecords:], 4)
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 3)
		}), true, ErrInvalidRecord},
		{"header count below records", resealed(func(b []byte) {
			binary.BigEndian.PutUint32(b[offNumRecords:], 2)
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 1)
		}), true, ErrInvalidRecord},
		{"huge record count", resealed(func(b []byte) {
			binary.BigEndian.PutUint32(b[offNumRecords:], 1<<30)
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 1<<30-1)
		}), true, ErrInvalidRecord},
		{"record timestamp after max", resealed(func(b []byte) {
			binary.BigEndian.PutUint64(b[offMaxTimestamp:], 1001) // last record is 1002
		}), true, ErrInvalidRecord},
		{"offset deltas out of order", func(t *testing.T, b []byte) []byte {
			r := []Record{recs[0], recs[2], recs[1]}
			return withRecords(t, b, recordsOf(r, 0, 1000))
		}, true, ErrInvalidRecord},
		{"offset deltas with a gap", func(t *testing.T, b []byte) []byte {
			r := []Record{recs[0], recs[1], {Offset: 3, Timestamp: 1000}}
			return withRecords(t, b, recordsOf(r, 0, 1000))
		}, true, ErrInvalidRecord},
		{"trailing garbage", func(t *testing.T, b []byte) []byte {
			return withRecords(t, b, append(recordsOf(recs, 0, 1000), 0xde, 0xad))
		}, true, ErrCorrupt},
		{"record length too long", func(t *testing.T, b []byte) []byte {
			p := recordsOf(recs[:1], 0, 1000)
			p[0] += 2 // zigzag: length + 1
			p = append(p, recordsOf(recs[1:], 0, 1000)...)
			return withRecords(t, b, p)
		}, true, ErrCorrupt},
		{"record length too short", func(t *testing.T, b []byte) []byte {
			p := recordsOf(recs, 0, 1000)
			p[0] -= 2
			return withRecords(t, b, p)
		}, true, ErrCorrupt},
		{"record truncated", func(t *testing.T, b []byte) []byte {
			p := recordsOf(recs, 0, 1000)
			return withRecords(t, b, p[:len(p)-3])
		}, true, ErrCorrupt},
		{"malformed varint", func(t *testing.T, b []byte) []byte {
			p := recordsOf(recs, 0, 1000)
			p = append(p[:len(p)-len(recordsOf(recs[2:], 0, 1000))], 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
			return withRecords(t, b, p)
		}, true, ErrCorrupt},
		{"decompression garbage", func(t *testing.T, b []byte) []byte {
			h, _ := ParseHeader(b)
			if h.Attributes.Codec() == CodecNone {
				b = bytes.Clone(b)
				binary.BigEndian.PutUint16(b[offAttributes:], uint16(h.Attributes|Attributes(CodecGzip)))
			}
			b = append(b[:HeaderSize], "this is not compressed data at all, honest"...)
			binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-12))
			UpdateCRC(b)
			return b
		}, true, ErrCorrupt},
	}
	for _, c := range allCodecs {
		o := DefaultBuildOptions()
		o.Codec = c
		batch := mustBuild(t, o, recs)
		for _, tc := range cases {
			t.Run(c.String()+"/"+tc.name, func(t *testing.T) {
				b := tc.mutate(t, bytes.Clone(batch))
				_, err := Validate(b, ValidateOptions{VerifyRecords: true})
				if !errors.Is(err, tc.kind) {
					t.Fatalf("Validate: %v, want %v", err, tc.kind)
				}
				t.Logf("%v", err)
				if !tc.verify {
					if _, err := Validate(b, ValidateOptions{}); !errors.Is(err, tc.kind) {
						t.Fatalf("Validate without VerifyRecords: %v, want %v", err, tc.kind)
					}
				} else if _, err := Validate(b, ValidateOptions{}); err != nil {
					t.Fatalf("Validate without VerifyRecords should only check the header: %v", err)
				}
			})
		}
	}
}

func TestValidateControlBatchWithTwoRecords(t *testing.T) {
	o := DefaultBuildOptions()
	o.Transactional = true
	b := mustBuild(t, o, testRecords(2, 0, 1, 1))
	a := Attributes(binary.BigEndian.Uint16(b[offAttributes:])) | attrControl
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(a))
	UpdateCRC(b)
	if _, err := Validate(b, ValidateOptions{}); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("Validate: %v", err)
	}
}

func TestRecordsErrors(t *testing.T) {
	b := mustBuild(t, DefaultBuildOptions(), testRecords(3, 0, 1, 5))
	for _, tc := range []struct {
		name string
		b    []byte
		kind error
	}{
		{"short", b[:10], ErrCorrupt},
		{"truncated", b[:len(b)-1], ErrCorrupt},
		{"too long", append(bytes.Clone(b), 1), ErrCorrupt},
	} {
		if _, err := Records(tc.b); !errors.Is(err, tc.kind) {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	codec := bytes.Clone(b)
	codec[offAttributes+1] |= 6
	if _, err := Records(codec); !errors.Is(err, ErrUnsupportedCodec) {
		t.Fatalf("codec 6: %v", err)
	}
	count := bytes.Clone(b)
	binary.BigEndian.PutUint32(count[offNumRecords:], 4)
	if _, err := Records(count); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("count 4: %v", err)
	}
}

func TestValidateDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	o := DefaultBuildOptions()
	for _, c := range allCodecs {
		o.Codec = c
		b := mustBuild(t, o, testRecords(50, 0, 1, 100))
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := Validate(b, ValidateOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := ParseHeader(b); err != nil {
				t.Fatal(err)
			}
			SetBaseOffset(b, 10)
			SetPartitionLeaderEpoch(b, 3)
		})
		if allocs != 0 {
			t.Fatalf("%v: %v allocations", c, allocs)
		}
	}
	// With VerifyRecords an uncompressed batch needs no allocation either.
	o.Codec = CodecNone
	b := mustBuild(t, o, testRecords(50, 0, 1, 100))
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Validate(b, ValidateOptions{VerifyRecords: true}); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("VerifyRecords: %v allocations", allocs)
	}
}
