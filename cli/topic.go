package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicCreateOptions are the arguments of `samsa topic create`.
type TopicCreateOptions struct {
	Topics      []string
	Partitions  int32             // -1: the broker's num.partitions
	Replicas    int16             // -1: the broker's default.replication.factor
	Configs     map[string]string // topic configs, Kafka's names
	IfNotExists bool              // an existing topic is not an error
	DryRun      bool              // validate only
}

// TopicResult is the outcome of an operation on one topic.
type TopicResult struct {
	Topic  string `json:"topic" yaml:"topic"`
	Status string `json:"status" yaml:"status"`
	Error  string `json:"error,omitempty" yaml:"error,omitempty"`
}

// TopicCreate creates topics and prints one line per topic. It fails when
// any topic could not be created.
func TopicCreate(ctx context.Context, conn *Conn, p Printer, o TopicCreateOptions) error {
	if len(o.Topics) == 0 {
		return Usagef("no topic given")
	}
	adm, err := conn.Admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	configs := make(map[string]*string, len(o.Configs))
	for k, v := range o.Configs {
		configs[k] = &v
	}
	create := adm.CreateTopics
	if o.DryRun {
		create = adm.ValidateCreateTopics
	}
	resps, err := create(ctx, o.Partitions, o.Replicas, configs, o.Topics...)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	var results []TopicResult
	var failed []string
	for _, t := range o.Topics {
		r := resps[t]
		res := TopicResult{Topic: t, Status: "created"}
		if o.DryRun {
			res.Status = "valid"
		}
		switch {
		case errors.Is(r.Err, kerr.TopicAlreadyExists) && o.IfNotExists:
			res.Status = "exists"
		case errors.Is(r.Err, kerr.TopicAlreadyExists):
			res.Status = "failed"
			res.Error = fmt.Sprintf("topic %q already exists (--if-not-exists ignores that)", t)
		case r.Err != nil:
			res.Status = "failed"
			res.Error = kafkaError(r.Err, r.ErrMessage)
		default:
			if r.NumPartitions > 0 {
				res.Status += fmt.Sprintf(" (%d partitions, replication factor %d)", r.NumPartitions, r.ReplicationFactor)
			}
		}
		if res.Error != "" {
			failed = append(failed, res.Error)
		}
		results = append(results, res)
	}
	if err := p.Print(results, func() Text { return Text{resultTable(results)} }); err != nil {
		return err
	}
	return failure(failed)
}

// TopicDelete deletes topics. A topic that does not exist fails with the
// close names, unless ifExists.
func TopicDelete(ctx context.Context, conn *Conn, p Printer, topics []string, ifExists bool) error {
	if len(topics) == 0 {
		return Usagef("no topic given")
	}
	adm, err := conn.Admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	existing, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	var results []TopicResult
	var failed []string
	var toDelete []string
	for _, t := range topics {
		if existing.Has(t) {
			toDelete = append(toDelete, t)
			continue
		}
		if ifExists {
			results = append(results, TopicResult{Topic: t, Status: "absent"})
			continue
		}
		e := UnknownTopicError(t, existing.Names()).Error()
		failed = append(failed, e)
		results = append(results, TopicResult{Topic: t, Status: "failed", Error: e})
	}
	if len(toDelete) > 0 {
		resps, err := adm.DeleteTopics(ctx, toDelete...)
		if err != nil {
			return fmt.Errorf("delete topics: %w", err)
		}
		for _, t := range toDelete {
			r := resps[t]
			res := TopicResult{Topic: t, Status: "deleted"}
			if r.Err != nil {
				res.Status, res.Error = "failed", kafkaError(r.Err, r.ErrMessage)
				failed = append(failed, res.Error)
			}
			results = append(results, res)
		}
	}
	sort.Slice(results, func(i, j int) bool { return results[i].Topic < results[j].Topic })
	if err := p.Print(results, func() Text { return Text{resultTable(results)} }); err != nil {
		return err
	}
	return failure(failed)
}

