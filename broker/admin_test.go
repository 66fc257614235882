package broker_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/samsa-io/samsa/broker"
	"github.com/samsa-io/samsa/samsatest"
	"github.com/samsa-io/samsa/storage"
)

// adminClients starts a broker and returns it with a client and an admin
// client on it.
func adminClients(t *testing.T, opts ...samsatest.Option) (*samsatest.Broker, *kgo.Client, *kadm.Client, context.Context) {
	t.Helper()
	sb := samsatest.Start(t, opts...)
	cl, err := kgo.NewClient(kgo.SeedBrokers(sb.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return sb, cl, kadm.NewClient(cl), ctx
}

func str(s string) *string { return &s }

// logOf returns a partition's log in the broker's store.
func logOf(t *testing.T, sb *samsatest.Broker, topic string, p int32) *storage.Log {
	t.Helper()
	l, ok := sb.Broker().Store().Log(storage.TopicPartition{Topic: topic, Partition: p})
	if !ok {
		t.Fatalf("no log for %s-%d", topic, p)
	}
	return l
}

func TestCreateTopics(t *testing.T) {
	sb, _, adm, ctx := adminClients(t)

	resp, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": str("3600000"), "cleanup.policy": str("compact")}, "configured")
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v %s", err, resp.Err, resp.ErrMessage)
	}
	if resp.ID == (kadm.TopicID{}) || resp.NumPartitions != 3 || resp.ReplicationFactor != 1 {
		t.Fatalf("created: %+v", resp)
	}
	if c := resp.Configs["retention.ms"]; c.MaybeValue() != "3600000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("retention.ms in response: %+v", c)
	}
	if c := resp.Configs["segment.bytes"]; c.MaybeValue() != "1073741824" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("segment.bytes in response: %+v", c)
	}
	for p := range int32(3) {
		if cfg := logOf(t, sb, "configured", p).Config(); cfg.Retention != time.Hour || !cfg.Compact || cfg.Delete {
			t.Errorf("partition %d log config: %+v", p, cfg)
		}
	}

	// Defaults: -1 partitions is num.partitions, -1 replicas is 1.
	resp, err = adm.CreateTopic(ctx, -1, -1, nil, "defaults")
	if err != nil || resp.Err != nil || resp.NumPartitions != 1 || resp.ReplicationFactor != 1 {
		t.Fatalf("create with defaults: %v %+v", err, resp)
	}

	// Validate only: checked, answered, not created.
	dry, err := adm.ValidateCreateTopics(ctx, 2, 1, nil, "dry-run")
	if err != nil {
		t.Fatal(err)
	}
	if r := dry["dry-run"]; r.Err != nil || r.NumPartitions != 2 {
		t.Fatalf("validate only: %+v", r)
	}
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if topics.Has("dry-run") {
		t.Fatal("validate-only created the topic")
	}

	for _, tc := range []struct {
		name    string
		topic   string
		parts   int32
		rf      int16
		configs map[string]*string
		want    error
		message string
	}{
		{"bad name", "bad/name", 1, 1, nil, kerr.InvalidTopicException, "illegal character"},
		{"bad config value", "bad-value", 1, 1, map[string]*string{"retention.ms": str("soon")}, kerr.InvalidConfig, "retention.ms"},
		{"unknown config", "bad-config", 1, 1, map[string]*string{"retention.mss": str("1")}, kerr.InvalidConfig, "retention.mss"},
		{"replication factor 3", "replicated", 1, 3, nil, kerr.InvalidReplicationFactor, "Samsa runs one broker; replication arrives with the cluster"},
		{"zero partitions", "empty", 0, 1, nil, kerr.InvalidPartitions, "at least 1"},
		{"exists", "configured", 1, 1, nil, kerr.TopicAlreadyExists, "already exists"},
		{"collides", "configured.x", 1, 1, nil, nil, ""},
		{"collision", "configured_x", 1, 1, nil, kerr.InvalidTopicException, "collides"},
	} {
		resp, err := adm.CreateTopic(ctx, tc.parts, tc.rf, tc.configs, tc.topic)
		if err != nil && resp.Err == nil {
			resp.Err = err
		}
		if !errors.Is(resp.Err, tc.want) || (tc.want != nil && !strings.Contains(resp.ErrMessage, tc.message)) {
			t.Errorf("%s: got %v %q, want %v with %q", tc.name, resp.Err, resp.ErrMessage, tc.want, tc.message)
		}
	}
}

