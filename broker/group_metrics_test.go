package broker_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/broker"
	"github.com/samsa-io/samsa/samsatest"
)

// gatherGroupMetrics scrapes reg and returns every samsa_consumer_group_*
// sample as "name{label=value,…}" → value, labels in name order.
func gatherGroupMetrics(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "samsa_consumer_group_") {
			continue
		}
		for _, m := range f.GetMetric() {
			out[sampleName(f.GetName(), m)] = m.GetGauge().GetValue()
		}
	}
	return out
}

func sampleName(name string, m *dto.Metric) string {
	var labels []string
	for _, l := range m.GetLabel() {
		labels = append(labels, l.GetName()+"="+l.GetValue())
	}
	slices.Sort(labels)
	return name + "{" + strings.Join(labels, ",") + "}"
}

func fmtSamples(s map[string]float64) string {
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(s)) {
		lines = append(lines, fmt.Sprintf("%s %g", k, s[k]))
	}
	return strings.Join(lines, "\n")
}

// wantSamples checks that every sample of want is in got with its value.
func wantSamples(got, want map[string]float64) (bool, string) {
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			return false, fmt.Sprintf("want %s %g; have:\n%s", k, v, fmtSamples(got))
		}
	}
	return true, ""
}

func produceN(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, perPartition map[int32]int) {
	t.Helper()
	var recs []*kgo.Record
	for p, n := range perPartition {
		for i := range n {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, i)})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func TestGroupLagMetricsWithAndWithoutMembers(t *testing.T) {
	reg := prometheus.NewRegistry()
	sb := samsatest.Start(t, groupTestConfig(), samsatest.WithConfig(func(c *broker.Config) { c.Metrics = reg }))
	cl, err := kgo.NewClient(kgo.SeedBrokers(sb.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "lagged"); err != nil {
		t.Fatal(err)
	}
	produceN(t, ctx, cl, "lagged", map[int32]int{0: 10, 1: 4})

	// A group with no member online: lag is the high watermark minus
	// what it committed.
	var offsets kadm.Offsets
	offsets.Add(kadm.Offset{Topic: "lagged", Partition: 0, At: 3, LeaderEpoch: -1})
	offsets.Add(kadm.Offset{Topic: "lagged", Partition: 1, At: 4, LeaderEpoch: -1})
	if r, err := adm.CommitOffsets(ctx, "offline", offsets); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	got := gatherGroupMetrics(t, reg)
	if ok, why := wantSamples(got, map[string]float64{
		"samsa_consumer_group_committed_offset{group=offline,partition=0,topic=lagged}": 3,
		"samsa_consumer_group_committed_offset{group=offline,partition=1,topic=lagged}": 4,
		"samsa_consumer_group_lag{group=offline,partition=0,topic=lagged}":              7,
		"samsa_consumer_group_lag{group=offline,partition=1,topic=lagged}":              0,
		"samsa_consumer_group_members{group=offline}":                                   0,
		"samsa_consumer_group_state{group=offline,state=Empty,type=classic}":            1,
	}); !ok {
		t.Fatal(why)
	}

	// More records raise the lag at the next scrape; an offset past the
	// end (a reset ahead) counts as no lag, never a negative one.
	produceN(t, ctx, cl, "lagged", map[int32]int{0: 5})
	offsets = nil
	offsets.Add(kadm.Offset{Topic: "lagged", Partition: 1, At: 100, LeaderEpoch: -1})
	if r, err := adm.CommitOffsets(ctx, "offline", offsets); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	got = gatherGroupMetrics(t, reg)
	if ok, why := wantSamples(got, map[string]float64{
		"samsa_consumer_group_lag{group=offline,partition=0,topic=lagged}":              12,
		"samsa_consumer_group_lag{group=offline,partition=1,topic=lagged}":              0,
		"samsa_consumer_group_committed_offset{group=offline,partition=1,topic=lagged}": 100,
	}); !ok {
		t.Fatal(why)
	}

	// A live member that reads everything and commits: one member,
	// Stable, no lag.
	m := startMember(t, sb.Addr(), "online", "lagged", kgo.CooperativeStickyBalancer())
	eventually(t, "the online member has read and committed everything", func() (bool, string) {
		if err := m.cl.CommitUncommittedOffsets(ctx); err != nil {
			return false, err.Error()
		}
		return wantSamples(gatherGroupMetrics(t, reg), map[string]float64{
			"samsa_consumer_group_lag{group=online,partition=0,topic=lagged}":              0,
			"samsa_consumer_group_lag{group=online,partition=1,topic=lagged}":              0,
			"samsa_consumer_group_committed_offset{group=online,partition=0,topic=lagged}": 15,
			"samsa_consumer_group_members{group=online}":                                   1,
			"samsa_consumer_group_state{group=online,state=Stable,type=classic}":           1,
		})
	})
	m.stop()

	// The same for a KIP-848 group.
	m2 := startClientMember(t, sb.Addr(), "kip848-member", "kip848", "lagged", memberSetup{read: newLedger().read},
		kgo.Balancers(kgo.StickyBalancer()), kgo.ServerSideBalancer())
	eventually(t, "the KIP-848 member has read and committed everything", func() (bool, string) {
		if err := m2.commit(ctx); err != nil {
			return false, err.Error()
		}
		return wantSamples(gatherGroupMetrics(t, reg), map[string]float64{
			"samsa_consumer_group_lag{group=kip848,partition=0,topic=lagged}":              0,
			"samsa_consumer_group_committed_offset{group=kip848,partition=1,topic=lagged}": 4,
			"samsa_consumer_group_members{group=kip848}":                                   1,
			"samsa_consumer_group_state{group=kip848,state=Stable,type=consumer}":          1,
		})
	})
	m2.stop()
	produceN(t, ctx, cl, "lagged", map[int32]int{1: 2})
	got = gatherGroupMetrics(t, reg)
	if ok, why := wantSamples(got, map[string]float64{
		"samsa_consumer_group_lag{group=online,partition=1,topic=lagged}":   2,
		"samsa_consumer_group_members{group=online}":                        0,
		"samsa_consumer_group_state{group=online,state=Empty,type=classic}": 1,
		"samsa_consumer_group_lag{group=kip848,partition=1,topic=lagged}":   2,
		"samsa_consumer_group_members{group=kip848}":                        0,
	}); !ok {
		t.Fatal(why)
	}

	// A restart in the same process registers again, and the lag of the
	// reloaded offsets is back.
	sb.Restart()
	eventually(t, "lag after a restart", func() (bool, string) {
		return wantSamples(gatherGroupMetrics(t, reg), map[string]float64{
			"samsa_consumer_group_lag{group=offline,partition=0,topic=lagged}": 12,
			"samsa_consumer_group_lag{group=online,partition=1,topic=lagged}":  2,
		})
	})

	// A deleted group leaves the metrics.
	if r, err := adm.DeleteGroups(ctx, "offline"); err != nil || r["offline"].Err != nil {
		t.Fatalf("delete: %v %v", err, r["offline"].Err)
	}
	for k := range gatherGroupMetrics(t, reg) {
		if strings.Contains(k, "group=offline") {
			t.Errorf("deleted group still reported: %s", k)
		}
	}
}