// TopicSummary is one line of `samsa topic list`.
type TopicSummary struct {
	Name       string `json:"name" yaml:"name"`
	ID         string `json:"id" yaml:"id"`
	Partitions int    `json:"partitions" yaml:"partitions"`
	Replicas   int    `json:"replicas" yaml:"replicas"`
	Internal   bool   `json:"internal" yaml:"internal"`
}

// TopicList prints the topics, sorted by name; internal ones only when
// internal is set.
func TopicList(ctx context.Context, conn *Conn, p Printer, internal bool) error {
	adm, err := conn.Admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	details, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	list := []TopicSummary{}
	for _, d := range details.Sorted() {
		if d.IsInternal && !internal {
			continue
		}
		s := TopicSummary{Name: d.Topic, ID: d.ID.String(), Partitions: len(d.Partitions), Internal: d.IsInternal}
		if p0, ok := d.Partitions[0]; ok {
			s.Replicas = len(p0.Replicas)
		}
		list = append(list, s)
	}
	return p.Print(list, func() Text {
		t := NewTable("name", "partitions", "replicas")
		for _, s := range list {
			t.Add(s.Name, s.Partitions, s.Replicas)
		}
		return Text{t}
	})
}

// TopicDescription is what `samsa topic describe` shows of one topic.
type TopicDescription struct {
	Name       string          `json:"name" yaml:"name"`
	ID         string          `json:"id" yaml:"id"`
	Internal   bool            `json:"internal" yaml:"internal"`
	Partitions []PartitionInfo `json:"partitions" yaml:"partitions"`
	Configs    []ConfigEntry   `json:"configs" yaml:"configs"`
	Totals     PartitionTotals `json:"totals" yaml:"totals"`
}

// PartitionInfo describes one partition.
type PartitionInfo struct {
	Partition      int32   `json:"partition" yaml:"partition"`
	Leader         int32   `json:"leader" yaml:"leader"`
	LeaderEpoch    int32   `json:"leader_epoch" yaml:"leader_epoch"`
	Replicas       []int32 `json:"replicas" yaml:"replicas"`
	ISR            []int32 `json:"isr" yaml:"isr"`
	LogStartOffset int64   `json:"log_start_offset" yaml:"log_start_offset"`
	LogEndOffset   int64   `json:"log_end_offset" yaml:"log_end_offset"`
	SizeBytes      int64   `json:"size_bytes" yaml:"size_bytes"` // -1: unknown
	Error          string  `json:"error,omitempty" yaml:"error,omitempty"`
}

// PartitionTotals sums a topic's partitions.
type PartitionTotals struct {
	Records   int64 `json:"records" yaml:"records"` // end minus start offsets: an upper bound with compaction or transactions
	SizeBytes int64 `json:"size_bytes" yaml:"size_bytes"`
}

// ConfigEntry is a topic config and where its value comes from.
type ConfigEntry struct {
	Name      string `json:"name" yaml:"name"`
	Value     string `json:"value" yaml:"value"`
	Source    string `json:"source" yaml:"source"`
	Sensitive bool   `json:"sensitive,omitempty" yaml:"sensitive,omitempty"`
}

// TopicDescribeOptions are the arguments of `samsa topic describe`.
type TopicDescribeOptions struct {
	Topics []string
	// AllConfigs shows configs at their defaults too; otherwise only those
	// set on the topic or the broker.
	AllConfigs bool
}

// TopicDescribe prints, for each topic, a summary, its partitions (leader,
// replicas, ISR, log start and end offsets, size on disk) and its configs
// with their source.
func TopicDescribe(ctx context.Context, conn *Conn, p Printer, o TopicDescribeOptions) error {
	if len(o.Topics) == 0 {
		return Usagef("no topic given")
	}
	adm, err := conn.Admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	descs, err := describeTopics(ctx, adm, o)
	if err != nil {
		return err
	}
	if len(o.Topics) == 1 {
		return p.Print(descs[0], func() Text { return descs[0].text() })
	}
	return p.Print(descs, func() Text {
		var all Text
		for _, d := range descs {
			all = append(all, d.text()...)
		}
		return all
	})
}

