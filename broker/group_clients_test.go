package broker_test

// Consumer groups through real clients: franz-go members that leave, are
// killed and join (each balancer and KIP-848), with a ledger of every
// record read so that a record skipped or read twice is caught.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ledger counts the reads of every record value, across the members of
// a group.
type ledger struct {
	mu    sync.Mutex
	sent  map[string]bool // guarded by mu
	reads map[string]int  // guarded by mu
	// by is who read each value, for failure messages; guarded by mu.
	by map[string][]string
}

func newLedger() *ledger {
	return &ledger{sent: map[string]bool{}, reads: map[string]int{}, by: map[string][]string{}}
}

func (l *ledger) addSent(values ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range values {
		l.sent[v] = true
	}
}

func (l *ledger) read(member string, r *kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := string(r.Value)
	l.reads[v]++
	l.by[v] = append(l.by[v], fmt.Sprintf("%s@%d-%d", member, r.Partition, r.Offset))
}

// allRead reports whether every record sent has been read.
func (l *ledger) allRead() (bool, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	missing := 0
	for v := range l.sent {
		if l.reads[v] == 0 {
			missing++
		}
	}
	return missing == 0, fmt.Sprintf("%d of %d records not read yet", missing, len(l.sent))
}

// twice lists the records read more than once.
func (l *ledger) twice() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for v, n := range l.reads {
		if n > 1 {
			out = append(out, fmt.Sprintf("%s read %d times: %v", v, n, l.by[v]))
		}
	}
	slices.Sort(out)
	return out
}

// feeder produces records to every partition of a topic in the
// background, one round at a time, until stopped.
type feeder struct {
	cl         *kgo.Client
	l          *ledger
	topic      string
	partitions int32

	next   int // the next round's number; owned by the running goroutine
	cancel context.CancelFunc
	done   chan struct{}
}

func newFeeder(t *testing.T, addr string, l *ledger, topic string, partitions int32) *feeder {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	f := &feeder{cl: cl, l: l, topic: topic, partitions: partitions}
	t.Cleanup(f.stop)
	return f
}

// round produces one record to every partition and waits for them.
func (f *feeder) round(ctx context.Context) error {
	var recs []*kgo.Record
	var values []string
	for p := range f.partitions {
		v := fmt.Sprintf("%d-%d", p, f.next)
		recs = append(recs, &kgo.Record{Topic: f.topic, Partition: p, Value: []byte(v)})
		values = append(values, v)
	}
	f.next++
	if err := f.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return err
	}
	f.l.addSent(values...)
	return nil
}