func TestCreateTopicsManualAssignment(t *testing.T) {
	_, cl, _, ctx := adminClients(t)
	create := func(rt kmsg.CreateTopicsRequestTopic) kmsg.CreateTopicsResponseTopic {
		t.Helper()
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0]
	}
	assigned := func(name string, parts int32, replicas ...int32) kmsg.CreateTopicsRequestTopic {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, -1, -1
		for p := range parts {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition, a.Replicas = p, replicas
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
		}
		return rt
	}
	if r := create(assigned("assigned", 2, 0)); r.ErrorCode != 0 || r.NumPartitions != 2 || r.ReplicationFactor != 1 {
		t.Fatalf("assignment to broker 0: %+v", r)
	}
	if r := create(assigned("elsewhere", 1, 7)); r.ErrorCode != kerr.InvalidReplicaAssignment.Code {
		t.Errorf("assignment to an unknown broker: %+v", r)
	}
	both := assigned("both", 1, 0)
	both.NumPartitions = 1
	if r := create(both); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("assignment with a partition count: %+v", r)
	}
}

// configOf finds a config in a described resource.
func configOf(t *testing.T, rc kadm.ResourceConfig, name string) kadm.Config {
	t.Helper()
	for _, c := range rc.Configs {
		if c.Key == name {
			return c
		}
	}
	t.Fatalf("%q has no config %s", rc.Name, name)
	return kadm.Config{}
}

// describeTopicConfig describes one config of a topic.
func describeTopicConfig(t *testing.T, ctx context.Context, adm *kadm.Client, topic, name string) kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe %s: %v %v", topic, err, rc.Err)
	}
	return configOf(t, rc, name)
}

type synonym struct {
	name, value string
	source      kmsg.ConfigSource
}

func synonymsOf(c kadm.Config) []synonym {
	var out []synonym
	for _, s := range c.Synonyms {
		v := ""
		if s.Value != nil {
			v = *s.Value
		}
		out = append(out, synonym{s.Key, v, s.Source})
	}
	return out
}

func wantConfig(t *testing.T, c kadm.Config, value string, source kmsg.ConfigSource, synonyms ...synonym) {
	t.Helper()
	if c.MaybeValue() != value || c.Source != source || !slices.Equal(synonymsOf(c), synonyms) {
		t.Errorf("%s = %q from %v, synonyms %v; want %q from %v, synonyms %v",
			c.Key, c.MaybeValue(), c.Source, synonymsOf(c), value, source, synonyms)
	}
}

