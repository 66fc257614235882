package cli

// samsa topic delete-records: Kafka's DeleteRecords, as
// kafka-delete-records.sh sends it.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicDeleteRecordsOptions are the arguments of `samsa topic
// delete-records`. Either Topics with Before, or OffsetJSON, says what to
// delete.
type TopicDeleteRecordsOptions struct {
	// Topics are the topics whose records go; Partitions, when set, keeps
	// only these partitions of each.
	Topics     []string
	Partitions []int32
	// Before is where deletion stops in each partition, written as
	// consume's --offset: records below the offset it resolves to are
	// deleted. start+N, end, end-N and times are resolved against the log
	// as listed when the command starts (a time past the last record means
	// the end); an exact offset is sent as given, so one past the end is
	// refused by the broker. "-1" is end, as in Kafka's JSON file.
	Before string
	// OffsetJSON, instead of Topics and Before, is a file in the format of
	// kafka-delete-records.sh --offset-json-file: {"version": 1,
	// "partitions": [{"topic": "t", "partition": 0, "offset": 42}]},
	// offset -1 meaning the end. OffsetJSONName names it in errors.
	OffsetJSON     io.Reader
	OffsetJSONName string
	// DryRun prints what would be deleted and deletes nothing.
	DryRun bool
	// Now is the clock for durations ago; nil means time.Now.
	Now func() time.Time
}

// DeleteRecordsPlan is the outcome of `samsa topic delete-records`.
type DeleteRecordsPlan struct {
	DryRun     bool                     `json:"dry_run" yaml:"dry_run"`
	Partitions []DeleteRecordsPartition `json:"partitions" yaml:"partitions"`
}

// DeleteRecordsPartition is one partition of a delete-records.
type DeleteRecordsPartition struct {
	Topic     string `json:"topic" yaml:"topic"`
	Partition int32  `json:"partition" yaml:"partition"`
	// Before is the offset asked for: records below it are deleted.
	Before int64 `json:"before" yaml:"before"`
	// PreviousStart is the log start offset before the deletion.
	PreviousStart int64 `json:"previous_start" yaml:"previous_start"`
	// LogStart is the log start offset (the low watermark) after it, as the
	// broker answered, or with DryRun as it would be; -1 on error.
	LogStart int64 `json:"log_start" yaml:"log_start"`
	// Deleted is LogStart minus PreviousStart: the records deleted, an
	// upper bound with compaction or transactions.
	Deleted int64  `json:"deleted" yaml:"deleted"`
	Error   string `json:"error,omitempty" yaml:"error,omitempty"`

	end int64 // the log end offset when the plan was made
}

// deleteTarget is one partition to delete from and where to stop: an
// exact offset (fromOffset, sent as it is) or a place resolved against the
// log.
type deleteTarget struct {
	topicPartition
	where StartOffset
}

