package broker

// FetchReq builds the Fetch requests of the fetch, fetch session and long
// poll tests. It is exported, though only tests see it, so that the
// broker_test package's tests (which start brokers with samsatest, and so
// cannot be in this package) build their requests the same way.

import (
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FetchReq is a Fetch request being built. It starts as kmsg's default
// request: version 0 (which a kgo client replaces with the version it
// negotiates), no replica, outside any session (epoch -1), max bytes
// math.MaxInt32, no wait, min bytes 0, read uncommitted, no topics; and
// each partition it adds asks for at most 1 MiB, or PartitionMaxBytes.
type FetchReq struct {
	req          kmsg.FetchRequest
	partitionMax int32
}

// NewFetchReq starts a request.
func NewFetchReq() *FetchReq {
	return &FetchReq{req: kmsg.NewFetchRequest(), partitionMax: 1 << 20}
}

// Version sets the request's version.
func (f *FetchReq) Version(v int16) *FetchReq {
	f.req.SetVersion(v)
	return f
}

// Session puts the request in session id at epoch: id 0 and epoch 0 open
// a session, epoch -1 closes one (or, with id 0, uses none).
func (f *FetchReq) Session(id, epoch int32) *FetchReq {
	f.req.SessionID, f.req.SessionEpoch = id, epoch
	return f
}

// ReadCommitted sets isolation level 1, read committed.
func (f *FetchReq) ReadCommitted() *FetchReq {
	f.req.IsolationLevel = 1
	return f
}

// Wait sets how long the request may wait, and for how many bytes.
func (f *FetchReq) Wait(maxWaitMillis, minBytes int32) *FetchReq {
	f.req.MaxWaitMillis, f.req.MinBytes = maxWaitMillis, minBytes
	return f
}

// MaxBytes sets the most bytes of the whole response.
func (f *FetchReq) MaxBytes(n int32) *FetchReq {
	f.req.MaxBytes = n
	return f
}

// PartitionMaxBytes sets the most bytes of every partition, those added
// before as well as after.
func (f *FetchReq) PartitionMaxBytes(n int32) *FetchReq {
	f.partitionMax = n
	return f
}

// Topic adds a topic, by name and by id (each version sends the one it
// has), asking for partitions each from offset, in the order given.
func (f *FetchReq) Topic(name string, id [16]byte, offset int64, partitions ...int32) *FetchReq {
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = name, id
	for _, p := range partitions {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset = p, offset
		rt.Partitions = append(rt.Partitions, rp)
	}
	f.req.Topics = append(f.req.Topics, rt)
	return f
}

// TopicAt adds a topic, by name and by id, asking for the partitions of
// offsets (partition → fetch offset) in partition order; with no
// partitions, the topic goes in the request all the same, empty.
func (f *FetchReq) TopicAt(name string, id [16]byte, offsets map[int32]int64) *FetchReq {
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = name, id
	for _, p := range slices.Sorted(maps.Keys(offsets)) {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset = p, offsets[p]
		rt.Partitions = append(rt.Partitions, rp)
	}
	f.req.Topics = append(f.req.Topics, rt)
	return f
}

// Forget adds partitions of a topic, by name and by id, for the session to
// forget.
func (f *FetchReq) Forget(name string, id [16]byte, partitions ...int32) *FetchReq {
	ft := kmsg.NewFetchRequestForgottenTopic()
	ft.Topic, ft.TopicID, ft.Partitions = name, id, partitions
	f.req.ForgottenTopics = append(f.req.ForgottenTopics, ft)
	return f
}

// Request returns the request built: the builder's own, so one builder
// builds one request.
func (f *FetchReq) Request() *kmsg.FetchRequest {
	for i := range f.req.Topics {
		for j := range f.req.Topics[i].Partitions {
			f.req.Topics[i].Partitions[j].PartitionMaxBytes = f.partitionMax
		}
	}
	return &f.req
}

// firstPartitions lists partitions 0 to n-1.
func firstPartitions(n int32) []int32 {
	ps := make([]int32, n)
	for i := range ps {
		ps[i] = int32(i)
	}
	return ps
}