func TestDescribeAndAlterTopicConfigs(t *testing.T) {
	sb, _, adm, ctx := adminClients(t)
	if _, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": str("3600000")}, "t"); err != nil {
		t.Fatal(err)
	}
	wantConfig(t, describeTopicConfig(t, ctx, adm, "t", "retention.ms"), "3600000", kmsg.ConfigSourceDynamicTopicConfig,
		synonym{"retention.ms", "3600000", kmsg.ConfigSourceDynamicTopicConfig},
		synonym{"log.retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig})
	wantConfig(t, describeTopicConfig(t, ctx, adm, "t", "segment.bytes"), "1073741824", kmsg.ConfigSourceDefaultConfig,
		synonym{"log.segment.bytes", "1073741824", kmsg.ConfigSourceDefaultConfig})

	// Incremental: SET takes effect on the logs.
	alter := func(configs ...kadm.AlterConfig) error {
		t.Helper()
		resps, err := adm.AlterTopicConfigs(ctx, configs, "t")
		if err != nil {
			return err
		}
		if resps[0].Err != nil {
			return errors.Join(resps[0].Err, errors.New(resps[0].ErrMessage))
		}
		return nil
	}
	if err := alter(kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: str("1000")},
		kadm.AlterConfig{Op: kadm.SetConfig, Name: "segment.bytes", Value: str("1048576")}); err != nil {
		t.Fatal(err)
	}
	for p := range int32(2) {
		if cfg := logOf(t, sb, "t", p).Config(); cfg.Retention != time.Second || cfg.SegmentBytes != 1<<20 {
			t.Errorf("partition %d after SET: retention %v, segment bytes %d", p, cfg.Retention, cfg.SegmentBytes)
		}
	}
	wantConfig(t, describeTopicConfig(t, ctx, adm, "t", "segment.bytes"), "1048576", kmsg.ConfigSourceDynamicTopicConfig,
		synonym{"segment.bytes", "1048576", kmsg.ConfigSourceDynamicTopicConfig},
		synonym{"log.segment.bytes", "1073741824", kmsg.ConfigSourceDefaultConfig})

	// DELETE goes back to the default.
	if err := alter(kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "retention.ms"}); err != nil {
		t.Fatal(err)
	}
	if cfg := logOf(t, sb, "t", 0).Config(); cfg.Retention != 7*24*time.Hour || cfg.SegmentBytes != 1<<20 {
		t.Errorf("after DELETE: retention %v, segment bytes %d", cfg.Retention, cfg.SegmentBytes)
	}
	wantConfig(t, describeTopicConfig(t, ctx, adm, "t", "retention.ms"), "604800000", kmsg.ConfigSourceDefaultConfig,
		synonym{"log.retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig})

	// APPEND and SUBTRACT on a list, starting from the default.
	if err := alter(kadm.AlterConfig{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: str("compact")}); err != nil {
		t.Fatal(err)
	}
	if c := describeTopicConfig(t, ctx, adm, "t", "cleanup.policy"); c.MaybeValue() != "delete,compact" {
		t.Errorf("after APPEND: %q", c.MaybeValue())
	}
	if err := alter(kadm.AlterConfig{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: str("delete")}); err != nil {
		t.Fatal(err)
	}
	if cfg := logOf(t, sb, "t", 1).Config(); !cfg.Compact || cfg.Delete {
		t.Errorf("after SUBTRACT: compact %v, delete %v", cfg.Compact, cfg.Delete)
	}

	// Refusals.
	for _, tc := range []struct {
		name    string
		config  kadm.AlterConfig
		want    error
		message string
	}{
		{"bad value", kadm.AlterConfig{Op: kadm.SetConfig, Name: "segment.bytes", Value: str("big")}, kerr.InvalidConfig, "segment.bytes"},
		{"too small", kadm.AlterConfig{Op: kadm.SetConfig, Name: "segment.bytes", Value: str("1")}, kerr.InvalidConfig, "segment.bytes"},
		{"unknown", kadm.AlterConfig{Op: kadm.SetConfig, Name: "no.such.config", Value: str("1")}, kerr.InvalidConfig, "no.such.config"},
		{"append to a non-list", kadm.AlterConfig{Op: kadm.AppendConfig, Name: "retention.ms", Value: str("1")}, kerr.InvalidConfig, "retention.ms"},
		{"empty list", kadm.AlterConfig{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: str("compact")}, kerr.InvalidConfig, "cleanup.policy"},
	} {
		err := alter(tc.config)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.message) {
			t.Errorf("%s: %v, want %v naming %s", tc.name, err, tc.want, tc.message)
		}
	}
	resps, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: str("1")}}, "missing")
	if err != nil || !errors.Is(resps[0].Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("unknown topic: %v %v", err, resps)
	}

	// Validate only changes nothing.
	resps, err = adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: str("5000")}}, "t")
	if err != nil || resps[0].Err != nil {
		t.Fatalf("validate only: %v %v", err, resps)
	}
	if c := describeTopicConfig(t, ctx, adm, "t", "retention.ms"); c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("validate-only altered the config: %+v", c)
	}

	// AlterConfigs (not incremental) replaces the whole set.
	resps, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "segment.ms", Value: str("60000")}}, "t")
	if err != nil || resps[0].Err != nil {
		t.Fatalf("alter configs: %v %v", err, resps)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	var set []string
	for _, c := range rcs[0].Configs {
		if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
			set = append(set, c.Key+"="+c.MaybeValue())
		}
	}
	if !slices.Equal(set, []string{"segment.ms=60000"}) {
		t.Errorf("after AlterConfigs the topic sets %v", set)
	}
	if cfg := logOf(t, sb, "t", 0).Config(); cfg.SegmentAge != time.Minute || cfg.SegmentBytes != 1<<30 || cfg.Compact {
		t.Errorf("after AlterConfigs: %+v", cfg)
	}
}