// TopicDeleteRecords deletes the records of partitions below an offset,
// moving their log start offset forward, as Kafka's DeleteRecords does.
// Names are checked first, so an unknown topic or partition deletes
// nothing; then each partition succeeds or fails on its own, and the
// command fails when any did.
func TopicDeleteRecords(ctx context.Context, conn *Conn, p Printer, o TopicDeleteRecordsOptions) error {
	targets, err := deleteTargets(o)
	if err != nil {
		return err
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	adm, err := conn.Admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	if targets, err = expandTargets(ctx, adm, targets, o.Partitions); err != nil {
		return err
	}
	plan, err := planDeletion(ctx, adm, targets, o.DryRun, now())
	if err != nil {
		return err
	}
	var failed []string
	if o.DryRun {
		failed, err = checkDeletion(ctx, adm, &plan)
	} else {
		failed, err = deleteRecords(ctx, adm, &plan)
	}
	if err != nil {
		return err
	}
	if err := p.Print(plan, plan.text); err != nil {
		return err
	}
	return failure(failed)
}

// deleteTargets checks the options and returns the targets they name: one
// per topic (partition -1: every partition, or those of --partitions), or
// one per partition of the JSON file.
func deleteTargets(o TopicDeleteRecordsOptions) ([]deleteTarget, error) {
	if o.OffsetJSON != nil {
		if len(o.Topics) > 0 || len(o.Partitions) > 0 || o.Before != "" {
			return nil, Usagef("--offset-json-file names the partitions and offsets: give no topic, --partitions or --before with it")
		}
		return parseOffsetJSON(o.OffsetJSON, o.OffsetJSONName)
	}
	if o.Before == "" {
		return nil, Usagef("give where to delete up to: --before WHERE (or --offset-json-file FILE)")
	}
	if len(o.Topics) == 0 {
		return nil, Usagef("missing topic name")
	}
	for _, p := range o.Partitions {
		if p < 0 {
			return nil, Usagef("bad --partitions: %d is not a partition number", p)
		}
	}
	var where StartOffset
	if strings.TrimSpace(o.Before) == "-1" {
		where = StartOffset{kind: fromEnd, input: "-1"}
	} else {
		var err error
		if where, err = ParseStartOffset(o.Before); err != nil {
			return nil, Usagef("%s", strings.Replace(err.Error(), "bad --offset", "bad --before", 1))
		}
	}
	var out []deleteTarget
	for _, t := range o.Topics {
		if !slices.ContainsFunc(out, func(d deleteTarget) bool { return d.Topic == t }) {
			out = append(out, deleteTarget{topicPartition{t, -1}, where})
		}
	}
	return out, nil
}

// parseOffsetJSON reads kafka-delete-records.sh's offset file.
func parseOffsetJSON(r io.Reader, name string) ([]deleteTarget, error) {
	if name == "" {
		name = "offset file"
	}
	bad := func(format string, args ...any) error {
		return Usagef("bad --offset-json-file %s: %s", name, fmt.Sprintf(format, args...))
	}
	var file struct {
		Version    *int `json:"version"`
		Partitions []struct {
			Topic     *string `json:"topic"`
			Partition *int32  `json:"partition"`
			Offset    *int64  `json:"offset"`
		} `json:"partitions"`
	}
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return nil, bad("%v", err)
	}
	if file.Version != nil && *file.Version != 1 {
		return nil, bad("version %d: only version 1 is known", *file.Version)
	}
	if len(file.Partitions) == 0 {
		return nil, bad(`no partitions: want {"partitions": [{"topic": "orders", "partition": 0, "offset": 42}], "version": 1}`)
	}
	var out []deleteTarget
	for i, e := range file.Partitions {
		switch {
		case e.Topic == nil || *e.Topic == "" || e.Partition == nil || e.Offset == nil:
			return nil, bad("partitions[%d]: want topic, partition and offset", i)
		case *e.Partition < 0:
			return nil, bad("partitions[%d]: partition %d is not a partition number", i, *e.Partition)
		case *e.Offset < -1:
			return nil, bad("partitions[%d]: offset %d: want an offset, or -1 for the end", i, *e.Offset)
		}
		tp := topicPartition{*e.Topic, *e.Partition}
		if slices.ContainsFunc(out, func(d deleteTarget) bool { return d.topicPartition == tp }) {
			return nil, bad("%s partition %d is given twice", tp.Topic, tp.Partition)
		}
		where := StartOffset{kind: fromOffset, n: *e.Offset}
		if *e.Offset == -1 {
			where = StartOffset{kind: fromEnd, input: "-1"}
		}
		out = append(out, deleteTarget{tp, where})
	}
	return out, nil
}

