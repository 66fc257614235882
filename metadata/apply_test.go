package metadata

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

var (
	idA = TopicID{1, 2, 3}
	idB = TopicID{4, 5, 6}
)

func onePartition(node int32) []Partition {
	return []Partition{{Leader: node, Replicas: []int32{node}, ISR: []int32{node}}}
}

// applyAll applies recs from offset 1 on and fails the test on any error.
func applyAll(t *testing.T, img *Image, recs ...Record) *Image {
	t.Helper()
	for _, rec := range recs {
		next, err := Apply(img, img.Offset+1, rec)
		if err != nil {
			t.Fatalf("apply %T: %v", rec, err)
		}
		img = next
	}
	return img
}

// base is an image with a cluster id, one broker, topic "a" (idA) with a
// config, and topic "b" (idB).
func base(t *testing.T) *Image {
	return applyAll(t, EmptyImage(),
		ClusterInitRecord{ClusterID: "c1"},
		LeaderChangeRecord{NodeID: 1},
		RegisterBrokerRecord{Broker: Broker{NodeID: 1, Host: "h", Port: 9092}},
		CreateTopicRecord{Name: "a", ID: idA, Partitions: onePartition(1), Configs: map[string]string{"retention.ms": "1"}},
		CreateTopicRecord{Name: "b", ID: idB, Partitions: onePartition(1)},
	)
}

func TestApplyEachRecord(t *testing.T) {
	img := base(t)
	if img.ClusterID != "c1" || img.ControllerID != 1 || img.Offset != 5 {
		t.Fatalf("cluster %q controller %d offset %d", img.ClusterID, img.ControllerID, img.Offset)
	}
	if b := img.Brokers[1]; b != (Broker{NodeID: 1, Host: "h", Port: 9092}) {
		t.Fatalf("broker 1 = %+v", b)
	}
	a := img.Topics["a"]
	if a == nil || img.TopicsByID[idA] != a || a.ID != idA || len(a.Partitions) != 1 || a.Configs["retention.ms"] != "1" {
		t.Fatalf("topic a = %+v", a)
	}
	if img.Topics["b"].Configs != nil {
		t.Fatalf("topic b configs = %v, want nil", img.Topics["b"].Configs)
	}

	img = applyAll(t, img,
		CreatePartitionsRecord{TopicID: idA, From: 1, Partitions: append(onePartition(1), onePartition(1)...)},
		AlterTopicConfigsRecord{TopicID: idA, Set: map[string]string{"cleanup.policy": "compact"}, Remove: []string{"retention.ms"}},
		AlterBrokerConfigsRecord{NodeID: -1, Set: map[string]string{"log.retention.ms": "5"}},
		AlterBrokerConfigsRecord{NodeID: 1, Set: map[string]string{"x": "y"}},
		AlterBrokerConfigsRecord{NodeID: 1, Remove: []string{"x"}},
		DeleteTopicRecord{TopicID: idB},
		RegisterBrokerRecord{Broker: Broker{NodeID: 1, Host: "h2", Port: 9093, Rack: "r"}},
	)
	a = img.Topics["a"]
	if len(a.Partitions) != 3 || !reflect.DeepEqual(a.Configs, map[string]string{"cleanup.policy": "compact"}) {
		t.Fatalf("topic a = %+v", a)
	}
	if !reflect.DeepEqual(img.BrokerConfigs, map[int32]map[string]string{-1: {"log.retention.ms": "5"}}) {
		t.Fatalf("broker configs = %v", img.BrokerConfigs)
	}
	if _, ok := img.Topics["b"]; ok {
		t.Fatal("topic b still in Topics")
	}
	if _, ok := img.TopicsByID[idB]; ok {
		t.Fatal("topic b still in TopicsByID")
	}
	if img.Brokers[1].Host != "h2" || img.Brokers[1].Rack != "r" || img.Offset != 12 {
		t.Fatalf("broker %+v offset %d", img.Brokers[1], img.Offset)
	}
}

