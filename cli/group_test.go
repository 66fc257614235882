package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/samsatest"
)

// Golden files: checkGolden and -update are in e2e_test.go.

// groupFixture is a broker with topics, records and groups in known
// states:
//
//   - orders: 3 partitions holding 5, 3 and 0 records; the records of
//     partition 0 are a minute apart from t0.
//   - users: 1 partition holding 4 records.
//   - billing: an empty group with offsets orders/0=2, orders/1=3, users/0=1.
//   - live: a classic group with one franz-go member ("live-client")
//     consuming users, which has committed offset 4.
type groupFixture struct {
	b    *samsatest.Broker
	conn *Conn
	adm  *kadm.Client
	t0   time.Time
	live *kgo.Client
}

func newGroupFixture(t *testing.T) *groupFixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := &groupFixture{b: samsatest.Start(t), t0: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
	f.conn = &Conn{Brokers: []string{f.b.Addr()}}
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	f.adm = kadm.NewClient(cl)
	if _, err := f.adm.CreateTopic(ctx, 3, -1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.adm.CreateTopic(ctx, 1, -1, nil, "users"); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range 5 {
		recs = append(recs, &kgo.Record{Topic: "orders", Partition: 0, Value: []byte("o"), Timestamp: f.t0.Add(time.Duration(i) * time.Minute)})
	}
	for range 3 {
		recs = append(recs, &kgo.Record{Topic: "orders", Partition: 1, Value: []byte("o"), Timestamp: f.t0})
	}
	for range 4 {
		recs = append(recs, &kgo.Record{Topic: "users", Partition: 0, Value: []byte("u"), Timestamp: f.t0})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	f.commit(t, "billing", map[string]map[int32]int64{"orders": {0: 2, 1: 3}, "users": {0: 1}})

	// A live member that reads users and commits what it read.
	f.live, err = kgo.NewClient(kgo.SeedBrokers(f.b.Addr()), kgo.ClientID("live-client"),
		kgo.ConsumerGroup("live"), kgo.ConsumeTopics("users"), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.live.Close)
	for read := 0; read < 4; {
		fs := f.live.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("live member read nothing")
		}
		read += fs.NumRecords()
	}
	if err := f.live.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	f.waitGroup(t, "live", func(d GroupDescription) bool { return d.State == "Stable" && len(d.Members) == 1 })
	return f
}

// commit commits offsets for group as an admin, outside any membership.
func (f *groupFixture) commit(t *testing.T, group string, offsets map[string]map[int32]int64) {
	t.Helper()
	os := make(kadm.Offsets)
	for topic, ps := range offsets {
		for p, o := range ps {
			os.Add(kadm.Offset{Topic: topic, Partition: p, At: o, LeaderEpoch: -1})
		}
	}
	if err := f.adm.CommitAllOffsets(context.Background(), group, os); err != nil {
		t.Fatal(err)
	}
}

// describe runs `group describe` as JSON.
func (f *groupFixture) describe(t *testing.T, group string) GroupDescription {
	t.Helper()
	var buf bytes.Buffer
	if err := GroupDescribe(context.Background(), f.conn, Printer{Out: &buf, Format: FormatJSON}, GroupDescribeOptions{Groups: []string{group}}); err != nil {
		t.Fatalf("describe %s: %v", group, err)
	}
	var d GroupDescription
	if err := json.Unmarshal(buf.Bytes(), &d); err != nil {
		t.Fatalf("describe %s --format json does not parse: %v\n%s", group, err, buf.String())
	}
	return d
}

// waitGroup waits until the description of group satisfies ok.
func (f *groupFixture) waitGroup(t *testing.T, group string, ok func(GroupDescription) bool) GroupDescription {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d := f.describe(t, group)
		if ok(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s never got there: %+v", group, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// committed is a group's committed offsets as the broker has them.
func (f *groupFixture) committed(t *testing.T, group string) map[string]map[int32]int64 {
	t.Helper()
	fetched, err := f.adm.FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[int32]int64{}
	fetched.Each(func(o kadm.OffsetResponse) {
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.At
	})
	return out
}

// run runs a group command with a printer in format and returns its
// output and error.
func runGroupCmd(format Format, fn func(Printer) error) (string, error) {
	var buf bytes.Buffer
	err := fn(Printer{Out: &buf, Format: format})
	return buf.String(), err
}

// normalizeMembers replaces member ids, which are random, by <member-N>
// padded with dots to the id's length, so that columns stay aligned.
func normalizeMembers(s string, ds ...GroupDescription) string {
	n := 0
	for _, d := range ds {
		for _, m := range d.Members {
			n++
			mask := fmt.Sprintf("<member-%d>", n)
			mask += strings.Repeat(".", max(len(m.MemberID)-len(mask), 0))
			s = strings.ReplaceAll(s, m.MemberID, mask)
		}
	}
	return s
}

func TestGroupListAndDescribe(t *testing.T) {
	f := newGroupFixture(t)
	ctx := context.Background()

	out, err := runGroupCmd(FormatText, func(p Printer) error { return GroupList(ctx, f.conn, p, GroupListOptions{}) })
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "group_list.txt", out)

	out, err = runGroupCmd(FormatJSON, func(p Printer) error {
		return GroupList(ctx, f.conn, p, GroupListOptions{States: []string{"stable"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	var listed []GroupSummary
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("list --format json: %v\n%s", err, out)
	}
	if len(listed) != 1 || listed[0].Group != "live" || listed[0].Type != GroupTypeClassic || listed[0].ProtocolType != "consumer" {
		t.Errorf("list --state stable = %+v, want only live, a classic consumer group", listed)
	}

	out, err = runGroupCmd(FormatText, func(p Printer) error {
		return GroupDescribe(ctx, f.conn, p, GroupDescribeOptions{Groups: []string{"billing"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "group_describe_billing.txt", out)

	live := f.describe(t, "live")
	out, err = runGroupCmd(FormatText, func(p Printer) error {
		return GroupDescribe(ctx, f.conn, p, GroupDescribeOptions{Groups: []string{"live"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "group_describe_live.txt", normalizeMembers(out, live))

	// The JSON carries the same data for scripts.
	if live.Group != "live" || live.Type != "classic" || live.State != "Stable" || live.ProtocolType != "consumer" || live.Protocol == "" {
		t.Errorf("live: %+v", live)
	}
	if len(live.Members) != 1 || live.Members[0].ClientID != "live-client" || live.Members[0].Host == "" ||
		len(live.Members[0].Assigned) != 1 || live.Members[0].Assigned[0].Topic != "users" {
		t.Errorf("live members: %+v", live.Members)
	}
	if len(live.Partitions) != 1 {
		t.Fatalf("live partitions: %+v", live.Partitions)
	}
	p := live.Partitions[0]
	if p.Topic != "users" || p.Partition != 0 || p.CommittedOffset == nil || *p.CommittedOffset != 4 ||
		p.LogEndOffset == nil || *p.LogEndOffset != 4 || p.Lag == nil || *p.Lag != 0 ||
		p.ClientID != "live-client" || p.MemberID != live.Members[0].MemberID || p.Host != live.Members[0].Host {
		t.Errorf("live users/0: %+v", p)
	}

	billing := f.describe(t, "billing")
	if billing.State != "Empty" || len(billing.Members) != 0 || billing.TotalLag != 3+0+0+3 {
		t.Errorf("billing: state %s, %d members, total lag %d; want Empty, 0, 6", billing.State, len(billing.Members), billing.TotalLag)
	}

	// Several groups: a JSON array, one text section after another.
	out, err = runGroupCmd(FormatJSON, func(p Printer) error {
		return GroupDescribe(ctx, f.conn, p, GroupDescribeOptions{Groups: []string{"billing", "live"}})
	})
	var both []GroupDescription
	if err != nil || json.Unmarshal([]byte(out), &both) != nil || len(both) != 2 || both[0].Group != "billing" || both[1].Group != "live" {
		t.Errorf("describe billing live --format json: %v\n%s", err, out)
	}
	out, err = runGroupCmd(FormatYAML, func(p Printer) error {
		return GroupDescribe(ctx, f.conn, p, GroupDescribeOptions{Groups: []string{"billing"}})
	})
	if err != nil || !strings.Contains(out, "group: billing\n") || !strings.Contains(out, "committed_offset: 2\n") {
		t.Errorf("describe billing --format yaml: %v\n%s", err, out)
	}
}

func TestGroupDescribeConsumerProtocolGroup(t *testing.T) {
	f := newGroupFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.b.Addr()), kgo.ClientID("next-client"),
		kgo.ConsumerGroup("next"), kgo.ConsumeTopics("orders"),
		kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for read := 0; read < 8; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("KIP-848 member read nothing")
		}
		read += fs.NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	d := f.waitGroup(t, "next", func(d GroupDescription) bool {
		return len(d.Members) == 1 && len(d.Members[0].Assigned) == 1 && len(d.Members[0].Assigned[0].Partitions) == 3
	})
	if d.Type != GroupTypeConsumer || d.Protocol == "" || d.Members[0].ClientID != "next-client" {
		t.Errorf("next: type %q, protocol %q, members %+v", d.Type, d.Protocol, d.Members)
	}
	want := map[int32]int64{0: 5, 1: 3}
	for _, p := range d.Partitions {
		if p.Topic != "orders" || p.ClientID != "next-client" {
			t.Errorf("next partition %+v", p)
		}
		if c, ok := want[p.Partition]; ok && (p.CommittedOffset == nil || *p.CommittedOffset != c || *p.Lag != 0) {
			t.Errorf("next orders/%d: committed %v lag %v, want %d and 0", p.Partition, optOffset(p.CommittedOffset), optOffset(p.Lag), c)
		}
	}

	// Once its member has left, the group can be moved.
	_, err = runGroupCmd(FormatText, func(p Printer) error {
		return GroupSeek(ctx, f.conn, p, GroupSeekOptions{Group: "next", To: "start"})
	})
	if err == nil || !strings.Contains(err.Error(), `group "next" is not empty`) {
		t.Errorf("seek of a KIP-848 group with a member: %v", err)
	}
	cl.Close()
	f.waitGroup(t, "next", func(d GroupDescription) bool { return len(d.Members) == 0 && d.State == "Empty" })
	if _, err := runGroupCmd(FormatText, func(p Printer) error {
		return GroupSeek(ctx, f.conn, p, GroupSeekOptions{Group: "next", To: "start"})
	}); err != nil {
		t.Fatalf("seek of an empty KIP-848 group: %v", err)
	}
	if got, want := f.committed(t, "next"), (map[string]map[int32]int64{"orders": {0: 0, 1: 0}}); !equalOffsets(got, want) {
		t.Errorf("next after --to start: %v, want %v", got, want)
	}
}

func TestGroupSeek(t *testing.T) {
	f := newGroupFixture(t)
	ctx := context.Background()
	seek := func(format Format, o GroupSeekOptions) (string, error) {
		return runGroupCmd(format, func(p Printer) error { return GroupSeek(ctx, f.conn, p, o) })
	}
	before := f.committed(t, "billing")

	out, err := seek(FormatText, GroupSeekOptions{Group: "billing", To: "start", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "group_seek_dry_run.txt", out)
	if after := f.committed(t, "billing"); !equalOffsets(after, before) {
		t.Errorf("a dry run changed offsets: %v → %v", before, after)
	}

	// To the end of one topic: partition 2 had no offset.
	out, err = seek(FormatJSON, GroupSeekOptions{Group: "billing", To: "end", Topics: []string{"orders"}})
	if err != nil {
		t.Fatal(err)
	}
	var plan SeekPlan
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("seek --format json: %v\n%s", err, out)
	}
	if plan.DryRun || len(plan.Partitions) != 3 || plan.Partitions[2].PreviousOffset != nil || plan.Partitions[0].PreviousOffset == nil || *plan.Partitions[0].PreviousOffset != 2 {
		t.Errorf("seek plan: %s", out)
	}
	want := map[string]map[int32]int64{"orders": {0: 5, 1: 3, 2: 0}, "users": {0: 1}}
	if got := f.committed(t, "billing"); !equalOffsets(got, want) {
		t.Errorf("after --to end --topic orders: %v, want %v", got, want)
	}

	for _, tc := range []struct {
		to    string
		topic string
		want  int64
	}{
		{"1", "orders:0", 1},
		{"99", "orders:0", 5}, // clamped to the end
		{"start+2", "orders:0", 2},
		{"end-1", "orders:0", 4},
		{"2024-05-01T12:02:00Z", "orders:0", 2},
		{"@" + strconv.FormatInt(f.t0.Add(150*time.Second).UnixMilli(), 10), "orders:0", 3}, // the first record at or after
		{"2030-01-01T00:00:00Z", "orders:0", 5},                                             // after every record: the end
		{"-1h", "orders:0", 5},                                                              // the records are from 2024
	} {
		if _, err := seek(FormatText, GroupSeekOptions{Group: "billing", To: tc.to, Topics: []string{tc.topic}}); err != nil {
			t.Fatalf("seek --to %s: %v", tc.to, err)
		}
		if got := f.committed(t, "billing")["orders"][0]; got != tc.want {
			t.Errorf("seek --to %s: orders/0 at %d, want %d", tc.to, got, tc.want)
		}
	}

	// Another group's offsets, into a group that does not exist yet.
	if _, err := seek(FormatText, GroupSeekOptions{Group: "billing-copy", ToGroup: "billing"}); err != nil {
		t.Fatal(err)
	}
	if got, want := f.committed(t, "billing-copy"), f.committed(t, "billing"); !equalOffsets(got, want) {
		t.Errorf("--to-group billing: %v, want %v", got, want)
	}
}

func TestGroupSeekBadInput(t *testing.T) {
	f := newGroupFixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		o    GroupSeekOptions
		code int
		want string
	}{
		{"non-empty group", GroupSeekOptions{Group: "live", To: "start"}, ExitFailure,
			`group "live" is not empty (state Stable, 1 members); stop its consumers first`},
		{"bad timestamp", GroupSeekOptions{Group: "billing", To: "2024-13-45T00:00:00Z"}, ExitUsage,
			`bad --to "2024-13-45T00:00:00Z": not an RFC 3339 time`},
		{"bad offset", GroupSeekOptions{Group: "billing", To: "sideways"}, ExitUsage, `bad --to "sideways"`},
		{"no target", GroupSeekOptions{Group: "billing"}, ExitUsage, "one of --to or --to-group"},
		{"both targets", GroupSeekOptions{Group: "billing", To: "start", ToGroup: "live"}, ExitUsage, "one of --to or --to-group"},
		{"itself", GroupSeekOptions{Group: "billing", ToGroup: "billing"}, ExitUsage, "--to-group names the group being moved"},
		{"unknown group without topics", GroupSeekOptions{Group: "biling", To: "start"}, ExitFailure,
			`group "biling" does not exist; did you mean "billing"?; to give a new group offsets, name the topics with --topic`},
		{"unknown source group", GroupSeekOptions{Group: "billing", ToGroup: "lve"}, ExitFailure, `group "lve" does not exist; did you mean "live"?`},
		{"missing topic", GroupSeekOptions{Group: "billing", To: "start", Topics: []string{"order"}}, ExitFailure, `topic "order" does not exist; did you mean "orders"?`},
		{"missing partition", GroupSeekOptions{Group: "billing", To: "start", Topics: []string{"orders:7"}}, ExitFailure, `topic "orders" has no partition 7 (it has 3 partitions)`},
		{"bad partition", GroupSeekOptions{Group: "billing", To: "start", Topics: []string{"orders:x"}}, ExitUsage, `bad --topic "orders:x"`},
		{"source lacks partition", GroupSeekOptions{Group: "billing", ToGroup: "live", Topics: []string{"orders:0"}}, ExitFailure, "has no offset for orders partition 0"},
	} {
		before := f.committed(t, "billing")
		out, err := runGroupCmd(FormatText, func(p Printer) error { return GroupSeek(ctx, f.conn, p, tc.o) })
		if err == nil || ExitCode(err) != tc.code || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v (exit %d), want exit %d and %q", tc.name, err, ExitCode(err), tc.code, tc.want)
		}
		if out != "" {
			t.Errorf("%s: printed %q on failure", tc.name, out)
		}
		if after := f.committed(t, "billing"); !equalOffsets(after, before) {
			t.Errorf("%s: offsets changed: %v → %v", tc.name, before, after)
		}
	}
	if got := f.committed(t, "live")["users"][0]; got != 4 {
		t.Errorf("refused seek moved live's offset to %d", got)
	}
}

func TestGroupDeleteAndOffsetDelete(t *testing.T) {
	f := newGroupFixture(t)
	ctx := context.Background()

	// Offsets of a topic the group does not consume go; those of a topic
	// a member consumes stay.
	out, err := runGroupCmd(FormatText, func(p Printer) error {
		return GroupOffsetDelete(ctx, f.conn, p, GroupOffsetDeleteOptions{Group: "billing", Topics: []string{"users", "orders:1"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "group_offset_delete.txt", out)
	if got, want := f.committed(t, "billing"), (map[string]map[int32]int64{"orders": {0: 2}}); !equalOffsets(got, want) {
		t.Errorf("after offset-delete: %v, want %v", got, want)
	}
	out, err = runGroupCmd(FormatJSON, func(p Printer) error {
		return GroupOffsetDelete(ctx, f.conn, p, GroupOffsetDeleteOptions{Group: "live", Topics: []string{"users"}})
	})
	var res []OffsetDeleteResult
	if ExitCode(err) != ExitFailure || !strings.Contains(err.Error(), "consume this topic") || json.Unmarshal([]byte(out), &res) != nil ||
		len(res) != 1 || res[0].Status != "failed" {
		t.Errorf("offset-delete of a consumed topic: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		o    GroupOffsetDeleteOptions
		code int
		want string
	}{
		{GroupOffsetDeleteOptions{Group: "billing"}, ExitUsage, "name the offsets to delete with --topic"},
		{GroupOffsetDeleteOptions{Group: "nobody", Topics: []string{"users"}}, ExitFailure, `group "nobody" does not exist`},
		{GroupOffsetDeleteOptions{Group: "billing", Topics: []string{"users"}}, ExitFailure, `group "billing" has no offsets for topic "users"`},
	} {
		_, err := runGroupCmd(FormatText, func(p Printer) error { return GroupOffsetDelete(ctx, f.conn, p, tc.o) })
		if ExitCode(err) != tc.code || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("offset-delete %+v: %v (exit %d), want exit %d and %q", tc.o, err, ExitCode(err), tc.code, tc.want)
		}
	}

	// Deleting: the empty group goes, the live one and a typo fail.
	out, err = runGroupCmd(FormatText, func(p Printer) error {
		return GroupDelete(ctx, f.conn, p, []string{"billing", "live", "biling"})
	})
	if ExitCode(err) != ExitFailure || !strings.Contains(err.Error(), `group "live" has active members`) {
		t.Errorf("delete billing live biling: %v", err)
	}
	checkGolden(t, "group_delete.txt", out)
	listed, err := runGroupCmd(FormatJSON, func(p Printer) error { return GroupList(ctx, f.conn, p, GroupListOptions{}) })
	if err != nil || strings.Contains(listed, `"billing"`) || !strings.Contains(listed, `"live"`) {
		t.Errorf("after delete, list: %v\n%s", err, listed)
	}
}

func TestGroupUnknownAndUnreachable(t *testing.T) {
	f := newGroupFixture(t)
	ctx := context.Background()
	_, err := runGroupCmd(FormatText, func(p Printer) error {
		return GroupDescribe(ctx, f.conn, p, GroupDescribeOptions{Groups: []string{"biling"}})
	})
	if want := `group "biling" does not exist; did you mean "billing"?`; err == nil || err.Error() != want || ExitCode(err) != ExitFailure {
		t.Errorf("describe biling: %v, want %q", err, want)
	}
	_, err = runGroupCmd(FormatText, func(p Printer) error {
		return GroupDescribe(ctx, f.conn, p, GroupDescribeOptions{Groups: []string{"zzzzzz"}})
	})
	if want := `group "zzzzzz" does not exist (see 'samsa group list')`; err == nil || err.Error() != want {
		t.Errorf("describe zzzzzz: %v, want %q", err, want)
	}

	closed := &Conn{Brokers: []string{samsatest.FreeAddr(t)}}
	for name, fn := range map[string]func(Printer) error{
		"list": func(p Printer) error { return GroupList(ctx, closed, p, GroupListOptions{}) },
		"describe": func(p Printer) error {
			return GroupDescribe(ctx, closed, p, GroupDescribeOptions{Groups: []string{"g"}})
		},
		"seek":   func(p Printer) error { return GroupSeek(ctx, closed, p, GroupSeekOptions{Group: "g", To: "start"}) },
		"delete": func(p Printer) error { return GroupDelete(ctx, closed, p, []string{"g"}) },
	} {
		_, err := runGroupCmd(FormatText, fn)
		if err == nil || ExitCode(err) != ExitFailure || !strings.Contains(err.Error(), "cannot reach a broker at "+closed.Brokers[0]) {
			t.Errorf("%s with no broker: %v", name, err)
		}
	}
}

func TestParseTopicPartitions(t *testing.T) {
	got, err := ParseTopicPartitions([]string{"a", "b:2,0", "b:1", "a:3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got["a"]) != 0 || !slices.Equal(got["b"], []int32{0, 1, 2}) {
		t.Errorf("got %v, want a: all, b: 0,1,2", got)
	}
	for _, bad := range []string{"", ":1", "a:", "a:-1", "a:1,x"} {
		if _, err := ParseTopicPartitions([]string{bad}); ExitCode(err) != ExitUsage {
			t.Errorf("ParseTopicPartitions(%q) = %v, want a usage error", bad, err)
		}
	}
}

func equalOffsets(a, b map[string]map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for t, ps := range a {
		if len(ps) != len(b[t]) {
			return false
		}
		for p, o := range ps {
			if bo, ok := b[t][p]; !ok || bo != o {
				return false
			}
		}
	}
	return true
}