func describeTopics(ctx context.Context, adm *kadm.Client, o TopicDescribeOptions) ([]TopicDescription, error) {
	all, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	for _, t := range o.Topics {
		if !all.Has(t) {
			return nil, UnknownTopicError(t, all.Names())
		}
	}
	starts, err := adm.ListStartOffsets(ctx, o.Topics...)
	if err != nil {
		return nil, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, o.Topics...)
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	set := make(kadm.TopicsSet)
	for _, t := range o.Topics {
		for p := range all[t].Partitions {
			set.Add(t, p)
		}
	}
	// Sizes are best effort: a broker that does not answer leaves them
	// unknown rather than failing the whole description.
	dirs, _ := adm.DescribeAllLogDirs(ctx, set)
	configs, err := adm.DescribeTopicConfigs(ctx, o.Topics...)
	if err != nil {
		return nil, fmt.Errorf("describe configs: %w", err)
	}
	var out []TopicDescription
	for _, t := range o.Topics {
		d := all[t]
		desc := TopicDescription{Name: t, ID: d.ID.String(), Internal: d.IsInternal, Configs: []ConfigEntry{}}
		for _, pd := range d.Partitions.Sorted() {
			pi := PartitionInfo{
				Partition: pd.Partition, Leader: pd.Leader, LeaderEpoch: pd.LeaderEpoch,
				Replicas: orEmpty(pd.Replicas), ISR: orEmpty(pd.ISR),
				LogStartOffset: -1, LogEndOffset: -1, SizeBytes: -1,
			}
			if pd.Err != nil {
				pi.Error = pd.Err.Error()
			}
			if s, ok := starts.Lookup(t, pd.Partition); ok && s.Err == nil {
				pi.LogStartOffset = s.Offset
			}
			if e, ok := ends.Lookup(t, pd.Partition); ok && e.Err == nil {
				pi.LogEndOffset = e.Offset
			}
			pi.SizeBytes = partitionSize(dirs, t, pd.Partition, pd.Leader)
			if pi.LogStartOffset >= 0 && pi.LogEndOffset >= 0 {
				desc.Totals.Records += pi.LogEndOffset - pi.LogStartOffset
			}
			if pi.SizeBytes > 0 {
				desc.Totals.SizeBytes += pi.SizeBytes
			}
			desc.Partitions = append(desc.Partitions, pi)
		}
		rc, err := configs.On(t, nil)
		if err == nil && rc.Err == nil {
			for _, c := range rc.Configs {
				if !o.AllConfigs && c.Source == kmsg.ConfigSourceDefaultConfig {
					continue
				}
				desc.Configs = append(desc.Configs, ConfigEntry{Name: c.Key, Value: c.MaybeValue(), Source: ConfigSourceName(c.Source), Sensitive: c.Sensitive})
			}
			sort.Slice(desc.Configs, func(i, j int) bool { return desc.Configs[i].Name < desc.Configs[j].Name })
		}
		out = append(out, desc)
	}
	return out, nil
}

// partitionSize is the leader's size of the partition, else any replica's,
// else -1.
func partitionSize(dirs kadm.DescribedAllLogDirs, topic string, partition, leader int32) int64 {
	size := int64(-1)
	for broker, ds := range dirs {
		for _, d := range ds {
			if p, ok := d.Topics.Lookup(topic, partition); ok && (broker == leader || size < 0) {
				size = p.Size
			}
		}
	}
	return size
}

func (d TopicDescription) text() Text {
	var f Fields
	f.Add("name", d.Name)
	f.Add("id", d.ID)
	f.Add("internal", d.Internal)
	f.Add("partitions", len(d.Partitions))
	if len(d.Partitions) > 0 {
		f.Add("replicas", len(d.Partitions[0].Replicas))
	}
	f.Add("records", d.Totals.Records)
	f.Add("size", HumanBytes(d.Totals.SizeBytes))
	parts := NewTable("partition", "leader", "epoch", "replicas", "isr", "log-start", "log-end", "size")
	for _, p := range d.Partitions {
		size := "-"
		if p.SizeBytes >= 0 {
			size = HumanBytes(p.SizeBytes)
		}
		parts.Add(p.Partition, p.Leader, p.LeaderEpoch, p.Replicas, p.ISR, offsetCell(p.LogStartOffset), offsetCell(p.LogEndOffset), size)
	}
	configs := NewTable("config", "value", "source")
	for _, c := range d.Configs {
		v := c.Value
		if c.Sensitive {
			v = "(sensitive)"
		}
		configs.Add(c.Name, v, c.Source)
	}
	out := Text{&f, parts}
	if len(d.Configs) > 0 {
		out = append(out, configs)
	}
	return out
}