func TestDescribeConfigsKeysAndDocumentation(t *testing.T) {
	_, cl, adm, ctx := adminClients(t)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeDocumentation = true
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
	res.ConfigNames = []string{"max.message.bytes", "cleanup.policy", "nope"}
	unknown := kmsg.NewDescribeConfigsRequestResource()
	unknown.ResourceType, unknown.ResourceName = kmsg.ConfigResourceTypeTopic, "missing"
	req.Resources = append(req.Resources, res, unknown)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	got := resp.Resources[0]
	if len(got.Configs) != 2 {
		t.Fatalf("asked for 2 known keys, got %+v", got.Configs)
	}
	for _, c := range got.Configs {
		if c.Documentation == nil || *c.Documentation == "" || c.ReadOnly || c.IsSensitive || len(c.ConfigSynonyms) != 0 {
			t.Errorf("config %+v", c)
		}
		want := map[string]kmsg.ConfigType{"max.message.bytes": kmsg.ConfigTypeInt, "cleanup.policy": kmsg.ConfigTypeList}[c.Name]
		if c.ConfigType != want {
			t.Errorf("%s has type %v, want %v", c.Name, c.ConfigType, want)
		}
	}
	if resp.Resources[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown topic: %+v", resp.Resources[1])
	}
}

func TestBrokerConfigs(t *testing.T) {
	sb, cl, adm, ctx := adminClients(t)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	describeBroker := func(brokers ...int32) kadm.ResourceConfig {
		t.Helper()
		rcs, err := adm.DescribeBrokerConfigs(ctx, brokers...)
		if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
			t.Fatalf("describe broker %v: %v %+v", brokers, err, rcs)
		}
		return rcs[0]
	}
	alterBroker := func(configs []kadm.AlterConfig, brokers ...int32) kadm.AlterConfigsResponse {
		t.Helper()
		resps, err := adm.AlterBrokerConfigs(ctx, configs, brokers...)
		if err != nil || len(resps) != 1 {
			t.Fatalf("alter broker %v: %v %+v", brokers, err, resps)
		}
		return resps[0]
	}

	node := describeBroker(0)
	if c := configOf(t, node, "node.id"); c.MaybeValue() != "0" || c.Source != kmsg.ConfigSourceStaticBrokerConfig {
		t.Errorf("node.id: %+v", c)
	}
	logDirs := configOf(t, node, "log.dirs")
	if want, _ := filepath.Abs(filepath.Join(sb.DataDir(), "logs")); logDirs.MaybeValue() != want {
		t.Errorf("log.dirs = %q, want %q", logDirs.MaybeValue(), want)
	}
	wantConfig(t, configOf(t, node, "log.retention.ms"), "604800000", kmsg.ConfigSourceDefaultConfig,
		synonym{"log.retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig})
	if cluster := describeBroker(); len(cluster.Configs) != 0 {
		t.Errorf("cluster defaults before any is set: %+v", cluster.Configs)
	}

	// A cluster-wide default reaches topics without their own value, and
	// their logs.
	if r := alterBroker([]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.ms", Value: str("120000")}}); r.Err != nil {
		t.Fatal(r.Err, r.ErrMessage)
	}
	wantConfig(t, describeTopicConfig(t, ctx, adm, "t", "retention.ms"), "120000", kmsg.ConfigSourceDynamicDefaultBrokerConfig,
		synonym{"log.retention.ms", "120000", kmsg.ConfigSourceDynamicDefaultBrokerConfig},
		synonym{"log.retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig})
	if cfg := logOf(t, sb, "t", 0).Config(); cfg.Retention != 2*time.Minute {
		t.Errorf("log retention after the cluster default: %v", cfg.Retention)
	}
	cluster := describeBroker()
	if len(cluster.Configs) != 1 {
		t.Fatalf("cluster defaults: %+v", cluster.Configs)
	}
	wantConfig(t, cluster.Configs[0], "120000", kmsg.ConfigSourceDynamicDefaultBrokerConfig,
		synonym{"log.retention.ms", "120000", kmsg.ConfigSourceDynamicDefaultBrokerConfig})

	// A per-broker value wins over the cluster default.
	if r := alterBroker([]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.ms", Value: str("180000")}}, 0); r.Err != nil {
		t.Fatal(r.Err, r.ErrMessage)
	}
	wantConfig(t, configOf(t, describeBroker(0), "log.retention.ms"), "180000", kmsg.ConfigSourceDynamicBrokerConfig,
		synonym{"log.retention.ms", "180000", kmsg.ConfigSourceDynamicBrokerConfig},
		synonym{"log.retention.ms", "120000", kmsg.ConfigSourceDynamicDefaultBrokerConfig},
		synonym{"log.retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig})
	if cfg := logOf(t, sb, "t", 0).Config(); cfg.Retention != 3*time.Minute {
		t.Errorf("log retention after the broker's value: %v", cfg.Retention)
	}

	// num.partitions is dynamic in Samsa.
	if r := alterBroker([]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "num.partitions", Value: str("4")}}); r.Err != nil {
		t.Fatal(r.Err, r.ErrMessage)
	}
	if resp, err := adm.CreateTopic(ctx, -1, -1, nil, "four"); err != nil || resp.NumPartitions != 4 {
		t.Errorf("create with num.partitions=4: %v %+v", err, resp)
	}

	// So is auto.create.topics.enable.
	if r := alterBroker([]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "auto.create.topics.enable", Value: str("false")}}); r.Err != nil {
		t.Fatal(r.Err, r.ErrMessage)
	}
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = str("not-auto-created")
	mreq.Topics = append(mreq.Topics, mt)
	mreq.AllowAutoTopicCreation = true
	if mresp, err := mreq.RequestWith(ctx, cl); err != nil || mresp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("metadata with auto.create.topics.enable=false: %v %+v", err, mresp)
	}
	if c := configOf(t, describeBroker(0), "auto.create.topics.enable"); c.MaybeValue() != "false" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Errorf("auto.create.topics.enable: %+v", c)
	}

	// Refusals.
	for _, tc := range []struct {
		name    string
		config  kadm.AlterConfig
		message string
	}{
		{"static", kadm.AlterConfig{Op: kadm.SetConfig, Name: "node.id", Value: str("3")}, "node.id"},
		{"unknown", kadm.AlterConfig{Op: kadm.SetConfig, Name: "no.such.config", Value: str("1")}, "no.such.config"},
		{"bad value", kadm.AlterConfig{Op: kadm.SetConfig, Name: "log.segment.bytes", Value: str("-5")}, "log.segment.bytes"},
	} {
		r := alterBroker([]kadm.AlterConfig{tc.config}, 0)
		if !errors.Is(r.Err, kerr.InvalidConfig) || !strings.Contains(r.ErrMessage, tc.message) {
			t.Errorf("%s: %v %q", tc.name, r.Err, r.ErrMessage)
		}
	}
	rcs, err := adm.DescribeBrokerConfigs(ctx, 7)
	if err == nil && (len(rcs) != 1 || !errors.Is(rcs[0].Err, kerr.InvalidRequest)) {
		t.Errorf("describe an unknown broker: %+v", rcs)
	}
}

