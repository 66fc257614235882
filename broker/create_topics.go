package broker

// CreateTopics (key 19), versions 2–7.
//
// Creates topics with a number of partitions (-1: num.partitions), a
// replication factor (-1: default.replication.factor, 1) and configs, or
// with a manual replica assignment (then both counts must be -1, as in
// Kafka). Samsa runs one broker, so a replication factor above the number
// of brokers is INVALID_REPLICATION_FACTOR, and an assignment must name
// registered brokers, the same number for each partition, numbered 0..n-1
// (INVALID_REPLICA_ASSIGNMENT). Configs are checked against the topic config
// table (INVALID_CONFIG with a message naming the config). An invalid name
// is INVALID_TOPIC_EXCEPTION, and so is a name that differs from an existing
// topic's only by '.' and '_' (they collide in metric names); an existing
// name is TOPIC_ALREADY_EXISTS; a topic named twice in one request is
// INVALID_REQUEST. validate_only checks everything and creates nothing. The
// topic is created synchronously: its logs exist when the response is sent.
// v5+ return the partition count, replication factor and every config with
// its source; v7 the topic id.

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/metadata"
)

// maxTopicPartitions bounds the partitions of one topic: each is a
// directory of files, and a typo of a few digits should not exhaust the
// disk or file descriptors of the broker.
const maxTopicPartitions = 100_000

func handleCreateTopics(b *Broker, ctx context.Context, r *request, req *kmsg.CreateTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	ctx, cancel := withRequestTimeout(ctx, req.TimeoutMillis)
	defer cancel()
	dup := repeated(len(req.Topics), func(i int) string { return req.Topics[i].Topic })
	for i, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		if dup[i] {
			st.ErrorCode, st.ErrorMessage = newResourceError(kerr.InvalidRequest, "topic %q appears more than once in the request", rt.Topic).codeAndMessage()
			resp.Topics = append(resp.Topics, st)
			continue
		}
		nt, err := b.checkNewTopic(b.meta.Image(), rt)
		if err == nil && !req.ValidateOnly {
			var t *metadata.Topic
			var cerr error
			if t, cerr = b.createTopic(ctx, nt); cerr == nil {
				st.TopicID = t.ID
			} else {
				err = proposalError(cerr)
			}
		}
		if err != nil {
			st.ErrorCode, st.ErrorMessage = err.codeAndMessage()
			resp.Topics = append(resp.Topics, st)
			continue
		}
		st.NumPartitions = nt.Partitions
		st.ReplicationFactor = nt.ReplicationFactor
		for _, e := range b.topicConfigEntries(b.meta.Image(), nt.Configs) {
			c := kmsg.NewCreateTopicsResponseTopicConfig()
			v, source := e.value()
			c.Name, c.Value, c.Source = e.name, &v, int8(source)
			st.Configs = append(st.Configs, c)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// checkNewTopic checks a topic to create against img and resolves its
// defaults.
func (b *Broker) checkNewTopic(img *metadata.Image, rt kmsg.CreateTopicsRequestTopic) (metadata.NewTopic, *resourceError) {
	nt := metadata.NewTopic{Name: rt.Topic}
	if err := validateTopicName(rt.Topic); err != nil {
		return nt, newResourceError(kerr.InvalidTopicException, "%v", err)
	}
	if _, ok := img.Topics[rt.Topic]; ok {
		return nt, newResourceError(kerr.TopicAlreadyExists, "topic %q already exists", rt.Topic)
	}
	if other, ok := collidingTopic(img, rt.Topic); ok {
		return nt, newResourceError(kerr.InvalidTopicException,
			"topic %q collides with the existing topic %q: names that differ only by '.' and '_' are not allowed", rt.Topic, other)
	}

	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return nt, newResourceError(kerr.InvalidRequest,
				"a replica assignment was given with a partition count or replication factor: set both to -1 to assign replicas by hand")
		}
		rf, err := checkAssignment(img, 0, rt.ReplicaAssignment)
		if err != nil {
			return nt, err
		}
		nt.Partitions, nt.ReplicationFactor = int32(len(rt.ReplicaAssignment)), rf
	} else {
		nt.Partitions, nt.ReplicationFactor = rt.NumPartitions, rt.ReplicationFactor
		if nt.Partitions == -1 {
			nt.Partitions = b.defaultPartitions(img)
		}
		if nt.ReplicationFactor == -1 {
			nt.ReplicationFactor = 1
		}
		switch {
		case nt.Partitions < 1:
			return nt, newResourceError(kerr.InvalidPartitions, "number of partitions must be at least 1, or -1 for num.partitions; got %d", rt.NumPartitions)
		case nt.Partitions > maxTopicPartitions:
			return nt, newResourceError(kerr.InvalidPartitions, "%d partitions is more than the %d a topic may have", nt.Partitions, maxTopicPartitions)
		case nt.ReplicationFactor < 1:
			return nt, newResourceError(kerr.InvalidReplicationFactor, "replication factor must be at least 1, or -1 for the default; got %d", rt.ReplicationFactor)
		case int(nt.ReplicationFactor) > len(img.Brokers):
			return nt, newResourceError(kerr.InvalidReplicationFactor,
				"replication factor %d is more than the %d broker(s) available: Samsa runs one broker; replication arrives with the cluster",
				nt.ReplicationFactor, len(img.Brokers))
		}
	}

	configs := map[string]string{}
	for _, c := range rt.Configs {
		if _, ok := configs[c.Name]; ok {
			return nt, newResourceError(kerr.InvalidRequest, "config %s appears more than once", c.Name)
		}
		if c.Value == nil {
			return nt, newResourceError(kerr.InvalidConfig, "null value for config %s", c.Name)
		}
		configs[c.Name] = *c.Value
	}
	if err := validateTopicConfigs(configs); err != nil {
		return nt, newResourceError(kerr.InvalidConfig, "%v", err)
	}
	if len(configs) > 0 {
		nt.Configs = configs
	}
	return nt, nil
}

