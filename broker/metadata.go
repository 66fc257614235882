package broker

// Metadata (key 3), versions 0–12.
//
// Lists the brokers, the cluster id (v2+) and controller (v1+), and the
// topics asked for (all of them for a null list, or an empty one in v0) with
// their partitions, leaders, leader epochs (v7+) and topic ids (v10+). v10+
// may ask for topics by id; v12 by id alone. An unknown topic is created
// when auto.create.topics.enable is on and the request allows it (v4+; always
// in v0–v3), with num.partitions partitions; the topic is returned ready, since
// creation is synchronous here; Kafka's internal topics are never
// auto-created (the group coordinator creates __consumer_offsets at
// start-up with its own settings). Authorized operations (v8+) are reported as
// unknown (INT32_MIN) until ACLs exist.

import (
	"context"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/metadata"
)

const unknownAuthorizedOps = math.MinInt32

func handleMetadata(b *Broker, ctx context.Context, r *request, req *kmsg.MetadataRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	img := b.meta.Image()
	resp.ClusterID = &img.ClusterID
	resp.ControllerID = img.ControllerID
	resp.AuthorizedOperations = unknownAuthorizedOps
	for _, id := range img.BrokerIDs() {
		br := img.Brokers[id]
		rb := kmsg.NewMetadataResponseBroker()
		rb.NodeID, rb.Host, rb.Port = br.NodeID, br.Host, br.Port
		if br.Rack != "" {
			rb.Rack = &br.Rack
		}
		resp.Brokers = append(resp.Brokers, rb)
	}

	all := req.Topics == nil || (r.version == 0 && len(req.Topics) == 0)
	if all {
		for _, name := range img.TopicNames() {
			resp.Topics = append(resp.Topics, describeTopic(img.Topics[name]))
		}
		return resp
	}
	autoCreate := b.autoCreateTopics(img) && (r.version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		var t *metadata.Topic
		var name string
		switch {
		case rt.Topic != nil:
			name = *rt.Topic
			t = img.Topics[name]
		default:
			t = img.TopicsByID[metadata.TopicID(rt.TopicID)]
		}
		if t == nil && rt.Topic != nil {
			if err := validateTopicName(name); err != nil {
				resp.Topics = append(resp.Topics, topicError(rt, kerr.InvalidTopicException))
				continue
			}
			if autoCreate && !isInternalTopic(name) { // internal topics are made by their coordinators
				t = b.autoCreate(ctx, name)
			}
		}
		if t == nil {
			resp.Topics = append(resp.Topics, topicError(rt, kerr.UnknownTopicOrPartition))
			continue
		}
		resp.Topics = append(resp.Topics, describeTopic(t))
	}
	return resp
}

func describeTopic(t *metadata.Topic) kmsg.MetadataResponseTopic {
	rt := kmsg.NewMetadataResponseTopic()
	rt.Topic = &t.Name
	rt.TopicID = t.ID
	rt.IsInternal = isInternalTopic(t.Name)
	rt.AuthorizedOperations = unknownAuthorizedOps
	for i, p := range t.Partitions {
		rp := kmsg.NewMetadataResponseTopicPartition()
		rp.Partition = int32(i)
		rp.Leader, rp.LeaderEpoch = p.Leader, p.LeaderEpoch
		rp.Replicas, rp.ISR = p.Replicas, p.ISR
		rt.Partitions = append(rt.Partitions, rp)
	}
	return rt
}

func topicError(req kmsg.MetadataRequestTopic, err *kerr.Error) kmsg.MetadataResponseTopic {
	rt := kmsg.NewMetadataResponseTopic()
	rt.Topic, rt.TopicID = req.Topic, req.TopicID
	rt.ErrorCode = err.Code
	rt.AuthorizedOperations = unknownAuthorizedOps
	return rt
}

// autoCreate creates a topic on first use, returning it, or nil when it
// could not be created (another request may have won: then it exists).
func (b *Broker) autoCreate(ctx context.Context, name string) *metadata.Topic {
	t, err := b.createTopic(ctx, metadata.NewTopic{Name: name, Partitions: b.defaultPartitions(b.meta.Image()), ReplicationFactor: 1})
	if err != nil {
		if t, ok := b.meta.Image().Topics[name]; ok {
			return t
		}
		b.logger.Warn("auto-creating topic failed", "topic", name, "err", err)
		return nil
	}
	return t
}

// createTopic proposes a topic and waits until its logs exist here.
func (b *Broker) createTopic(ctx context.Context, nt metadata.NewTopic) (*metadata.Topic, error) {
	t, err := b.meta.CreateTopic(ctx, nt)
	if err != nil {
		return nil, err
	}
	b.parts.reconcile(b.meta.Image())
	return t, nil
}