func TestCreatePartitions(t *testing.T) {
	sb, _, adm, ctx := adminClients(t)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	resps, err := adm.ValidateUpdatePartitions(ctx, 5, "t")
	if err != nil || resps["t"].Err != nil {
		t.Fatalf("validate only: %v %+v", err, resps)
	}
	resps, err = adm.UpdatePartitions(ctx, 3, "t")
	if err != nil || resps["t"].Err != nil {
		t.Fatalf("grow to 3: %v %+v", err, resps)
	}
	md, err := adm.Metadata(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(md.Topics["t"].Partitions); n != 3 {
		t.Errorf("after growing to 3 (validate-only to 5 first): %d partitions", n)
	}
	logOf(t, sb, "t", 2)

	for _, tc := range []struct {
		name  string
		topic string
		set   int
		want  error
	}{
		{"same", "t", 3, kerr.InvalidPartitions},
		{"fewer", "t", 2, kerr.InvalidPartitions},
		{"unknown", "missing", 4, kerr.UnknownTopicOrPartition},
	} {
		resps, err := adm.UpdatePartitions(ctx, tc.set, tc.topic)
		if err != nil {
			t.Fatal(err)
		}
		if r := resps[tc.topic]; !errors.Is(r.Err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, r.Err, tc.want)
		}
	}
}