// expandTargets checks that the topics and partitions exist and turns a
// whole-topic target into one per partition, sorted.
func expandTargets(ctx context.Context, adm *kadm.Client, targets []deleteTarget, only []int32) ([]deleteTarget, error) {
	details, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	for _, d := range targets {
		if !details.Has(d.Topic) {
			return nil, UnknownTopicError(d.Topic, details.Names())
		}
	}
	var out []deleteTarget
	for _, d := range targets {
		have := details[d.Topic].Partitions.Numbers()
		ps := []int32{d.Partition}
		if d.Partition < 0 {
			ps = have
			if len(only) > 0 {
				ps = only
			}
		}
		for _, p := range ps {
			if !slices.Contains(have, p) {
				return nil, fmt.Errorf("topic %q has no partition %d (it has %d partitions)", d.Topic, p, len(have))
			}
			e := d
			e.Partition = p
			if !slices.ContainsFunc(out, func(x deleteTarget) bool { return x.topicPartition == e.topicPartition }) {
				out = append(out, e)
			}
		}
	}
	slices.SortFunc(out, func(a, b deleteTarget) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out, nil
}

// planDeletion lists each partition's start and end offsets (and, for a
// time, the first offset at or after it) and works out where each deletion
// stops.
func planDeletion(ctx context.Context, adm *kadm.Client, targets []deleteTarget, dryRun bool, now time.Time) (DeleteRecordsPlan, error) {
	plan := DeleteRecordsPlan{DryRun: dryRun, Partitions: []DeleteRecordsPartition{}}
	topics := topicsOf(targets, func(d deleteTarget) string { return d.Topic })
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return plan, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return plan, fmt.Errorf("list end offsets: %w", err)
	}
	// A time comes only from --before, the same for every target.
	var atTime kadm.ListedOffsets
	if len(targets) == 0 {
		return plan, nil
	}
	if at, ok := targets[0].where.instant(now); ok {
		if atTime, err = adm.ListOffsetsAfterMilli(ctx, at.UnixMilli(), topics...); err != nil {
			return plan, fmt.Errorf("list offsets by time: %w", err)
		}
	}
	for _, d := range targets {
		start, okStart := starts.Lookup(d.Topic, d.Partition)
		end, okEnd := ends.Lookup(d.Topic, d.Partition)
		if !okStart || !okEnd || start.Err != nil || end.Err != nil {
			if err := cmp.Or(start.Err, end.Err); err != nil {
				return plan, fmt.Errorf("offsets of %s partition %d: %s", d.Topic, d.Partition, kafkaError(err, ""))
			}
			return plan, fmt.Errorf("offsets of %s partition %d were not listed", d.Topic, d.Partition)
		}
		var before int64
		switch _, isTime := d.where.instant(now); {
		case d.where.kind == fromOffset:
			before = d.where.n
		case isTime:
			o, ok := atTime.Lookup(d.Topic, d.Partition)
			if !ok {
				return plan, fmt.Errorf("the offset by time of %s partition %d was not listed", d.Topic, d.Partition)
			}
			if o.Err != nil {
				return plan, fmt.Errorf("offset by time of %s partition %d: %s", d.Topic, d.Partition, kafkaError(o.Err, ""))
			}
			before = d.where.resolve(start.Offset, end.Offset, o.Offset)
		default:
			before = d.where.resolve(start.Offset, end.Offset, -1)
		}
		plan.Partitions = append(plan.Partitions, DeleteRecordsPartition{
			Topic: d.Topic, Partition: d.Partition, Before: before,
			PreviousStart: start.Offset, LogStart: max(start.Offset, before),
			end: end.Offset,
		})
	}
	return plan, nil
}

// checkDeletion predicts, for a dry run, what the broker would refuse: an
// offset past the end, a topic compacted without the delete policy.
func checkDeletion(ctx context.Context, adm *kadm.Client, plan *DeleteRecordsPlan) (failed []string, err error) {
	topics := topicsOf(plan.Partitions, func(dp DeleteRecordsPartition) string { return dp.Topic })
	configs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("describe configs: %w", err)
	}
	noDelete := map[string]bool{}
	for _, t := range topics {
		rc, err := configs.On(t, nil)
		if err != nil || rc.Err != nil {
			continue
		}
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" {
				policies := strings.Split(strings.ReplaceAll(c.MaybeValue(), " ", ""), ",")
				noDelete[t] = !slices.Contains(policies, "delete")
			}
		}
	}
	for i := range plan.Partitions {
		dp := &plan.Partitions[i]
		switch {
		case noDelete[dp.Topic]:
			dp.Error = deleteRecordsError(kerr.PolicyViolation, dp.Before, dp.end)
		case dp.Before > dp.end:
			dp.Error = deleteRecordsError(kerr.OffsetOutOfRange, dp.Before, dp.end)
		}
		dp.finish(&failed)
	}
	return failed, nil
}