func offsetCell(o int64) any {
	if o < 0 {
		return nil
	}
	return o
}

func orEmpty(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}

// ConfigSourceName is a short name for where a config's value comes from:
// topic (set on the topic), broker (set on this broker), cluster (a
// cluster-wide broker default), static (the broker's own configuration),
// default (Kafka's default), or the lower-cased Kafka name.
func ConfigSourceName(s kmsg.ConfigSource) string {
	switch s {
	case kmsg.ConfigSourceDynamicTopicConfig:
		return "topic"
	case kmsg.ConfigSourceDynamicBrokerConfig:
		return "broker"
	case kmsg.ConfigSourceDynamicDefaultBrokerConfig:
		return "cluster"
	case kmsg.ConfigSourceStaticBrokerConfig:
		return "static"
	case kmsg.ConfigSourceDefaultConfig:
		return "default"
	}
	return strings.ToLower(s.String())
}

// TopicAlterConfigOptions are the arguments of `samsa topic alter-config`.
type TopicAlterConfigOptions struct {
	Topics []string
	Set    map[string]string // configs to set
	Delete []string          // configs to return to their default
	DryRun bool
}

// ConfigChange is one config altered on one topic.
type ConfigChange struct {
	Topic  string `json:"topic" yaml:"topic"`
	Config string `json:"config" yaml:"config"`
	Action string `json:"action" yaml:"action"` // set or delete
	Value  string `json:"value,omitempty" yaml:"value,omitempty"`
	Error  string `json:"error,omitempty" yaml:"error,omitempty"`
}

