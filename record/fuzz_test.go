package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// go test ./record -run TestFuzzSeedCorpus -update-corpus rewrites the seed
// corpus under testdata/fuzz from seedBatches and seedPayloads.
var updateCorpus = flag.Bool("update-corpus", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// seedBatches returns small valid batches of every codec and kind.
func seedBatches(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{}
	for _, c := range allCodecs {
		o := DefaultBuildOptions()
		o.Codec = c
		seeds[c.String()+"-one-record"] = mustBuild(t, o, []Record{{Offset: 0, Timestamp: 1, Value: []byte("v")}})
		seeds[c.String()+"-nulls"] = mustBuild(t, o, []Record{{Offset: 0, Timestamp: -1}, {Offset: 1, Timestamp: -1, Key: []byte{}}})
		seeds[c.String()+"-headers"] = mustBuild(t, o, testRecords(4, 0, 1_700_000_000_000, 12))

		p := o
		p.BaseOffset, p.ProducerID, p.ProducerEpoch, p.BaseSequence, p.Transactional = 100, 7, 1, 40, true
		seeds[c.String()+"-transactional"] = mustBuild(t, p, testRecords(3, 100, 5, 3))

		l := o
		l.LogAppendTime = true
		seeds[c.String()+"-log-append-time"] = mustBuild(t, l, testRecords(2, 0, 9, 2))
	}
	ctl := DefaultBuildOptions()
	ctl.Control, ctl.Transactional, ctl.ProducerID, ctl.ProducerEpoch = true, true, 3, 0
	seeds["control"] = mustBuild(t, ctl, []Record{{Offset: 0, Timestamp: 2, Key: []byte{0, 0, 0, 1}, Value: []byte{0, 0, 0, 0, 0, 0}}})
	dh := DefaultBuildOptions()
	dh.DeleteHorizon = 1000
	seeds["delete-horizon"] = mustBuild(t, dh, []Record{{Offset: 0, Timestamp: 10, Key: []byte("k")}})
	return seeds
}

// seedPayloads returns small valid compressed payloads of codec c.
func seedPayloads(t testing.TB, c Codec) map[string][]byte {
	inputs := map[string][]byte{
		"empty": {},
		"short": []byte("hello"),
		"text":  bytes.Repeat([]byte("record batch "), 40),
		"bytes": {0, 1, 2, 3, 255, 254, 128, 127, 0, 0, 0, 0, 0, 0, 0, 0},
	}
	seeds := map[string][]byte{}
	for name, in := range inputs {
		z, err := Compress(c, nil, in)
		if err != nil {
			t.Fatal(err)
		}
		seeds[name] = z
	}
	if c == CodecSnappy {
		seeds["xerial"] = xerialFrame(inputs["text"], 100)
	}
	return seeds
}

var fuzzDecompressTargets = map[string]Codec{
	"FuzzDecompressGzip":   CodecGzip,
	"FuzzDecompressSnappy": CodecSnappy,
	"FuzzDecompressLZ4":    CodecLZ4,
	"FuzzDecompressZstd":   CodecZstd,
}

func TestFuzzSeedCorpus(t *testing.T) {
	write := func(target string, seeds map[string][]byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		if !*updateCorpus {
			if _, err := os.Stat(dir); err != nil {
				t.Fatalf("seed corpus missing (run with -update-corpus): %v", err)
			}
			return
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range seeds {
			data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("FuzzValidate", seedBatches(t))
	for target, c := range fuzzDecompressTargets {
		write(target, seedPayloads(t, c))
	}
}

// checkKind fails unless err is an *Error of one of the package's kinds.
func checkKind(t *testing.T, err error, kinds ...error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *record.Error", err, err)
	}
	for _, k := range kinds {
		if errors.Is(err, k) {
			return
		}
	}
	t.Fatalf("error %v has kind %v, want one of %v", err, e.Kind, kinds)
}

func FuzzValidate(f *testing.F) {
	for _, b := range seedBatches(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkBatch(t, bytes.Clone(b))
		// Random bytes rarely carry a right length and CRC, which hides
		// everything behind those checks from the fuzzer: check the input
		// again with both fixed up.
		if len(b) >= HeaderSize {
			b = bytes.Clone(b)
			binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-lengthOverhead))
			UpdateCRC(b)
			checkBatch(t, b)
		}
	})
}

