package metadata

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// RecordType is the first byte of an encoded record.
type RecordType uint8

// The record types. Numbers are part of the on-disk format: never reuse one.
const (
	TypeClusterInit        RecordType = 1
	TypeLeaderChange       RecordType = 2
	TypeRegisterBroker     RecordType = 3
	TypeCreateTopic        RecordType = 4
	TypeCreatePartitions   RecordType = 5
	TypeDeleteTopic        RecordType = 6
	TypeAlterTopicConfigs  RecordType = 7
	TypeAlterBrokerConfigs RecordType = 8
	TypeProducerIDs        RecordType = 9
)

// Record is one metadata change. The concrete types below are the only
// implementations; Apply switches on them.
type Record interface {
	Type() RecordType
}

// ClusterInitRecord names the cluster. It is the first record of a log.
type ClusterInitRecord struct {
	ClusterID string
}

// LeaderChangeRecord announces the node that became controller (raft leader).
type LeaderChangeRecord struct {
	NodeID int32
}

// RegisterBrokerRecord registers a broker or replaces its registration.
type RegisterBrokerRecord struct {
	Broker Broker
}

// CreateTopicRecord creates a topic with its id, its partitions' assignment
// (decided by the proposing controller, so replay never depends on the
// assignment algorithm) and its explicitly set configs.
type CreateTopicRecord struct {
	Name       string
	ID         TopicID
	Partitions []Partition
	Configs    map[string]string `json:",omitempty"`
}

// CreatePartitionsRecord appends partitions to a topic. From is the
// partition count the proposer saw; the record fails if the topic has a
// different count when it is applied.
type CreatePartitionsRecord struct {
	TopicID    TopicID
	From       int32
	Partitions []Partition
}

// DeleteTopicRecord deletes a topic with its partitions and configs.
type DeleteTopicRecord struct {
	TopicID TopicID
}

// AlterTopicConfigsRecord removes, then sets, dynamic configs of a topic.
type AlterTopicConfigsRecord struct {
	TopicID TopicID
	Set     map[string]string `json:",omitempty"`
	Remove  []string          `json:",omitempty"`
}

// AlterBrokerConfigsRecord removes, then sets, dynamic configs of a broker
// (NodeID -1: the cluster-wide defaults).
type AlterBrokerConfigsRecord struct {
	NodeID int32
	Set    map[string]string `json:",omitempty"`
	Remove []string          `json:",omitempty"`
}

// ProducerIDsRecord reserves the producer ids [From, Next) for a broker
// (KRaft's ProducerIdsRecord). From must be the image's NextProducerID when
// the record applies, so that two reservations that raced never overlap:
// the later one fails and is proposed again.
type ProducerIDsRecord struct {
	NodeID int32
	From   int64
	Next   int64
}

func (ProducerIDsRecord) Type() RecordType { return TypeProducerIDs }

func (ClusterInitRecord) Type() RecordType        { return TypeClusterInit }
func (LeaderChangeRecord) Type() RecordType       { return TypeLeaderChange }
func (RegisterBrokerRecord) Type() RecordType     { return TypeRegisterBroker }
func (CreateTopicRecord) Type() RecordType        { return TypeCreateTopic }
func (CreatePartitionsRecord) Type() RecordType   { return TypeCreatePartitions }
func (DeleteTopicRecord) Type() RecordType        { return TypeDeleteTopic }
func (AlterTopicConfigsRecord) Type() RecordType  { return TypeAlterTopicConfigs }
func (AlterBrokerConfigsRecord) Type() RecordType { return TypeAlterBrokerConfigs }

// recordVersion is the body version every record type is written with.
// A type's version is bumped when its body changes shape; the decoder
// accepts the versions it knows.
const recordVersion = 0

// EncodeRecord encodes rec as: type byte, version byte, JSON body.
func EncodeRecord(rec Record) ([]byte, error) {
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("metadata: encode %T: %w", rec, err)
	}
	return append([]byte{byte(rec.Type()), recordVersion}, body...), nil
}

// DecodeRecord decodes what EncodeRecord encoded. It rejects unknown types
// and versions and unknown body fields, so a node never half-understands a
// record written by newer code.
func DecodeRecord(b []byte) (Record, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %d bytes", ErrCorruptRecord, len(b))
	}
	typ, version, body := RecordType(b[0]), b[1], b[2:]
	if version != recordVersion {
		return nil, fmt.Errorf("%w: type %d version %d", ErrUnknownRecord, typ, version)
	}
	switch typ {
	case TypeClusterInit:
		return decodeBody[ClusterInitRecord](typ, body)
	case TypeLeaderChange:
		return decodeBody[LeaderChangeRecord](typ, body)
	case TypeRegisterBroker:
		return decodeBody[RegisterBrokerRecord](typ, body)
	case TypeCreateTopic:
		return decodeBody[CreateTopicRecord](typ, body)
	case TypeCreatePartitions:
		return decodeBody[CreatePartitionsRecord](typ, body)
	case TypeDeleteTopic:
		return decodeBody[DeleteTopicRecord](typ, body)
	case TypeAlterTopicConfigs:
		return decodeBody[AlterTopicConfigsRecord](typ, body)
	case TypeAlterBrokerConfigs:
		return decodeBody[AlterBrokerConfigsRecord](typ, body)
	case TypeProducerIDs:
		return decodeBody[ProducerIDsRecord](typ, body)
	}
	return nil, fmt.Errorf("%w: type %d version %d", ErrUnknownRecord, typ, version)
}

func decodeBody[R Record](typ RecordType, body []byte) (Record, error) {
	var rec R
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return nil, fmt.Errorf("%w: type %d: %v", ErrCorruptRecord, typ, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: type %d: trailing data", ErrCorruptRecord, typ)
	}
	return rec, nil
}
