package broker

// Group commit metrics, read from the store's Committer at scrape time:
//
//	samsa_log_flush_rounds_total         group commit rounds run
//	samsa_log_flush_logs_total           logs covered, summed over rounds
//	samsa_log_flush_syncfs_rounds_total  rounds that used one syncfs(2)
//	samsa_log_flush_seconds_total        time rounds spent syncing (rounds may overlap)
//
// Kafka's closest is kafka.log:type=LogFlushStats,name=LogFlushRateAndTimeMs.
// logs/rounds is how many partitions one fsync round covers; seconds/rounds
// its mean duration.

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/samsa-io/samsa/storage"
)

// commitCollector is a prometheus.Collector of the Committer's counters.
type commitCollector struct {
	committer *storage.Committer // immutable

	rounds, logs, syncFS, seconds *prometheus.Desc // immutable
}

func newCommitCollector(c *storage.Committer) *commitCollector {
	return &commitCollector{
		committer: c,
		rounds:    prometheus.NewDesc("samsa_log_flush_rounds_total", "Group commit rounds run (each an fsync of its logs, or one syncfs).", nil, nil),
		logs:      prometheus.NewDesc("samsa_log_flush_logs_total", "Logs made durable by group commit rounds, summed over rounds.", nil, nil),
		syncFS:    prometheus.NewDesc("samsa_log_flush_syncfs_rounds_total", "Group commit rounds that used one syncfs(2) of the filesystem.", nil, nil),
		seconds:   prometheus.NewDesc("samsa_log_flush_seconds_total", "Time group commit rounds spent syncing, summed over rounds (rounds may overlap).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (cc *commitCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cc.rounds
	ch <- cc.logs
	ch <- cc.syncFS
	ch <- cc.seconds
}

// Collect implements prometheus.Collector.
func (cc *commitCollector) Collect(ch chan<- prometheus.Metric) {
	st := cc.committer.Stats()
	ch <- prometheus.MustNewConstMetric(cc.rounds, prometheus.CounterValue, float64(st.Rounds))
	ch <- prometheus.MustNewConstMetric(cc.logs, prometheus.CounterValue, float64(st.LogsSynced))
	ch <- prometheus.MustNewConstMetric(cc.syncFS, prometheus.CounterValue, float64(st.SyncFSCalls))
	ch <- prometheus.MustNewConstMetric(cc.seconds, prometheus.CounterValue, st.SyncTime.Seconds())
}