// start produces rounds until stop; rounds are a few milliseconds apart.
func (f *feeder) start(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan struct{})
	go func() {
		defer close(f.done)
		for ctx.Err() == nil {
			if err := f.round(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("produce: %v", err)
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
}

// stop ends the rounds; a record whose produce was cancelled midway was
// never counted as sent.
func (f *feeder) stop() {
	if f.cancel == nil {
		return
	}
	f.cancel()
	<-f.done
	f.cancel = nil
}

// killSwitch is a dialer whose connections can all be cut at once, and
// that refuses to dial after: the client looks dead to the broker (no
// heartbeat, no leave), as a crashed process would.
type killSwitch struct {
	through func(ctx context.Context, network, host string) (net.Conn, error) // the dialer under it, or nil for a net.Dialer; immutable

	mu    sync.Mutex
	dead  bool       // guarded by mu
	conns []net.Conn // guarded by mu
}

func (k *killSwitch) dial(ctx context.Context, network, host string) (net.Conn, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dead {
		return nil, errors.New("killed")
	}
	dial := k.through
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	c, err := dial(ctx, network, host)
	if err != nil {
		return nil, err
	}
	k.conns = append(k.conns, c)
	return c, nil
}

func (k *killSwitch) kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dead = true
	for _, c := range k.conns {
		c.Close()
	}
}

// clientMember is one franz-go group member that records what it owns and
// passes what it reads on. It blocks rebalances while it handles a poll,
// and commits what it polled before it gives partitions up.
type clientMember struct {
	t     *testing.T
	name  string
	topic string
	cl    *kgo.Client
	ks    *killSwitch

	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	owned    map[int32]bool // guarded by mu
	assigned int            // OnPartitionsAssigned calls; guarded by mu
	revoked  int            // OnPartitionsRevoked calls; guarded by mu
}

// memberSetup is what a test wants of its members beyond kgo options.
type memberSetup struct {
	// read is given every record the member polls, with the member's name
	// (a ledger's read, an orderChecker's).
	read func(member string, r *kgo.Record)
	// dial, if set, is the dialer under the member's kill switch (a
	// fetchSpy's); otherwise the member dials directly.
	dial func(ctx context.Context, network, host string) (net.Conn, error)
	// mustCommitOnRevoke fails the test when the commit before giving
	// partitions up fails. Otherwise that is only logged: a killed
	// member's commit cannot land, and one that did not land shows up
	// as records read twice.
	mustCommitOnRevoke bool
}

// startClientMember starts a member of groupID consuming topic, with the
// options given (balancer, KIP-848, instance id, …) on top of fast
// heartbeats and reading from the start.
func startClientMember(t *testing.T, addr, name, groupID, topic string, setup memberSetup, opts ...kgo.Opt) *clientMember {
	t.Helper()
	m := &clientMember{t: t, name: name, topic: topic, ks: &killSwitch{through: setup.dial}, owned: map[int32]bool{}, done: make(chan struct{})}
	drop := func(lost map[string][]int32) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, p := range lost[topic] {
			delete(m.owned, p)
		}
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.Dialer(m.ks.dial),
		kgo.ClientID(name),
		kgo.ConsumerGroup(groupID),
		kgo.ConsumeTopics(topic),
		kgo.SessionTimeout(3 * time.Second),
		kgo.HeartbeatInterval(200 * time.Millisecond),
		kgo.RebalanceTimeout(20 * time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, got map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.assigned++
			for _, p := range got[topic] {
				m.owned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				if setup.mustCommitOnRevoke {
					t.Errorf("%s: commit on revoke: %v", name, err)
				} else {
					t.Logf("%s: commit on revoke: %v", name, err)
				}
			}
			m.mu.Lock()
			if len(revoked) > 0 {
				m.revoked++
			}
			m.mu.Unlock()
			drop(revoked)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) { drop(lost) }),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cl, m.cancel = cl, cancel
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) { setup.read(name, r) })
			cl.AllowRebalance()
		}
	}()
	t.Cleanup(m.stop)
	return m
}

// stop ends polling, commits what was polled and closes the client,
// which leaves the group (a static member stays until its session times
// out or its instance id comes back).
func (m *clientMember) stop() {
	if m.cancel == nil {
		return
	}
	m.cancel()
	<-m.done
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.commit(ctx); err != nil {
		m.t.Errorf("%s: commit on stop: %v", m.name, err)
	}
	m.cl.CloseAllowingRebalance()
	m.cancel = nil
}

// kill cuts the member off without a leave: the broker must notice it
// is gone by its session timing out.
func (m *clientMember) kill() {
	m.ks.kill()
	m.cancel()
	<-m.done
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	m.cl.LeaveGroupContext(gone) // the leave cannot reach the broker
	m.cl.CloseAllowingRebalance()
	m.cancel = nil
}

// commit commits what the member polled.
func (m *clientMember) commit(ctx context.Context) error {
	return m.cl.CommitUncommittedOffsets(ctx)
}

func (m *clientMember) ownedNow() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.owned))
}

func (m *clientMember) callbacks() (assigned, revoked int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.assigned, m.revoked
}

// ownedExactlyOnce checks the members' own view: every one of n
// partitions owned by exactly one member, each member as many as the
// others (±1).
func ownedExactlyOnce(members []*clientMember, n int32) (bool, string) {
	count := map[int32]int{}
	var sizes []int
	desc := ""
	for _, m := range members {
		owned := m.ownedNow()
		for _, p := range owned {
			count[p]++
		}
		sizes = append(sizes, len(owned))
		desc += fmt.Sprintf(" %s owns %v;", m.name, owned)
	}
	for p := range n {
		if count[p] != 1 {
			return false, desc
		}
	}
	return len(count) == int(n) && slices.Max(sizes)-slices.Min(sizes) <= 1, desc
}

// describedOnceKIP848 checks the coordinator's view of a KIP-848 group:
// Stable, with the members named, whose current assignments cover every
// partition exactly once.
func describedOnceKIP848(ctx context.Context, adm *kadm.Client, groupID, topic string, members []*clientMember, partitions int32) (bool, string) {
	described, err := adm.DescribeConsumerGroups(ctx, groupID)
	if err != nil {
		return false, err.Error()
	}
	d := described[groupID]
	if d.Err != nil || d.State != "Stable" || len(d.Members) != len(members) {
		return false, fmt.Sprintf("state %s, %d members, err %v", d.State, len(d.Members), d.Err)
	}
	count := map[int32]int{}
	var clientIDs []string
	for _, m := range d.Members {
		clientIDs = append(clientIDs, m.ClientID)
		for p := range m.Assignment[topic] {
			count[p]++
		}
	}
	for _, m := range members {
		if !slices.Contains(clientIDs, m.name) {
			return false, fmt.Sprintf("members %v lack %s", clientIDs, m.name)
		}
	}
	for p := range partitions {
		if count[p] != 1 {
			return false, fmt.Sprintf("partition owners %v", count)
		}
	}
	return true, ""
}

