package cli

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// GroupSeekOptions are the arguments of `samsa group seek`.
type GroupSeekOptions struct {
	Group string
	// To is where to move the offsets, written as consume's --offset:
	// start, end, start+N, end-N, an offset, an RFC 3339 time,
	// @unix-millis, or a duration ago (-1h). Offsets are clamped to the
	// log; a time past the last record means the end.
	To string
	// ToGroup, instead of To, copies another group's committed offsets.
	ToGroup string
	// Topics limits the seek to these topics (TOPIC: all its partitions)
	// or partitions (TOPIC:P,P…). Empty means every partition the group
	// has an offset for, or with ToGroup, the other group has.
	Topics []string
	// DryRun prints the plan and changes nothing.
	DryRun bool
	// Now is the clock for durations ago; nil means time.Now.
	Now func() time.Time
}

// SeekPlan is the outcome of `samsa group seek`: each partition's offset
// before and after.
type SeekPlan struct {
	Group      string          `json:"group" yaml:"group"`
	DryRun     bool            `json:"dry_run" yaml:"dry_run"`
	Partitions []SeekPartition `json:"partitions" yaml:"partitions"`
}

// SeekPartition is one partition of a seek. PreviousOffset is null when the
// group had no offset there.
type SeekPartition struct {
	Topic          string `json:"topic" yaml:"topic"`
	Partition      int32  `json:"partition" yaml:"partition"`
	PreviousOffset *int64 `json:"previous_offset" yaml:"previous_offset"`
	NewOffset      int64  `json:"new_offset" yaml:"new_offset"`
	Error          string `json:"error,omitempty" yaml:"error,omitempty"`
}

// GroupSeek moves a group's committed offsets. As in Kafka, the group must
// have no members: a running consumer would overwrite the new offsets with
// its next commit. A group that does not exist yet is created with the
// offsets (name the topics with Topics, or copy them with ToGroup). Every target is worked out
// before anything is committed, so a bad partition changes nothing.
func GroupSeek(ctx context.Context, conn *Conn, p Printer, o GroupSeekOptions) error {
	if (o.To == "") == (o.ToGroup == "") {
		return Usagef("give where to move the offsets: one of --to or --to-group")
	}
	if o.ToGroup == o.Group {
		return Usagef("--to-group names the group being moved")
	}
	var to StartOffset
	if o.To != "" {
		var err error
		if to, err = ParseStartOffset(o.To); err != nil {
			return Usagef("%s", strings.Replace(err.Error(), "bad --offset", "bad --to", 1))
		}
	}
	scope, err := ParseTopicPartitions(o.Topics)
	if err != nil {
		return err
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}

	gc, err := dialGroups(ctx, conn)
	if err != nil {
		return err
	}
	defer gc.close()
	listed, err := gc.list(ctx)
	if err != nil {
		return err
	}
	committed := map[string]map[int32]int64{}
	if sum, err := findGroup(o.Group, listed); err == nil {
		if err := gc.checkEmpty(ctx, sum); err != nil {
			return err
		}
		if committed, err = gc.committed(ctx, o.Group); err != nil {
			return err
		}
	} else if len(scope) == 0 && o.ToGroup == "" {
		return fmt.Errorf("%w; to give a new group offsets, name the topics with --topic", err)
	}
	var source map[string]map[int32]int64
	if o.ToGroup != "" {
		if _, err := findGroup(o.ToGroup, listed); err != nil {
			return err
		}
		if source, err = gc.committed(ctx, o.ToGroup); err != nil {
			return err
		}
	}

	parts, err := gc.seekPartitions(ctx, o, scope, committed, source)
	if err != nil {
		return err
	}
	plan := SeekPlan{Group: o.Group, DryRun: o.DryRun, Partitions: []SeekPartition{}}
	targets, err := gc.seekTargets(ctx, parts, to, source, now())
	if err != nil {
		return err
	}
	for _, tp := range parts {
		sp := SeekPartition{Topic: tp.Topic, Partition: tp.Partition, NewOffset: targets[tp]}
		if prev, ok := committed[tp.Topic][tp.Partition]; ok {
			sp.PreviousOffset = &prev
		}
		plan.Partitions = append(plan.Partitions, sp)
	}

	var failed []string
	if !o.DryRun {
		failed, err = gc.commitPlan(ctx, &plan)
		if err != nil {
			return err
		}
	}
	if err := p.Print(plan, plan.text); err != nil {
		return err
	}
	return failure(failed)
}

// topicPartition names one partition.
type topicPartition struct {
	Topic     string
	Partition int32
}

// checkEmpty fails unless the group has no members.
func (gc *groupClient) checkEmpty(ctx context.Context, sum GroupSummary) error {
	d, err := gc.describeMembers(ctx, sum)
	if err != nil {
		return err
	}
	if len(d.Members) == 0 && (d.State == "Empty" || d.State == "Dead") {
		return nil
	}
	return fmt.Errorf("group %q is not empty (state %s, %d members); stop its consumers first: offsets can only be moved while a group has no members",
		d.Group, d.State, len(d.Members))
}

