package broker

// The fetch session state machine (fetch_session.go) without a broker:
// which requests open, use and close sessions, what sessions hold after a
// sequence of incremental fetches, what an incremental response carries,
// and the cache's eviction.

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/storage"
)

// sessionReq is a Fetch request of version v in session id at epoch,
// asking for the partitions of topics (name → partition → fetch offset)
// and forgetting those of forgotten.
func sessionReq(v int16, id, epoch int32, topics map[string]map[int32]int64, forgotten map[string][]int32) *kmsg.FetchRequest {
	req := NewFetchReq().Version(v).Session(id, epoch)
	for _, name := range slices.Sorted(maps.Keys(topics)) {
		req.TopicAt(name, testTopicID(name), topics[name])
	}
	for _, name := range slices.Sorted(maps.Keys(forgotten)) {
		req.Forget(name, testTopicID(name), forgotten[name]...)
	}
	return req.Request()
}

// testTopicID is a topic id made from its name.
func testTopicID(name string) (id [16]byte) {
	copy(id[:], name)
	id[15] = 1
	return id
}

// sessionOffsets is what s holds: topic (name, or id for a session by id)
// → partition → fetch offset, and the partitions in fetch order.
func sessionOffsets(s *fetchSession) (map[string]map[int32]int64, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[int32]int64{}
	var order []string
	var prev *sessionPartition
	for p := s.first; p != nil; p = p.next {
		if p.prev != prev || (prev != nil && prev.seq >= p.seq) {
			panic(fmt.Sprintf("partition %v is linked wrong in the order", p.key))
		}
		prev = p
		name := p.key.topic
		if s.byID {
			name = string(trimZeros(p.key.id[:15])) // testTopicID's
		}
		if out[name] == nil {
			out[name] = map[int32]int64{}
		}
		out[name][p.key.partition] = p.pos.fetchOffset
		order = append(order, fmt.Sprintf("%s-%d", name, p.key.partition))
		if s.parts[p.key] != p {
			panic(fmt.Sprintf("partition %v is in the order but not the index", p.key))
		}
	}
	if prev != s.last || len(s.parts) != len(order) {
		panic(fmt.Sprintf("%d partitions indexed, %d in order", len(s.parts), len(order)))
	}
	return out, order
}

func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

// counter draws session ids 1, 2, 3, ….
func counter() func() int32 {
	n := int32(0)
	return func() int32 { n++; return n }
}

func TestFetchSessionLifecycle(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newFetchSessionCache(10, time.Minute, counter())
	for _, v := range []int16{7, 12, 13, 17} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			// A full fetch at epoch 0 opens a session of its partitions.
			s, full, err := c.begin(v, sessionReq(v, 0, 0, map[string]map[int32]int64{"a": {0: 5, 1: 7}, "b": {0: 1}}, nil), now)
			if err != nil || !full || s == nil {
				t.Fatalf("epoch 0: session %v, full %v, err %v", s, full, err)
			}
			id := c.add(s, now)
			if id <= 0 || c.len() == 0 {
				t.Fatalf("session id %d, cache of %d", id, c.len())
			}
			want := map[string]map[int32]int64{"a": {0: 5, 1: 7}, "b": {0: 1}}
			if got, _ := sessionOffsets(s); !maps.EqualFunc(got, want, maps.Equal) {
				t.Fatalf("opened session holds %v, want %v", got, want)
			}

			// An incremental fetch updates, adds and forgets.
			got, full, err := c.begin(v, sessionReq(v, id, 1, map[string]map[int32]int64{"a": {1: 9}, "c": {3: 0}}, map[string][]int32{"b": {0}}), now)
			if err != nil || full || got != s {
				t.Fatalf("epoch 1: session %p (want %p), full %v, err %v", got, s, full, err)
			}
			want = map[string]map[int32]int64{"a": {0: 5, 1: 9}, "c": {3: 0}}
			if got, _ := sessionOffsets(s); !maps.EqualFunc(got, want, maps.Equal) {
				t.Fatalf("after epoch 1 the session holds %v, want %v", got, want)
			}

			// The same epoch again, a later one, and an unknown id are
			// refused and change nothing.
			for _, tc := range []struct {
				id, epoch int32
				want      error
			}{{id, 1, kerr.InvalidFetchSessionEpoch}, {id, 3, kerr.InvalidFetchSessionEpoch}, {id + 1000, 2, kerr.FetchSessionIDNotFound}} {
				_, _, err := c.begin(v, sessionReq(v, tc.id, tc.epoch, map[string]map[int32]int64{"a": {0: 100}}, map[string][]int32{"c": {3}}), now)
				if !errors.Is(err, tc.want) {
					t.Errorf("id %d epoch %d: %v, want %v", tc.id, tc.epoch, err, tc.want)
				}
			}
			// Topic names where the session has ids, or the reverse.
			other := int16(12)
			if v <= 12 {
				other = 13
			}
			if _, _, err := c.begin(other, sessionReq(other, id, 2, nil, nil), now); !errors.Is(err, kerr.FetchSessionTopicIDError) {
				t.Errorf("v%d fetch in a v%d session: %v", other, v, err)
			}
			if got, _ := sessionOffsets(s); !maps.EqualFunc(got, want, maps.Equal) {
				t.Fatalf("refused fetches changed the session to %v, want %v", got, want)
			}
			if _, _, err := c.begin(v, sessionReq(v, id, 2, nil, nil), now); err != nil {
				t.Fatalf("epoch 2 after refused fetches: %v", err)
			}

			// Epoch -1 with the id closes the session.
			if s, _, err := c.begin(v, sessionReq(v, id, -1, map[string]map[int32]int64{"a": {0: 1}}, nil), now); s != nil || err != nil {
				t.Fatalf("epoch -1: session %v, err %v", s, err)
			}
			if _, _, err := c.begin(v, sessionReq(v, id, 3, nil, nil), now); !errors.Is(err, kerr.FetchSessionIDNotFound) {
				t.Fatalf("fetch in a closed session: %v", err)
			}

			// Epoch 0 with an id closes that session and opens another.
			s, _, _ = c.begin(v, sessionReq(v, 0, 0, map[string]map[int32]int64{"a": {0: 1}}, nil), now)
			first := c.add(s, now)
			s, full, _ = c.begin(v, sessionReq(v, first, 0, map[string]map[int32]int64{"a": {0: 2}}, nil), now)
			second := c.add(s, now)
			if !full || second == first {
				t.Fatalf("reopening session %d gave %d (full %v)", first, second, full)
			}
			if _, _, err := c.begin(v, sessionReq(v, first, 1, nil, nil), now); !errors.Is(err, kerr.FetchSessionIDNotFound) {
				t.Fatalf("the session a full fetch named is still open: %v", err)
			}
			c.remove(second)
		})
	}
	if c.len() != 0 {
		t.Fatalf("%d sessions left", c.len())
	}
}

