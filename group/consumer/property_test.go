package consumer

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// TestRandomHeartbeatsKeepOwnershipExclusive drives groups with random
// joins, heartbeats (full, partial, with the owned partitions omitted),
// lazy revocations, leaves, static leaves and rejoins, clock ticks, topic
// changes and broker restarts (replay from the records). After every step
// the simulation checks that no partition is held by two clients and that
// the group epoch did not go back; each response checks that the member's
// epoch did not go back. At the end, with the churn stopped, the group
// must settle with every subscribed partition held exactly once.
func TestRandomHeartbeatsKeepOwnershipExclusive(t *testing.T) {
	for seed := range uint64(60) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			runRandom(t, seed)
		})
	}
}

func runRandom(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	parts := map[string]int32{"a": 1 + rng.Int32N(8), "b": 1 + rng.Int32N(8)}
	cfg := testConfig()
	if rng.IntN(2) == 0 {
		cfg.Assignors = []string{"range", "uniform"}
	}
	s := newSim(t, cfg, parts)
	var log []KV
	subscriptions := [][]string{{"a"}, {"b"}, {"a", "b"}, {"a", "c"}}
	for i := range 6 {
		c := s.newClient(fmt.Sprintf("m%d", i), subscriptions[rng.IntN(len(subscriptions))]...)
		c.lazy = rng.IntN(2) == 0
		if rng.IntN(3) == 0 {
			c.instance = str(fmt.Sprintf("inst%d", i))
		}
		if rng.IntN(4) == 0 {
			c.regex = str(`[ab]|c.*`)
		}
		if rng.IntN(3) == 0 {
			c.assignor = str([]string{"uniform", "range"}[rng.IntN(2)])
		}
	}
	pick := func() *client { return s.clients[rng.IntN(len(s.clients))] }
	for step := range 300 {
		switch op := rng.IntN(100); {
		case op < 45:
			c := pick()
			full, omit := rng.IntN(3) == 0, rng.IntN(4) == 0
			s.send(c, c.request(full, omit))
		case op < 60:
			s.release(pick())
		case op < 65:
			if c := pick(); c.joined {
				s.leave(c, -1)
			}
		case op < 70:
			if c := pick(); c.joined && c.instance != nil {
				s.leave(c, -2)
				if rng.IntN(2) == 0 {
					c.id = fmt.Sprintf("%s-restart%d", c.id, step) // comes back as a new member id
				}
			}
		case op < 80:
			s.tick(time.Duration(rng.IntN(30)) * time.Second)
		case op < 85:
			c := pick()
			c.names = subscriptions[rng.IntN(len(subscriptions))]
			s.send(c, c.request(true, false))
		case op < 90:
			next := map[string]int32{}
			for n, p := range parts {
				next[n] = p
			}
			switch rng.IntN(3) {
			case 0:
				next["a"] += rng.Int32N(3)
			case 1:
				next["c"+fmt.Sprint(rng.IntN(3))] = 1 + rng.Int32N(4)
			case 2:
				delete(next, "b")
			}
			parts = next
			s.setTopics(parts)
		case op < 93:
			// Broker restart: replay the records written so far.
			log = append(log, s.g.TakeRecords()...)
			before := s.g.Describe(1, s.topics)
			g := New("g", cfg)
			for _, r := range log {
				if err := g.Replay(r.Key, r.Value); err != nil {
					t.Fatalf("step %d: replay: %v", step, err)
				}
			}
			g.Loaded(s.now)
			if after := g.Describe(1, s.topics); !reflect.DeepEqual(after, before) {
				t.Fatalf("step %d: replay differs:\n%v\n%v", step, after, before)
			}
			s.g = g
			s.check()
		default:
			s.now = s.now.Add(time.Duration(rng.IntN(5)) * time.Second)
		}
		log = append(log, s.g.TakeRecords()...)
	}

	// Stop the churn: every client (re)joins and heartbeats until stable.
	for _, c := range s.clients {
		c.lazy = false
		if !c.joined {
			s.hb(c)
		}
	}
	s.settle()
	subscribed := map[string]bool{}
	for _, m := range s.g.members {
		for _, n := range m.topics {
			subscribed[n] = true
		}
	}
	var names []string
	for n := range subscribed {
		names = append(names, n)
	}
	s.holdings(names...)
	for _, c := range s.clients {
		if m := s.g.members[c.id]; c.joined && (m == nil || c.epoch != s.g.Epoch()) {
			t.Fatalf("%s did not converge (epoch %d, group %d)", c.id, c.epoch, s.g.Epoch())
		}
	}
}
