package metadata

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
)

// NewTopic is a topic to create.
type NewTopic struct {
	Name       string
	Partitions int32 // >= 1; the broker resolves Kafka's -1 (num.partitions)
	// ReplicationFactor is at most the number of registered brokers; -1
	// means 1, Kafka's default.replication.factor.
	ReplicationFactor int16
	Configs           map[string]string // explicitly set configs; names are the broker's to check
}

// The proposals below each append one record and return once it is
// committed and applied, so Image reflects it, or with an error. They check
// what they can first, to spare the log a record bound to fail, but the
// verdict is Apply's: of two concurrent CreateTopic calls for one name,
// the record applied first wins and the other fails with ErrTopicExists.

// CreateTopic creates a topic with a new random id and assigns its
// partitions to the registered brokers.
func (c *Controller) CreateTopic(ctx context.Context, nt NewTopic) (*Topic, error) {
	if err := ValidTopicName(nt.Name); err != nil {
		return nil, err
	}
	if nt.Partitions < 1 {
		return nil, fmt.Errorf("%w: %d for %q", ErrInvalidPartitions, nt.Partitions, nt.Name)
	}
	rf := nt.ReplicationFactor
	if rf == -1 {
		rf = 1
	}
	img := c.Image()
	if _, ok := img.Topics[nt.Name]; ok {
		return nil, fmt.Errorf("%w: %q", ErrTopicExists, nt.Name)
	}
	parts, err := assignPartitions(img, 0, nt.Partitions, rf)
	if err != nil {
		return nil, err
	}
	rec := CreateTopicRecord{Name: nt.Name, ID: newRandomID(), Partitions: parts, Configs: nt.Configs}
	if err := c.propose(ctx, rec); err != nil {
		return nil, err
	}
	if t, ok := c.Image().TopicsByID[rec.ID]; ok {
		return t, nil
	}
	// Deleted again already; report what was created.
	return &Topic{Name: rec.Name, ID: rec.ID, Partitions: parts, Configs: alterConfigs(nil, nt.Configs, nil)}, nil
}

// DeleteTopic deletes a topic: its partitions and configs.
func (c *Controller) DeleteTopic(ctx context.Context, id TopicID) error {
	if _, ok := c.Image().TopicsByID[id]; !ok {
		return fmt.Errorf("%w: id %s", ErrUnknownTopic, id)
	}
	return c.propose(ctx, DeleteTopicRecord{TopicID: id})
}

// CreatePartitions grows a topic to total partitions, assigned like the
// first ones with the topic's replication factor. ErrInvalidPartitions when
// total is not more than the topic has.
func (c *Controller) CreatePartitions(ctx context.Context, id TopicID, total int32) error {
	c.partitionsMu.Lock()
	defer c.partitionsMu.Unlock()
	t, ok := c.Image().TopicsByID[id]
	if !ok {
		return fmt.Errorf("%w: id %s", ErrUnknownTopic, id)
	}
	current := int32(len(t.Partitions))
	if total <= current {
		return fmt.Errorf("%w: topic %q has %d partitions, asked for %d", ErrInvalidPartitions, t.Name, current, total)
	}
	rf := int16(len(t.Partitions[0].Replicas))
	parts, err := assignPartitions(c.Image(), current, total-current, rf)
	if err != nil {
		return err
	}
	return c.propose(ctx, CreatePartitionsRecord{TopicID: id, From: current, Partitions: parts})
}

// AlterTopicConfigs removes, then sets, a topic's dynamic configs.
func (c *Controller) AlterTopicConfigs(ctx context.Context, id TopicID, set map[string]string, remove []string) error {
	if _, ok := c.Image().TopicsByID[id]; !ok {
		return fmt.Errorf("%w: id %s", ErrUnknownTopic, id)
	}
	if len(set) == 0 && len(remove) == 0 {
		return nil
	}
	return c.propose(ctx, AlterTopicConfigsRecord{TopicID: id, Set: set, Remove: remove})
}

// AlterBrokerConfigs removes, then sets, a broker's dynamic configs;
// nodeID -1 holds the cluster-wide defaults.
func (c *Controller) AlterBrokerConfigs(ctx context.Context, nodeID int32, set map[string]string, remove []string) error {
	if nodeID < -1 {
		return fmt.Errorf("%w: node id %d", ErrInvalidBroker, nodeID)
	}
	if len(set) == 0 && len(remove) == 0 {
		return nil
	}
	return c.propose(ctx, AlterBrokerConfigsRecord{NodeID: nodeID, Set: set, Remove: remove})
}

// ReserveProducerIDs reserves count producer ids for node and returns the
// first: ids [first, first+count) are this node's alone, across restarts
// and brokers. Concurrent reservations that raced retry.
func (c *Controller) ReserveProducerIDs(ctx context.Context, node int32, count int64) (int64, error) {
	if count < 1 {
		return 0, fmt.Errorf("metadata: reserve %d producer ids", count)
	}
	for {
		first := c.Image().NextProducerID
		err := c.propose(ctx, ProducerIDsRecord{NodeID: node, From: first, Next: first + count})
		if err == nil {
			return first, nil
		}
		if !errors.Is(err, ErrStaleProducerIDs) {
			return 0, err
		}
	}
}

// assignPartitions assigns count partitions, numbered from first, to the
// registered brokers round robin from a random starting broker: replicas
// are rf consecutive brokers in id order, the first one leads, all are in
// sync, and the leader epoch is 0.
func assignPartitions(img *Image, first, count int32, rf int16) ([]Partition, error) {
	ids := img.BrokerIDs()
	if rf < 1 || int(rf) > len(ids) {
		return nil, fmt.Errorf("%w: %d with %d registered brokers", ErrInvalidReplicationFactor, rf, len(ids))
	}
	start := rand.IntN(len(ids))
	parts := make([]Partition, count)
	for p := range parts {
		replicas := make([]int32, rf)
		for i := range replicas {
			replicas[i] = ids[(start+int(first)+p+i)%len(ids)]
		}
		parts[p] = Partition{Leader: replicas[0], Replicas: replicas, ISR: slices.Clone(replicas)}
	}
	return parts, nil
}

// ValidTopicName checks a topic name as Kafka does: 1 to 249 characters
// from [a-zA-Z0-9._-], and neither "." nor "..". (A name becomes a
// directory name in storage.)
func ValidTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrInvalidTopic)
	case name == "." || name == "..":
		return fmt.Errorf("%w: name %q", ErrInvalidTopic, name)
	case len(name) > 249:
		return fmt.Errorf("%w: name longer than 249 characters", ErrInvalidTopic)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return fmt.Errorf("%w: name %q has the character %q", ErrInvalidTopic, name, r)
		}
	}
	return nil
}