func TestDeleteRecords(t *testing.T) {
	sb, cl, adm, ctx := adminClients(t)
	created, err := adm.CreateTopic(ctx, 1, 1, nil, "t")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	deleteTo := func(offset int64) kadm.DeleteRecordsResponse {
		t.Helper()
		var os kadm.Offsets
		os.Add(kadm.Offset{Topic: "t", Partition: 0, At: offset})
		resps, err := adm.DeleteRecords(ctx, os)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := resps.Lookup("t", 0)
		return r
	}
	if r := deleteTo(4); r.Err != nil || r.LowWatermark != 4 {
		t.Fatalf("delete to 4: %+v", r)
	}
	starts, err := adm.ListStartOffsets(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("t", 0); o.Offset != 4 {
		t.Errorf("start offset after deleting to 4: %+v", o)
	}
	if got := logOf(t, sb, "t", 0).Offsets().LogStart; got != 4 {
		t.Errorf("log start %d", got)
	}

	// A fetch below the low watermark is out of range.
	fetch := broker.NewFetchReq().Wait(0, 1).MaxBytes(1<<20).
		Topic("t", created.ID, 2, 0). // by name before v13, by id after
		Request()
	fresp, err := fetch.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if p := fresp.Topics[0].Partitions[0]; p.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Errorf("fetch at 2 after deleting to 4: error %d", p.ErrorCode)
	}

	if r := deleteTo(2); r.Err != nil || r.LowWatermark != 4 {
		t.Errorf("delete to below the start: %+v", r)
	}
	if r := deleteTo(11); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Errorf("delete past the high watermark: %+v", r)
	}
	if r := deleteTo(-1); r.Err != nil || r.LowWatermark != 10 {
		t.Errorf("delete to the high watermark: %+v", r)
	}
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "missing", Partition: 0, At: 1})
	resps, err := adm.DeleteRecords(ctx, os)
	if err == nil {
		if r, _ := resps.Lookup("missing", 0); !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			t.Errorf("unknown topic: %+v", r)
		}
	}
}

