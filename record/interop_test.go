package record

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"io"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// These tests check the codec against franz-go's kmsg encoder and against the
// compression libraries used the way Kafka clients use them, with none of
// this package's code on the producing side.

// referenceCodecs compress and decompress as clients do.
var referenceCodecs = []struct {
	name       string
	codec      Codec
	compress   func(t *testing.T, p []byte) []byte
	decompress func(t *testing.T, z []byte) []byte
}{
	{"none", CodecNone, func(t *testing.T, p []byte) []byte { return p }, func(t *testing.T, z []byte) []byte { return z }},
	{"gzip (Go standard library)", CodecGzip,
		func(t *testing.T, p []byte) []byte {
			var buf bytes.Buffer
			w := stdgzip.NewWriter(&buf)
			w.Write(p)
			w.Close()
			return buf.Bytes()
		},
		func(t *testing.T, z []byte) []byte {
			r, err := stdgzip.NewReader(bytes.NewReader(z))
			if err != nil {
				t.Fatal(err)
			}
			p, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}},
	{"snappy raw (franz-go, librdkafka)", CodecSnappy,
		func(t *testing.T, p []byte) []byte { return snappy.Encode(nil, p) },
		func(t *testing.T, z []byte) []byte {
			p, err := snappy.DecodeStrict(nil, z)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}},
	{"snappy xerial (Java client)", CodecSnappy,
		func(t *testing.T, p []byte) []byte {
			z := xerial.Encode(nil, p)
			if !bytes.HasPrefix(z, xerialMagic) {
				t.Fatal("xerial.Encode wrote no xerial header")
			}
			return z
		},
		func(t *testing.T, z []byte) []byte {
			p, err := xerial.Decode(z)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}},
	{"lz4 frame", CodecLZ4,
		func(t *testing.T, p []byte) []byte {
			var buf bytes.Buffer
			w := lz4.NewWriter(&buf)
			w.Write(p)
			w.Close()
			return buf.Bytes()
		},
		func(t *testing.T, z []byte) []byte {
			p, err := io.ReadAll(lz4.NewReader(bytes.NewReader(z)))
			if err != nil {
				t.Fatal(err)
			}
			return p
		}},
	{"zstd", CodecZstd,
		func(t *testing.T, p []byte) []byte {
			e, _ := zstd.NewWriter(nil)
			defer e.Close()
			return e.EncodeAll(p, nil)
		},
		func(t *testing.T, z []byte) []byte {
			d, _ := zstd.NewReader(nil)
			defer d.Close()
			p, err := d.DecodeAll(z, nil)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}},
}

// kmsgRecords returns n records as kmsg encodes them, with lengths filled in.
func kmsgRecords(n int) []kmsg.Record {
	recs := make([]kmsg.Record, n)
	for i := range recs {
		r := &recs[i]
		r.TimestampDelta64 = int64(i * 3)
		r.OffsetDelta = int32(i)
		r.Value = bytes.Repeat([]byte{byte(i)}, i%50)
		switch i % 3 {
		case 0:
			r.Key = []byte("key")
			r.Headers = []kmsg.Header{{Key: "trace", Value: []byte("abc")}, {Key: "empty", Value: []byte{}}}
		case 1:
			r.Value = nil // tombstone
		}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // the zero Length took one byte
	}
	return recs
}

var castagnoliTable = crc32.MakeTable(crc32.Castagnoli)