// seekPartitions are the partitions a seek moves, sorted: those named, or
// those the group (or the source group) has offsets for.
func (gc *groupClient) seekPartitions(ctx context.Context, o GroupSeekOptions, scope map[string][]int32, committed, source map[string]map[int32]int64) ([]topicPartition, error) {
	var out []topicPartition
	if len(scope) == 0 {
		from, whose := committed, o.Group
		if source != nil {
			from, whose = source, o.ToGroup
		}
		for t, ps := range from {
			for p := range ps {
				out = append(out, topicPartition{t, p})
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("group %q has no committed offsets; name the topics to move with --topic", whose)
		}
	} else {
		topics := slices.Sorted(maps.Keys(scope))
		if err := CheckTopics(ctx, gc.adm, topics...); err != nil {
			return nil, err
		}
		details, err := gc.adm.ListTopics(ctx, topics...)
		if err != nil {
			return nil, fmt.Errorf("list topics: %w", err)
		}
		for _, t := range topics {
			have := details[t].Partitions.Numbers()
			ps := scope[t]
			if len(ps) == 0 {
				ps = have
			}
			for _, p := range ps {
				if !slices.Contains(have, p) {
					return nil, fmt.Errorf("topic %q has no partition %d (it has %d partitions)", t, p, len(have))
				}
				out = append(out, topicPartition{t, p})
			}
		}
	}
	slices.SortFunc(out, func(a, b topicPartition) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out, nil
}

// seekTargets works out each partition's new offset: the source group's,
// or to resolved against the log's start, end and, for times, the offset
// listed for the time.
func (gc *groupClient) seekTargets(ctx context.Context, parts []topicPartition, to StartOffset, source map[string]map[int32]int64, now time.Time) (map[topicPartition]int64, error) {
	out := make(map[topicPartition]int64, len(parts))
	if source != nil {
		for _, tp := range parts {
			o, ok := source[tp.Topic][tp.Partition]
			if !ok {
				return nil, fmt.Errorf("the group to copy has no offset for %s partition %d; leave it out of --topic", tp.Topic, tp.Partition)
			}
			out[tp] = o
		}
		return out, nil
	}
	var topics []string
	for _, tp := range parts {
		if !slices.Contains(topics, tp.Topic) {
			topics = append(topics, tp.Topic)
		}
	}
	list := func(what string, l func(context.Context, ...string) (kadm.ListedOffsets, error)) (kadm.ListedOffsets, error) {
		listed, err := l(ctx, topics...)
		if err != nil {
			return nil, fmt.Errorf("list %s offsets: %w", what, err)
		}
		return listed, nil
	}
	starts, err := list("start", gc.adm.ListStartOffsets)
	if err != nil {
		return nil, err
	}
	ends, err := list("end", gc.adm.ListEndOffsets)
	if err != nil {
		return nil, err
	}
	var atTime kadm.ListedOffsets
	if at, ok := to.instant(now); ok {
		atTime, err = list("time", func(ctx context.Context, ts ...string) (kadm.ListedOffsets, error) {
			return gc.adm.ListOffsetsAfterMilli(ctx, at.UnixMilli(), ts...)
		})
		if err != nil {
			return nil, err
		}
	}
	for _, tp := range parts {
		start, okStart := starts.Lookup(tp.Topic, tp.Partition)
		end, okEnd := ends.Lookup(tp.Topic, tp.Partition)
		if !okStart || !okEnd || start.Err != nil || end.Err != nil {
			err := cmp.Or(start.Err, end.Err)
			if err == nil {
				return nil, fmt.Errorf("offsets of %s partition %d were not listed", tp.Topic, tp.Partition)
			}
			return nil, fmt.Errorf("offsets of %s partition %d: %s", tp.Topic, tp.Partition, kafkaError(err, ""))
		}
		at := int64(-1)
		if o, ok := atTime.Lookup(tp.Topic, tp.Partition); ok && o.Err == nil {
			at = o.Offset
		}
		out[tp] = to.resolve(start.Offset, end.Offset, at)
	}
	return out, nil
}

// commitPlan commits the plan's new offsets, noting failures in it.
func (gc *groupClient) commitPlan(ctx context.Context, plan *SeekPlan) (failed []string, err error) {
	offsets := make(kadm.Offsets)
	for _, sp := range plan.Partitions {
		offsets.Add(kadm.Offset{Topic: sp.Topic, Partition: sp.Partition, At: sp.NewOffset, LeaderEpoch: -1})
	}
	resp, err := gc.adm.CommitOffsets(ctx, plan.Group, offsets)
	if err != nil {
		return nil, fmt.Errorf("commit offsets of group %q: %w", plan.Group, err)
	}
	for i, sp := range plan.Partitions {
		r, ok := resp.Lookup(sp.Topic, sp.Partition)
		switch {
		case !ok:
			plan.Partitions[i].Error = "no answer to the commit"
		case r.Err != nil:
			plan.Partitions[i].Error = kafkaError(r.Err, "")
		default:
			continue
		}
		failed = append(failed, fmt.Sprintf("commit %s partition %d: %s", sp.Topic, sp.Partition, plan.Partitions[i].Error))
	}
	return failed, nil
}

func (plan SeekPlan) text() Text {
	t := NewTable("topic", "partition", "previous", "new")
	withErr := slices.ContainsFunc(plan.Partitions, func(sp SeekPartition) bool { return sp.Error != "" })
	if withErr {
		t.Header = append(t.Header, "error")
	}
	for _, sp := range plan.Partitions {
		cells := []any{sp.Topic, sp.Partition, optOffset(sp.PreviousOffset), sp.NewOffset}
		if withErr {
			cells = append(cells, sp.Error)
		}
		t.Add(cells...)
	}
	what := fmt.Sprintf("%d offsets", len(plan.Partitions))
	if len(plan.Partitions) == 1 {
		what = "1 offset"
	}
	var note string
	switch {
	case plan.DryRun:
		note = fmt.Sprintf("Dry run: would move %s of group %q; nothing was changed.", what, plan.Group)
	case withErr:
		note = fmt.Sprintf("Some offsets of group %q were not moved.", plan.Group)
	default:
		note = fmt.Sprintf("Moved %s of group %q.", what, plan.Group)
	}
	return Text{t, Lines{note}}
}
