package metadata

import (
	"fmt"
	"maps"
	"slices"
)

// Apply returns the image that results from applying rec, the record at
// raft index offset, to img. It is a pure function: img is never modified,
// and the new image shares every map and topic that rec does not change.
// When rec cannot be applied (a topic that exists already, or no longer
// exists) Apply returns img itself and the error; since it depends only on
// its arguments, every replica reaches the same verdict.
func Apply(img *Image, offset uint64, rec Record) (*Image, error) {
	var next *Image
	var err error
	switch r := rec.(type) {
	case ClusterInitRecord:
		next, err = applyClusterInit(img, r)
	case LeaderChangeRecord:
		next, err = applyLeaderChange(img, r)
	case RegisterBrokerRecord:
		next, err = applyRegisterBroker(img, r)
	case CreateTopicRecord:
		next, err = applyCreateTopic(img, r)
	case CreatePartitionsRecord:
		next, err = applyCreatePartitions(img, r)
	case DeleteTopicRecord:
		next, err = applyDeleteTopic(img, r)
	case AlterTopicConfigsRecord:
		next, err = applyAlterTopicConfigs(img, r)
	case AlterBrokerConfigsRecord:
		next, err = applyAlterBrokerConfigs(img, r)
	case ProducerIDsRecord:
		next, err = applyProducerIDs(img, r)
	default:
		err = fmt.Errorf("%w: %T", ErrUnknownRecord, rec)
	}
	if err != nil {
		return img, err
	}
	next.Offset = offset
	return next, nil
}

func applyClusterInit(img *Image, r ClusterInitRecord) (*Image, error) {
	if r.ClusterID == "" {
		return nil, fmt.Errorf("%w: empty cluster id", ErrInvalidRecord)
	}
	if img.ClusterID != "" {
		return nil, fmt.Errorf("%w: cluster id already set to %s", ErrInvalidRecord, img.ClusterID)
	}
	next := img.clone()
	next.ClusterID = r.ClusterID
	return next, nil
}

func applyLeaderChange(img *Image, r LeaderChangeRecord) (*Image, error) {
	if r.NodeID < 0 {
		return nil, fmt.Errorf("%w: controller id %d", ErrInvalidRecord, r.NodeID)
	}
	next := img.clone()
	next.ControllerID = r.NodeID
	return next, nil
}

func applyRegisterBroker(img *Image, r RegisterBrokerRecord) (*Image, error) {
	b := r.Broker
	if b.NodeID < 0 || b.Host == "" || b.Port <= 0 {
		return nil, fmt.Errorf("%w: node %d at %s:%d", ErrInvalidBroker, b.NodeID, b.Host, b.Port)
	}
	next := img.clone()
	next.Brokers = maps.Clone(img.Brokers)
	next.Brokers[b.NodeID] = b
	return next, nil
}

func applyCreateTopic(img *Image, r CreateTopicRecord) (*Image, error) {
	if err := ValidTopicName(r.Name); err != nil {
		return nil, err
	}
	if r.ID.IsZero() {
		return nil, fmt.Errorf("%w: topic %q has the zero id", ErrInvalidRecord, r.Name)
	}
	if len(r.Partitions) == 0 {
		return nil, fmt.Errorf("%w: topic %q with no partitions", ErrInvalidPartitions, r.Name)
	}
	if err := checkPartitions(r.Partitions); err != nil {
		return nil, err
	}
	if _, ok := img.Topics[r.Name]; ok {
		return nil, fmt.Errorf("%w: %q", ErrTopicExists, r.Name)
	}
	if _, ok := img.TopicsByID[r.ID]; ok {
		return nil, fmt.Errorf("%w: id %s", ErrTopicExists, r.ID)
	}
	t := &Topic{
		Name:       r.Name,
		ID:         r.ID,
		Partitions: clonePartitions(r.Partitions),
		Configs:    alterConfigs(nil, r.Configs, nil),
	}
	return withTopic(img, t), nil
}