// collidingTopic finds an existing topic whose name differs from name only
// by '.' and '_'.
func collidingTopic(img *metadata.Image, name string) (string, bool) {
	if !strings.ContainsAny(name, "._") {
		return "", false
	}
	norm := strings.ReplaceAll(name, ".", "_")
	for other := range img.Topics {
		if other != name && strings.ReplaceAll(other, ".", "_") == norm {
			return other, true
		}
	}
	return "", false
}

// checkAssignment checks a manual replica assignment of partitions numbered
// from first, returning its replication factor. The controller places
// replicas itself: an assignment is checked, and then only its shape is
// used. With one broker the only valid assignment is the one it makes.
func checkAssignment(img *metadata.Image, first int32, assignment []kmsg.CreateTopicsRequestTopicReplicaAssignment) (int16, *resourceError) {
	if len(assignment) > maxTopicPartitions {
		return 0, newResourceError(kerr.InvalidPartitions, "%d partitions is more than the %d a topic may have", len(assignment), maxTopicPartitions)
	}
	seen := map[int32]bool{}
	rf := len(assignment[0].Replicas)
	for _, a := range assignment {
		if a.Partition < first || a.Partition >= first+int32(len(assignment)) || seen[a.Partition] {
			return 0, newResourceError(kerr.InvalidReplicaAssignment, "partitions must be numbered %d to %d, each once", first, first+int32(len(assignment))-1)
		}
		seen[a.Partition] = true
		if err := checkReplicas(img, a.Partition, a.Replicas, rf); err != nil {
			return 0, err
		}
	}
	return int16(rf), nil
}

// checkReplicas checks one partition's replicas in a manual assignment.
func checkReplicas(img *metadata.Image, partition int32, replicas []int32, rf int) *resourceError {
	switch {
	case len(replicas) == 0:
		return newResourceError(kerr.InvalidReplicaAssignment, "partition %d has no replicas", partition)
	case len(replicas) != rf:
		return newResourceError(kerr.InvalidReplicaAssignment, "partition %d has %d replicas, the first has %d: all must have as many", partition, len(replicas), rf)
	}
	for i, id := range replicas {
		if _, ok := img.Brokers[id]; !ok {
			return newResourceError(kerr.InvalidReplicaAssignment, "partition %d: broker %d is not registered", partition, id)
		}
		if slices.Contains(replicas[:i], id) {
			return newResourceError(kerr.InvalidReplicaAssignment, "partition %d names broker %d twice", partition, id)
		}
	}
	return nil
}
