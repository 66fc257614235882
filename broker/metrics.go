package broker

// Broker metrics: what the broker does, on /metrics. Each is named like
// Prometheus wants it and, where Kafka has a metric of the same meaning,
// after that metric (docs/metrics.md lists them all):
//
//	samsa_requests_total{api,version}                 kafka.network RequestMetrics RequestsPerSec
//	samsa_request_duration_seconds{api,version}       kafka.network RequestMetrics TotalTimeMs
//	samsa_request_errors_total{api,error}             kafka.network RequestMetrics ErrorsPerSec
//	samsa_connections                                  socket-server-metrics connection-count
//	samsa_connections_accepted_total                   socket-server-metrics connection-creation-total
//	samsa_topic_bytes_in_total{topic}                  BrokerTopicMetrics BytesInPerSec
//	samsa_topic_records_in_total{topic}                BrokerTopicMetrics MessagesInPerSec
//	samsa_topic_bytes_out_total{topic}                 BrokerTopicMetrics BytesOutPerSec
//	samsa_topic_records_out_total{topic}               (none)
//	samsa_log_size_bytes{topic,partition}              kafka.log Log Size
//	samsa_log_end_offset{topic,partition}              kafka.log Log LogEndOffset
//	samsa_log_start_offset{topic,partition}            kafka.log Log LogStartOffset
//	samsa_storage_fsync_duration_seconds{call}         kafka.log LogFlushStats LogFlushRateAndTimeMs
//	samsa_storage_group_commit_logs                    (none)
//
// The errors per API are counted in request_errors.go, the consumer group
// metrics in group_metrics.go; the Go runtime's and the process's are
// registered by the HTTP server (package httpapi).
//
// The hot path stays cheap: a request's series are found by indexing a
// table with its key and version (created on first use, then one atomic
// load), and a topic's traffic counters hang off each of its partitions, so
// counting a produced batch or a fetched section is an atomic add with no
// lookup and no allocation. Log sizes and offsets are not kept at all: they
// are read from the logs at scrape time.

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/metadata"
	"github.com/samsa-io/samsa/storage"
)

// brokerMetrics is the broker's own metrics: one prometheus.Collector,
// registered with Config.Metrics when that is set. It counts whether or not
// it is registered. A nil *brokerMetrics counts nothing (handlers called
// without a broker, in tests).
type brokerMetrics struct {
	b *Broker // for the logs and the topics in the image, read at scrape time; immutable

	requests *prometheus.CounterVec   // {api, version}; immutable
	latency  *prometheus.HistogramVec // {api, version}; immutable
	// byRequest[key][version] is the request's series, set on first use;
	// the slices are sized from the API table and immutable.
	byRequest [][]atomic.Pointer[requestSeries]
	errors    *requestErrors // the error codes of responses (request_errors.go); immutable

	connections prometheus.Gauge   // immutable
	accepted    prometheus.Counter // immutable

	fsync      [2]prometheus.Observer // [0] fsync, [1] syncfs; immutable
	fsyncVec   *prometheus.HistogramVec
	commitLogs prometheus.Histogram // immutable

	bytesIn, recordsIn, bytesOut, recordsOut *prometheus.Desc // immutable
	logSize, logEnd, logStart                *prometheus.Desc // immutable

	topicsMu sync.Mutex
	// topics is the traffic counters of each topic that has had a
	// partition on this broker, by id, so that a topic deleted and created
	// again under its name starts from zero; Collect drops those no longer
	// in the image. Guarded by topicsMu.
	topics map[metadata.TopicID]*topicTraffic

	regMu      sync.Mutex
	registered prometheus.Registerer // where it is registered, or nil; guarded by regMu
}

// requestSeries is one API version's series.
type requestSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// topicTraffic counts one topic's records and bytes in and out. Every
// partition of the topic holds the same one. A nil *topicTraffic counts
// nothing.
type topicTraffic struct {
	name                                     string // immutable
	bytesIn, recordsIn, bytesOut, recordsOut atomic.Uint64
}

// Request latencies run from tens of microseconds (ApiVersions, Metadata)
// to the max wait of a long-polling Fetch (500 ms by default, more when a
// client asks), and JoinGroup waits for a rebalance (up to minutes).
var requestBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
}

// fsyncBuckets span a page-cache-only filesystem (microseconds) to a busy
// disk (a second).
var fsyncBuckets = []float64{
	0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
}