// settled waits until the members own every partition once, in their
// view and the coordinator's.
func settled(t *testing.T, what string, ctx context.Context, adm *kadm.Client, kip848 bool, groupID, topic string, members []*clientMember, partitions int32) {
	t.Helper()
	eventually(t, what, func() (bool, string) {
		if ok, desc := ownedExactlyOnce(members, partitions); !ok {
			return false, desc
		}
		if kip848 {
			return describedOnceKIP848(ctx, adm, groupID, topic, members, partitions)
		}
		return describedOnce(ctx, adm, groupID, topic, len(members), partitions)
	})
}

// drained stops the feeder and waits until every record sent is read, and
// none was read twice.
func drained(t *testing.T, what string, f *feeder, l *ledger) {
	t.Helper()
	f.stop()
	eventually(t, what+": every record read", l.allRead)
	if twice := l.twice(); len(twice) > 0 {
		t.Fatalf("%s: %d records read twice:\n%s", what, len(twice), twice)
	}
}

// membersLeaveDieAndJoin runs a group of 3 members on a 12-partition topic
// through a member leaving, one being killed and one joining, with records
// produced throughout; every partition must be owned once after each
// change, and every record read exactly once.
func membersLeaveDieAndJoin(t *testing.T, kip848 bool, opts ...kgo.Opt) {
	const partitions = 12
	sb, _, adm, ctx := adminClients(t, groupTestConfig(), kip848Config(3*time.Second))
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, "churn"); err != nil {
		t.Fatal(err)
	}
	l := newLedger()
	f := newFeeder(t, sb.Addr(), l, "churn", partitions)
	const groupID = "churners"
	start := func(name string) *clientMember {
		return startClientMember(t, sb.Addr(), name, groupID, "churn", memberSetup{read: l.read}, opts...)
	}

	f.start(t)
	members := []*clientMember{start("m0"), start("m1"), start("m2")}
	settled(t, "3 members", ctx, adm, kip848, groupID, "churn", members, partitions)
	drained(t, "3 members", f, l)

	// A member leaves while records keep coming: the others take its
	// partitions from where it committed.
	f.start(t)
	members[2].stop()
	members = members[:2]
	settled(t, "after m2 left", ctx, adm, kip848, groupID, "churn", members, partitions)
	drained(t, "after m2 left", f, l)

	// A member joins while records keep coming.
	f.start(t)
	members = append(members, start("m3"))
	settled(t, "after m3 joined", ctx, adm, kip848, groupID, "churn", members, partitions)
	drained(t, "after m3 joined", f, l)

	// A member dies after committing what it read: its session times out
	// and the others take its partitions.
	for _, m := range members {
		if err := m.commit(ctx); err != nil {
			t.Fatalf("%s: commit: %v", m.name, err)
		}
	}
	members[0].kill()
	members = members[1:]
	f.start(t)
	settled(t, "after m0 died", ctx, adm, kip848, groupID, "churn", members, partitions)
	drained(t, "after m0 died", f, l)

	// The group's committed offsets reach the end once the others leave.
	for _, m := range members {
		m.stop()
	}
	ends, err := adm.ListEndOffsets(ctx, "churn")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "committed offsets at the end", func() (bool, string) {
		fetched, err := adm.FetchOffsets(ctx, groupID)
		if err != nil {
			return false, err.Error()
		}
		for p := range int32(partitions) {
			end, _ := ends.Lookup("churn", p)
			if o, ok := fetched.Lookup("churn", p); !ok || o.At != end.Offset {
				return false, fmtOffsets(fetched) + " ends " + strconv.FormatInt(end.Offset, 10)
			}
		}
		return true, ""
	})
}

func TestClassicMembersLeaveDieAndJoin(t *testing.T) {
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer
	}{
		{"range", kgo.RangeBalancer()},
		{"sticky", kgo.StickyBalancer()},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			membersLeaveDieAndJoin(t, false, kgo.Balancers(tc.balancer))
		})
	}
}
