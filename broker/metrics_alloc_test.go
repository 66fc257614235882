package broker

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/metadata"
	"github.com/samsa-io/samsa/storage"
)

// TestMetricsDoNotAllocateOnTheHotPath counts what the per-request and
// per-batch metric calls allocate once a series exists: nothing.
func TestMetricsDoNotAllocateOnTheHotPath(t *testing.T) {
	m := newBrokerMetrics(&Broker{apis: newAPITable()})
	traffic := m.topic(metadata.TopicID{1}, "t")
	out := produced{log: &storage.Log{}}
	var sec storage.Section
	m.request(int16(kmsg.Produce), 9, time.Millisecond) // creates the series
	// Responses as the connection counts them (request_errors.go): the
	// hot path's without errors and with (once the API's table is made),
	// and others' without, looked at by hand (Metadata) or by reflection
	// (Heartbeat).
	produceOK, produceOKReq, produceOKOut := encodedResponse(t, 11, func(r *kmsg.ProduceResponse) {
		st := kmsg.NewProduceResponseTopic()
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, 16)
		r.Topics = append(r.Topics, st)
	})
	produceFailed, produceFailedReq, produceFailedOut := encodedResponse(t, 11, func(r *kmsg.ProduceResponse) {
		st := kmsg.NewProduceResponseTopic()
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, 16)
		st.Partitions[3].ErrorCode = kerr.NotLeaderForPartition.Code
		r.Topics = append(r.Topics, st)
	})
	m.responseErrors(produceFailedReq, produceFailed, produceFailedOut) // makes Produce's table
	fetchOK := newFetchResponse(17)
	st := kmsg.NewFetchResponseTopic()
	st.Partitions = make([]kmsg.FetchResponseTopicPartition, 16)
	fetchOK.Topics = append(fetchOK.Topics, st)
	fetchOKReq := &request{key: int16(kmsg.Fetch), version: 17}
	metadataOK, metadataOKReq, metadataOKOut := encodedResponse(t, 12, func(r *kmsg.MetadataResponse) {
		mt := kmsg.NewMetadataResponseTopic()
		mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, 16)
		r.Topics = append(r.Topics, mt)
	})
	heartbeatOK, heartbeatOKReq, heartbeatOKOut := encodedResponse(t, 4, func(*kmsg.HeartbeatResponse) {})
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"request", func() { m.request(int16(kmsg.Produce), 9, time.Millisecond) }},
		{"produced", func() { traffic.produced(&out, 100, 3) }},
		{"fetched", func() { traffic.fetched(&sec) }},
		{"connection", func() { m.connectionOpened(); m.connectionClosed() }},
		{"fsync", func() { m.Synced(false, time.Millisecond); m.Committed(2) }},
		{"produce without errors", func() { m.responseErrors(produceOKReq, produceOK, produceOKOut) }},
		{"produce with an error", func() { m.responseErrors(produceFailedReq, produceFailed, produceFailedOut) }},
		{"fetch without errors", func() { m.responseErrors(fetchOKReq, fetchOK, &outFrame{}) }},
		{"metadata without errors", func() { m.responseErrors(metadataOKReq, metadataOK, metadataOKOut) }},
		{"heartbeat without errors", func() { m.responseErrors(heartbeatOKReq, heartbeatOK, heartbeatOKOut) }},
	} {
		if n := testing.AllocsPerRun(100, tc.f); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", tc.name, n)
		}
	}
	if n := m.errors.byKey[kmsg.Produce].Load()[kerr.NotLeaderForPartition.Code+1].Load(); n < 100 {
		t.Errorf("the produce with an error counted %d times, want every call", n)
	}
}

// encodedResponse makes a response of version v, filled by fill, and
// encodes it as the connection would, for responseErrors.
func encodedResponse[R kmsg.Response](t *testing.T, v int16, fill func(R)) (R, *request, *outFrame) {
	t.Helper()
	var zero R
	resp := kmsg.ResponseForKey(zero.Key()).(R)
	resp.SetVersion(v)
	fill(resp)
	req := &request{key: resp.Key(), version: v, correlationID: 1}
	return resp, req, &outFrame{buf: encodeResponse(req, resp)}
}

func TestRequestMetricsByAPIAndVersion(t *testing.T) {
	m := newBrokerMetrics(&Broker{apis: newAPITable()})
	m.request(int16(kmsg.Produce), 9, time.Millisecond)
	m.request(int16(kmsg.Produce), 9, time.Millisecond)
	m.request(int16(kmsg.Produce), 11, time.Millisecond)
	m.request(int16(kmsg.Fetch), 17, time.Millisecond)
	// Keys and versions outside the table are ignored, not a panic.
	m.request(-1, 0, 0)
	m.request(int16(kmsg.Produce), 99, 0)
	m.request(999, 0, 0)
	for _, tc := range []struct {
		api, version string
		want         float64
	}{
		{"Produce", "9", 2},
		{"Produce", "11", 1},
		{"Fetch", "17", 1},
		{"Fetch", "16", 0},
	} {
		var got dto.Metric
		if err := m.requests.WithLabelValues(tc.api, tc.version).Write(&got); err != nil {
			t.Fatal(err)
		}
		if got.GetCounter().GetValue() != tc.want {
			t.Errorf("requests{%s,%s} = %v, want %v", tc.api, tc.version, got.GetCounter().GetValue(), tc.want)
		}
	}
	ch := make(chan prometheus.Metric, 100)
	m.latency.Collect(ch)
	close(ch)
	if n := len(ch); n != 3 {
		t.Errorf("%d latency series, want 3 (one per API version seen)", n)
	}
}

func TestTopicTrafficCountsOnlyAppendedBatches(t *testing.T) {
	m := newBrokerMetrics(&Broker{apis: newAPITable()})
	traffic := m.topic(metadata.TopicID{1}, "t")
	if again := m.topic(metadata.TopicID{1}, "t"); again != traffic {
		t.Fatal("a topic's partitions do not share its counters")
	}
	if other := m.topic(metadata.TopicID{2}, "t"); other == traffic {
		t.Fatal("a topic created again under its name shares the old one's counters")
	}
	traffic.produced(&produced{log: &storage.Log{}}, 100, 3)
	traffic.produced(&produced{err: storage.ErrClosed}, 50, 2) // refused
	traffic.produced(&produced{}, 50, 2)                       // not in a log
	if got, want := traffic.bytesIn.Load(), uint64(100); got != want {
		t.Errorf("bytes in %d, want %d", got, want)
	}
	if got, want := traffic.recordsIn.Load(), uint64(3); got != want {
		t.Errorf("records in %d, want %d", got, want)
	}
	var none *topicTraffic // a partition made without a broker
	none.produced(&produced{log: &storage.Log{}}, 1, 1)
	none.fetched(&storage.Section{})
}
