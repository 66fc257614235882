package broker_test

// Static membership (KIP-345, and KIP-848's instance ids) through
// franz-go: a member that comes back with its instance id within its
// session timeout gets its partitions back, and the others are left
// alone.

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// memberView is what a member has seen of the group: its partitions, its
// rebalance callbacks and its generation (member epoch for KIP-848).
type memberView struct {
	owned             []int32
	assigned, revoked int
	generation        int32
}

func (m *clientMember) view() memberView {
	a, r := m.callbacks()
	_, gen := m.cl.GroupMetadata()
	return memberView{owned: m.ownedNow(), assigned: a, revoked: r, generation: gen}
}

func sameView(a, b memberView, kip848 bool) bool {
	same := slices.Equal(a.owned, b.owned) && a.assigned == b.assigned && a.revoked == b.revoked
	if !kip848 {
		// A classic group that does not rebalance keeps its generation.
		same = same && a.generation == b.generation
	}
	return same
}

func staticMemberRestarts(t *testing.T, kip848 bool, opts ...kgo.Opt) {
	const partitions = 12
	const session = 20 * time.Second // far longer than a restart takes
	sb, _, adm, ctx := adminClients(t, groupTestConfig(), kip848Config(session))
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, "static"); err != nil {
		t.Fatal(err)
	}
	l := newLedger()
	f := newFeeder(t, sb.Addr(), l, "static", partitions)
	const groupID = "statics"
	start := func(name string) *clientMember {
		o := append([]kgo.Opt{kgo.InstanceID("instance-" + name), kgo.SessionTimeout(session)}, opts...)
		return startClientMember(t, sb.Addr(), name, groupID, "static", memberSetup{read: l.read}, o...)
	}

	f.start(t)
	members := []*clientMember{start("s0"), start("s1"), start("s2")}
	settled(t, "3 static members", ctx, adm, kip848, groupID, "static", members, partitions)
	drained(t, "3 static members", f, l)

	// Settled means no rebalance is under way; let the last callbacks
	// land before taking the others' view.
	var before [2]memberView
	eventually(t, "the others' views are steady", func() (bool, string) {
		for i, m := range members[:2] {
			v := m.view()
			if !sameView(v, before[i], kip848) {
				before[i] = v
				return false, fmt.Sprintf("%s changed: %+v", m.name, v)
			}
		}
		return true, ""
	})
	restartedOwned := members[2].ownedNow()

	// s2 restarts (a new client, the same instance id) while records
	// keep coming.
	f.start(t)
	if kip848 {
		leaveStatic848(t, ctx, sb.Addr(), groupID, members[2])
	} else {
		members[2].stop()
	}
	members[2] = start("s2")
	settled(t, "s2 back", ctx, adm, kip848, groupID, "static", members, partitions)
	if got := members[2].ownedNow(); !slices.Equal(got, restartedOwned) {
		t.Errorf("s2 came back with %v, had %v", got, restartedOwned)
	}
	drained(t, "s2 back", f, l)
	for i, m := range members[:2] {
		if v := m.view(); !sameView(v, before[i], kip848) {
			t.Errorf("%s was rebalanced by s2's restart: before %+v, after %+v", m.name, before[i], v)
		}
	}
}

func TestClassicStaticMemberRestartsWithoutRebalance(t *testing.T) {
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer
	}{
		{"range", kgo.RangeBalancer()},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			staticMemberRestarts(t, false, kgo.Balancers(tc.balancer))
		})
	}
}

func TestKIP848StaticMemberRestartsWithoutRebalance(t *testing.T) {
	staticMemberRestarts(t, true, kgo.Balancers(kgo.StickyBalancer()), kgo.ServerSideBalancer())
}

// leaveStatic848 stops m and leaves the group as a KIP-848 static member
// does, with member epoch -2 and its instance id: the member's partitions
// wait for its instance id to come back.
//
// franz-go v1.22.2 sends that leave without the instance id, which Kafka
// (and Samsa) refuse with INVALID_REQUEST ("InstanceId can't be null."),
// so that its static members are only replaced once their session times
// out. The Java client sends the id; this sends the leave as it does.
func leaveStatic848(t *testing.T, ctx context.Context, addr, groupID string, m *clientMember) {
	t.Helper()
	memberID, epoch := m.cl.GroupMetadata()
	m.cancel()
	<-m.done
	if err := m.commit(ctx); err != nil {
		t.Fatalf("%s: commit: %v", m.name, err)
	}
	m.kill() // no more heartbeats, and not franz-go's leave

	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.SetVersion(1)
	req.Group = groupID
	req.MemberID = memberID
	req.MemberEpoch = -2
	req.InstanceID = kmsg.StringPtr("instance-" + m.name)
	resp := roundTrip(t, addr, req).(*kmsg.ConsumerGroupHeartbeatResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("static leave of %s (epoch %d): %v %v", memberID, epoch, err, resp.ErrorMessage)
	}
	if resp.MemberEpoch != -2 {
		t.Errorf("static leave answered epoch %d, want -2", resp.MemberEpoch)
	}
}
