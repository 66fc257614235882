package broker

// Consumer group metrics: lag without a collector. At every scrape the
// broker reads each committed offset from the group coordinator and the
// high watermark of its partition, so a group's lag is on /metrics whether
// or not any of its members is online, and nothing is kept between scrapes.
//
//	samsa_consumer_group_committed_offset{group,topic,partition}
//	samsa_consumer_group_lag{group,topic,partition}   high watermark − committed, ≥ 0
//	samsa_consumer_group_members{group}
//	samsa_consumer_group_state{group,type,state}      1 for the group's state
//
// Tools without Prometheus get the same numbers from the Kafka API: the
// committed offsets from OffsetFetch and the high watermarks from
// ListOffsets (what kafka-consumer-groups.sh --describe does).

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/samsa-io/samsa/group"
	"github.com/samsa-io/samsa/group/classic"
	"github.com/samsa-io/samsa/group/consumer"
)

// groupCollector is a prometheus.Collector of every group's offsets, lag,
// members and state, read at scrape time.
type groupCollector struct {
	b *Broker // immutable

	lag, committed, members, state *prometheus.Desc // immutable
}

func newGroupCollector(b *Broker) *groupCollector {
	partitionLabels := []string{"group", "topic", "partition"}
	return &groupCollector{
		b: b,
		lag: prometheus.NewDesc("samsa_consumer_group_lag",
			"Records of the partition past the group's committed offset: its high watermark minus the committed offset (never negative).",
			partitionLabels, nil),
		committed: prometheus.NewDesc("samsa_consumer_group_committed_offset",
			"The group's committed offset of the partition.",
			partitionLabels, nil),
		members: prometheus.NewDesc("samsa_consumer_group_members",
			"Members of the group.",
			[]string{"group"}, nil),
		state: prometheus.NewDesc("samsa_consumer_group_state",
			"The group's state (Empty, Stable, PreparingRebalance, …) as a label; the value is 1.",
			[]string{"group", "type", "state"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (gc *groupCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- gc.lag
	ch <- gc.committed
	ch <- gc.members
	ch <- gc.state
}

// groupInfo is what a scrape reports of one group.
type groupInfo struct {
	id, typ, state string
	members        int
}

// Collect implements prometheus.Collector. It copies what it needs from
// the coordinator under the driver's lock, then reads the high watermarks
// without it. A coordinator that is still loading reports nothing.
func (gc *groupCollector) Collect(ch chan<- prometheus.Metric) {
	g := gc.b.groups
	if g == nil {
		return
	}
	var offsets []group.GroupOffset
	var groups []groupInfo
	if code := g.read(func(c *group.Coordinator) {
		c.Offsets(func(o group.GroupOffset) { offsets = append(offsets, o) })
		for _, l := range c.ListGroups(5, nil, nil) {
			groups = append(groups, groupInfo{id: l.Group, typ: l.GroupType, state: l.GroupState,
				members: groupMembers(c, l.Group, l.GroupType, l.GroupState)})
		}
	}); code != 0 {
		return
	}
	for _, gi := range groups {
		ch <- prometheus.MustNewConstMetric(gc.members, prometheus.GaugeValue, float64(gi.members), gi.id)
		ch <- prometheus.MustNewConstMetric(gc.state, prometheus.GaugeValue, 1, gi.id, gi.typ, gi.state)
	}
	for _, o := range offsets {
		partition := strconv.Itoa(int(o.Partition))
		ch <- prometheus.MustNewConstMetric(gc.committed, prometheus.GaugeValue, float64(o.Offset), o.Group, o.Topic, partition)
		part, ok := gc.b.parts.get(o.Topic, o.Partition)
		if !ok {
			continue // the topic is gone; its offsets wait for expiry
		}
		lag := max(part.log.Offsets().HighWatermark-o.Offset, 0)
		ch <- prometheus.MustNewConstMetric(gc.lag, prometheus.GaugeValue, float64(lag), o.Group, o.Topic, partition)
	}
}

// groupMembers counts a group's members; an empty group has none, and
// only the others are described.
func groupMembers(c *group.Coordinator, id, typ, state string) int {
	switch {
	case state == string(classic.Empty) || state == string(classic.Dead) ||
		state == string(consumer.Empty) || state == string(consumer.Dead):
		return 0 // the two protocols name these states alike
	case typ == "consumer":
		return len(c.ConsumerGroupDescribe(1, id, false).Members)
	default:
		return len(c.DescribeGroup(5, id).Members)
	}
}

// registerMetrics registers the broker's collectors (consumer groups,
// group commit: commit_metrics.go) with cfg.Metrics, if set.
func (b *Broker) registerMetrics() error {
	if b.cfg.Metrics == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{newGroupCollector(b), newCommitCollector(b.store.Committer())} {
		if err := b.cfg.Metrics.Register(c); err != nil {
			b.unregisterMetrics()
			return err
		}
		b.metrics = append(b.metrics, c)
	}
	return nil
}

// unregisterMetrics removes what registerMetrics registered, so that a
// broker restarted in the same process can register again.
func (b *Broker) unregisterMetrics() {
	for _, c := range b.metrics {
		b.cfg.Metrics.Unregister(c)
	}
	b.metrics = nil
}
