package broker

// DescribeCluster (key 60), versions 0–1.
//
// Returns the cluster id, the controller and the registered brokers with
// their advertised addresses. v1 asks for an endpoint type: brokers (1) are
// described; controllers (2) are UNSUPPORTED_ENDPOINT_TYPE, as a Kafka
// broker answers, since Samsa's controller has no listener of its own.
// Authorized operations are reported as unknown (INT32_MIN) until ACLs
// exist.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// endpointTypeBrokers is DescribeCluster's endpoint type for brokers.
const endpointTypeBrokers int8 = 1

func handleDescribeCluster(b *Broker, ctx context.Context, r *request, req *kmsg.DescribeClusterRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = endpointTypeBrokers
	resp.ClusterAuthorizedOperations = unknownAuthorizedOps
	if r.version >= 1 && req.EndpointType != endpointTypeBrokers {
		resp.EndpointType = req.EndpointType
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		msg := "this broker describes brokers only (endpoint type 1)"
		resp.ErrorMessage = &msg
		return resp
	}
	img := b.meta.Image()
	resp.ClusterID = img.ClusterID
	resp.ControllerID = img.ControllerID
	for _, id := range img.BrokerIDs() {
		br := img.Brokers[id]
		rb := kmsg.NewDescribeClusterResponseBroker()
		rb.NodeID, rb.Host, rb.Port = br.NodeID, br.Host, br.Port
		if br.Rack != "" {
			rb.Rack = &br.Rack
		}
		resp.Brokers = append(resp.Brokers, rb)
	}
	return resp
}
