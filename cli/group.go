package cli

// samsa group list and describe; seek is in group_seek.go, delete and
// offset-delete in group_delete.go.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Group types, as ListGroups (v5+, KIP-848) names them.
const (
	GroupTypeClassic  = "classic"  // JoinGroup/SyncGroup members
	GroupTypeConsumer = "consumer" // ConsumerGroupHeartbeat members (KIP-848)
)

// GroupSummary is one line of `samsa group list`.
type GroupSummary struct {
	Group        string `json:"group" yaml:"group"`
	Type         string `json:"type" yaml:"type"` // classic or consumer (KIP-848)
	State        string `json:"state" yaml:"state"`
	ProtocolType string `json:"protocol_type" yaml:"protocol_type"`
	Coordinator  int32  `json:"coordinator" yaml:"coordinator"`
}

// GroupListOptions are the arguments of `samsa group list`.
type GroupListOptions struct {
	// States and Types keep only the groups in one of these states
	// (Stable, Empty, …) or of one of these types (classic, consumer);
	// case does not matter. Empty keeps all.
	States []string
	Types  []string
}

// GroupList prints the groups, sorted by name.
func GroupList(ctx context.Context, conn *Conn, p Printer, o GroupListOptions) error {
	gc, err := dialGroups(ctx, conn)
	if err != nil {
		return err
	}
	defer gc.close()
	groups, err := gc.list(ctx)
	if err != nil {
		return err
	}
	keep := func(list []string, v string) bool {
		return len(list) == 0 || slices.ContainsFunc(list, func(s string) bool { return strings.EqualFold(strings.TrimSpace(s), v) })
	}
	out := []GroupSummary{}
	for _, g := range groups {
		if keep(o.States, g.State) && keep(o.Types, g.Type) {
			out = append(out, g)
		}
	}
	return p.Print(out, func() Text {
		t := NewTable("group", "type", "state", "protocol-type", "coordinator")
		for _, g := range out {
			t.Add(g.Group, g.Type, g.State, g.ProtocolType, g.Coordinator)
		}
		return Text{t}
	})
}

// GroupDescription is what `samsa group describe` shows of one group.
type GroupDescription struct {
	Group        string `json:"group" yaml:"group"`
	Type         string `json:"type" yaml:"type"`
	State        string `json:"state" yaml:"state"`
	ProtocolType string `json:"protocol_type" yaml:"protocol_type"`
	// Protocol is the partition assignor: chosen by the members of a
	// classic group, by the broker for a consumer group.
	Protocol    string           `json:"protocol" yaml:"protocol"`
	Coordinator int32            `json:"coordinator" yaml:"coordinator"`
	Members     []GroupMember    `json:"members" yaml:"members"`
	Partitions  []GroupPartition `json:"partitions" yaml:"partitions"`
	// TotalLag sums the lag of the partitions that have one.
	TotalLag int64 `json:"total_lag" yaml:"total_lag"`
}

// GroupMember is one member of a group.
type GroupMember struct {
	MemberID   string            `json:"member_id" yaml:"member_id"`
	InstanceID string            `json:"instance_id,omitempty" yaml:"instance_id,omitempty"`
	ClientID   string            `json:"client_id" yaml:"client_id"`
	Host       string            `json:"host" yaml:"host"`
	Assigned   []TopicPartitions `json:"assigned" yaml:"assigned"`
}

// TopicPartitions are some partitions of one topic.
type TopicPartitions struct {
	Topic      string  `json:"topic" yaml:"topic"`
	Partitions []int32 `json:"partitions" yaml:"partitions"`
}

// GroupPartition is a partition the group has an offset for or is
// assigned: where the group is, where the log ends, and who reads it.
type GroupPartition struct {
	Topic     string `json:"topic" yaml:"topic"`
	Partition int32  `json:"partition" yaml:"partition"`
	// CommittedOffset is null when the group has committed nothing here;
	// LogEndOffset is null when it could not be listed (see Error); Lag
	// is null when either is.
	CommittedOffset *int64 `json:"committed_offset" yaml:"committed_offset"`
	LogEndOffset    *int64 `json:"log_end_offset" yaml:"log_end_offset"`
	Lag             *int64 `json:"lag" yaml:"lag"`
	// The member the partition is assigned to; empty when none is.
	MemberID string `json:"member_id,omitempty" yaml:"member_id,omitempty"`
	ClientID string `json:"client_id,omitempty" yaml:"client_id,omitempty"`
	Host     string `json:"host,omitempty" yaml:"host,omitempty"`
	Error    string `json:"error,omitempty" yaml:"error,omitempty"`
}

