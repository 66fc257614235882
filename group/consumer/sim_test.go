package consumer

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The tests drive a Group with simulated clients and a fake clock.

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func topicID(name string) [16]byte {
	var id [16]byte
	copy(id[:], name)
	id[15] = 1 // never all zero
	return id
}

func mkTopics(parts map[string]int32) map[string]Topic {
	out := make(map[string]Topic, len(parts))
	for n, p := range parts {
		out[n] = Topic{Name: n, ID: topicID(n), Partitions: p}
	}
	return out
}

// client is a simulated consumer: what it holds, and what it reports.
type client struct {
	id       string
	instance *string
	epoch    int32
	names    []string
	regex    *string
	assignor *string
	// owned is what the client holds now: what it was assigned, plus
	// what it was told to give up but has not yet released.
	owned map[topicPartition]bool
	// lazy clients do not release revoked partitions until told to.
	lazy bool
	// joined is false until a join succeeds, and after a fence.
	joined bool
}

type sim struct {
	t       *testing.T
	g       *Group
	now     time.Time
	topics  map[string]Topic
	clients []*client
	epoch   int32 // last group epoch seen
}

func newSim(t *testing.T, cfg Config, parts map[string]int32) *sim {
	return &sim{t: t, g: New("g", cfg), now: t0, topics: mkTopics(parts)}
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.SessionTimeout = 45 * time.Second
	cfg.HeartbeatInterval = 5 * time.Second
	return cfg
}

func (s *sim) newClient(id string, names ...string) *client {
	c := &client{id: id, names: names, owned: map[topicPartition]bool{}}
	s.clients = append(s.clients, c)
	return c
}

func (c *client) ownedTopics() []kmsg.ConsumerGroupHeartbeatRequestTopic {
	a := assignmentOf(slices.Collect(maps.Keys(c.owned)))
	out := []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	for _, t := range a.sortedTopics() {
		out = append(out, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: t, Partitions: a[t]})
	}
	return out
}

// request builds the heartbeat c sends: a full one when joining or when
// full is set, else one that leaves every optional field null except the
// owned partitions (which a keepalive may also omit).
func (c *client) request(full, omitOwned bool) *kmsg.ConsumerGroupHeartbeatRequest {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group = "g"
	req.MemberID = c.id
	req.MemberEpoch = c.epoch
	if !c.joined {
		req.MemberEpoch = 0
		c.owned = map[topicPartition]bool{}
	}
	if full || !c.joined {
		req.InstanceID = c.instance
		req.RebalanceTimeoutMillis = 60000
		req.ServerAssignor = c.assignor
		if c.regex != nil {
			req.SubscribedTopicRegex = c.regex
		} else {
			req.SubscribedTopicNames = slices.Clone(c.names)
			if req.SubscribedTopicNames == nil {
				req.SubscribedTopicNames = []string{}
			}
		}
	}
	if !omitOwned || !c.joined {
		req.Topics = c.ownedTopics()
	}
	return req
}

// send sends req for c, applies the response as a client would and checks
// the invariants.
func (s *sim) send(c *client, req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	s.t.Helper()
	resp := s.g.Heartbeat(s.now, 1, Client{ID: "client-" + c.id, Host: "/10.0.0.1"}, req, s.topics)
	if resp.ErrorCode == 0 && req.MemberEpoch >= 0 {
		if resp.MemberEpoch < req.MemberEpoch {
			s.t.Fatalf("%s: epoch went back from %d to %d", c.id, req.MemberEpoch, resp.MemberEpoch)
		}
		c.joined = true
		c.epoch = resp.MemberEpoch
		if resp.Assignment != nil {
			now := map[topicPartition]bool{}
			for _, t := range resp.Assignment.Topics {
				for _, p := range t.Partitions {
					now[topicPartition{t.TopicID, p}] = true
				}
			}
			for tp := range c.owned {
				if !now[tp] && c.lazy {
					now[tp] = true // still held, released later
				}
			}
			c.owned = now
		}
	} else if resp.ErrorCode != 0 {
		// Fenced or unknown: the client abandons its partitions and
		// rejoins (with the same member id, as KIP-848 clients do).
		c.joined = false
		c.epoch = 0
		c.owned = map[topicPartition]bool{}
	}
	s.check()
	return resp
}

