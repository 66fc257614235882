package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handlerFunc answers one decoded request; nil means no response is due.
type handlerFunc func(b *Broker, ctx context.Context, r *request) kmsg.Response

// api is one Kafka API the broker serves, with the versions it serves.
type api struct {
	key      int16
	min, max int16
	handle   handlerFunc
}

// apiTable is the one table of the APIs the broker serves. ApiVersions
// advertises exactly these ranges, and the connection refuses anything
// outside them before a handler sees it.
type apiTable []api

// on adapts a typed handler to the table.
func on[Req kmsg.Request](f func(b *Broker, ctx context.Context, r *request, req Req) kmsg.Response) handlerFunc {
	return func(b *Broker, ctx context.Context, r *request) kmsg.Response {
		return f(b, ctx, r, r.body.(Req))
	}
}

func (t apiTable) lookup(key int16) (api, bool) {
	for _, a := range t {
		if a.key == key {
			return a, true
		}
	}
	return api{}, false
}

// handle dispatches a request to its handler.
func (b *Broker) handle(ctx context.Context, r *request) kmsg.Response {
	a, _ := b.apis.lookup(r.key)
	return a.handle(b, ctx, r)
}

// newAPITable lists every API the broker serves, with its versions. Keep it
// sorted by key; docs/compatibility.md mirrors it.
func newAPITable() apiTable {
	return apiTable{
		{key: 0, min: 3, max: 11, handle: on(handleProduce)},
		{key: 1, min: 4, max: 17, handle: on(handleFetch)},
		{key: 2, min: 1, max: 9, handle: on(handleListOffsets)},
		{key: 3, min: 0, max: 12, handle: on(handleMetadata)},
		{key: 8, min: 0, max: 9, handle: on(handleOffsetCommit)},
		{key: 9, min: 0, max: 9, handle: on(handleOffsetFetch)},
		{key: 10, min: 0, max: 6, handle: on(handleFindCoordinator)},
		{key: 11, min: 0, max: 9, handle: on(handleJoinGroup)},
		{key: 12, min: 0, max: 4, handle: on(handleHeartbeat)},
		{key: 13, min: 0, max: 5, handle: on(handleLeaveGroup)},
		{key: 14, min: 0, max: 5, handle: on(handleSyncGroup)},
		{key: 15, min: 0, max: 5, handle: on(handleDescribeGroups)},
		{key: 16, min: 0, max: 5, handle: on(handleListGroups)},
		{key: apiVersionsKey, min: 0, max: 4, handle: on(handleApiVersions)},
		{key: 19, min: 2, max: 7, handle: on(handleCreateTopics)},
		{key: 20, min: 1, max: 6, handle: on(handleDeleteTopics)},
		{key: 21, min: 0, max: 2, handle: on(handleDeleteRecords)},
		{key: 22, min: 0, max: 5, handle: on(handleInitProducerID)},
		{key: 23, min: 0, max: 4, handle: on(handleOffsetForLeaderEpoch)},
		{key: 24, min: 0, max: 5, handle: on(handleAddPartitionsToTxn)},
		{key: 25, min: 0, max: 4, handle: on(handleAddOffsetsToTxn)},
		{key: 26, min: 0, max: 5, handle: on(handleEndTxn)},
		{key: 28, min: 0, max: 4, handle: on(handleTxnOffsetCommit)},
		{key: 32, min: 0, max: 4, handle: on(handleDescribeConfigs)},
		{key: 33, min: 0, max: 2, handle: on(handleAlterConfigs)},
		{key: 35, min: 0, max: 4, handle: on(handleDescribeLogDirs)},
		{key: 37, min: 0, max: 3, handle: on(handleCreatePartitions)},
		{key: 42, min: 0, max: 2, handle: on(handleDeleteGroups)},
		{key: 44, min: 0, max: 1, handle: on(handleIncrementalAlterConfigs)},
		{key: 47, min: 0, max: 0, handle: on(handleOffsetDelete)},
		{key: 60, min: 0, max: 1, handle: on(handleDescribeCluster)},
		{key: 61, min: 0, max: 0, handle: on(handleDescribeProducers)},
		{key: 65, min: 0, max: 0, handle: on(handleDescribeTransactions)},
		{key: 66, min: 0, max: 2, handle: on(handleListTransactions)},
		{key: 68, min: 0, max: 1, handle: on(handleConsumerGroupHeartbeat)},
		{key: 69, min: 0, max: 1, handle: on(handleConsumerGroupDescribe)},
	}
}
