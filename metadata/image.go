package metadata

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
)

// TopicID identifies a topic for its whole life, as Kafka's topic ids do
// (KIP-516): 16 random bytes, never all zero. A topic deleted and created
// again under the same name gets a new id.
type TopicID [16]byte

// String returns the id in Kafka's text form: unpadded URL-safe base64,
// 22 characters.
func (id TopicID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// IsZero reports whether id is the zero id, which names no topic.
func (id TopicID) IsZero() bool { return id == TopicID{} }

// MarshalText encodes id as String does, so ids read well in records and
// snapshots and can key JSON maps.
func (id TopicID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText is the inverse of MarshalText.
func (id *TopicID) UnmarshalText(b []byte) error {
	parsed, err := ParseTopicID(string(b))
	if err != nil {
		return err
	}
	*id = parsed
	return nil
}

// ParseTopicID parses the 22-character text form of a topic id.
func ParseTopicID(s string) (TopicID, error) {
	var id TopicID
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("metadata: malformed topic id %q", s)
	}
	copy(id[:], b)
	return id, nil
}

// newRandomID returns 16 random bytes that, like Kafka's Uuid.randomUuid,
// are neither of the two reserved ids (all zero, and zero but for a final 1)
// and do not print with a leading '-', which command lines mistake for a flag.
func newRandomID() TopicID {
	reservedOne := TopicID{15: 1}
	for {
		var id TopicID
		_, _ = rand.Read(id[:]) // crypto/rand.Read never fails
		if id.IsZero() || id == reservedOne || id.String()[0] == '-' {
			continue
		}
		return id
	}
}

// newClusterID returns a new cluster id in Kafka's form: a random id's
// 22-character base64 text.
func newClusterID() string { return newRandomID().String() }

// Broker is a registered broker: where clients reach it.
type Broker struct {
	NodeID int32
	Host   string
	Port   int32
	Rack   string `json:",omitempty"`
}

// Partition is one partition's assignment and leadership.
type Partition struct {
	Leader      int32
	LeaderEpoch int32
	Replicas    []int32
	ISR         []int32
}

// Topic is a topic as the image knows it.
type Topic struct {
	Name       string
	ID         TopicID
	Partitions []Partition // index = partition number
	// Configs holds only the explicitly set configs (Kafka's source
	// DYNAMIC_TOPIC_CONFIG); defaults live in the broker. Nil when none.
	Configs map[string]string `json:",omitempty"`
}

// Image is the cluster metadata at one point of the log: the result of
// applying every record up to Offset. An Image is immutable once published;
// readers share it without locks and must never modify it. Each applied
// record yields a new Image that shares the parts it did not change.
type Image struct {
	ClusterID    string
	ControllerID int32  // node id of the controller (raft leader) that last announced itself; -1 before
	Offset       uint64 // raft index of the last applied record

	Brokers    map[int32]Broker
	Topics     map[string]*Topic // by name
	TopicsByID map[TopicID]*Topic
	// BrokerConfigs holds dynamic broker configs by node id; -1 holds the
	// cluster-wide defaults. A node with no dynamic configs has no entry.
	BrokerConfigs map[int32]map[string]string
	// NextProducerID is the first producer id no broker has reserved.
	NextProducerID int64
}

// EmptyImage returns the image before any record: every map empty, never nil.
func EmptyImage() *Image {
	return &Image{
		ControllerID:  -1,
		Brokers:       map[int32]Broker{},
		Topics:        map[string]*Topic{},
		TopicsByID:    map[TopicID]*Topic{},
		BrokerConfigs: map[int32]map[string]string{},
	}
}

// TopicNames returns the names of all topics, sorted.
func (img *Image) TopicNames() []string {
	return slices.Sorted(maps.Keys(img.Topics))
}

// BrokerIDs returns the node ids of all registered brokers, ascending.
func (img *Image) BrokerIDs() []int32 {
	return slices.Sorted(maps.Keys(img.Brokers))
}

// clone returns a shallow copy of img: a new Image value whose maps are
// still shared with img. Apply copies a map before changing it.
func (img *Image) clone() *Image {
	c := *img
	return &c
}

// clone returns a copy of t that shares its partitions' replica slices
// (never modified in place) but not the partition slice or configs map.
func (t *Topic) clone() *Topic {
	c := *t
	c.Partitions = slices.Clone(t.Partitions)
	c.Configs = maps.Clone(t.Configs)
	return &c
}
