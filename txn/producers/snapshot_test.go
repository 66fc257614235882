package producers

import (
	"errors"
	"reflect"
	"testing"
)

func sampleState() *State {
	s := New(0)
	for i := range int32(7) {
		s.Append(DataBatch{ProducerID: 1, Epoch: 2, FirstSeq: i * 2, LastSeq: i*2 + 1}, int64(i*2), int64(i*2+1), 100+int64(i), -1)
	}
	s.Append(DataBatch{ProducerID: 5, Transactional: true}, 20, 20, 300, 299)
	s.ApplyMarker(5, 0, marker(false, 3), 21, 301)
	s.Append(DataBatch{ProducerID: 6, Epoch: 1, Transactional: true}, 22, 24, 400, -1)
	return s
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := sampleState()
	data := s.Encode(25)
	got, at, err := Decode(data, 0)
	if err != nil || at != 25 {
		t.Fatalf("decode: %v at %d", err, at)
	}
	if !reflect.DeepEqual(got.Producers(), s.Producers()) {
		t.Fatalf("producers\n got %+v\nwant %+v", got.Producers(), s.Producers())
	}
	if !reflect.DeepEqual(got.Aborted(0, 100), s.Aborted(0, 100)) {
		t.Fatalf("aborted %+v", got.Aborted(0, 100))
	}
	if off, ok := got.FirstUnstable(); !ok || off != 22 {
		t.Fatalf("first unstable %d %v", off, ok)
	}
	// The decoded state ends the ongoing transaction like the original.
	if _, ok := got.ApplyMarker(6, 1, marker(true, 0), 25, 0); !ok {
		t.Fatal("marker ended nothing after decode")
	}
	if _, ok := got.FirstUnstable(); ok {
		t.Fatal("still unstable")
	}
	empty, at, err := Decode(New(0).Encode(0), 0)
	if err != nil || at != 0 || len(empty.Producers()) != 0 {
		t.Fatalf("empty: %v", err)
	}
}

func TestSnapshotCorruptionIsDetected(t *testing.T) {
	data := sampleState().Encode(25)
	for i := range data {
		c := append([]byte(nil), data...)
		c[i] ^= 0x40
		if _, _, err := Decode(c, 0); !errors.Is(err, ErrCorruptSnapshot) {
			t.Fatalf("flipping byte %d: %v", i, err)
		}
	}
	for n := range len(data) {
		if _, _, err := Decode(data[:n], 0); !errors.Is(err, ErrCorruptSnapshot) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	if _, _, err := Decode(append(data, 0), 0); !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("trailing byte: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(sampleState().Encode(25))
	f.Add(New(0).Encode(0))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, at, err := Decode(data, 0)
		if err != nil {
			return
		}
		// What decodes encodes back to the same bytes.
		if again := s.Encode(at); string(again) != string(data) {
			t.Fatalf("re-encoding differs")
		}
	})
}