func newBrokerMetrics(b *Broker) *brokerMetrics {
	m := &brokerMetrics{
		b: b,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_requests_total",
			Help: "Requests handled, by API and version (Kafka: kafka.network RequestMetrics RequestsPerSec).",
		}, []string{"api", "version"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "samsa_request_duration_seconds",
			Help:    "Time from a request read off the connection to its response ready to write, by API and version (Kafka: kafka.network RequestMetrics TotalTimeMs, without the send).",
			Buckets: requestBuckets,
		}, []string{"api", "version"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "samsa_connections",
			Help: "Client connections open (Kafka: socket-server-metrics connection-count).",
		}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "samsa_connections_accepted_total",
			Help: "Client connections accepted (Kafka: socket-server-metrics connection-creation-total).",
		}),
		fsyncVec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "samsa_storage_fsync_duration_seconds",
			Help:    "Duration of each fsync(2) of a segment file (call=fsync) or syncfs(2) of the data filesystem (call=syncfs) made by group commit (Kafka: kafka.log LogFlushStats LogFlushRateAndTimeMs).",
			Buckets: fsyncBuckets,
		}, []string{"call"}),
		commitLogs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "samsa_storage_group_commit_logs",
			Help:    "Partition logs made durable together by one group-commit round.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14), // 1 … 8192
		}),
		bytesIn: prometheus.NewDesc("samsa_topic_bytes_in_total",
			"Bytes of record batches appended by producers, by topic (Kafka: BrokerTopicMetrics BytesInPerSec).",
			[]string{"topic"}, nil),
		recordsIn: prometheus.NewDesc("samsa_topic_records_in_total",
			"Records appended by producers, by topic (Kafka: BrokerTopicMetrics MessagesInPerSec).",
			[]string{"topic"}, nil),
		bytesOut: prometheus.NewDesc("samsa_topic_bytes_out_total",
			"Bytes of record batches returned to fetchers, by topic (Kafka: BrokerTopicMetrics BytesOutPerSec).",
			[]string{"topic"}, nil),
		recordsOut: prometheus.NewDesc("samsa_topic_records_out_total",
			"Records in the batches returned to fetchers, by topic; whole batches, so a fetch from the middle of one counts all its records.",
			[]string{"topic"}, nil),
		logSize: prometheus.NewDesc("samsa_log_size_bytes",
			"Bytes of the partition's log segments (Kafka: kafka.log Log Size).",
			[]string{"topic", "partition"}, nil),
		logEnd: prometheus.NewDesc("samsa_log_end_offset",
			"The offset the partition's next record gets (Kafka: kafka.log Log LogEndOffset).",
			[]string{"topic", "partition"}, nil),
		logStart: prometheus.NewDesc("samsa_log_start_offset",
			"The partition's first readable offset (Kafka: kafka.log Log LogStartOffset).",
			[]string{"topic", "partition"}, nil),
		topics: map[metadata.TopicID]*topicTraffic{},
	}
	m.errors = newRequestErrors(b.apis)
	m.fsync[0] = m.fsyncVec.WithLabelValues("fsync")
	m.fsync[1] = m.fsyncVec.WithLabelValues("syncfs")
	maxKey := int16(-1)
	for _, a := range b.apis {
		maxKey = max(maxKey, a.key)
	}
	m.byRequest = make([][]atomic.Pointer[requestSeries], maxKey+1)
	for _, a := range b.apis {
		m.byRequest[a.key] = make([]atomic.Pointer[requestSeries], a.max+1)
	}
	return m
}

// request counts a handled request and how long it took.
func (m *brokerMetrics) request(key, version int16, d time.Duration) {
	if m == nil || key < 0 || int(key) >= len(m.byRequest) ||
		version < 0 || int(version) >= len(m.byRequest[key]) {
		return
	}
	slot := &m.byRequest[key][version]
	s := slot.Load()
	if s == nil {
		s = m.newRequestSeries(key, version)
		slot.Store(s) // a racing first request stores the same children
	}
	s.count.Inc()
	s.latency.Observe(d.Seconds())
}

func (m *brokerMetrics) newRequestSeries(key, version int16) *requestSeries {
	api, v := kmsg.NameForKey(key), strconv.Itoa(int(version))
	return &requestSeries{count: m.requests.WithLabelValues(api, v), latency: m.latency.WithLabelValues(api, v)}
}

// connectionOpened and connectionClosed count a client connection.
func (m *brokerMetrics) connectionOpened() {
	if m != nil {
		m.accepted.Inc()
		m.connections.Inc()
	}
}

func (m *brokerMetrics) connectionClosed() {
	if m != nil {
		m.connections.Dec()
	}
}

// Synced implements storage.CommitObserver.
func (m *brokerMetrics) Synced(syncfs bool, d time.Duration) {
	i := 0
	if syncfs {
		i = 1
	}
	m.fsync[i].Observe(d.Seconds())
}

// Committed implements storage.CommitObserver.
func (m *brokerMetrics) Committed(logs int) { m.commitLogs.Observe(float64(logs)) }

var _ storage.CommitObserver = (*brokerMetrics)(nil)

