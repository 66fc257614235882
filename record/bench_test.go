package record

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchRecords returns records of valueSize-byte values of English-like text
// (so that compression ratios are realistic), with 16-byte keys, filling
// about totalSize bytes.
func benchRecords(totalSize, valueSize int) []Record {
	words := []string{"order", "created", "user", "id", "amount", "currency", "EUR", "status",
		"shipped", "pending", "warehouse", "berlin", "paris", "sku", "quantity", "timestamp"}
	rng := rand.New(rand.NewPCG(7, 8))
	n := totalSize / (valueSize + 30)
	recs := make([]Record, n)
	for i := range recs {
		v := make([]byte, 0, valueSize)
		for len(v) < valueSize {
			v = append(v, words[rng.IntN(len(words))]...)
			v = append(v, ' ')
		}
		recs[i] = Record{
			Offset:    int64(i),
			Timestamp: 1_700_000_000_000 + int64(i),
			Key:       fmt.Appendf(nil, "customer-%07d", rng.IntN(1e6)),
			Value:     v[:valueSize],
		}
	}
	return recs
}

func benchBatch(b *testing.B, c Codec) []byte {
	o := DefaultBuildOptions()
	o.Codec = c
	return mustBuild(b, o, benchRecords(1<<20, 100))
}

// BenchmarkValidate is the produce hot path: header and CRC of a 1 MiB batch.
func BenchmarkValidate(b *testing.B) {
	batch := benchBatch(b, CodecNone)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Validate(batch, ValidateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseHeader(b *testing.B) {
	batch := benchBatch(b, CodecNone)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseHeader(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateVerifyRecords checks every record of a 1 MiB (before
// compression) batch; bytes/s are of the uncompressed records.
func BenchmarkValidateVerifyRecords(b *testing.B) {
	for _, c := range allCodecs {
		b.Run(c.String(), func(b *testing.B) {
			batch := benchBatch(b, c)
			b.SetBytes(int64(len(benchBatch(b, CodecNone))))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Validate(batch, ValidateOptions{VerifyRecords: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecompress inflates the records of a 1 MiB batch into a reused
// buffer; bytes/s are of the decompressed output.
func BenchmarkDecompress(b *testing.B) {
	raw := benchBatch(b, CodecNone)[HeaderSize:]
	for _, c := range allCodecs[1:] {
		b.Run(c.String(), func(b *testing.B) {
			z, err := Compress(c, nil, raw)
			if err != nil {
				b.Fatal(err)
			}
			dst := make([]byte, 0, 2*len(raw))
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if dst, err = Decompress(c, dst[:0], z); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(raw))/float64(len(z)), "ratio")
		})
	}
}

func BenchmarkCompress(b *testing.B) {
	raw := benchBatch(b, CodecNone)[HeaderSize:]
	for _, c := range allCodecs[1:] {
		b.Run(c.String(), func(b *testing.B) {
			dst := make([]byte, 0, 2*len(raw))
			var err error
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if dst, err = Compress(c, dst[:0], raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIter decodes every record of a 1 MiB batch, reusing the buffer.
func BenchmarkIter(b *testing.B) {
	for _, c := range []Codec{CodecNone, CodecLZ4} {
		b.Run(c.String(), func(b *testing.B) {
			batch := benchBatch(b, c)
			b.SetBytes(int64(len(benchBatch(b, CodecNone))))
			b.ReportAllocs()
			var it Iter
			var scratch []byte
			for b.Loop() {
				if err := it.Init(batch, scratch); err != nil {
					b.Fatal(err)
				}
				for it.Next() {
				}
				if it.Err() != nil {
					b.Fatal(it.Err())
				}
				scratch = it.Buffer()
			}
		})
	}
}

func BenchmarkBuild(b *testing.B) {
	recs := benchRecords(1<<20, 100)
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(DefaultBuildOptions(), recs); err != nil {
			b.Fatal(err)
		}
	}
}