// deleteRecords sends the plan to the partitions' leaders and notes each
// one's new log start or error in it.
func deleteRecords(ctx context.Context, adm *kadm.Client, plan *DeleteRecordsPlan) (failed []string, err error) {
	offsets := make(kadm.Offsets)
	for _, dp := range plan.Partitions {
		offsets.Add(kadm.Offset{Topic: dp.Topic, Partition: dp.Partition, At: dp.Before, LeaderEpoch: -1})
	}
	resp, err := adm.DeleteRecords(ctx, offsets)
	if err != nil && !isShardErrors(err) {
		return nil, fmt.Errorf("delete records: %w", err)
	}
	for i := range plan.Partitions {
		dp := &plan.Partitions[i]
		r, ok := resp.Lookup(dp.Topic, dp.Partition)
		switch {
		case !ok:
			dp.Error = "no answer from the partition's leader"
			if err != nil {
				dp.Error = shardError(err, dp.Topic, dp.Partition)
			}
		case r.Err != nil:
			dp.Error = deleteRecordsError(r.Err, dp.Before, dp.end)
		default:
			dp.LogStart = r.LowWatermark
		}
		dp.finish(&failed)
	}
	return failed, nil
}

// finish sets Deleted (or clears the partition's results when it failed)
// and notes the failure.
func (dp *DeleteRecordsPartition) finish(failed *[]string) {
	if dp.Error != "" {
		dp.LogStart, dp.Deleted = -1, 0
		*failed = append(*failed, fmt.Sprintf("%s partition %d: %s", dp.Topic, dp.Partition, dp.Error))
		return
	}
	dp.Deleted = max(0, dp.LogStart-dp.PreviousStart)
}

// shardError is the error that the piece of a sharded DeleteRecords
// request holding one partition failed with, else the whole error.
func shardError(err error, topic string, partition int32) string {
	var se *kadm.ShardErrors
	if errors.As(err, &se) {
		for _, e := range se.Errs {
			req, ok := e.Req.(*kmsg.DeleteRecordsRequest)
			if !ok {
				continue
			}
			for _, t := range req.Topics {
				if t.Topic == topic && slices.ContainsFunc(t.Partitions, func(p kmsg.DeleteRecordsRequestTopicPartition) bool { return p.Partition == partition }) {
					return kafkaError(e.Err, "")
				}
			}
		}
	}
	return kafkaError(err, "")
}

// deleteRecordsError is a partition's error, with what it means here.
func deleteRecordsError(err error, before, end int64) string {
	switch {
	case errors.Is(err, kerr.OffsetOutOfRange) && before > end:
		return kafkaError(err, fmt.Sprintf("offset %d is past the end of the log (%d)", before, end))
	case errors.Is(err, kerr.PolicyViolation):
		return kafkaError(err, "the topic is compacted: records can be deleted only when cleanup.policy includes delete")
	}
	return kafkaError(err, "")
}

func (plan DeleteRecordsPlan) text() Text {
	withErr := slices.ContainsFunc(plan.Partitions, func(dp DeleteRecordsPartition) bool { return dp.Error != "" })
	t := NewTable("topic", "partition", "before", "previous-start", "log-start", "deleted")
	if withErr {
		t.Header = append(t.Header, "error")
	}
	var records int64
	var ok, bad int
	for _, dp := range plan.Partitions {
		cells := []any{dp.Topic, dp.Partition, dp.Before, dp.PreviousStart, offsetCell(dp.LogStart), dp.Deleted}
		if withErr {
			if dp.Error != "" {
				cells[5] = nil
			}
			cells = append(cells, dp.Error)
		}
		t.Add(cells...)
		if dp.Error != "" {
			bad++
		} else {
			ok++
			records += dp.Deleted
		}
	}
	var note string
	switch {
	case plan.DryRun && bad > 0:
		note = fmt.Sprintf("Dry run: would delete %s in %s; %s would fail. Nothing was changed.", plural(records, "record"), plural(ok, "partition"), plural(bad, "partition"))
	case plan.DryRun:
		note = fmt.Sprintf("Dry run: would delete %s in %s; nothing was changed.", plural(records, "record"), plural(ok, "partition"))
	case bad > 0:
		note = fmt.Sprintf("Deleted %s in %s; %s failed.", plural(records, "record"), plural(ok, "partition"), plural(bad, "partition"))
	default:
		note = fmt.Sprintf("Deleted %s in %s.", plural(records, "record"), plural(ok, "partition"))
	}
	return Text{t, Lines{note}}
}

// topicsOf is the topics of items, each once, in the order they come.
func topicsOf[T any](items []T, topic func(T) string) []string {
	var topics []string
	for _, it := range items {
		if t := topic(it); !slices.Contains(topics, t) {
			topics = append(topics, t)
		}
	}
	return topics
}