// topic returns the traffic counters of a topic, for its partitions to
// keep. Called when a partition is created, not per request.
func (m *brokerMetrics) topic(id metadata.TopicID, name string) *topicTraffic {
	if m == nil {
		return nil
	}
	m.topicsMu.Lock()
	defer m.topicsMu.Unlock()
	t, ok := m.topics[id]
	if !ok {
		t = &topicTraffic{name: name}
		m.topics[id] = t
	}
	return t
}

// produced counts a produced batch of the given size and record count,
// once it is in the log (out has no error). out is the handler's result,
// read when the deferred call runs.
func (t *topicTraffic) produced(out *produced, bytes int, records int32) {
	if t == nil || out.err != nil || out.log == nil {
		return
	}
	t.bytesIn.Add(uint64(bytes))
	t.recordsIn.Add(uint64(max(records, 0)))
}

// fetched counts a partition's batches returned to a fetcher.
func (t *topicTraffic) fetched(sec *storage.Section) {
	if t == nil {
		return
	}
	t.bytesOut.Add(uint64(sec.Len()))
	t.recordsOut.Add(uint64(sec.Records()))
}

// register registers m with r; nil r registers nothing.
func (m *brokerMetrics) register(r prometheus.Registerer) error {
	if r == nil {
		return nil
	}
	if err := r.Register(m); err != nil {
		return err
	}
	m.regMu.Lock()
	m.registered = r
	m.regMu.Unlock()
	return nil
}

// unregister removes m from where register put it, so that a broker
// restarted in the same process can register again.
func (m *brokerMetrics) unregister() {
	if m == nil {
		return
	}
	m.regMu.Lock()
	defer m.regMu.Unlock()
	if m.registered != nil {
		m.registered.Unregister(m)
		m.registered = nil
	}
}

// Describe implements prometheus.Collector.
func (m *brokerMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	m.latency.Describe(ch)
	ch <- m.errors.desc
	m.connections.Describe(ch)
	m.accepted.Describe(ch)
	m.fsyncVec.Describe(ch)
	m.commitLogs.Describe(ch)
	for _, d := range []*prometheus.Desc{m.bytesIn, m.recordsIn, m.bytesOut, m.recordsOut, m.logSize, m.logEnd, m.logStart} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *brokerMetrics) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	m.latency.Collect(ch)
	m.errors.collect(ch)
	m.connections.Collect(ch)
	m.accepted.Collect(ch)
	m.fsyncVec.Collect(ch)
	m.commitLogs.Collect(ch)
	m.collectTopics(ch)
	m.collectLogs(ch)
}

// collectTopics reports the traffic of each topic in the metadata image,
// forgetting the topics that are gone.
func (m *brokerMetrics) collectTopics(ch chan<- prometheus.Metric) {
	if m.b.meta == nil {
		return
	}
	img := m.b.meta.Image()
	m.topicsMu.Lock()
	var live []*topicTraffic
	for id, t := range m.topics {
		if img.TopicsByID[id] == nil {
			delete(m.topics, id)
			continue
		}
		live = append(live, t)
	}
	m.topicsMu.Unlock()
	for _, t := range live {
		ch <- prometheus.MustNewConstMetric(m.bytesIn, prometheus.CounterValue, float64(t.bytesIn.Load()), t.name)
		ch <- prometheus.MustNewConstMetric(m.recordsIn, prometheus.CounterValue, float64(t.recordsIn.Load()), t.name)
		ch <- prometheus.MustNewConstMetric(m.bytesOut, prometheus.CounterValue, float64(t.bytesOut.Load()), t.name)
		ch <- prometheus.MustNewConstMetric(m.recordsOut, prometheus.CounterValue, float64(t.recordsOut.Load()), t.name)
	}
}

// collectLogs reads each partition log's size and offsets.
func (m *brokerMetrics) collectLogs(ch chan<- prometheus.Metric) {
	ps := m.b.parts
	if ps == nil {
		return
	}
	ps.mu.RLock()
	parts := make([]*partition, 0, len(ps.byTP))
	for _, p := range ps.byTP {
		parts = append(parts, p)
	}
	ps.mu.RUnlock()
	for _, p := range parts {
		partition := strconv.Itoa(int(p.tp.Partition))
		offs := p.log.Offsets()
		ch <- prometheus.MustNewConstMetric(m.logSize, prometheus.GaugeValue, float64(p.log.Size()), p.tp.Topic, partition)
		ch <- prometheus.MustNewConstMetric(m.logEnd, prometheus.GaugeValue, float64(offs.LogEnd), p.tp.Topic, partition)
		ch <- prometheus.MustNewConstMetric(m.logStart, prometheus.GaugeValue, float64(offs.LogStart), p.tp.Topic, partition)
	}
}