// checkBatch checks the properties FuzzValidate asserts: Validate and
// Records never panic, fail only with the package's errors, and agree.
func checkBatch(t *testing.T, b []byte) {
	quick, quickErr := Validate(b, ValidateOptions{})
	h, err := Validate(b, ValidateOptions{VerifyRecords: true})
	_, _ = Validate(b, ValidateOptions{VerifyRecords: true, AllowCompacted: true})
	if err != nil {
		checkKind(t, err, ErrCorrupt, ErrInvalidRecord, ErrUnsupportedCodec)
		_, rerr := Records(b) // must not panic
		if rerr != nil {
			checkKind(t, rerr, ErrCorrupt, ErrInvalidRecord, ErrUnsupportedCodec)
		}
		return
	}
	if quickErr != nil || quick != h {
		t.Fatalf("VerifyRecords passed but the header check did not: %v", quickErr)
	}
	recs, err := Records(b)
	if err != nil {
		t.Fatalf("Validate passed but Records failed: %v", err)
	}
	if len(recs) != int(h.NumRecords) {
		t.Fatalf("Records returned %d records, header says %d", len(recs), h.NumRecords)
	}
	for i, r := range recs {
		if r.Offset != h.BaseOffset+int64(i) {
			t.Fatalf("record %d has offset %d, base %d", i, r.Offset, h.BaseOffset)
		}
		if !h.Attributes.LogAppendTime() && r.Timestamp > h.MaxTimestamp {
			t.Fatalf("record %d timestamp %d > max %d", i, r.Timestamp, h.MaxTimestamp)
		}
	}
	// Rebuilding the records gives a batch that validates and decodes the same.
	o := DefaultBuildOptions()
	o.BaseOffset, o.Codec = h.BaseOffset, h.Attributes.Codec()
	o.Control, o.Transactional = h.Attributes.Control(), h.Attributes.Transactional()
	o.LogAppendTime = h.Attributes.LogAppendTime()
	if o.LogAppendTime {
		// Records report MaxTimestamp; the original deltas are gone.
		o.MaxTimestamp = h.MaxTimestamp
	}
	rebuilt, err := Build(o, recs)
	if err != nil {
		t.Fatalf("Build of decoded records: %v", err)
	}
	if _, err := Validate(rebuilt, ValidateOptions{VerifyRecords: true}); err != nil {
		t.Fatalf("rebuilt batch does not validate: %v", err)
	}
	again, err := Records(rebuilt)
	if err != nil || len(again) != len(recs) {
		t.Fatalf("rebuilt batch: %d records, %v", len(again), err)
	}
	for i := range recs {
		a, r := again[i], recs[i]
		if a.Offset != r.Offset || !bytes.Equal(a.Key, r.Key) || !bytes.Equal(a.Value, r.Value) ||
			(a.Key == nil) != (r.Key == nil) || (a.Value == nil) != (r.Value == nil) || len(a.Headers) != len(r.Headers) {
			t.Fatalf("record %d changed in the rebuild: %+v -> %+v", i, r, a)
		}
	}
}

// fuzzLimit keeps fuzzing fast: no input may decompress past it.
const fuzzLimit = 1 << 20

func fuzzDecompress(f *testing.F, c Codec) {
	for _, b := range seedPayloads(f, c) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, z []byte) {
		prefix := []byte("prefix")
		out, err := decompress(c, bytes.Clone(prefix), z, fuzzLimit)
		if !bytes.HasPrefix(out, prefix) {
			t.Fatalf("dst prefix lost: %q", out[:min(len(out), 6)])
		}
		if err != nil {
			checkKind(t, err, ErrCorrupt)
			if len(out) != len(prefix) {
				t.Fatalf("on error dst grew to %d bytes", len(out))
			}
			return
		}
		p := out[len(prefix):]
		if len(p) > fuzzLimit {
			t.Fatalf("%d bytes exceed the limit", len(p))
		}
		z2, err := Compress(c, nil, p)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := decompress(c, nil, z2, fuzzLimit)
		if err != nil || !bytes.Equal(p, p2) {
			t.Fatalf("recompressed output does not round trip: %v", err)
		}
	})
}

func FuzzDecompressGzip(f *testing.F)   { fuzzDecompress(f, CodecGzip) }
func FuzzDecompressSnappy(f *testing.F) { fuzzDecompress(f, CodecSnappy) }
func FuzzDecompressLZ4(f *testing.F)    { fuzzDecompress(f, CodecLZ4) }
func FuzzDecompressZstd(f *testing.F)   { fuzzDecompress(f, CodecZstd) }