// TopicAlterConfig changes topic configs incrementally: only the named
// configs change.
func TopicAlterConfig(ctx context.Context, conn *Conn, p Printer, o TopicAlterConfigOptions) error {
	if len(o.Topics) == 0 {
		return Usagef("no topic given")
	}
	if len(o.Set) == 0 && len(o.Delete) == 0 {
		return Usagef("nothing to change: give --set name=value or --delete name")
	}
	for _, k := range o.Delete {
		if _, ok := o.Set[k]; ok {
			return Usagef("config %q is both set and deleted", k)
		}
	}
	adm, err := conn.Admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	if err := CheckTopics(ctx, adm, o.Topics...); err != nil {
		return err
	}
	var alters []kadm.AlterConfig
	var changes []ConfigChange
	names := make([]string, 0, len(o.Set))
	for k := range o.Set {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := o.Set[k]
		alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
	}
	for _, k := range o.Delete {
		alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	alter := adm.AlterTopicConfigs
	if o.DryRun {
		alter = adm.ValidateAlterTopicConfigs
	}
	resps, err := alter(ctx, alters, o.Topics...)
	if err != nil {
		return fmt.Errorf("alter configs: %w", err)
	}
	var failed []string
	for _, t := range o.Topics {
		var errText string
		if r, err := resps.On(t, nil); err != nil {
			errText = "no response from the broker"
		} else if r.Err != nil {
			errText = kafkaError(r.Err, r.ErrMessage)
		}
		if errText != "" {
			failed = append(failed, fmt.Sprintf("topic %q: %s", t, errText))
		}
		for _, a := range alters {
			c := ConfigChange{Topic: t, Config: a.Name, Action: "set", Error: errText}
			if a.Op == kadm.DeleteConfig {
				c.Action = "delete"
			} else {
				c.Value = *a.Value
			}
			changes = append(changes, c)
		}
	}
	err = p.Print(changes, func() Text {
		tb := NewTable("topic", "config", "action", "value")
		if len(failed) > 0 {
			tb.Header = append(tb.Header, "error")
		}
		for _, c := range changes {
			if len(failed) > 0 {
				tb.Add(c.Topic, c.Config, c.Action, c.Value, c.Error)
			} else {
				tb.Add(c.Topic, c.Config, c.Action, c.Value)
			}
		}
		return Text{tb}
	})
	if err != nil {
		return err
	}
	return failure(failed)
}

// TopicAddPartitionsOptions are the arguments of `samsa topic
// add-partitions`: exactly one of Add and Total is positive.
type TopicAddPartitionsOptions struct {
	Topics []string
	Add    int // partitions to add
	Total  int // partitions to have in all
	DryRun bool
}

// TopicAddPartitions adds partitions to topics.
func TopicAddPartitions(ctx context.Context, conn *Conn, p Printer, o TopicAddPartitionsOptions) error {
	if len(o.Topics) == 0 {
		return Usagef("no topic given")
	}
	if (o.Add > 0) == (o.Total > 0) {
		return Usagef("give exactly one of --num (partitions to add) and --total (partitions in all), positive")
	}
	adm, err := conn.Admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	if err := CheckTopics(ctx, adm, o.Topics...); err != nil {
		return err
	}
	var resps kadm.CreatePartitionsResponses
	switch {
	case o.Add > 0 && o.DryRun:
		resps, err = adm.ValidateCreatePartitions(ctx, o.Add, o.Topics...)
	case o.Add > 0:
		resps, err = adm.CreatePartitions(ctx, o.Add, o.Topics...)
	case o.DryRun:
		resps, err = adm.ValidateUpdatePartitions(ctx, o.Total, o.Topics...)
	default:
		resps, err = adm.UpdatePartitions(ctx, o.Total, o.Topics...)
	}
	if err != nil {
		return fmt.Errorf("add partitions: %w", err)
	}
	var results []TopicResult
	var failed []string
	status := "added"
	if o.DryRun {
		status = "valid"
	}
	for _, t := range o.Topics {
		r := resps[t]
		res := TopicResult{Topic: t, Status: status}
		if r.Err != nil {
			res.Status, res.Error = "failed", kafkaError(r.Err, r.ErrMessage)
			failed = append(failed, fmt.Sprintf("topic %q: %s", t, res.Error))
		}
		results = append(results, res)
	}
	if err := p.Print(results, func() Text { return Text{resultTable(results)} }); err != nil {
		return err
	}
	return failure(failed)
}

// resultTable has an error column only when some result failed.
func resultTable(results []TopicResult) *Table {
	withErr := false
	for _, r := range results {
		withErr = withErr || r.Error != ""
	}
	if !withErr {
		t := NewTable("topic", "status")
		for _, r := range results {
			t.Add(r.Topic, r.Status)
		}
		return t
	}
	t := NewTable("topic", "status", "error")
	for _, r := range results {
		t.Add(r.Topic, r.Status, r.Error)
	}
	return t
}

// failure is nil for no messages, else one error that carries the first
// message and how many more there are.
func failure(msgs []string) error {
	switch len(msgs) {
	case 0:
		return nil
	case 1:
		return errors.New(msgs[0])
	}
	return fmt.Errorf("%s (and %d more errors)", msgs[0], len(msgs)-1)
}

// kafkaError is a Kafka error code with the broker's message (or, when
// the broker gave none, Kafka's description of the code) in one line.
func kafkaError(err error, msg string) string {
	s := err.Error()
	msg = strings.TrimSpace(msg)
	var ke *kerr.Error
	if errors.As(err, &ke) {
		s = ke.Message
		if msg == "" {
			msg = strings.TrimSuffix(ke.Description, ".")
		}
	}
	if msg != "" {
		s += ": " + msg
	}
	return strings.ReplaceAll(s, "\n", " ")
}

// HumanBytes is n in B, KiB, MiB, GiB or TiB, with one decimal above B.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGT"[exp])
}

// TopicNames lists the topics (without internal ones), for shell
// completion.
func TopicNames(ctx context.Context, conn *Conn) ([]string, error) {
	adm, err := conn.Admin(ctx)
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	details, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, err
	}
	return details.Names(), nil
}