func applyCreatePartitions(img *Image, r CreatePartitionsRecord) (*Image, error) {
	t, ok := img.TopicsByID[r.TopicID]
	if !ok {
		return nil, fmt.Errorf("%w: id %s", ErrUnknownTopic, r.TopicID)
	}
	if int(r.From) != len(t.Partitions) {
		return nil, fmt.Errorf("%w: topic %q has %d partitions, not %d", ErrInvalidPartitions, t.Name, len(t.Partitions), r.From)
	}
	if len(r.Partitions) == 0 {
		return nil, fmt.Errorf("%w: no partitions to add to %q", ErrInvalidPartitions, t.Name)
	}
	if err := checkPartitions(r.Partitions); err != nil {
		return nil, err
	}
	nt := t.clone()
	nt.Partitions = append(nt.Partitions, clonePartitions(r.Partitions)...)
	return withTopic(img, nt), nil
}

func applyDeleteTopic(img *Image, r DeleteTopicRecord) (*Image, error) {
	t, ok := img.TopicsByID[r.TopicID]
	if !ok {
		return nil, fmt.Errorf("%w: id %s", ErrUnknownTopic, r.TopicID)
	}
	next := img.clone()
	next.Topics = maps.Clone(img.Topics)
	next.TopicsByID = maps.Clone(img.TopicsByID)
	delete(next.Topics, t.Name)
	delete(next.TopicsByID, t.ID)
	return next, nil
}

func applyAlterTopicConfigs(img *Image, r AlterTopicConfigsRecord) (*Image, error) {
	t, ok := img.TopicsByID[r.TopicID]
	if !ok {
		return nil, fmt.Errorf("%w: id %s", ErrUnknownTopic, r.TopicID)
	}
	nt := *t // partitions are shared: unchanged
	nt.Configs = alterConfigs(t.Configs, r.Set, r.Remove)
	return withTopic(img, &nt), nil
}

func applyAlterBrokerConfigs(img *Image, r AlterBrokerConfigsRecord) (*Image, error) {
	if r.NodeID < -1 {
		return nil, fmt.Errorf("%w: node id %d", ErrInvalidBroker, r.NodeID)
	}
	next := img.clone()
	next.BrokerConfigs = maps.Clone(img.BrokerConfigs)
	if cfg := alterConfigs(img.BrokerConfigs[r.NodeID], r.Set, r.Remove); cfg != nil {
		next.BrokerConfigs[r.NodeID] = cfg
	} else {
		delete(next.BrokerConfigs, r.NodeID)
	}
	return next, nil
}

// withTopic returns a copy of img with t stored under its name and id,
// replacing any topic with that id.
func withTopic(img *Image, t *Topic) *Image {
	next := img.clone()
	next.Topics = maps.Clone(img.Topics)
	next.TopicsByID = maps.Clone(img.TopicsByID)
	next.Topics[t.Name] = t
	next.TopicsByID[t.ID] = t
	return next
}

// alterConfigs returns a new map: cfg without remove, then with set. It
// returns nil rather than an empty map, so "no configs" has one form.
func alterConfigs(cfg, set map[string]string, remove []string) map[string]string {
	out := maps.Clone(cfg)
	for _, k := range remove {
		delete(out, k)
	}
	for k, v := range set {
		if out == nil {
			out = make(map[string]string, len(set))
		}
		out[k] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func checkPartitions(ps []Partition) error {
	for i, p := range ps {
		if len(p.Replicas) == 0 || !slices.Contains(p.Replicas, p.Leader) || p.LeaderEpoch < 0 {
			return fmt.Errorf("%w: partition %d: leader %d, replicas %v", ErrInvalidRecord, i, p.Leader, p.Replicas)
		}
	}
	return nil
}

// clonePartitions copies ps deeply, so an image never aliases a record.
func clonePartitions(ps []Partition) []Partition {
	out := make([]Partition, len(ps))
	for i, p := range ps {
		p.Replicas = slices.Clone(p.Replicas)
		p.ISR = slices.Clone(p.ISR)
		out[i] = p
	}
	return out
}

func applyProducerIDs(img *Image, r ProducerIDsRecord) (*Image, error) {
	if r.From != img.NextProducerID || r.Next <= r.From {
		return img, fmt.Errorf("%w: producer ids from %d are free, record reserves [%d, %d)",
			ErrStaleProducerIDs, img.NextProducerID, r.From, r.Next)
	}
	next := *img
	next.NextProducerID = r.Next
	return &next, nil
}