func TestDecodeKmsgBatches(t *testing.T) {
	const base, firstTS = 5000, 1_700_000_000_000
	krecs := kmsgRecords(40)
	var raw []byte
	for i := range krecs {
		raw = krecs[i].AppendTo(raw)
	}
	for _, rc := range referenceCodecs {
		t.Run(rc.name, func(t *testing.T) {
			kb := kmsg.RecordBatch{
				FirstOffset: base, PartitionLeaderEpoch: 3, Magic: 2,
				Attributes:      int16(rc.codec) | 0x10, // transactional
				LastOffsetDelta: int32(len(krecs) - 1),
				FirstTimestamp:  firstTS, MaxTimestamp: firstTS + 3*int64(len(krecs)-1),
				ProducerID: 99, ProducerEpoch: 2, FirstSequence: 1234,
				NumRecords: int32(len(krecs)),
				Records:    rc.compress(t, raw),
			}
			kb.Length = int32(49 + len(kb.Records))
			b := kb.AppendTo(nil)
			kb.CRC = int32(crc32.Checksum(b[21:], castagnoliTable))
			b = kb.AppendTo(nil)

			h, err := Validate(b, ValidateOptions{VerifyRecords: true})
			if err != nil {
				t.Fatal(err)
			}
			want := Header{
				BaseOffset: base, Length: kb.Length, PartitionLeaderEpoch: 3, Magic: 2, CRC: uint32(kb.CRC),
				Attributes: Attributes(kb.Attributes), LastOffsetDelta: kb.LastOffsetDelta,
				BaseTimestamp: firstTS, MaxTimestamp: kb.MaxTimestamp,
				ProducerID: 99, ProducerEpoch: 2, BaseSequence: 1234, NumRecords: kb.NumRecords,
			}
			if h != want {
				t.Fatalf("header\n got %+v\nwant %+v", h, want)
			}
			got, err := Records(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(krecs) {
				t.Fatalf("%d records", len(got))
			}
			for i, g := range got {
				k := krecs[i]
				if g.Offset != base+int64(i) || g.Timestamp != firstTS+k.TimestampDelta64 ||
					!bytes.Equal(g.Key, k.Key) || (g.Key == nil) != (k.Key == nil) ||
					!bytes.Equal(g.Value, k.Value) || (g.Value == nil) != (k.Value == nil) ||
					len(g.Headers) != len(k.Headers) {
					t.Fatalf("record %d: got %+v, want %+v", i, g, k)
				}
				for j, hh := range k.Headers {
					if g.Headers[j].Key != hh.Key || !bytes.Equal(g.Headers[j].Value, hh.Value) {
						t.Fatalf("record %d header %d: %+v", i, j, g.Headers[j])
					}
				}
			}
		})
	}
}

func TestKmsgDecodesBuiltBatches(t *testing.T) {
	recs := testRecords(30, 700, 1_000, 40)
	recs[3].Value = nil
	for _, rc := range referenceCodecs {
		if rc.name == "snappy xerial (Java client)" {
			continue // Build writes raw snappy
		}
		t.Run(rc.name, func(t *testing.T) {
			opts := DefaultBuildOptions()
			opts.BaseOffset, opts.Codec = 700, rc.codec
			opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence = 5, 6, 7
			b := mustBuild(t, opts, recs)

			var kb kmsg.RecordBatch
			if err := kb.ReadFrom(b); err != nil {
				t.Fatal(err)
			}
			if uint32(kb.CRC) != crc32.Checksum(b[21:], castagnoliTable) {
				t.Fatal("CRC does not match an independent CRC-32C")
			}
			if kb.FirstOffset != 700 || int(kb.Length) != len(b)-12 || kb.Magic != 2 ||
				kb.Attributes != int16(rc.codec) || kb.LastOffsetDelta != 29 || kb.NumRecords != 30 ||
				kb.FirstTimestamp != 1_000 || kb.MaxTimestamp != 1_029 ||
				kb.ProducerID != 5 || kb.ProducerEpoch != 6 || kb.FirstSequence != 7 {
				t.Fatalf("batch %+v", kb)
			}
			raw := rc.decompress(t, kb.Records)
			for i := range recs {
				var kr kmsg.Record
				if err := kr.ReadFrom(raw); err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				_, n := binary.Varint(raw)
				raw = raw[n+int(kr.Length):]
				r := recs[i]
				if int64(kr.OffsetDelta) != r.Offset-700 || kr.TimestampDelta64 != r.Timestamp-1_000 ||
					!bytes.Equal(kr.Key, r.Key) || (kr.Key == nil) != (r.Key == nil) ||
					!bytes.Equal(kr.Value, r.Value) || (kr.Value == nil) != (r.Value == nil) ||
					len(kr.Headers) != len(r.Headers) {
					t.Fatalf("record %d: kmsg read %+v, built from %+v", i, kr, r)
				}
			}
			if len(raw) != 0 {
				t.Fatalf("%d bytes left after the records", len(raw))
			}
		})
	}
}