func TestApplyErrorsLeaveImageUnchanged(t *testing.T) {
	img := base(t)
	unknown := TopicID{9}
	tests := []struct {
		name string
		rec  Record
		want error
	}{
		{"second cluster id", ClusterInitRecord{ClusterID: "c2"}, ErrInvalidRecord},
		{"negative controller", LeaderChangeRecord{NodeID: -1}, ErrInvalidRecord},
		{"broker without host", RegisterBrokerRecord{Broker: Broker{NodeID: 2, Port: 1}}, ErrInvalidBroker},
		{"topic name taken", CreateTopicRecord{Name: "a", ID: TopicID{7}, Partitions: onePartition(1)}, ErrTopicExists},
		{"topic id taken", CreateTopicRecord{Name: "c", ID: idA, Partitions: onePartition(1)}, ErrTopicExists},
		{"empty topic name", CreateTopicRecord{ID: TopicID{7}, Partitions: onePartition(1)}, ErrInvalidTopic},
		{"bad topic name", CreateTopicRecord{Name: "../x", ID: TopicID{7}, Partitions: onePartition(1)}, ErrInvalidTopic},
		{"zero topic id", CreateTopicRecord{Name: "c", Partitions: onePartition(1)}, ErrInvalidRecord},
		{"no partitions", CreateTopicRecord{Name: "c", ID: TopicID{7}}, ErrInvalidPartitions},
		{"leader not a replica", CreateTopicRecord{Name: "c", ID: TopicID{7}, Partitions: []Partition{{Leader: 2, Replicas: []int32{1}}}}, ErrInvalidRecord},
		{"partitions of unknown topic", CreatePartitionsRecord{TopicID: unknown, From: 1, Partitions: onePartition(1)}, ErrUnknownTopic},
		{"partitions raced", CreatePartitionsRecord{TopicID: idA, From: 2, Partitions: onePartition(1)}, ErrInvalidPartitions},
		{"no partitions to add", CreatePartitionsRecord{TopicID: idA, From: 1}, ErrInvalidPartitions},
		{"delete unknown topic", DeleteTopicRecord{TopicID: unknown}, ErrUnknownTopic},
		{"configs of unknown topic", AlterTopicConfigsRecord{TopicID: unknown, Set: map[string]string{"a": "b"}}, ErrUnknownTopic},
		{"configs of node -2", AlterBrokerConfigsRecord{NodeID: -2}, ErrInvalidBroker},
		{"unknown record", nil, ErrUnknownRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, err := Apply(img, 100, tt.rec)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if next != img {
				t.Fatal("failed apply returned a different image")
			}
		})
	}
	if img.Offset != 5 {
		t.Fatalf("offset moved to %d", img.Offset)
	}
}

func TestApplyCopiesOnWrite(t *testing.T) {
	prev := base(t)
	before, err := encodeImage(prev)
	if err != nil {
		t.Fatal(err)
	}
	a, b := prev.Topics["a"], prev.Topics["b"]

	next := applyAll(t, prev,
		AlterTopicConfigsRecord{TopicID: idA, Set: map[string]string{"retention.ms": "2"}},
		CreatePartitionsRecord{TopicID: idA, From: 1, Partitions: onePartition(1)},
		CreateTopicRecord{Name: "c", ID: TopicID{7}, Partitions: onePartition(1)},
		AlterBrokerConfigsRecord{NodeID: -1, Set: map[string]string{"k": "v"}},
		RegisterBrokerRecord{Broker: Broker{NodeID: 2, Host: "h", Port: 1}},
		DeleteTopicRecord{TopicID: idB},
	)
	after, err := encodeImage(prev)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatalf("previous image changed:\nbefore %s\nafter  %s", before, after)
	}
	if prev.Topics["a"] != a || a.Configs["retention.ms"] != "1" || len(a.Partitions) != 1 {
		t.Fatalf("topic a of the previous image changed: %+v", a)
	}
	if next.Topics["a"] == a || next.Topics["a"].Configs["retention.ms"] != "2" {
		t.Fatal("topic a not copied")
	}
	if prev.Topics["b"] != b || len(prev.Topics) != 2 || len(prev.Brokers) != 1 || len(prev.BrokerConfigs) != 0 {
		t.Fatal("previous image's maps changed")
	}

	// A change to one topic shares the others.
	shared := applyAll(t, prev, AlterTopicConfigsRecord{TopicID: idA, Set: map[string]string{"x": "y"}})
	if shared.Topics["b"] != b || &shared.Topics["a"].Partitions[0] != &a.Partitions[0] {
		t.Fatal("untouched parts were copied")
	}
}

func TestApplyDoesNotAliasRecord(t *testing.T) {
	rec := CreateTopicRecord{Name: "c", ID: TopicID{7}, Partitions: onePartition(1), Configs: map[string]string{"k": "v"}}
	img := applyAll(t, EmptyImage(), rec)
	rec.Partitions[0].Replicas[0] = 99
	rec.Configs["k"] = "changed"
	if tp := img.Topics["c"]; tp.Partitions[0].Replicas[0] != 1 || tp.Configs["k"] != "v" {
		t.Fatalf("image aliases its record: %+v", tp)
	}
}

func encodeImage(img *Image) ([]byte, error) {
	var buf bytes.Buffer
	err := encodeSnapshot(&buf, img)
	return buf.Bytes(), err
}