func TestFetchSessionNoneBeforeV7OrWithoutSlots(t *testing.T) {
	now := time.Now()
	c := newFetchSessionCache(10, time.Minute, counter())
	req := sessionReq(6, 0, 0, map[string]map[int32]int64{"a": {0: 0}}, nil)
	if s, _, err := c.begin(6, req, now); s != nil || err != nil {
		t.Errorf("v6: session %v, err %v", s, err)
	}
	// Before v7 the fields are not on the wire: whatever kmsg leaves in
	// them means nothing.
	req.SessionID, req.SessionEpoch = 3, 5
	if s, _, err := c.begin(6, req, now); s != nil || err != nil {
		t.Errorf("v6 with an epoch: session %v, err %v", s, err)
	}
	none := newFetchSessionCache(0, time.Minute, counter())
	s, full, err := none.begin(7, sessionReq(7, 0, 0, map[string]map[int32]int64{"a": {0: 0}}, nil), now)
	if s != nil || full || err != nil {
		t.Errorf("cache without slots: session %v, full %v, err %v", s, full, err)
	}
}

func TestFetchSessionEpochWrapsToOne(t *testing.T) {
	c := newFetchSessionCache(1, time.Minute, counter())
	s, _, _ := c.begin(13, sessionReq(13, 0, 0, map[string]map[int32]int64{"a": {0: 0}}, nil), time.Now())
	id := c.add(s, time.Now())
	s.epoch = math.MaxInt32
	if _, _, err := c.begin(13, sessionReq(13, id, math.MaxInt32, nil, nil), time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.begin(13, sessionReq(13, id, 1, nil, nil), time.Now()); err != nil {
		t.Fatalf("the epoch after 2^31-1: %v", err)
	}
}

func TestFetchSessionCacheEvictsLeastRecentlyUsed(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := newFetchSessionCache(2, time.Minute, counter())
	open := func(at time.Time) int32 {
		s, _, _ := c.begin(13, sessionReq(13, 0, 0, map[string]map[int32]int64{"a": {0: 0}}, nil), at)
		return c.add(s, at)
	}
	alive := func(id int32, at time.Time) bool { return c.get(id, at) != nil }
	a := open(t0)
	b := open(t0.Add(time.Second))
	if !alive(a, t0.Add(2*time.Second)) { // a is now the most recently used
		t.Fatal("session a gone")
	}
	cc := open(t0.Add(3 * time.Second))
	if alive(b, t0.Add(4*time.Second)) {
		t.Error("the least recently used session (b) was kept")
	}
	if !alive(a, t0.Add(4*time.Second)) || !alive(cc, t0.Add(4*time.Second)) {
		t.Error("a recently used session was evicted")
	}
	if c.len() != 2 {
		t.Errorf("cache of 2 slots holds %d", c.len())
	}
	// Sessions unused for longer than idle are dropped.
	late := t0.Add(4*time.Second + time.Minute + time.Millisecond)
	if alive(a, late) || alive(cc, late) || c.len() != 0 {
		t.Errorf("idle sessions kept: %d", c.len())
	}

	// A cache of one slot: each session opened evicts the other.
	one := newFetchSessionCache(1, time.Minute, counter())
	var ids []int32
	for i := range 3 {
		s, _, _ := one.begin(13, sessionReq(13, 0, 0, nil, nil), t0)
		ids = append(ids, one.add(s, t0.Add(time.Duration(i))))
	}
	if one.get(ids[0], t0) != nil || one.get(ids[1], t0) != nil || one.get(ids[2], t0) == nil {
		t.Errorf("cache of one slot after 3 sessions: %v", ids)
	}
}

func TestFetchSessionIDsArePositiveAndUnique(t *testing.T) {
	draws := []int32{5, 0, -3, 5, 5, 6}
	c := newFetchSessionCache(10, time.Minute, func() int32 { d := draws[0]; draws = draws[1:]; return d })
	var ids []int32
	for range 2 {
		s, _, _ := c.begin(13, sessionReq(13, 0, 0, nil, nil), time.Now())
		ids = append(ids, c.add(s, time.Now()))
	}
	if !slices.Equal(ids, []int32{5, 6}) {
		t.Fatalf("ids %v, want [5 6]: ids are positive and not reused while cached", ids)
	}
	for range 1000 {
		if id := randomSessionID(); id <= 0 {
			t.Fatalf("random session id %d", id)
		}
	}
}

// TestSessionPartitionRespond checks what an incremental response carries
// of one partition over a sequence of fetches.
func TestSessionPartitionRespond(t *testing.T) {
	offs := func(hw, lso, start int64) storage.Offsets {
		return storage.Offsets{HighWatermark: hw, LastStable: lso, LogStart: start, LogEnd: hw}
	}
	p := &sessionPartition{sent: unsent}
	steps := []struct {
		what            string
		records, failed bool
		offs            storage.Offsets
		want            bool
	}{
		{"never sent", false, false, offs(0, 0, 0), true},
		{"unchanged", false, false, offs(0, 0, 0), false},
		{"records", true, false, offs(3, 3, 0), true},
		{"caught up, same offsets", false, false, offs(3, 3, 0), false},
		{"high watermark moved", false, false, offs(4, 3, 0), true},
		{"last stable offset moved", false, false, offs(4, 4, 0), true},
		{"log start moved", false, false, offs(4, 4, 2), true},
		{"unchanged again", false, false, offs(4, 4, 2), false},
		{"records, offsets the same", true, false, offs(4, 4, 2), true},
		{"error", false, true, storage.Offsets{}, true},
		{"error again", false, true, storage.Offsets{}, true},
		{"recovered, offsets as before the error", false, false, offs(4, 4, 2), true},
		{"unchanged after recovery", false, false, offs(4, 4, 2), false},
	}
	for _, st := range steps {
		if got := p.respond(st.records, st.failed, st.offs); got != st.want {
			t.Errorf("%s: carried %v, want %v", st.what, got, st.want)
		}
	}
}

// TestFetchSessionRespond checks a session's response over its targets:
// a full fetch carries every partition, an incremental one the changed.
func TestFetchSessionRespond(t *testing.T) {
	s := newFetchSession(true, sessionReq(13, 0, 0, map[string]map[int32]int64{"a": {0: 0, 1: 0, 2: 0}}, nil).Topics)
	read := func(full bool, outcomes ...fetchRead) []bool {
		targets := allTargets(s)
		for i := range targets {
			targets[i].read = outcomes[i]
		}
		s.respond(targets, full, true)
		var inc []bool
		for _, t := range targets {
			inc = append(inc, t.include)
		}
		return inc
	}
	at := func(hw int64) fetchRead {
		return fetchRead{offsets: storage.Offsets{HighWatermark: hw, LastStable: hw}}
	}
	failed := fetchRead{err: kerr.UnknownTopicID}
	if got := read(true, at(1), at(1), at(1)); !slices.Equal(got, []bool{true, true, true}) {
		t.Fatalf("full: %v", got)
	}
	if got := read(true, at(1), at(1), at(1)); !slices.Equal(got, []bool{true, true, true}) {
		t.Fatalf("full, unchanged: %v", got)
	}
	if got := read(false, at(1), at(2), failed); !slices.Equal(got, []bool{false, true, true}) {
		t.Fatalf("incremental: %v", got)
	}
	if got := read(false, at(1), at(2), at(1)); !slices.Equal(got, []bool{false, false, true}) {
		t.Fatalf("incremental after an error: %v", got)
	}
}

// TestFetchSessionMatchesModel runs random incremental fetches, some at
// wrong epochs, against a map of what the session should hold, and a map of
// what it last sent.
func TestFetchSessionMatchesModel(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		byID := seed%2 == 0
		v := int16(12)
		if byID {
			v = 13
		}
		c := newFetchSessionCache(4, time.Hour, counter())
		model := map[string]map[int32]int64{}
		sent := map[string]int64{} // "topic-partition" → high watermark last sent
		randTopics := func() map[string]map[int32]int64 {
			out := map[string]map[int32]int64{}
			for range rng.IntN(4) {
				name := string(rune('a' + rng.IntN(3)))
				if out[name] == nil {
					out[name] = map[int32]int64{}
				}
				out[name][rng.Int32N(6)] = rng.Int64N(100)
			}
			return out
		}
		req := sessionReq(v, 0, 0, randTopics(), nil)
		s, _, _ := c.begin(v, req, time.Now())
		id := c.add(s, time.Now())
		for name, ps := range sessionReqTopics(req) {
			model[name] = maps.Clone(ps)
		}
		epoch := int32(1)
		for step := range 200 {
			add := randTopics()
			forget := map[string][]int32{}
			for range rng.IntN(3) {
				name := string(rune('a' + rng.IntN(3)))
				forget[name] = append(forget[name], rng.Int32N(6))
			}
			at := epoch
			if rng.IntN(10) == 0 {
				at = epoch + 1 + rng.Int32N(3)
			}
			_, _, err := c.begin(v, sessionReq(v, id, at, add, forget), time.Now())
			if at != epoch {
				if !errors.Is(err, kerr.InvalidFetchSessionEpoch) {
					t.Fatalf("seed %d step %d: epoch %d, want %d: %v", seed, step, at, epoch, err)
				}
			} else {
				if err != nil {
					t.Fatalf("seed %d step %d: %v", seed, step, err)
				}
				epoch++
				for name, ps := range add {
					if model[name] == nil {
						model[name] = map[int32]int64{}
					}
					maps.Copy(model[name], ps)
				}
				for name, ps := range forget {
					for _, p := range ps {
						if _, ok := model[name][p]; ok {
							delete(sent, fmt.Sprintf("%s-%d", name, p))
						}
						delete(model[name], p)
					}
					if len(model[name]) == 0 {
						delete(model, name)
					}
				}
			}
			got, order := sessionOffsets(s)
			if !maps.EqualFunc(got, model, maps.Equal) {
				t.Fatalf("seed %d step %d: session holds %v, want %v", seed, step, got, model)
			}
			if len(order) != len(slices.Compact(slices.Sorted(slices.Values(order)))) {
				t.Fatalf("seed %d step %d: a partition is twice in the order %v", seed, step, order)
			}
			// A fetch: each partition's high watermark moves or not; the
			// response carries exactly those that moved or are new.
			targets := allTargets(s)
			want := make([]bool, len(targets))
			for i := range targets {
				k := order[i]
				hw := sent[k]
				if rng.IntN(3) == 0 {
					hw++
				}
				last, ok := sent[k]
				want[i] = !ok || last != hw
				sent[k] = hw
				targets[i].read = fetchRead{offsets: storage.Offsets{HighWatermark: hw}}
			}
			s.respond(targets, false, true)
			for i := range targets {
				if targets[i].include != want[i] {
					t.Fatalf("seed %d step %d: %s carried %v, want %v", seed, step, order[i], targets[i].include, want[i])
				}
			}
		}
	}
}

// allTargets is what a fetch in s that reads every partition reads, with
// the session's reader.
func allTargets(s *fetchSession) []fetchTarget {
	w := s.lend()
	defer s.giveBack(w)
	if w.session != s {
		panic("the session's reader is lent")
	}
	s.mu.Lock()
	s.mustRescan = true
	s.mu.Unlock()
	s.targets(w, nil, false)
	return slices.Clone(w.targets)
}

// sessionReqTopics is the partitions a request asks for, by topic name
// (deduplicated, the last fetch offset of a partition kept).
func sessionReqTopics(req *kmsg.FetchRequest) map[string]map[int32]int64 {
	out := map[string]map[int32]int64{}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if out[rt.Topic] == nil {
				out[rt.Topic] = map[int32]int64{}
			}
			out[rt.Topic][rp.Partition] = rp.FetchOffset
		}
	}
	return out
}