func (s *sim) hb(c *client) *kmsg.ConsumerGroupHeartbeatResponse {
	s.t.Helper()
	return s.send(c, c.request(false, false))
}

// release makes a lazy client give up what it was told to revoke.
func (s *sim) release(c *client) {
	m := s.g.members[c.id]
	for tp := range c.owned {
		if m == nil || !m.assigned.has(tp) {
			delete(c.owned, tp)
		}
	}
}

func (s *sim) leave(c *client, epoch int32) *kmsg.ConsumerGroupHeartbeatResponse {
	s.t.Helper()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch, req.InstanceID = "g", c.id, epoch, c.instance
	resp := s.g.Heartbeat(s.now, 1, Client{}, req, s.topics)
	if resp.ErrorCode == 0 {
		c.joined = false
		c.epoch = 0
		c.owned = map[topicPartition]bool{}
	}
	s.check()
	return resp
}

func (s *sim) tick(d time.Duration) {
	s.now = s.now.Add(d)
	s.g.Tick(s.now)
	// A client whose session the group ended has lost its partitions (a
	// real client stops consuming when its own session times out).
	for _, c := range s.clients {
		if c.joined && s.g.members[c.id] == nil {
			c.joined, c.epoch, c.owned = false, 0, map[topicPartition]bool{}
		}
	}
	s.check()
}

func (s *sim) setTopics(parts map[string]int32) {
	s.topics = mkTopics(parts)
	s.g.SetTopics(s.now, s.topics)
	s.check()
}

// check verifies the invariants: no partition held by two clients, the
// group epoch never decreases, and the group's own bookkeeping agrees
// with its members.
func (s *sim) check() {
	s.t.Helper()
	holder := map[topicPartition]string{}
	for _, c := range s.clients {
		for tp := range c.owned {
			if other, ok := holder[tp]; ok {
				s.t.Fatalf("partition %v held by %s and %s", tp, other, c.id)
			}
			holder[tp] = c.id
		}
	}
	if e := s.g.Epoch(); e < s.epoch {
		s.t.Fatalf("group epoch went back from %d to %d", s.epoch, e)
	} else {
		s.epoch = e
	}
	owners := map[topicPartition]string{}
	for id, m := range s.g.members {
		hold := func(tp topicPartition) {
			if other, ok := owners[tp]; ok {
				s.t.Fatalf("group: partition %v held by %s and %s", tp, other, id)
			}
			owners[tp] = id
		}
		m.assigned.each(hold)
		m.pendingRevocation.each(hold)
	}
	if !maps.Equal(owners, s.g.owners) {
		s.t.Fatalf("group owners %v, members hold %v", s.g.owners, owners)
	}
}

// settle heartbeats every joined client (releasing what lazy ones were
// told to revoke) until the group is stable.
func (s *sim) settle() {
	s.t.Helper()
	for round := 0; round < 20; round++ {
		for _, c := range s.clients {
			if !c.joined {
				continue
			}
			s.hb(c)
			s.release(c)
		}
		if s.g.State() == Stable {
			// One more round so every client hears the final assignment.
			for _, c := range s.clients {
				if c.joined {
					s.hb(c)
				}
			}
			return
		}
		s.now = s.now.Add(time.Second)
	}
	s.t.Fatalf("group did not settle: state %s", s.g.State())
}

// holdings returns, per client, the number of partitions it holds, and
// checks every partition of topics is held exactly once.
func (s *sim) holdings(topics ...string) map[string]int {
	s.t.Helper()
	seen := map[topicPartition]bool{}
	out := map[string]int{}
	for _, c := range s.clients {
		for tp := range c.owned {
			seen[tp] = true
			out[c.id]++
		}
	}
	for _, name := range topics {
		tp := s.topics[name]
		for p := range tp.Partitions {
			if !seen[topicPartition{tp.ID, p}] {
				s.t.Fatalf("partition %d of %s held by nobody", p, name)
			}
		}
	}
	return out
}

func str(s string) *string { return &s }

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("member-%d", i)
	}
	return out
}
