package classic

import (
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The property test drives a group with simulated clients doing random
// joins, syncs (the leader gives each of 12 partitions to exactly one
// member), heartbeats, leaves, restarts and ticks of random lengths, and
// checks after every step:
//   - the generation never decreases;
//   - in Stable, the assignments delivered to current members give each
//     partition at most one owner (and so do the group's own records);
//   - the group's internal bookkeeping is consistent;
//   - no reply goes to a request not waiting (the harness checks), and at
//     the end, after time runs on, every JoinGroup and SyncGroup has had
//     exactly one reply.
//
// Set CLASSIC_SEED to replay a run.

const propertyPartitions = 12

type simClient struct {
	name       string
	instanceID *string
	memberID   string
	session    time.Duration
	rebalance  time.Duration
	topics     []string // subscription; changes sometimes

	join, sync Token // outstanding requests (0: none)

	generation int32 // of the last successful join
	leader     bool
	members    []string // from the last join, for the leader
	joined     bool     // a successful join not yet synced
	mustJoin   bool     // the group told the client to (re)join

	prevGeneration int32 // of the join before the last
	lateSync       bool  // the outstanding sync is a late one

	owned    []int32 // partitions of the last successful sync
	ownedGen int32
}

func TestPropertyRandomOperations(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("CLASSIC_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	runs, steps := 6, 4000
	if testing.Short() {
		runs = 2
	}
	for run := range runs {
		s := seed + int64(run)
		t.Run(fmt.Sprint(s), func(t *testing.T) {
			t.Logf("seed %d (CLASSIC_SEED=%d to replay)", s, s)
			runProperty(t, rand.New(rand.NewSource(s)), steps)
		})
	}
}

type sim struct {
	t          *testing.T
	rng        *rand.Rand
	h          *harness
	clients    []*simClient
	byTok      map[Token]*simClient
	lastGen    int32
	stable     int // steps that ended Stable, to see the test gets somewhere
	restarts   int
	staleSyncs int // syncs sent with a generation not the group's
}

func runProperty(t *testing.T, rng *rand.Rand, steps int) {
	cfg := testConfig()
	if rng.Intn(2) == 0 {
		cfg.MaxSize = 4
	}
	s := &sim{t: t, rng: rng, h: newHarness(t, cfg), byTok: make(map[Token]*simClient)}
	for i := range 6 {
		c := &simClient{
			name:      fmt.Sprintf("c%d", i),
			session:   time.Duration(6+rng.Intn(15)) * time.Second,
			rebalance: time.Duration(5+rng.Intn(30)) * time.Second,
			topics:    []string{"t"},
			mustJoin:  true,
		}
		if i < 2 {
			c.instanceID = strp(fmt.Sprintf("i%d", i))
		}
		s.clients = append(s.clients, c)
	}
	states := map[State]int{}
	for step := range steps {
		s.step(step)
		s.check(step)
		states[s.h.g.State()]++
	}
	t.Logf("states %v", states)
	// Quiesce: no more requests; time runs on until nothing is pending.
	for range 1000 {
		if !s.h.untilDeadline(24 * time.Hour) {
			break
		}
		s.dispatch()
		s.check(steps)
	}
	if len(s.h.open) > 0 {
		t.Fatalf("requests never answered: %v", s.h.open)
	}
	if s.h.g.Len() != 0 || s.h.g.State() != Empty {
		t.Fatalf("after every session expired: %s with %d members", s.h.g.State(), s.h.g.Len())
	}
	t.Logf("%d steps, %d of them ending Stable, generation %d, %d broker restarts, %d stale syncs", steps, s.stable, s.h.g.Generation(), s.restarts, s.staleSyncs)
	if s.stable == 0 {
		t.Fatal("the group never became Stable: the simulation tests little")
	}
}

func (s *sim) step(step int) {
	h, rng := s.h, s.rng
	c := s.clients[rng.Intn(len(s.clients))]
	op := rng.Intn(100)
	if rng.Intn(3) > 0 {
		// Clients mostly react promptly to what the group told them.
		for _, i := range rng.Perm(len(s.clients)) {
			if x := s.clients[i]; x.join == 0 && x.sync == 0 && (x.mustJoin || x.joined) {
				c = x
				op = 0 // join
				if x.joined {
					op = 30 // sync
				}
				break
			}
		}
	}
	switch {
	case op < 20: // join, when the client must (or, rarely, when it need not)
		if c.join != 0 || c.sync != 0 || (!c.mustJoin && rng.Intn(10) != 0) {
			return
		}
		c.mustJoin = false
		if rng.Intn(10) == 0 {
			c.topics = []string{"t", fmt.Sprint("u", rng.Intn(3))} // new metadata
		}
		version := int16(3 + rng.Intn(7))
		if c.instanceID != nil && version < 5 {
			version = 5
		}
		c.join = h.joinWith(joinArgs{
			version: version, client: c.name, memberID: c.memberID, instanceID: c.instanceID,
			protocols: protocols("range", c.topics...), session: c.session, rebalance: c.rebalance,
		})
		s.byTok[c.join] = c
	case op < 45: // sync after a successful join
		if c.sync != 0 || c.join != 0 {
			return
		}
		if !c.joined {
			// A SyncGroup from an earlier generation, late: it must not
			// succeed.
			if c.prevGeneration > 0 && rng.Intn(4) == 0 {
				s.staleSyncs++
				c.sync = h.syncWith(5, c.memberID, c.instanceID, c.prevGeneration, nil)
				c.lateSync = true
				s.byTok[c.sync] = c
			}
			return
		}
		var assign map[string][]byte
		if c.leader {
			assign = make(map[string][]byte)
			for p := range propertyPartitions {
				id := c.members[p%len(c.members)]
				assign[id] = append(assign[id], byte(p))
			}
		}
		c.sync = h.syncWith(int16(3+rng.Intn(3)), c.memberID, c.instanceID, c.generation, assign)
		s.byTok[c.sync] = c
	case op < 75: // heartbeat
		if c.memberID == "" {
			return
		}
		gen := c.generation
		if gen == 0 {
			gen = -1
		}
		switch h.g.Heartbeat(h.now, int16(3+rng.Intn(2)), hbReq(c.memberID, c.instanceID, gen)).ErrorCode {
		case unknownMemberID, fencedInstanceID:
			s.reset(c)
		case rebalanceInProgress, illegalGeneration:
			c.joined, c.mustJoin = false, true
		}
	case op < 76: // leave
		if c.memberID == "" {
			return
		}
		if rng.Intn(2) == 0 || c.instanceID != nil {
			h.leave(kmsg.LeaveGroupRequestMember{MemberID: c.memberID, InstanceID: c.instanceID})
		} else {
			req := kmsg.NewPtrLeaveGroupRequest()
			req.MemberID = c.memberID
			_, rs := h.g.Leave(h.now, 1, req)
			h.collect(rs)
		}
		s.reset(c)
	case op < 77: // the client process restarts (a static one keeps its instance id)
		for _, tok := range []Token{c.join, c.sync} {
			if tok != 0 {
				delete(s.byTok, tok) // the old connection is gone; its reply is dropped
			}
		}
		s.reset(c)
	case op < 78 && h.g.State() == Stable && !h.g.Dirty(): // the broker restarts
		if len(h.open) > 0 {
			return
		}
		h.g = Restore("g", h.cfg, h.g.Snapshot(h.now), h.now)
		s.restarts++
	default: // time passes
		d := time.Duration(rng.Intn(1500)) * time.Millisecond
		if rng.Intn(50) == 0 { // a long pause: sessions expire
			d = time.Duration(rng.Intn(40)) * time.Second
		}
		h.advance(d)
	}
	if h.g.Dirty() {
		h.g.Snapshot(h.now)
	}
	s.dispatch()
	_ = step
}

// reset forgets a client's membership (but not its outstanding requests).
func (s *sim) reset(c *simClient) {
	c.memberID, c.generation, c.leader, c.members, c.joined = "", 0, false, nil, false
	c.join, c.sync, c.mustJoin, c.lateSync, c.prevGeneration = 0, 0, true, false, 0
}

// dispatch hands the replies collected by the harness to their clients.
func (s *sim) dispatch() {
	for tok, resp := range s.h.replies {
		c, ok := s.byTok[tok]
		delete(s.byTok, tok)
		delete(s.h.replies, tok)
		if !ok {
			continue
		}
		switch r := resp.(type) {
		case *kmsg.JoinGroupResponse:
			if c.join != tok {
				continue
			}
			c.join = 0
			switch r.ErrorCode {
			case 0:
				if r.Generation != c.generation {
					c.prevGeneration = c.generation
				}
				c.memberID, c.generation, c.joined = r.MemberID, r.Generation, true
				c.leader = r.LeaderID == r.MemberID && len(r.Members) > 0
				c.members = nil
				for _, m := range r.Members {
					c.members = append(c.members, m.MemberID)
				}
			case memberIDRequired:
				c.memberID, c.mustJoin = r.MemberID, true
			case unknownMemberID, fencedInstanceID:
				s.reset(c)
			default:
				c.mustJoin = true
			}
		case *kmsg.SyncGroupResponse:
			if c.sync != tok {
				continue
			}
			c.sync = 0
			if c.lateSync {
				c.lateSync = false
				if r.ErrorCode == 0 {
					s.t.Fatalf("%s: SyncGroup of generation %d succeeded in generation %d", c.memberID, c.prevGeneration, s.h.g.Generation())
				}
				continue
			}
			c.joined = false
			switch r.ErrorCode {
			case 0:
				// A successful SyncGroup is always answered in the call that
				// makes (or finds) the generation Stable.
				if c.generation != s.h.g.Generation() {
					s.t.Fatalf("%s synced generation %d while the group is in %d", c.memberID, c.generation, s.h.g.Generation())
				}
				c.owned = c.owned[:0]
				for _, p := range r.MemberAssignment {
					c.owned = append(c.owned, int32(p))
				}
				c.ownedGen = c.generation
			case unknownMemberID, fencedInstanceID:
				s.reset(c)
			default:
				c.mustJoin = true
			}
		}
	}
}

func (s *sim) check(step int) {
	t, g := s.t, s.h.g
	if gen := g.Generation(); gen < s.lastGen {
		t.Fatalf("step %d: generation went from %d to %d", step, s.lastGen, gen)
	}
	s.lastGen = g.Generation()
	checkConsistent(t, g, step)
	if g.State() != Stable {
		return
	}
	s.stable++
	owner := make(map[int32]string)
	for _, c := range s.clients {
		if _, ok := g.members[c.memberID]; !ok || c.ownedGen != g.Generation() {
			continue
		}
		for _, p := range c.owned {
			if o, dup := owner[p]; dup && o != c.memberID {
				t.Fatalf("step %d: partition %d delivered to %s and %s in generation %d", step, p, o, c.memberID, g.Generation())
			}
			owner[p] = c.memberID
		}
	}
	clear(owner)
	for id, m := range g.members {
		for _, p := range m.assignment {
			if o, dup := owner[int32(p)]; dup {
				t.Fatalf("step %d: partition %d assigned to %s and %s", step, p, o, id)
			}
			owner[int32(p)] = id
		}
	}
}

// checkConsistent checks the group's bookkeeping against itself.
func checkConsistent(t *testing.T, g *Group, step int) {
	t.Helper()
	if len(g.order) != len(g.members) {
		t.Fatalf("step %d: %d ids in order, %d members", step, len(g.order), len(g.members))
	}
	supported := make(map[string]int)
	statics := 0
	for _, id := range g.order {
		m, ok := g.members[id]
		if !ok || m.id != id {
			t.Fatalf("step %d: order names %q, not a member", step, id)
		}
		for _, n := range names(m.protocols) {
			supported[n]++
		}
		if m.instanceID != nil {
			statics++
			if g.static[*m.instanceID] != id {
				t.Fatalf("step %d: instance %q maps to %q, not %q", step, *m.instanceID, g.static[*m.instanceID], id)
			}
		}
		if m.protocolType != g.protocolType {
			t.Fatalf("step %d: member type %q, group type %q", step, m.protocolType, g.protocolType)
		}
		if (g.state == Stable || g.state == CompletingRebalance) && m.metadata(g.Protocol()) == nil {
			t.Fatalf("step %d: member %s does not support the protocol %q", step, id, g.Protocol())
		}
		if g.state != CompletingRebalance && m.sync != nil {
			t.Fatalf("step %d: member %s waits in SyncGroup in state %s", step, id, g.state)
		}
		if (g.state == Stable || g.state == Empty) && m.join != nil {
			t.Fatalf("step %d: member %s waits in JoinGroup in state %s", step, id, g.state)
		}
	}
	if statics != len(g.static) {
		t.Fatalf("step %d: %d static members, %d instance ids", step, statics, len(g.static))
	}
	if len(supported) != len(g.supported) {
		t.Fatalf("step %d: supported %v, want %v", step, g.supported, supported)
	}
	for n, c := range supported {
		if g.supported[n] != c {
			t.Fatalf("step %d: supported %v, want %v", step, g.supported, supported)
		}
	}
	for id := range g.pendingSync {
		if _, ok := g.members[id]; !ok {
			t.Fatalf("step %d: pending sync of non-member %s", step, id)
		}
	}
	for id := range g.pending {
		if _, ok := g.members[id]; ok {
			t.Fatalf("step %d: %s both pending and member", step, id)
		}
	}
	switch {
	case len(g.members) > 0 && g.members[g.leader] == nil:
		t.Fatalf("step %d: leader %q not a member", step, g.leader)
	case len(g.members) == 0 && g.leader != "":
		t.Fatalf("step %d: leader %q of an empty group", step, g.leader)
	case len(g.members) == 0 && (g.state == Stable || g.state == CompletingRebalance):
		t.Fatalf("step %d: %s with no members", step, g.state)
	case g.state == Empty && len(g.members) > 0:
		t.Fatalf("step %d: Empty with %d members", step, len(g.members))
	case g.state == PreparingRebalance && g.joinDeadline.IsZero():
		t.Fatalf("step %d: PreparingRebalance with no join timer", step)
	}
	if _, ok := g.Deadline(); !ok && (len(g.members) > 0 || len(g.pending) > 0) {
		t.Fatalf("step %d: members but no timer", step)
	}
}