func TestSnapshotRoundTrip(t *testing.T) {
	img := applyAll(t, base(t), AlterBrokerConfigsRecord{NodeID: 1, Set: map[string]string{"a": "b"}},
		ProducerIDsRecord{NodeID: 1, From: 0, Next: 1000})
	enc, err := encodeImage(img)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSnapshot(bytes.NewReader(enc))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, img) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, img)
	}
	if got.Topics["a"] != got.TopicsByID[idA] {
		t.Fatal("restored maps do not share the topic")
	}
}

func TestRecordRoundTrip(t *testing.T) {
	recs := []Record{
		ClusterInitRecord{ClusterID: "c1"},
		LeaderChangeRecord{NodeID: 3},
		RegisterBrokerRecord{Broker: Broker{NodeID: 1, Host: "h", Port: 9092, Rack: "r"}},
		CreateTopicRecord{Name: "a", ID: idA, Partitions: onePartition(1), Configs: map[string]string{"k": "v"}},
		CreatePartitionsRecord{TopicID: idA, From: 1, Partitions: onePartition(2)},
		DeleteTopicRecord{TopicID: idA},
		AlterTopicConfigsRecord{TopicID: idA, Set: map[string]string{"k": "v"}, Remove: []string{"x"}},
		AlterBrokerConfigsRecord{NodeID: -1, Set: map[string]string{"k": "v"}},
		ProducerIDsRecord{NodeID: 2, From: 1000, Next: 2000},
	}
	for _, rec := range recs {
		b, err := EncodeRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		if RecordType(b[0]) != rec.Type() || b[1] != 0 {
			t.Fatalf("%T: header % x", rec, b[:2])
		}
		got, err := DecodeRecord(b)
		if err != nil {
			t.Fatalf("%T: %v", rec, err)
		}
		if !reflect.DeepEqual(got, rec) {
			t.Fatalf("round trip: got %+v, want %+v", got, rec)
		}
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrCorruptRecord},
		{"unknown type", []byte{200, 0, '{', '}'}, ErrUnknownRecord},
		{"unknown version", []byte{byte(TypeDeleteTopic), 1, '{', '}'}, ErrUnknownRecord},
		{"unknown field", []byte(string([]byte{byte(TypeLeaderChange), 0}) + `{"NodeID":1,"Term":2}`), ErrCorruptRecord},
		{"bad json", []byte{byte(TypeLeaderChange), 0, '{'}, ErrCorruptRecord},
		{"trailing data", []byte(string([]byte{byte(TypeLeaderChange), 0}) + `{"NodeID":1}{}`), ErrCorruptRecord},
		{"bad topic id", []byte(string([]byte{byte(TypeDeleteTopic), 0}) + `{"TopicID":"abc"}`), ErrCorruptRecord},
	}
	for _, tt := range tests {
		if _, err := DecodeRecord(tt.in); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestTopicIDText(t *testing.T) {
	for range 100 {
		id := newRandomID()
		s := id.String()
		if len(s) != 22 || s[0] == '-' || id.IsZero() {
			t.Fatalf("bad random id %q", s)
		}
		got, err := ParseTopicID(s)
		if err != nil || got != id {
			t.Fatalf("ParseTopicID(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseTopicID("short"); err == nil {
		t.Fatal("parsed a short id")
	}
}

func TestValidTopicName(t *testing.T) {
	for _, name := range []string{"a", "orders.v1", "A_b-9", string(bytes.Repeat([]byte("x"), 249))} {
		if err := ValidTopicName(name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	for _, name := range []string{"", ".", "..", "a/b", "a b", "é", string(bytes.Repeat([]byte("x"), 250))} {
		if err := ValidTopicName(name); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("%q: err = %v", name, err)
		}
	}
}

func TestProducerIDReservationsNeverOverlap(t *testing.T) {
	img := applyAll(t, base(t), ProducerIDsRecord{NodeID: 1, From: 0, Next: 1000})
	if img.NextProducerID != 1000 {
		t.Fatalf("next producer id %d, want 1000", img.NextProducerID)
	}
	// A reservation proposed from a stale image (another one applied
	// first) must fail, not hand out ids twice; so must an empty one.
	for _, rec := range []ProducerIDsRecord{
		{NodeID: 2, From: 0, Next: 500},
		{NodeID: 2, From: 0, Next: 2000},
		{NodeID: 2, From: 1000, Next: 1000},
	} {
		got, err := Apply(img, 99, rec)
		if !errors.Is(err, ErrStaleProducerIDs) || got != img {
			t.Fatalf("%+v: err %v, image changed %v", rec, err, got != img)
		}
	}
	img = applyAll(t, img, ProducerIDsRecord{NodeID: 2, From: 1000, Next: 1500})
	if img.NextProducerID != 1500 {
		t.Fatalf("next producer id %d, want 1500", img.NextProducerID)
	}
}