// GroupDescribeOptions are the arguments of `samsa group describe`.
type GroupDescribeOptions struct {
	Groups []string
}

// GroupDescribe prints, for each group, its state, protocol and members,
// and per partition the committed offset, log end offset, lag and the
// member that reads it. One group prints as a JSON object, several as an
// array.
func GroupDescribe(ctx context.Context, conn *Conn, p Printer, o GroupDescribeOptions) error {
	if len(o.Groups) == 0 {
		return Usagef("no group given")
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
	var descs []GroupDescription
	for _, g := range o.Groups {
		d, err := gc.describe(ctx, g, listed)
		if err != nil {
			return err
		}
		descs = append(descs, d)
	}
	if len(descs) == 1 {
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

func (d GroupDescription) text() Text {
	var f Fields
	f.Add("group", d.Group)
	f.Add("type", d.Type)
	f.Add("state", d.State)
	f.Add("protocol", strings.Trim(d.ProtocolType+"/"+d.Protocol, "/"))
	f.Add("coordinator", d.Coordinator)
	f.Add("members", len(d.Members))
	f.Add("total lag", d.TotalLag)
	parts := NewTable("topic", "partition", "committed", "log-end", "lag", "client-id", "host")
	withErr := slices.ContainsFunc(d.Partitions, func(p GroupPartition) bool { return p.Error != "" })
	if withErr {
		parts.Header = append(parts.Header, "error")
	}
	for _, p := range d.Partitions {
		cells := []any{p.Topic, p.Partition, optOffset(p.CommittedOffset), optOffset(p.LogEndOffset), optOffset(p.Lag), p.ClientID, p.Host}
		if withErr {
			cells = append(cells, p.Error)
		}
		parts.Add(cells...)
	}
	out := Text{&f}
	if len(d.Partitions) > 0 {
		out = append(out, parts)
	}
	if len(d.Members) > 0 {
		members := NewTable("member-id", "instance-id", "client-id", "host", "assigned")
		for _, m := range d.Members {
			members.Add(m.MemberID, m.InstanceID, m.ClientID, m.Host, assignedCell(m.Assigned))
		}
		out = append(out, members)
	}
	return out
}

func optOffset(o *int64) any {
	if o == nil {
		return nil
	}
	return *o
}

// assignedCell is "orders:0,1 users:2".
func assignedCell(tps []TopicPartitions) string {
	var parts []string
	for _, tp := range tps {
		parts = append(parts, tp.Topic+":"+cell(tp.Partitions))
	}
	return strings.Join(parts, " ")
}

// groupClient is a connection for group commands: the kgo client for raw
// requests and its kadm wrapper.
type groupClient struct {
	cl  *kgo.Client
	adm *kadm.Client
}

func dialGroups(ctx context.Context, conn *Conn) (*groupClient, error) {
	cl, err := conn.Client(ctx)
	if err != nil {
		return nil, err
	}
	return &groupClient{cl: cl, adm: kadm.NewClient(cl)}, nil
}

func (gc *groupClient) close() { gc.cl.Close() }

// list lists every group of the cluster, sorted by name, with its type.
func (gc *groupClient) list(ctx context.Context) ([]GroupSummary, error) {
	req := kmsg.NewPtrListGroupsRequest()
	var out []GroupSummary
	for _, shard := range gc.cl.RequestSharded(ctx, req) {
		if shard.Err != nil {
			return nil, fmt.Errorf("list groups on broker %d: %w", shard.Meta.NodeID, shard.Err)
		}
		resp := shard.Resp.(*kmsg.ListGroupsResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return nil, fmt.Errorf("list groups on broker %d: %s", shard.Meta.NodeID, kafkaError(err, ""))
		}
		for _, g := range resp.Groups {
			typ := g.GroupType
			if typ == "" { // before ListGroups v5 every group is classic
				typ = GroupTypeClassic
			}
			out = append(out, GroupSummary{
				Group:        g.Group,
				Type:         typ,
				State:        g.GroupState,
				ProtocolType: g.ProtocolType,
				Coordinator:  shard.Meta.NodeID,
			})
		}
	}
	slices.SortFunc(out, func(a, b GroupSummary) int { return strings.Compare(a.Group, b.Group) })
	return out, nil
}

// find returns the listed group named group, or an error naming close
// names when there is none.
func findGroup(group string, listed []GroupSummary) (GroupSummary, error) {
	for _, g := range listed {
		if g.Group == group {
			return g, nil
		}
	}
	names := make([]string, len(listed))
	for i, g := range listed {
		names[i] = g.Group
	}
	return GroupSummary{}, UnknownGroupError(group, names)
}

// describe gathers everything `group describe` shows of one group.
func (gc *groupClient) describe(ctx context.Context, group string, listed []GroupSummary) (GroupDescription, error) {
	sum, err := findGroup(group, listed)
	if err != nil {
		return GroupDescription{}, err
	}
	d, err := gc.describeMembers(ctx, sum)
	if err != nil {
		return GroupDescription{}, err
	}
	committed, err := gc.committed(ctx, group)
	if err != nil {
		return GroupDescription{}, err
	}

	// Rows: every committed or assigned partition.
	type tp struct {
		topic     string
		partition int32
	}
	rows := make(map[tp]*GroupPartition)
	row := func(t string, p int32) *GroupPartition {
		k := tp{t, p}
		if rows[k] == nil {
			rows[k] = &GroupPartition{Topic: t, Partition: p}
		}
		return rows[k]
	}
	for _, m := range d.Members {
		for _, a := range m.Assigned {
			for _, p := range a.Partitions {
				r := row(a.Topic, p)
				r.MemberID, r.ClientID, r.Host = m.MemberID, m.ClientID, m.Host
			}
		}
	}
	for t, ps := range committed {
		for p, o := range ps {
			row(t, p).CommittedOffset = &o
		}
	}
	var topics []string
	for k := range rows {
		if !slices.Contains(topics, k.topic) {
			topics = append(topics, k.topic)
		}
	}
	if len(topics) > 0 {
		ends, err := gc.adm.ListEndOffsets(ctx, topics...)
		if err != nil && !isShardErrors(err) {
			return GroupDescription{}, fmt.Errorf("list end offsets: %w", err)
		}
		for k, r := range rows {
			end, ok := ends.Lookup(k.topic, k.partition)
			switch {
			case ok && end.Err == nil:
				r.LogEndOffset = &end.Offset
			case ok:
				r.Error = kafkaError(end.Err, "")
			default:
				if missing, ok := ends.Lookup(k.topic, -1); ok && missing.Err != nil {
					r.Error = "topic does not exist"
				} else {
					r.Error = "end offset not listed"
				}
			}
			if r.CommittedOffset != nil && r.LogEndOffset != nil {
				lag := max(*r.LogEndOffset-*r.CommittedOffset, 0)
				r.Lag = &lag
				d.TotalLag += lag
			}
		}
	}
	d.Partitions = make([]GroupPartition, 0, len(rows))
	for _, r := range rows {
		d.Partitions = append(d.Partitions, *r)
	}
	slices.SortFunc(d.Partitions, func(a, b GroupPartition) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return d, nil
}

// describeMembers describes a group's state, protocol and members, with
// the request its type calls for.
func (gc *groupClient) describeMembers(ctx context.Context, sum GroupSummary) (GroupDescription, error) {
	d := GroupDescription{
		Group:        sum.Group,
		Type:         sum.Type,
		State:        sum.State,
		ProtocolType: sum.ProtocolType,
		Coordinator:  sum.Coordinator,
		Members:      []GroupMember{},
	}
	if sum.Type == GroupTypeConsumer {
		described, err := gc.adm.DescribeConsumerGroups(ctx, sum.Group)
		if err != nil && !isShardErrors(err) {
			return d, fmt.Errorf("describe group %q: %w", sum.Group, err)
		}
		g, ok := described[sum.Group]
		if !ok {
			return d, fmt.Errorf("describe group %q: %w", sum.Group, err)
		}
		if g.Err != nil {
			return d, fmt.Errorf("describe group %q: %s", sum.Group, kafkaError(g.Err, ""))
		}
		d.State, d.Protocol, d.Coordinator = g.State, g.AssignorName, g.Coordinator.NodeID
		for _, m := range g.Members {
			d.Members = append(d.Members, GroupMember{
				MemberID:   m.MemberID,
				InstanceID: deref(m.InstanceID),
				ClientID:   m.ClientID,
				Host:       m.ClientHost,
				Assigned:   sortedTopicPartitions(m.Assignment),
			})
		}
	} else {
		described, err := gc.adm.DescribeGroups(ctx, sum.Group)
		if err != nil && !isShardErrors(err) {
			return d, fmt.Errorf("describe group %q: %w", sum.Group, err)
		}
		g, ok := described[sum.Group]
		if !ok {
			return d, fmt.Errorf("describe group %q: %w", sum.Group, err)
		}
		if g.Err != nil {
			return d, fmt.Errorf("describe group %q: %s", sum.Group, kafkaError(g.Err, g.ErrMessage))
		}
		d.State, d.ProtocolType, d.Protocol, d.Coordinator = g.State, g.ProtocolType, g.Protocol, g.Coordinator.NodeID
		for _, m := range g.Members {
			gm := GroupMember{
				MemberID:   m.MemberID,
				InstanceID: deref(m.InstanceID),
				ClientID:   m.ClientID,
				Host:       m.ClientHost,
				Assigned:   []TopicPartitions{},
			}
			if a, ok := m.Assigned.AsConsumer(); ok {
				set := make(kadm.TopicsSet)
				for _, t := range a.Topics {
					set.Add(t.Topic, t.Partitions...)
				}
				gm.Assigned = sortedTopicPartitions(set)
			}
			d.Members = append(d.Members, gm)
		}
	}
	slices.SortFunc(d.Members, func(a, b GroupMember) int {
		return cmp.Or(strings.Compare(a.ClientID, b.ClientID), strings.Compare(a.InstanceID, b.InstanceID), strings.Compare(a.MemberID, b.MemberID))
	})
	return d, nil
}

// committed fetches a group's committed offsets by topic and partition.
func (gc *groupClient) committed(ctx context.Context, group string) (map[string]map[int32]int64, error) {
	fetched, err := gc.adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %q: %w", group, err)
	}
	out := make(map[string]map[int32]int64)
	var firstErr error
	fetched.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil {
			firstErr = cmp.Or(firstErr, o.Err)
			return
		}
		if o.At < 0 {
			return
		}
		if out[o.Topic] == nil {
			out[o.Topic] = make(map[int32]int64)
		}
		out[o.Topic][o.Partition] = o.At
	})
	if firstErr != nil {
		return nil, fmt.Errorf("fetch offsets of group %q: %s", group, kafkaError(firstErr, ""))
	}
	return out, nil
}

func sortedTopicPartitions(s kadm.TopicsSet) []TopicPartitions {
	out := []TopicPartitions{}
	for _, tl := range s.Sorted() {
		out = append(out, TopicPartitions{Topic: tl.Topic, Partitions: tl.Partitions})
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func isShardErrors(err error) bool {
	var se *kadm.ShardErrors
	return errors.As(err, &se)
}

// ParseTopicPartitions parses --topic values: "orders" (every partition
// that matters: an empty list) or "orders:0,1,2". A topic named twice
// merges; named once without partitions, it means all of them.
func ParseTopicPartitions(specs []string) (map[string][]int32, error) {
	out := make(map[string][]int32)
	all := make(map[string]bool)
	for _, spec := range specs {
		topic, list, hasList := strings.Cut(spec, ":")
		topic = strings.TrimSpace(topic)
		if topic == "" {
			return nil, Usagef("bad --topic %q: want TOPIC or TOPIC:PARTITION,PARTITION…", spec)
		}
		ps := out[topic]
		if ps == nil {
			ps = []int32{}
		}
		if hasList {
			for _, s := range strings.Split(list, ",") {
				n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
				if err != nil || n < 0 {
					return nil, Usagef("bad --topic %q: %q is not a partition number", spec, s)
				}
				if !slices.Contains(ps, int32(n)) {
					ps = append(ps, int32(n))
				}
			}
			if len(ps) == 0 {
				return nil, Usagef("bad --topic %q: no partitions after ':'", spec)
			}
		} else {
			all[topic] = true
		}
		slices.Sort(ps)
		out[topic] = ps
	}
	for t := range all {
		out[t] = []int32{}
	}
	return out, nil
}
