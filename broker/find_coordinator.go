package broker

// FindCoordinator (key 10), versions 0–6.
//
// Names the broker that coordinates a group (key type 0) or a
// transactional id (key type 1): the leader of the key's partition of
// __consumer_offsets or __transaction_state. Samsa runs one broker, which
// coordinates every group and every transactional id, so the answer is this
// broker; it needs the key's topic to exist (otherwise
// COORDINATOR_NOT_AVAILABLE, as Kafka answers while it creates the topic;
// the broker creates both at start-up).
// Share groups (key type 2, v6) are not served: INVALID_REQUEST, as Kafka
// answers without a share coordinator; another key type is INVALID_REQUEST.
// v0–v3 ask for one key (v0 a group only), v4+ for a batch of keys, each
// answered on its own. The coordinator is named even while it is still
// loading __consumer_offsets or __transaction_state: the group and
// transaction requests themselves then answer COORDINATOR_LOAD_IN_PROGRESS.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Coordinator key types.
const (
	coordinatorGroup       = 0
	coordinatorTransaction = 1
)

func handleFindCoordinator(b *Broker, _ context.Context, r *request, req *kmsg.FindCoordinatorRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	if r.version < 4 {
		c := b.findCoordinator(req.CoordinatorType, req.CoordinatorKey)
		resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
		return resp
	}
	for _, key := range req.CoordinatorKeys {
		resp.Coordinators = append(resp.Coordinators, b.findCoordinator(req.CoordinatorType, key))
	}
	return resp
}

// findCoordinator answers one key.
func (b *Broker) findCoordinator(keyType int8, key string) kmsg.FindCoordinatorResponseCoordinator {
	c := kmsg.NewFindCoordinatorResponseCoordinator()
	c.Key = key
	fail := func(err *kerr.Error, msg string) kmsg.FindCoordinatorResponseCoordinator {
		c.ErrorCode, c.ErrorMessage = err.Code, &msg
		c.NodeID, c.Host, c.Port = -1, "", -1
		return c
	}
	switch keyType {
	case coordinatorGroup:
		if _, ok := b.meta.Image().Topics[offsetsTopic]; !ok {
			return fail(kerr.CoordinatorNotAvailable, "the topic __consumer_offsets does not exist")
		}
	case coordinatorTransaction:
		if _, ok := b.meta.Image().Topics[txnStateTopic]; !ok {
			return fail(kerr.CoordinatorNotAvailable, "the topic __transaction_state does not exist")
		}
	default:
		return fail(kerr.InvalidRequest, "unsupported coordinator key type")
	}
	c.NodeID, c.Host, c.Port = b.cfg.NodeID, b.host, b.port
	return c
}