func TestDeleteTopics(t *testing.T) {
	sb, cl, adm, ctx := adminClients(t)
	created, err := adm.CreateTopics(ctx, 2, 1, nil, "by-name", "by-id", "kept")
	if err != nil {
		t.Fatal(err)
	}
	resps, err := adm.DeleteTopics(ctx, "by-name", "missing")
	if err != nil {
		t.Fatal(err)
	}
	if r := resps["by-name"]; r.Err != nil {
		t.Errorf("delete by name: %+v", r)
	}
	if r := resps["missing"]; !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("delete an unknown topic: %+v", r)
	}

	req := kmsg.NewPtrDeleteTopicsRequest()
	for _, id := range [][16]byte{created["by-id"].ID, {1, 2, 3}} {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.TopicID = id
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.Topics[0]; r.ErrorCode != 0 || r.Topic == nil || *r.Topic != "by-id" || r.TopicID != created["by-id"].ID {
		t.Errorf("delete by id: %+v", r)
	}
	if r := resp.Topics[1]; r.ErrorCode != kerr.UnknownTopicID.Code {
		t.Errorf("delete an unknown id: %+v", r)
	}

	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(topics.Names(), []string{"kept"}) {
		t.Errorf("topics left: %v", topics.Names())
	}
	for _, tp := range sb.Broker().Store().Partitions() {
		if tp.Topic != "kept" && !strings.HasPrefix(tp.Topic, "__") { // internal topics, made at start-up
			t.Errorf("log %s outlived its topic", tp)
		}
	}
	// The name can be used again, with a new id.
	again, err := adm.CreateTopic(ctx, 1, 1, nil, "by-name")
	if err != nil || again.ID == created["by-name"].ID {
		t.Errorf("recreate: %v %+v", err, again)
	}
}

