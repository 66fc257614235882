package group

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/javahash"
)

// Partition is Kafka's: package javahash tests the hash itself against
// values worked out by hand; here, that groups go where it says.
func TestPartitionIsKafkas(t *testing.T) {
	for _, id := range []string{"", "my-group", "console-consumer-12345", "组", "😀"} {
		if got, want := Partition(id, 50), javahash.Partition(id, 50); got != want {
			t.Errorf("Partition(%q, 50) = %d, want %d", id, got, want)
		}
	}
	if got := Partition("my-group", 50); got != 12 { // -1906497762: abs, not a sign mask (36)
		t.Errorf("Partition(%q, 50) = %d, want 12", "my-group", got)
	}
}

// The key and value bytes follow Kafka's schema, checked against bytes
// built by hand from the message definitions (not by kmsg).
func TestOffsetRecordBytesFollowKafkasSchema(t *testing.T) {
	key := offsetKey("g", "t", 2)
	wantKey := []byte{0, 1, 0, 1, 'g', 0, 1, 't', 0, 0, 0, 2}
	if !bytes.Equal(key, wantKey) {
		t.Fatalf("offset key %x, want %x", key, wantKey)
	}

	val := offsetValue(offset{offset: 42, leaderEpoch: 5, metadata: "m", committed: 1000, expires: -1})
	var want []byte
	want = binary.BigEndian.AppendUint16(want, 3)    // version
	want = binary.BigEndian.AppendUint64(want, 42)   // offset
	want = binary.BigEndian.AppendUint32(want, 5)    // leader epoch (v3+)
	want = append(want, 0, 1, 'm')                   // metadata
	want = binary.BigEndian.AppendUint64(want, 1000) // commit timestamp
	if !bytes.Equal(val, want) {
		t.Fatalf("offset value %x, want %x", val, want)
	}

	// With an explicit expiry: version 1, no leader epoch, an expire
	// timestamp.
	val = offsetValue(offset{offset: 42, leaderEpoch: 5, metadata: "", committed: 1000, expires: 5000})
	want = want[:0]
	want = binary.BigEndian.AppendUint16(want, 1)
	want = binary.BigEndian.AppendUint64(want, 42)
	want = append(want, 0, 0)
	want = binary.BigEndian.AppendUint64(want, 1000)
	want = binary.BigEndian.AppendUint64(want, 5000)
	if !bytes.Equal(val, want) {
		t.Fatalf("expiring offset value %x, want %x", val, want)
	}

	if k, want := groupKey("grp"), []byte{0, 2, 0, 3, 'g', 'r', 'p'}; !bytes.Equal(k, want) {
		t.Fatalf("group key %x, want %x", k, want)
	}
}

func TestOffsetValueRoundTrips(t *testing.T) {
	for _, o := range []offset{
		{offset: 0, leaderEpoch: -1, metadata: "", committed: 0, expires: -1},
		{offset: 1 << 40, leaderEpoch: 12, metadata: "métadonnées", committed: 1709294400000, expires: -1},
		{offset: 7, leaderEpoch: -1, metadata: "x", committed: 10, expires: 99},
	} {
		got, err := decodeOffsetValue(offsetValue(o))
		if err != nil {
			t.Fatal(err)
		}
		if got != o {
			t.Errorf("round trip of %+v gave %+v", o, got)
		}
	}
}

// Every version of OffsetCommitValue that Kafka ever wrote decodes.
func TestOldOffsetValuesDecode(t *testing.T) {
	for v := int16(0); v <= 4; v++ {
		rec := kmsg.NewOffsetCommitValue()
		rec.Version = v
		rec.Offset = 100
		rec.LeaderEpoch = 3
		rec.Metadata = "md"
		rec.CommitTimestamp = 1234
		rec.ExpireTimestamp = 5678
		o, err := decodeOffsetValue(rec.AppendTo(nil))
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		wantEpoch, wantExpire := int32(-1), int64(-1)
		if v >= 3 {
			wantEpoch = 3
		}
		if v == 1 {
			wantExpire = 5678
		}
		want := offset{offset: 100, leaderEpoch: wantEpoch, metadata: "md", committed: 1234, expires: wantExpire}
		if o != want {
			t.Errorf("v%d decoded %+v, want %+v", v, o, want)
		}
	}
}

func TestReplaySkipsUnknownAndRejectsCorruptRecords(t *testing.T) {
	c := New(testConfig())
	// A share group record (key version 10) and an unheard-of version.
	for _, key := range [][]byte{{0, 10, 0, 1, 'g'}, {0x7f, 0, 1, 2}, {0}} {
		if err := c.Replay(0, key, []byte{1, 2, 3}); err != nil {
			t.Fatalf("unknown key %x: %v", key, err)
		}
	}
	if len(c.groups) != 0 {
		t.Fatalf("unknown records made groups: %v", dump(c))
	}

	var corrupt *errCorrupt
	if err := c.Replay(0, offsetKey("g", "t", 0), []byte{0, 3, 1}); !errors.As(err, &corrupt) {
		t.Fatalf("truncated offset value: %v", err)
	}
	if err := c.Replay(0, []byte{0, 1, 0, 9, 'g'}, offsetValue(offset{expires: -1})); !errors.As(err, &corrupt) {
		t.Fatalf("truncated offset key: %v", err)
	}
	if err := c.Replay(0, groupKey("g"), []byte{0, 3, 0}); !errors.As(err, &corrupt) {
		t.Fatalf("truncated group value: %v", err)
	}
	if len(c.groups) != 0 {
		t.Fatalf("corrupt records made groups: %v", dump(c))
	}
}
