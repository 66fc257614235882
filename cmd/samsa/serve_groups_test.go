package main

import (
	"context"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/samsatest"
)

// groupLag scrapes /metrics and returns samsa_consumer_group_lag of
// group's topic-partition 0, or false when it is not there.
func groupLag(t *testing.T, httpBase, group, topic string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(httpBase + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	f, ok := families["samsa_consumer_group_lag"]
	if !ok {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["group"] == group && labels["topic"] == topic && labels["partition"] == "0" {
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func TestServeMetricsShowGroupLag(t *testing.T) {
	bin := buildSamsa(t)
	kafkaAddr := samsatest.FreeAddr(t)
	httpAddr := samsatest.FreeAddr(t)
	httpBase := "http://" + httpAddr
	p := startSamsa(t, bin, "serve", "--data-dir", t.TempDir(), "--kafka-addr", kafkaAddr,
		"--http-addr", httpAddr, "--log-format", "text")
	waitReady(t, p, httpBase)

	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const topic = "serve-lag"
	for range 5 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	// A group with no member online commits offset 2 of 5.
	var offsets kadm.Offsets
	offsets.Add(kadm.Offset{Topic: topic, Partition: 0, At: 2, LeaderEpoch: -1})
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := kadm.NewClient(cl).CommitOffsets(ctx, "serve-group", offsets)
		if err == nil && r.Error() == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("commit: %v %v", err, r.Error())
		}
		time.Sleep(50 * time.Millisecond) // the coordinator may still be loading
	}
	if lag, ok := groupLag(t, httpBase, "serve-group", topic); !ok || lag != 3 {
		t.Errorf("samsa_consumer_group_lag of serve-group = %g (present %v), want 3", lag, ok)
	}

	p.signal(t, syscall.SIGTERM)
	if code := p.exitCode(t, 20*time.Second); code != 0 {
		t.Fatalf("exit after SIGTERM = %d, want 0", code)
	}
	if out := p.out.String(); strings.Contains(out, "level=ERROR") {
		t.Errorf("errors in the log:\n%s", out)
	}
}
