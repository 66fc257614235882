package broker

// CreatePartitions (key 37), versions 0–3.
//
// Grows a topic to a new total number of partitions, with the topic's
// replication factor. A count not above the current one is
// INVALID_PARTITIONS with a message; an unknown topic
// UNKNOWN_TOPIC_OR_PARTITION; a topic named twice INVALID_REQUEST. A manual
// assignment of the new partitions is checked as CreateTopics checks one
// (INVALID_REPLICA_ASSIGNMENT), and then placement is left to the
// controller. validate_only checks without creating. The new partitions'
// logs exist when the response is sent.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/metadata"
)

func handleCreatePartitions(b *Broker, ctx context.Context, r *request, req *kmsg.CreatePartitionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	ctx, cancel := withRequestTimeout(ctx, req.TimeoutMillis)
	defer cancel()
	dup := repeated(len(req.Topics), func(i int) string { return req.Topics[i].Topic })
	for i, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		var err *resourceError
		if dup[i] {
			err = newResourceError(kerr.InvalidRequest, "topic %q appears more than once in the request", rt.Topic)
		} else {
			err = b.createPartitions(ctx, rt, req.ValidateOnly)
		}
		st.ErrorCode, st.ErrorMessage = err.codeAndMessage()
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func (b *Broker) createPartitions(ctx context.Context, rt kmsg.CreatePartitionsRequestTopic, validateOnly bool) *resourceError {
	img := b.meta.Image()
	t, ok := img.Topics[rt.Topic]
	if !ok {
		return newResourceError(kerr.UnknownTopicOrPartition, "topic %q does not exist", rt.Topic)
	}
	current := int32(len(t.Partitions))
	switch {
	case rt.Count == current:
		return newResourceError(kerr.InvalidPartitions, "topic %q already has %d partitions", rt.Topic, current)
	case rt.Count < current:
		return newResourceError(kerr.InvalidPartitions,
			"topic %q has %d partitions, more than the %d asked for: partitions cannot be removed", rt.Topic, current, rt.Count)
	case rt.Count > maxTopicPartitions:
		return newResourceError(kerr.InvalidPartitions, "%d partitions is more than the %d a topic may have", rt.Count, maxTopicPartitions)
	}
	if rt.Assignment != nil {
		if int32(len(rt.Assignment)) != rt.Count-current {
			return newResourceError(kerr.InvalidReplicaAssignment,
				"the assignment has %d partitions, but %d are being added", len(rt.Assignment), rt.Count-current)
		}
		rf := len(t.Partitions[0].Replicas)
		for i, a := range rt.Assignment {
			if err := checkReplicas(img, current+int32(i), a.Replicas, rf); err != nil {
				return err
			}
		}
	}
	if validateOnly {
		return nil
	}
	return proposalError(b.addPartitions(ctx, t.ID, rt.Count))
}

// addPartitions proposes a topic's growth and waits until the new logs
// exist here.
func (b *Broker) addPartitions(ctx context.Context, id metadata.TopicID, total int32) error {
	if err := b.meta.CreatePartitions(ctx, id, total); err != nil {
		return err
	}
	b.parts.reconcile(b.meta.Image())
	return nil
}
