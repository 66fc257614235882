package record

import (
	"errors"
	"testing"
)

func TestMarkerRoundTrip(t *testing.T) {
	for _, commit := range []bool{true, false} {
		b, err := BuildMarker(MarkerOptions{ProducerID: 42, ProducerEpoch: 3, PartitionLeaderEpoch: 7, Timestamp: 99,
			Marker: Marker{Commit: commit, CoordinatorEpoch: 5}})
		if err != nil {
			t.Fatal(err)
		}
		h, err := Validate(b, ValidateOptions{VerifyRecords: true})
		if err != nil {
			t.Fatal(err)
		}
		if !h.Attributes.Control() || !h.Attributes.Transactional() || h.ProducerID != 42 || h.ProducerEpoch != 3 ||
			h.BaseSequence != -1 || h.PartitionLeaderEpoch != 7 || h.NumRecords != 1 {
			t.Fatalf("header %+v", h)
		}
		recs, err := Records(b)
		if err != nil {
			t.Fatal(err)
		}
		// Kafka's EndTransactionMarker: key version 0 + type (1 commit,
		// 0 abort); value version 0 + coordinator epoch.
		wantType := byte(0)
		if commit {
			wantType = 1
		}
		if k := recs[0].Key; len(k) != 4 || k[0] != 0 || k[1] != 0 || k[2] != 0 || k[3] != wantType {
			t.Fatalf("key %x", k)
		}
		if v := recs[0].Value; len(v) != 6 || v[5] != 5 {
			t.Fatalf("value %x", v)
		}
		m, ok, err := ParseMarker(recs[0].Key, recs[0].Value)
		if err != nil || !ok || m.Commit != commit || m.CoordinatorEpoch != 5 {
			t.Fatalf("parsed %+v %v %v", m, ok, err)
		}
	}
}

func TestParseMarkerRejectsBadInput(t *testing.T) {
	if _, _, err := ParseMarker([]byte{0}, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short key: %v", err)
	}
	if _, ok, err := ParseMarker([]byte{0, 0, 0, 9}, nil); ok || err != nil {
		t.Fatalf("unknown control type: %v %v", ok, err)
	}
	if _, _, err := ParseMarker([]byte{0, 0, 0, 1}, []byte{0, 0, 0}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short value: %v", err)
	}
	if _, _, err := ParseMarker([]byte{0, 0, 0, 1}, []byte{0, 1, 0, 0, 0, 0}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("unknown version: %v", err)
	}
}
