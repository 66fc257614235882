package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// GroupResult is the outcome of deleting one group.
type GroupResult struct {
	Group  string `json:"group" yaml:"group"`
	Status string `json:"status" yaml:"status"` // deleted or failed
	Error  string `json:"error,omitempty" yaml:"error,omitempty"`
}

// GroupDelete deletes groups with their committed offsets. As in Kafka, a
// group with members cannot be deleted. It prints one line per group and
// fails when any group was not deleted.
func GroupDelete(ctx context.Context, conn *Conn, p Printer, groups []string) error {
	if len(groups) == 0 {
		return Usagef("no group given")
	}
	gc, err := dialGroups(ctx, conn)
	if err != nil {
		return err
	}
	defer gc.close()
	resp, err := gc.adm.DeleteGroups(ctx, groups...)
	if err != nil && !isShardErrors(err) {
		return fmt.Errorf("delete groups: %w", err)
	}
	var listed []GroupSummary // for suggestions, listed once if needed
	var results []GroupResult
	var failed []string
	for _, g := range groups {
		r, ok := resp[g]
		res := GroupResult{Group: g, Status: "deleted"}
		switch {
		case !ok:
			res.Error = "no answer from the coordinator"
			if err != nil {
				res.Error = err.Error()
			}
		case errors.Is(r.Err, kerr.GroupIDNotFound):
			if listed == nil {
				if listed, err = gc.list(ctx); err != nil {
					return err
				}
			}
			_, notFound := findGroup(g, listed)
			res.Error = notFound.Error()
		case errors.Is(r.Err, kerr.NonEmptyGroup):
			res.Error = fmt.Sprintf("group %q has active members; stop its consumers first", g)
		case r.Err != nil:
			res.Error = fmt.Sprintf("group %q: %s", g, kafkaError(r.Err, ""))
		}
		if res.Error != "" {
			res.Status = "failed"
			failed = append(failed, res.Error)
		}
		results = append(results, res)
	}
	if err := p.Print(results, func() Text {
		t := NewTable("group", "status")
		if len(failed) > 0 {
			t.Header = append(t.Header, "error")
		}
		for _, r := range results {
			if len(failed) > 0 {
				t.Add(r.Group, r.Status, r.Error)
			} else {
				t.Add(r.Group, r.Status)
			}
		}
		return Text{t}
	}); err != nil {
		return err
	}
	return failure(failed)
}

// OffsetDeleteResult is the outcome of deleting one partition's offset.
type OffsetDeleteResult struct {
	Topic     string `json:"topic" yaml:"topic"`
	Partition int32  `json:"partition" yaml:"partition"`
	Status    string `json:"status" yaml:"status"` // deleted or failed
	Error     string `json:"error,omitempty" yaml:"error,omitempty"`
}

// GroupOffsetDeleteOptions are the arguments of `samsa group
// offset-delete`.
type GroupOffsetDeleteOptions struct {
	Group string
	// Topics are TOPIC (every partition the group has an offset for) or
	// TOPIC:P,P….
	Topics []string
}

// GroupOffsetDelete deletes some of a group's committed offsets, as
// Kafka's OffsetDelete does: not for topics the group's members are
// consuming. It prints one line per partition and fails when any offset
// was not deleted.
func GroupOffsetDelete(ctx context.Context, conn *Conn, p Printer, o GroupOffsetDeleteOptions) error {
	if len(o.Topics) == 0 {
		return Usagef("name the offsets to delete with --topic TOPIC or --topic TOPIC:PARTITION,…")
	}
	scope, err := ParseTopicPartitions(o.Topics)
	if err != nil {
		return err
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
	if _, err := findGroup(o.Group, listed); err != nil {
		return err
	}
	committed, err := gc.committed(ctx, o.Group)
	if err != nil {
		return err
	}
	set := make(kadm.TopicsSet)
	for _, t := range slices.Sorted(maps.Keys(scope)) {
		ps := scope[t]
		if len(ps) == 0 {
			ps = slices.Sorted(maps.Keys(committed[t]))
		}
		if len(ps) == 0 {
			return fmt.Errorf("group %q has no offsets for topic %q", o.Group, t)
		}
		set.Add(t, ps...)
	}
	resp, err := gc.adm.DeleteOffsets(ctx, o.Group, set)
	if err != nil {
		return fmt.Errorf("delete offsets of group %q: %s", o.Group, kafkaError(err, ""))
	}
	var results []OffsetDeleteResult
	var failed []string
	for _, tl := range set.Sorted() {
		for _, part := range tl.Partitions {
			res := OffsetDeleteResult{Topic: tl.Topic, Partition: part, Status: "deleted"}
			perr, ok := resp.Lookup(tl.Topic, part)
			switch {
			case !ok:
				res.Error = "no answer from the coordinator"
			case errors.Is(perr, kerr.GroupSubscribedToTopic):
				res.Error = "the group's members consume this topic; stop them first"
			case perr != nil:
				res.Error = kafkaError(perr, "")
			}
			if res.Error != "" {
				res.Status = "failed"
				failed = append(failed, fmt.Sprintf("%s partition %d: %s", tl.Topic, part, res.Error))
			}
			results = append(results, res)
		}
	}
	if err := p.Print(results, func() Text {
		t := NewTable("topic", "partition", "status")
		if len(failed) > 0 {
			t.Header = append(t.Header, "error")
		}
		for _, r := range results {
			if len(failed) > 0 {
				t.Add(r.Topic, r.Partition, r.Status, r.Error)
			} else {
				t.Add(r.Topic, r.Partition, r.Status)
			}
		}
		return Text{t}
	}); err != nil {
		return err
	}
	return failure(failed)
}
