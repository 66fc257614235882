package broker

// DeleteTopics (key 20), versions 1–6.
//
// Deletes topics by name (v1–v5, and v6 with a name) or by id (v6): their
// partitions, logs and configs. An unknown name is
// UNKNOWN_TOPIC_OR_PARTITION, an unknown id UNKNOWN_TOPIC_ID. A topic named
// twice (by name, by id, or once each way), or given both a name and an id
// in one entry, or neither, is INVALID_REQUEST, as in Kafka. Deletion is
// synchronous: the logs are gone when the response is sent. v6 results
// carry the topic id, and the name when it is known.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/metadata"
)

func handleDeleteTopics(b *Broker, ctx context.Context, r *request, req *kmsg.DeleteTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	ctx, cancel := withRequestTimeout(ctx, req.TimeoutMillis)
	defer cancel()
	topics := req.Topics
	if r.version < 6 {
		topics = nil
		for _, name := range req.TopicNames {
			t := kmsg.NewDeleteTopicsRequestTopic()
			t.Topic = &name
			topics = append(topics, t)
		}
	}

	// Resolve every entry to a topic id first, so that duplicates are found
	// whichever way they are named.
	img := b.meta.Image()
	type entry struct {
		name *string
		id   metadata.TopicID
		err  *resourceError
	}
	entries := make([]entry, len(topics))
	uses := map[metadata.TopicID]int{}
	for i, rt := range topics {
		e := entry{name: rt.Topic, id: metadata.TopicID(rt.TopicID)}
		switch {
		case rt.Topic != nil && !e.id.IsZero():
			e.err = newResourceError(kerr.InvalidRequest, "give a topic name or a topic id, not both")
		case rt.Topic == nil && e.id.IsZero():
			e.err = newResourceError(kerr.InvalidRequest, "neither a topic name nor a topic id was given")
		case rt.Topic != nil:
			if t, ok := img.Topics[*rt.Topic]; ok {
				e.id = t.ID
			} else {
				e.err = newResourceError(kerr.UnknownTopicOrPartition, "topic %q does not exist", *rt.Topic)
			}
		default:
			if t, ok := img.TopicsByID[e.id]; ok {
				e.name = &t.Name
			} else {
				e.err = newResourceError(kerr.UnknownTopicID, "no topic has the id %s", e.id)
			}
		}
		if e.err == nil {
			uses[e.id]++
		}
		entries[i] = e
	}

	for _, e := range entries {
		if e.err == nil && uses[e.id] > 1 {
			e.err = newResourceError(kerr.InvalidRequest, "topic %q is named more than once in the request", *e.name)
		}
		if e.err == nil && isInternalTopic(*e.name) {
			// Kafka lets an authorized client do this; it silently loses
			// every group's offsets, so Samsa refuses.
			e.err = newResourceError(kerr.InvalidTopicException, "topic %q is internal and cannot be deleted", *e.name)
		}
		if e.err == nil {
			e.err = proposalError(b.deleteTopic(ctx, e.id))
		}
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic = e.name
		if r.version >= 6 {
			st.TopicID = e.id
		}
		st.ErrorCode, st.ErrorMessage = e.err.codeAndMessage()
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// deleteTopic proposes a topic's deletion and waits until its logs are gone
// here.
func (b *Broker) deleteTopic(ctx context.Context, id metadata.TopicID) error {
	if err := b.meta.DeleteTopic(ctx, id); err != nil {
		return err
	}
	b.parts.reconcile(b.meta.Image())
	return nil
}
