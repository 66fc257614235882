package broker_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupMember is one kgo group consumer and what it owns and has read.
type groupMember struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	owned map[int32]bool  // guarded by mu
	read  map[string]bool // record values; guarded by mu
}

// startMember starts a group consumer of topic that polls until stopped,
// committing what it read before it gives partitions up.
func startMember(t *testing.T, addr, groupID, topic string, balancer kgo.GroupBalancer, opts ...kgo.Opt) *groupMember {
	t.Helper()
	m := &groupMember{owned: map[int32]bool{}, read: map[string]bool{}, done: make(chan struct{})}
	drop := func(lost map[string][]int32) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, p := range lost[topic] {
			delete(m.owned, p)
		}
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ConsumerGroup(groupID),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(balancer),
		kgo.SessionTimeout(6 * time.Second),
		kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.RebalanceTimeout(20 * time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, got map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range got[topic] {
				m.owned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Logf("commit on revoke: %v", err)
			}
			drop(revoked)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) { drop(lost) }),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cl, m.cancel = cl, cancel
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				m.mu.Lock()
				m.read[string(r.Value)] = true
				m.mu.Unlock()
			})
		}
	}()
	t.Cleanup(m.stop)
	return m
}

// stop leaves the group (committing, through the revoke callback) and
// closes the client.
func (m *groupMember) stop() {
	if m.cancel == nil {
		return
	}
	m.cancel()
	<-m.done
	m.cl.Close()
	m.cancel = nil
}

func (m *groupMember) snapshot() (owned []int32, read map[string]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.owned)), maps.Clone(m.read)
}

// ownedOnce checks that the members own every one of n partitions exactly
// once, each member as many as the others (±1).
func ownedOnce(members []*groupMember, n int32) (bool, string) {
	count := map[int32]int{}
	var sizes []int
	desc := ""
	for i, m := range members {
		owned, _ := m.snapshot()
		for _, p := range owned {
			count[p]++
		}
		sizes = append(sizes, len(owned))
		desc += fmt.Sprintf(" member %d owns %v;", i, owned)
	}
	for p := range n {
		if count[p] != 1 {
			return false, desc
		}
	}
	return len(count) == int(n) && slices.Max(sizes)-slices.Min(sizes) <= 1, desc
}

// describedOnce checks the coordinator's view of a classic group: Stable,
// n members, whose assignments cover every partition exactly once.
func describedOnce(ctx context.Context, adm *kadm.Client, groupID, topic string, members int, partitions int32) (bool, string) {
	described, err := adm.DescribeGroups(ctx, groupID)
	if err != nil {
		return false, err.Error()
	}
	d := described[groupID]
	if d.Err != nil || d.State != "Stable" || len(d.Members) != members {
		return false, fmt.Sprintf("state %s, %d members, err %v", d.State, len(d.Members), d.Err)
	}
	count := map[int32]int{}
	for _, m := range d.Members {
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			return false, "an assignment that is not a consumer's"
		}
		for _, at := range a.Topics {
			if at.Topic == topic {
				for _, p := range at.Partitions {
					count[p]++
				}
			}
		}
	}
	for p := range partitions {
		if count[p] != 1 {
			return false, fmt.Sprintf("partition owners %v", count)
		}
	}
	return true, ""
}

// describedOnce848 is describedOnce for a KIP-848 consumer group.
func describedOnce848(ctx context.Context, adm *kadm.Client, groupID, topic string, members int, partitions int32) (bool, string) {
	described, err := adm.DescribeConsumerGroups(ctx, groupID)
	if err != nil {
		return false, err.Error()
	}
	d := described[groupID]
	if d.Err != nil || d.State != "Stable" || len(d.Members) != members {
		return false, fmt.Sprintf("state %s, %d members, err %v", d.State, len(d.Members), d.Err)
	}
	count := map[int32]int{}
	for _, m := range d.Members {
		for p := range m.Assignment[topic] {
			count[p]++
		}
	}
	for p := range partitions {
		if count[p] != 1 {
			return false, fmt.Sprintf("partition owners %v", count)
		}
	}
	return true, ""
}

func TestGroupConsumersShareATopic(t *testing.T) {
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer
		opts     []kgo.Opt
		describe func(ctx context.Context, adm *kadm.Client, groupID, topic string, members int, partitions int32) (bool, string)
	}{
		{"range", kgo.RangeBalancer(), nil, describedOnce},
		{"sticky", kgo.StickyBalancer(), nil, describedOnce},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer(), nil, describedOnce},
		// KIP-848: the broker assigns (ConsumerGroupHeartbeat).
		{"kip848-range", kgo.RangeBalancer(), []kgo.Opt{kgo.ServerSideBalancer()}, describedOnce848},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const partitions = 12
			const perPartition = 5
			sb, _, adm, ctx := adminClients(t, groupTestConfig())
			producer, err := kgo.NewClient(kgo.SeedBrokers(sb.Addr()), kgo.DefaultProduceTopic("shared"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err != nil {
				t.Fatal(err)
			}
			defer producer.Close()
			if _, err := adm.CreateTopic(ctx, partitions, 1, nil, "shared"); err != nil {
				t.Fatal(err)
			}
			var recs []*kgo.Record
			for p := range int32(partitions) {
				for i := range perPartition {
					recs = append(recs, &kgo.Record{Partition: p, Value: []byte(fmt.Sprintf("%d-%d", p, i))})
				}
			}
			if err := producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}

			groupID := "group-" + tc.name
			var members []*groupMember
			for range 3 {
				members = append(members, startMember(t, sb.Addr(), groupID, "shared", tc.balancer, tc.opts...))
			}
			eventually(t, "3 members own every partition once", func() (bool, string) {
				ok, desc := ownedOnce(members, partitions)
				if !ok {
					return false, desc
				}
				return tc.describe(ctx, adm, groupID, "shared", 3, partitions)
			})
			eventually(t, "every record read", func() (bool, string) {
				all := map[string]bool{}
				for _, m := range members {
					_, read := m.snapshot()
					maps.Copy(all, read)
				}
				return len(all) == partitions*perPartition, strconv.Itoa(len(all))
			})

			// One leaves: the other two share its partitions.
			members[2].stop()
			eventually(t, "2 members own every partition once", func() (bool, string) {
				ok, desc := ownedOnce(members[:2], partitions)
				if !ok {
					return false, desc
				}
				return tc.describe(ctx, adm, groupID, "shared", 2, partitions)
			})

			// All leave, committing what they read: the group is empty,
			// and its offsets are at the end of every partition.
			members[0].stop()
			members[1].stop()
			eventually(t, "committed offsets at the end", func() (bool, string) {
				fetched, err := adm.FetchOffsets(ctx, groupID)
				if err != nil {
					return false, err.Error()
				}
				for p := range int32(partitions) {
					if o, ok := fetched.Lookup("shared", p); !ok || o.At != perPartition {
						return false, fmtOffsets(fetched)
					}
				}
				return true, ""
			})
			listed, err := adm.ListGroups(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if g, ok := listed[groupID]; !ok || g.State != "Empty" {
				t.Errorf("after every member left: %+v (listed %v)", g, ok)
			}
		})
	}
}