func TestDescribeClusterAndLogDirs(t *testing.T) {
	sb, cl, adm, ctx := adminClients(t)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	req := kmsg.NewPtrDescribeClusterRequest()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != 0 || resp.ClusterID == "" || resp.ControllerID != 0 || len(resp.Brokers) != 1 ||
		resp.Brokers[0].NodeID != 0 || resp.EndpointType != 1 {
		t.Errorf("describe cluster: %+v", resp)
	}
	if addr := sb.Addr(); !strings.HasSuffix(addr, ":"+strconv.Itoa(int(resp.Brokers[0].Port))) {
		t.Errorf("broker port %d, listening on %s", resp.Brokers[0].Port, addr)
	}
	req.EndpointType = 2
	if resp, err := req.RequestWith(ctx, cl); err != nil || resp.ErrorCode != kerr.UnsupportedEndpointType.Code {
		t.Errorf("describe controllers: %v %+v", err, resp)
	}

	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.Abs(filepath.Join(sb.DataDir(), "logs"))
	dir, ok := dirs[0][want]
	if !ok || dir.Err != nil {
		t.Fatalf("log dirs: %+v", dirs)
	}
	if dir.TotalBytes <= 0 || dir.UsableBytes <= 0 || dir.UsableBytes > dir.TotalBytes {
		t.Errorf("volume: total %d, usable %d", dir.TotalBytes, dir.UsableBytes)
	}
	var total int64
	for p := range int32(2) {
		dp, ok := dir.Topics.Lookup("t", p)
		if !ok || dp.OffsetLag != 0 || dp.IsFuture {
			t.Errorf("partition %d: %v %+v", p, ok, dp)
		}
		if size := logOf(t, sb, "t", p).Size(); dp.Size != size {
			t.Errorf("partition %d size %d, log size %d", p, dp.Size, size)
		}
		total += dp.Size
	}
	if total == 0 {
		t.Error("a record was produced, and the partitions' sizes add up to 0")
	}

	// Asking for one partition describes that one.
	dirs, err = adm.DescribeAllLogDirs(ctx, kadm.TopicsSet{"t": {1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := dirs[0][want].Topics; len(got) != 1 || len(got["t"]) != 1 {
		t.Errorf("one partition asked for: %+v", got)
	}
}

func TestAdminStateSurvivesRestart(t *testing.T) {
	sb, _, adm, ctx := adminClients(t)
	created, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": str("3600000")}, "kept")
	if err != nil || created.Err != nil {
		t.Fatal(err, created.Err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "deleted"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.DeleteTopics(ctx, "deleted"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.UpdatePartitions(ctx, 4, "kept"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.segment.bytes", Value: str("2097152")}}); err != nil {
		t.Fatal(err)
	}

	sb.Restart()
	cl, err := kgo.NewClient(kgo.SeedBrokers(sb.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm = kadm.NewClient(cl)
	details, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(details.Names(), []string{"kept"}) {
		t.Fatalf("topics after restart: %v", details.Names())
	}
	if d := details["kept"]; d.ID != created.ID || len(d.Partitions) != 4 {
		t.Errorf("kept after restart: id %v (was %v), %d partitions", d.ID, created.ID, len(d.Partitions))
	}
	wantConfig(t, describeTopicConfig(t, ctx, adm, "kept", "retention.ms"), "3600000", kmsg.ConfigSourceDynamicTopicConfig,
		synonym{"retention.ms", "3600000", kmsg.ConfigSourceDynamicTopicConfig},
		synonym{"log.retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig})
	wantConfig(t, describeTopicConfig(t, ctx, adm, "kept", "segment.bytes"), "2097152", kmsg.ConfigSourceDynamicDefaultBrokerConfig,
		synonym{"log.segment.bytes", "2097152", kmsg.ConfigSourceDynamicDefaultBrokerConfig},
		synonym{"log.segment.bytes", "1073741824", kmsg.ConfigSourceDefaultConfig})
	for p := range int32(4) {
		if cfg := logOf(t, sb, "kept", p).Config(); cfg.Retention != time.Hour || cfg.SegmentBytes != 2<<20 {
			t.Errorf("partition %d log after restart: retention %v, segment bytes %d", p, cfg.Retention, cfg.SegmentBytes)
		}
	}
}

// TestAdminOldVersions runs the admin APIs at the versions of a Kafka 2.1
// client: CreateTopics v3, DeleteTopics v3, DescribeConfigs v2 (v0's
// is_default aside), AlterConfigs v1, CreatePartitions v1, DeleteRecords v1,
// DescribeLogDirs v1.
func TestAdminOldVersions(t *testing.T) {
	sb := samsatest.Start(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(sb.Addr()), kgo.MaxVersions(kversion.V2_1_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	created, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": str("60000")}, "old")
	if err != nil || created.Err != nil {
		t.Fatalf("create: %v %+v", err, created)
	}
	c := describeTopicConfig(t, ctx, adm, "old", "retention.ms")
	if c.MaybeValue() != "60000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("retention.ms: %+v", c)
	}
	if resps, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: str("120000")}}, "old"); err != nil || resps[0].Err != nil {
		t.Fatalf("alter configs: %v %+v", err, resps)
	}
	if cfg := logOf(t, sb, "old", 0).Config(); cfg.Retention != 2*time.Minute {
		t.Errorf("log retention %v", cfg.Retention)
	}
	if resps, err := adm.UpdatePartitions(ctx, 2, "old"); err != nil || resps["old"].Err != nil {
		t.Fatalf("create partitions: %v %+v", err, resps)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "old", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "old", Partition: 0, At: -1})
	os.Add(kadm.Offset{Topic: "old", Partition: 1, At: -1})
	resps, err := adm.DeleteRecords(ctx, os)
	if err != nil {
		t.Fatal(err)
	}
	var low int64
	for _, r := range resps.Sorted() {
		if r.Err != nil {
			t.Errorf("delete records: %+v", r)
		}
		low += r.LowWatermark
	}
	if low != 1 {
		t.Errorf("low watermarks add up to %d after deleting one record", low)
	}
	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil || len(dirs[0]) != 1 {
		t.Fatalf("log dirs: %v %+v", err, dirs)
	}
	if deleted, err := adm.DeleteTopics(ctx, "old"); err != nil || deleted["old"].Err != nil {
		t.Fatalf("delete: %v %+v", err, deleted)
	}
}
