package broker_test

// Administering live consumer groups with kadm: list and describe classic
// and KIP-848 groups, refuse what a group with members must refuse, reset
// offsets by committing once the members are gone (as
// kafka-consumer-groups.sh --reset-offsets does), see the lag, delete.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// readFrom checks that each of n partitions was read from round first to
// round last (the feeder's values "<partition>-<round>"), each once.
func (l *ledger) readFrom(partitions int32, first, last int) (bool, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	want := map[string]int{}
	for p := range partitions {
		for r := first; r <= last; r++ {
			want[fmt.Sprintf("%d-%d", p, r)] = 1
		}
	}
	for v, n := range l.reads {
		if want[v] != n {
			return false, fmt.Sprintf("%s read %d times, want %d (%d values read)", v, n, want[v], len(l.reads))
		}
	}
	for v := range want {
		if l.reads[v] == 0 {
			return false, fmt.Sprintf("%s not read yet (%d values read)", v, len(l.reads))
		}
	}
	return true, ""
}

func TestAdminManagesLiveAndIdleGroups(t *testing.T) {
	const partitions = 4
	const topic = "admin-groups"
	sb, _, adm, ctx := adminClients(t, groupTestConfig(), kip848Config(3*time.Second))
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	f := newFeeder(t, sb.Addr(), newLedger(), topic, partitions)
	for range 10 {
		if err := f.round(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// One live member in a classic group and one in a KIP-848 group.
	classicReads, consumerReads := newLedger(), newLedger()
	classic := startClientMember(t, sb.Addr(), "classic-member", "classic-g", topic, memberSetup{read: classicReads.read},
		kgo.Balancers(kgo.CooperativeStickyBalancer()))
	consumer := startClientMember(t, sb.Addr(), "consumer-member", "consumer-g", topic, memberSetup{read: consumerReads.read},
		kgo.Balancers(kgo.StickyBalancer()), kgo.ServerSideBalancer())
	settled(t, "classic-g", ctx, adm, false, "classic-g", topic, []*clientMember{classic}, partitions)
	settled(t, "consumer-g", ctx, adm, true, "consumer-g", topic, []*clientMember{consumer}, partitions)

	// List: all, by type, by state.
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g := listed["classic-g"]; g.State != "Stable" || g.ProtocolType != "consumer" {
		t.Errorf("ListGroups classic-g: %+v", g)
	}
	if g := listed["consumer-g"]; g.State != "Stable" || g.ProtocolType != "consumer" {
		t.Errorf("ListGroups consumer-g: %+v", g)
	}
	for _, tc := range []struct {
		types, states []string
		want          []string
	}{
		{[]string{"classic"}, nil, []string{"classic-g"}},
		{[]string{"consumer"}, nil, []string{"consumer-g"}},
		{nil, []string{"Stable"}, []string{"classic-g", "consumer-g"}},
		{nil, []string{"Empty"}, nil},
	} {
		listed, err := adm.ListGroupsByType(ctx, tc.types, tc.states...)
		if err != nil {
			t.Fatal(err)
		}
		if got := listed.Groups(); !slices.Equal(got, tc.want) {
			t.Errorf("ListGroups types %v states %v: %v, want %v", tc.types, tc.states, got, tc.want)
		}
	}

	// Describe: each protocol's API describes its own kind of group.
	described, err := adm.DescribeGroups(ctx, "classic-g", "consumer-g")
	if err != nil {
		t.Fatal(err)
	}
	if d := described["classic-g"]; d.Err != nil || d.State != "Stable" || d.Protocol != "cooperative-sticky" ||
		len(d.Members) != 1 || d.Members[0].ClientID != "classic-member" {
		t.Errorf("DescribeGroups classic-g: %+v", d)
	}
	// As Kafka 4 answers: Dead, and from v6 on GROUP_ID_NOT_FOUND.
	if d := described["consumer-g"]; d.State != "Dead" && !errors.Is(d.Err, kerr.GroupIDNotFound) {
		t.Errorf("DescribeGroups of a KIP-848 group: %s %v, want Dead or GROUP_ID_NOT_FOUND", d.State, d.Err)
	}
	cdescribed, err := adm.DescribeConsumerGroups(ctx, "consumer-g")
	if err != nil {
		t.Fatal(err)
	}
	if d := cdescribed["consumer-g"]; d.Err != nil || d.AssignorName != "uniform" ||
		len(d.Members) != 1 || d.Members[0].ClientID != "consumer-member" {
		t.Errorf("DescribeConsumerGroups consumer-g: %+v", d)
	}

	// A group with members refuses what would pull the rug from under
	// them.
	var reset kadm.Offsets
	for p := range int32(partitions) {
		reset.Add(kadm.Offset{Topic: topic, Partition: p, At: 3, LeaderEpoch: -1})
	}
	for _, g := range []string{"classic-g", "consumer-g"} {
		r, err := adm.CommitOffsets(ctx, g, reset)
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := r.Lookup(topic, 0); !errors.Is(o.Err, kerr.UnknownMemberID) {
			t.Errorf("%s: an admin commit while a member is online: %v, want UNKNOWN_MEMBER_ID", g, o.Err)
		}
		dg, err := adm.DeleteGroups(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(dg[g].Err, kerr.NonEmptyGroup) {
			t.Errorf("%s: deleting a group with a member: %v, want NON_EMPTY_GROUP", g, dg[g].Err)
		}
		do, err := adm.DeleteOffsets(ctx, g, kadm.TopicsSet{topic: {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := do.Error(); !errors.Is(err, kerr.GroupSubscribedToTopic) {
			t.Errorf("%s: deleting offsets of a topic in use: %v, want GROUP_SUBSCRIBED_TO_TOPIC", g, err)
		}
	}

	// The members stop, having read and committed everything.
	for _, m := range []struct {
		*clientMember
		reads *ledger
	}{{classic, classicReads}, {consumer, consumerReads}} {
		eventually(t, m.name+" read everything", func() (bool, string) { return m.reads.readFrom(partitions, 0, 9) })
		m.stop()
	}
	wantCommitted4 := func(g string, want int64) {
		t.Helper()
		eventually(t, fmt.Sprintf("%s committed %d", g, want), func() (bool, string) {
			fetched, err := adm.FetchOffsets(ctx, g)
			if err != nil {
				return false, err.Error()
			}
			for p := range int32(partitions) {
				if o, ok := fetched.Lookup(topic, p); !ok || o.At != want {
					return false, fmtOffsets(fetched)
				}
			}
			return true, ""
		})
	}
	wantCommitted4("classic-g", 10)
	wantCommitted4("consumer-g", 10)

	// Reset: classic-g back to 3, consumer-g to 7, by committing.
	for g, at := range map[string]int64{"classic-g": 3, "consumer-g": 7} {
		var reset kadm.Offsets
		for p := range int32(partitions) {
			reset.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
		}
		if r, err := adm.CommitOffsets(ctx, g, reset); err != nil || r.Error() != nil {
			t.Fatalf("%s: reset: %v %v", g, err, r.Error())
		}
		wantCommitted4(g, at)
	}

	// Tools see the lag from OffsetFetch and ListOffsets.
	lags, err := adm.Lag(ctx, "classic-g")
	if err != nil {
		t.Fatal(err)
	}
	l := lags["classic-g"]
	if err := l.Error(); err != nil || l.State != "Empty" {
		t.Fatalf("Lag classic-g: %s %v", l.State, err)
	}
	for p := range int32(partitions) {
		if got := l.Lag[topic][p]; got.Lag != 7 {
			t.Errorf("kadm Lag of classic-g %s-%d: %d (%v), want 7", topic, p, got.Lag, got.Err)
		}
	}

	// New members resume from the reset offsets.
	classicReads, consumerReads = newLedger(), newLedger()
	classic = startClientMember(t, sb.Addr(), "classic-member-2", "classic-g", topic, memberSetup{read: classicReads.read},
		kgo.Balancers(kgo.CooperativeStickyBalancer()))
	consumer = startClientMember(t, sb.Addr(), "consumer-member-2", "consumer-g", topic, memberSetup{read: consumerReads.read},
		kgo.Balancers(kgo.StickyBalancer()), kgo.ServerSideBalancer())
	eventually(t, "classic-g resumes at 3", func() (bool, string) { return classicReads.readFrom(partitions, 3, 9) })
	eventually(t, "consumer-g resumes at 7", func() (bool, string) { return consumerReads.readFrom(partitions, 7, 9) })
	classic.stop()
	consumer.stop()

	// An empty KIP-848 group is deleted with its offsets.
	eventually(t, "consumer-g is empty", func() (bool, string) {
		listed, err := adm.ListGroups(ctx)
		if err != nil {
			return false, err.Error()
		}
		return listed["consumer-g"].State == "Empty", listed["consumer-g"].State
	})
	dg, err := adm.DeleteGroups(ctx, "consumer-g")
	if err != nil || dg["consumer-g"].Err != nil {
		t.Fatalf("DeleteGroups consumer-g: %v %v", err, dg["consumer-g"].Err)
	}
	listed, err = adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := listed.Groups(); !slices.Equal(got, []string{"classic-g"}) {
		t.Errorf("groups after deleting consumer-g: %v", got)
	}
	fetched, err := adm.FetchOffsets(context.Background(), "consumer-g")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(fetched.Offsets().Sorted()); n != 0 {
		t.Errorf("consumer-g has %d offsets after it was deleted", n)
	}
}
