package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/broker"
)

// protocol is one way for a group to rebalance.
type protocol struct {
	name string
	opts []kgo.Opt
}

func protocols(heartbeat time.Duration) []protocol {
	hb := kgo.HeartbeatInterval(heartbeat)
	return []protocol{
		{"classic eager (range)", []kgo.Opt{kgo.Balancers(kgo.RangeBalancer()), hb}},
		{"classic cooperative (cooperative-sticky)", []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer()), hb}},
		{"KIP-848 (server-side uniform)", []kgo.Opt{kgo.Balancers(kgo.StickyBalancer()), kgo.ServerSideBalancer()}},
	}
}

// member is one group member and the partitions it owns, as its
// callbacks tell.
type member struct {
	cl *kgo.Client

	mu    sync.Mutex
	owned map[int32]bool // guarded by mu
}

func startMember(addr, groupID, topic string, p protocol) (*member, error) {
	m := &member{owned: map[int32]bool{}}
	drop := func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, p := range lost[topic] {
			delete(m.owned, p)
		}
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ConsumerGroup(groupID),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, got map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range got[topic] {
				m.owned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(drop),
		kgo.OnPartitionsLost(drop),
	}, p.opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	m.cl = cl
	return m, nil
}

func (m *member) count() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Collect(func(yield func(int32) bool) {
		for p := range m.owned {
			if !yield(p) {
				return
			}
		}
	})
}

// ownership is the members' view of a moment: whether every partition has
// exactly one owner, each member as many as the others (±1), and how many
// partitions have no owner.
func ownership(members []*member, partitions int) (balanced bool, unowned int) {
	owners := make([]int, partitions)
	lo, hi := partitions, 0
	for _, m := range members {
		owned := m.count()
		lo, hi = min(lo, len(owned)), max(hi, len(owned))
		for _, p := range owned {
			owners[p]++
		}
	}
	balanced = hi-lo <= 1
	for _, n := range owners {
		if n == 0 {
			unowned++
		}
		if n != 1 {
			balanced = false
		}
	}
	return balanced, unowned
}

func balanced(members []*member, partitions int) bool {
	ok, _ := ownership(members, partitions)
	return ok
}

// settling is what waitBalanced saw: when the group was balanced, the
// most partitions without an owner at once, and the partition-seconds
// without one (the consumption the rebalance stopped).
type settling struct {
	done        time.Time
	maxUnowned  int
	pausedPartS float64
}

// waitBalanced polls until balanced, sampling ownership every 2 ms.
func waitBalanced(members []*member, partitions int, timeout time.Duration) (settling, error) {
	var s settling
	deadline := time.Now().Add(timeout)
	last := time.Now()
	for {
		ok, unowned := ownership(members, partitions)
		now := time.Now()
		s.maxUnowned = max(s.maxUnowned, unowned)
		s.pausedPartS += float64(unowned) * now.Sub(last).Seconds()
		last = now
		if ok {
			s.done = now
			return s, nil
		}
		if now.After(deadline) {
			return s, fmt.Errorf("%d members not balanced after %s", len(members), timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func closeAll(members []*member) {
	var wg sync.WaitGroup
	for _, m := range members {
		wg.Go(m.cl.Close)
	}
	wg.Wait()
}

func benchSettle(o options) error {
	rb, err := startBroker(o, func(c *broker.Config) {
		c.Groups.Consumer.HeartbeatInterval = o.heartbeat
	})
	if err != nil {
		return err
	}
	defer rb.stop()
	const topic = "settle"
	cl, err := kgo.NewClient(kgo.SeedBrokers(rb.addr()))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, int32(o.partitions), 1, nil, topic); err != nil {
		return err
	}
	fmt.Printf("\n## settle: %d members on %d partitions, one joins (heartbeat %s)\n", o.members, o.partitions, o.heartbeat)
	fmt.Println("settle time; most partitions without an owner at once; partition-seconds without an owner")
	for _, p := range protocols(o.heartbeat) {
		var times []time.Duration
		for round := range o.rounds {
			s, d, err := settleOnce(rb.addr(), fmt.Sprintf("settle-%d-", round), topic, p, o)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			times = append(times, d)
			fmt.Printf("%s round %d: %s; %d; %.1f (load %s)\n", p.name, round, d.Round(time.Millisecond),
				s.maxUnowned, s.pausedPartS, loadAvg())
		}
		slices.Sort(times)
		fmt.Printf("%s: median %s\n", p.name, times[len(times)/2].Round(time.Millisecond))
	}
	return nil
}

// settleOnce forms a group of o.members, lets it settle, then starts one
// more member and returns how long until the group is balanced again.
func settleOnce(addr, groupID, topic string, p protocol, o options) (settling, time.Duration, error) {
	var members []*member
	defer func() { closeAll(members) }()
	for range o.members {
		m, err := startMember(addr, groupID+p.name, topic, p)
		if err != nil {
			return settling{}, 0, err
		}
		members = append(members, m)
	}
	if _, err := waitBalanced(members, o.partitions, 5*time.Minute); err != nil {
		return settling{}, 0, fmt.Errorf("forming: %w", err)
	}
	// Quiet: still balanced a few heartbeats later.
	time.Sleep(3 * o.heartbeat)
	if !balanced(members, o.partitions) {
		return settling{}, 0, fmt.Errorf("the group did not stay balanced")
	}

	start := time.Now()
	m, err := startMember(addr, groupID+p.name, topic, p)
	if err != nil {
		return settling{}, 0, err
	}
	members = append(members, m)
	s, err := waitBalanced(members, o.partitions, 5*time.Minute)
	if err != nil {
		return s, 0, fmt.Errorf("after the join: %w", err)
	}
	return s, s.done.Sub(start), nil
}
