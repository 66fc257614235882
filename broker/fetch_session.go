package broker

// Fetch sessions (KIP-227).
//
// A consumer of many partitions would otherwise send every partition, and
// get every partition back, on every Fetch. A session lets it send only what
// changed and get back only what changed: the broker keeps, per session, the
// partitions with the fetch offset and limits the client last gave for each,
// and what it last told the client of each (high watermark, last stable
// offset, log start offset).
//
// A request (v7+) names a session by session_id and session_epoch:
//
//	epoch 0    a full fetch that opens a session. Its partitions become the
//	           session's; the response carries them all, and the new
//	           session's id (random, positive), or 0 when the cache has no
//	           room for it: the client then fetches without a session. A
//	           session id sent with it closes that session first.
//	epoch -1   a full fetch without a session; the session named, if any,
//	           is closed. The response's session id is 0.
//	otherwise  an incremental fetch in session session_id, whose epoch must
//	           be the session's next. The request's partitions join the
//	           session or update their fetch offset, partition max bytes,
//	           log start offset and current leader epoch there;
//	           forgotten_topics_data leave it. The fetch answers for every
//	           partition of the session, and its long poll waits on them
//	           all. The response carries only the partitions that return
//	           records or an error, or whose high watermark, last stable
//	           offset or log start offset differ from what the session last
//	           sent. The session moves to the next epoch (after 2^31-1, 1).
//
// An incremental fetch in a session the cache does not hold is answered
// FETCH_SESSION_ID_NOT_FOUND; one at another epoch than the session's next,
// INVALID_FETCH_SESSION_EPOCH; one that names topics by id (v13+) in a
// session opened with names, or the reverse, FETCH_SESSION_TOPIC_ID_ERROR.
// These are top-level errors with no topics, and leave the session as it was.
//
// A session opened with v13+ keys its partitions by topic id, an older one
// by topic name. A partition whose topic is unknown or was deleted stays in
// the session and is answered UNKNOWN_TOPIC_ID (by id) or
// UNKNOWN_TOPIC_OR_PARTITION (by name) on every fetch until the client
// forgets it.
//
// Partitions that return records move to the end of the session's order,
// so that under max_bytes the others are read first the next time, as
// Kafka does. An incremental fetch that leaves a session empty keeps it
// (Kafka closes it and answers without a session id, after which franz-go
// stops using sessions with the broker).
//
// The cache holds Config.FetchSessionCacheSlots sessions (Kafka's
// max.incremental.fetch.session.cache.slots, 1000). A session opened while
// it is full evicts the least recently used one, and a session unused for
// fetchSessionIdle is dropped. As in Kafka, a session is not tied to a
// connection: any request that names it uses it. A session evicted or
// closed ends its watches (at once, or when the fetch holding its reader
// gives it back), and so does a partition forgotten.
//
// A fetch in a session reads only the partitions that may have changed:
// fetch_session_reader.go says how.
//
// This file is the state machine, without I/O: the session of a request,
// its partitions, what a response carries. handleFetch (fetch.go) reads
// the logs between.
//
// Locks: the cache's mu guards the sessions' ids, use times and LRU order; a
// session's mu guards its partitions and epoch. Neither is held while the
// other is taken, nor while a fetch reads or waits, nor while the reader's
// waiter is called (storage/waiter.go has its own locks, taken under a
// log's). A partition's watch fields are the reader's holder's alone. Two
// fetches in one session at once each hold a copy of the partitions'
// positions; what each response sent is recorded under the session's mu,
// so the session stays consistent whatever the order.

import (
	"container/list"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/metadata"
	"github.com/samsa-io/samsa/storage"
)

const (
	// defaultFetchSessionSlots is Kafka's default of
	// max.incremental.fetch.session.cache.slots.
	defaultFetchSessionSlots = 1000
	// fetchSessionIdle is how long a session may go unused before the
	// cache drops it (Kafka makes such a session evictable after 2
	// minutes).
	fetchSessionIdle = 2 * time.Minute
	// sessionlessEpoch and newSessionEpoch are the epochs of full fetches.
	sessionlessEpoch = -1
	newSessionEpoch  = 0
)

// partitionKey names a partition as a request or session does: by topic
// name before Fetch v13, by topic id from v13 (the other is zero).
type partitionKey struct {
	topic     string
	id        metadata.TopicID
	partition int32
}

// sameTopic reports whether k and o name the same topic.
func (k partitionKey) sameTopic(o partitionKey) bool { return k.topic == o.topic && k.id == o.id }

// fetchPosition is what a fetch asks of one partition.
type fetchPosition struct {
	fetchOffset    int64
	logStartOffset int64 // a follower's (v5+); -1 from consumers; kept, not used
	maxBytes       int32 // partition_max_bytes
	leaderEpoch    int32 // current_leader_epoch (v9+); -1 is not checked
}

func positionOf(rp *kmsg.FetchRequestTopicPartition) fetchPosition {
	return fetchPosition{fetchOffset: rp.FetchOffset, logStartOffset: rp.LogStartOffset,
		maxBytes: rp.PartitionMaxBytes, leaderEpoch: rp.CurrentLeaderEpoch}
}

// sentOffsets is what a response told the client of a partition. unsent
// (all -1) is what no response of a partition without an error carries.
type sentOffsets struct {
	highWatermark, lastStable, logStart int64
}

var unsent = sentOffsets{-1, -1, -1}

// sessionPartition is one partition of a session.
type sessionPartition struct {
	key partitionKey // immutable

	// Guarded by the session's mu.
	pos  fetchPosition
	sent sentOffsets // what the session last sent of it; unsent until then, and after an error
	memo readMemo    // what the broker last read of it (fetch.go)
	gone bool        // forgotten: a fetch that still holds it does not put it back
	// prev and next link the session's order; seq rises along it.
	prev, next *sessionPartition
	seq        uint64
	// pending: in the session's pending list, read by its next fetch.
	pending bool

	// The holder's of the session's reader alone.
	watch   *storage.Watch // of watched, by the reader's waiter; nil: none
	watched *storage.Log
	mark    uint64 // the reader's fetch that made it a target last
}

// respond records what a response found for the partition (records
// returned, failed, or its offsets) and reports whether an incremental
// response carries it: when it returned records or failed, or its offsets
// differ from those last sent. A failed partition counts as unsent, so
// that it is sent again once it recovers.
func (p *sessionPartition) respond(records, failed bool, offs storage.Offsets) bool {
	if failed {
		p.sent = unsent
		return true
	}
	now := sentOffsets{highWatermark: offs.HighWatermark, lastStable: offs.LastStable, logStart: offs.LogStart}
	changed := now != p.sent
	p.sent = now
	return records || changed
}

// fetchSession is a fetch session: its partitions in fetch order, and the
// epoch its next incremental fetch must carry.
type fetchSession struct {
	byID bool // immutable: opened with v13+, partitions keyed by topic id

	mu          sync.Mutex
	epoch       int32                              // guarded by mu
	first, last *sessionPartition                  // the fetch order, a list; guarded by mu
	nextSeq     uint64                             // the seq of the next partition put last; guarded by mu
	parts       map[partitionKey]*sessionPartition // the same partitions; guarded by mu
	// pending are the partitions with pending set, and some gone;
	// guarded by mu.
	pending []*sessionPartition
	// forgotten are partitions gone since the reader was lent, whose
	// watches its holder ends; guarded by mu.
	forgotten []*sessionPartition
	reader    *fetchWork // the session's, while no fetch holds it; guarded by mu
	// mustRescan: a fetch without the reader answered, and the reader's
	// next fetch reads every partition. Guarded by mu.
	mustRescan bool
	closed     bool // evicted or closed; guarded by mu

	// id is set when the session is cached, before any request can find
	// it, and not changed after.
	id int32

	// Guarded by the cache's mu.
	lastUsed time.Time
	elem     *list.Element // in the cache's LRU list; nil once evicted
}

// newFetchSession returns a session, not yet cached, of the partitions of
// a full fetch's topics. byID: the fetch is v13+.
func newFetchSession(byID bool, topics []kmsg.FetchRequestTopic) *fetchSession {
	n := countPartitions(topics)
	s := &fetchSession{byID: byID, epoch: 1, parts: make(map[partitionKey]*sessionPartition, n),
		pending: make([]*sessionPartition, 0, n)}
	s.reader = &fetchWork{session: s, waiter: storage.NewWaiter()}
	s.add(topics)
	return s
}

// keyOf is the key in s of partition p of the topic named topic or id.
func (s *fetchSession) keyOf(topic string, id [16]byte, p int32) partitionKey {
	if s.byID {
		return partitionKey{id: id, partition: p}
	}
	return partitionKey{topic: topic, partition: p}
}

// add adds the partitions of topics, or updates those s has; both are
// pending.
func (s *fetchSession) add(topics []kmsg.FetchRequestTopic) {
	var fresh []sessionPartition // allocated together
	for i := range topics {
		rt := &topics[i]
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			k := s.keyOf(rt.Topic, rt.TopicID, rp.Partition)
			p := s.parts[k]
			if p != nil {
				p.pos = positionOf(rp)
			} else {
				if len(fresh) == cap(fresh) {
					fresh = make([]sessionPartition, 0, max(4, countPartitions(topics[i:])))
				}
				fresh = append(fresh, sessionPartition{key: k, pos: positionOf(rp), sent: unsent})
				p = &fresh[len(fresh)-1]
				s.parts[k] = p
				s.putLast(p)
			}
			s.setPending(p)
		}
	}
}

func countPartitions(topics []kmsg.FetchRequestTopic) int {
	n := 0
	for i := range topics {
		n += len(topics[i].Partitions)
	}
	return n
}

// putLast puts p, in no order, at the end of the order.
func (s *fetchSession) putLast(p *sessionPartition) {
	p.prev, p.next = s.last, nil
	if s.last != nil {
		s.last.next = p
	} else {
		s.first = p
	}
	s.last = p
	p.seq = s.nextSeq
	s.nextSeq++
}

// unlink takes p out of the order.
func (s *fetchSession) unlink(p *sessionPartition) {
	if p.prev != nil {
		p.prev.next = p.next
	} else {
		s.first = p.next
	}
	if p.next != nil {
		p.next.prev = p.prev
	} else {
		s.last = p.prev
	}
	p.prev, p.next = nil, nil
}

// setPending makes the next fetch read p.
func (s *fetchSession) setPending(p *sessionPartition) {
	if !p.pending {
		p.pending = true
		s.pending = append(s.pending, p)
	}
}

// forget removes the partitions of forgotten.
func (s *fetchSession) forget(forgotten []kmsg.FetchRequestForgottenTopic) {
	for i := range forgotten {
		ft := &forgotten[i]
		for _, part := range ft.Partitions {
			k := s.keyOf(ft.Topic, ft.TopicID, part)
			if p := s.parts[k]; p != nil {
				p.gone = true
				delete(s.parts, k)
				s.unlink(p)
				s.forgotten = append(s.forgotten, p)
			}
		}
	}
}

// next applies an incremental fetch at epoch, v13+ when byID, to the
// session: its partitions are added or updated, then the forgotten ones
// removed, and the session moves to its next epoch. A fetch at another
// epoch, or naming topics otherwise than the session, changes nothing and
// is refused.
func (s *fetchSession) next(epoch int32, byID bool, topics []kmsg.FetchRequestTopic, forgotten []kmsg.FetchRequestForgottenTopic) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if byID != s.byID {
		return kerr.FetchSessionTopicIDError
	}
	if epoch != s.epoch {
		return kerr.InvalidFetchSessionEpoch
	}
	s.add(topics)
	s.forget(forgotten)
	if s.epoch == math.MaxInt32 {
		s.epoch = 1
	} else {
		s.epoch++
	}
	return nil
}

// respond records what a fetch's response sends of each of its targets,
// and sets their include: all of them for a full fetch, and for an
// incremental one those sessionPartition.respond says. Partitions not
// caught up are pending; those that returned records move to the end of
// the order, in the order read. own: the fetch held the session's reader.
func (s *fetchSession) respond(targets []fetchTarget, full, own bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !own {
		s.mustRescan = true // what it read is not watched
	}
	for i := range targets {
		t := &targets[i]
		p := t.entry
		records, failed, offs := t.outcome()
		t.include = p.respond(records, failed, offs) || full
		p.memo = t.memo
		if p.gone {
			continue
		}
		if !t.memo.caughtUp {
			s.setPending(p)
		}
		if records && p != s.last {
			s.unlink(p)
			s.putLast(p)
		}
	}
}

// fetchSessionCache holds the sessions by id, and evicts the least recently
// used.
type fetchSessionCache struct {
	slots int           // immutable: most sessions held; 0 holds none
	idle  time.Duration // immutable: a session unused this long is dropped
	newID func() int32  // immutable: a random positive id

	mu   sync.Mutex
	byID map[int32]*fetchSession // guarded by mu
	lru  list.List               // of *fetchSession, most recently used first; guarded by mu
	// dropped are the sessions removed, to close once mu is released;
	// guarded by mu.
	dropped []*fetchSession
}

// newFetchSessionCache returns a cache of up to slots sessions (none when
// slots <= 0) whose ids newID draws.
func newFetchSessionCache(slots int, idle time.Duration, newID func() int32) *fetchSessionCache {
	return &fetchSessionCache{slots: max(slots, 0), idle: idle, newID: newID, byID: map[int32]*fetchSession{}}
}

// randomSessionID is a random session id: positive, as clients take 0 and
// below for "no session".
func randomSessionID() int32 { return rand.Int32N(math.MaxInt32) + 1 }

// begin finds the session a fetch request of version v reads: nil for a
// fetch without one; a new session, not yet cached (full), for a full fetch
// that opens one; or the cached session an incremental fetch names, with
// the request applied to it. A session a full fetch names is closed. The
// error is the response's top-level error.
func (c *fetchSessionCache) begin(v int16, req *kmsg.FetchRequest, now time.Time) (s *fetchSession, full bool, err error) {
	if v < 7 {
		return nil, false, nil
	}
	switch req.SessionEpoch {
	case sessionlessEpoch, newSessionEpoch:
		if req.SessionID != 0 {
			c.remove(req.SessionID)
		}
		if req.SessionEpoch == sessionlessEpoch || c.slots == 0 {
			return nil, false, nil
		}
		return newFetchSession(v >= 13, req.Topics), true, nil
	}
	if s = c.get(req.SessionID, now); s == nil {
		return nil, false, kerr.FetchSessionIDNotFound
	}
	if err := s.next(req.SessionEpoch, v >= 13, req.Topics, req.ForgottenTopics); err != nil {
		return nil, false, err
	}
	return s, false, nil
}

// get returns the session of id, marked used at now; nil when there is
// none.
func (c *fetchSessionCache) get(id int32, now time.Time) *fetchSession {
	c.mu.Lock()
	defer c.unlock()
	c.dropIdleLocked(now)
	s := c.byID[id]
	if s != nil {
		s.lastUsed = now
		c.lru.MoveToFront(s.elem)
	}
	return s
}

// add caches s under a new id, evicting the least recently used session
// when the cache is full, and returns the id: 0 when the cache holds no
// sessions (s is then closed).
func (c *fetchSessionCache) add(s *fetchSession, now time.Time) int32 {
	c.mu.Lock()
	defer c.unlock()
	if c.slots == 0 {
		c.dropped = append(c.dropped, s)
		return 0
	}
	c.dropIdleLocked(now)
	for len(c.byID) >= c.slots {
		c.removeLocked(c.lru.Back().Value.(*fetchSession))
	}
	id := c.newID()
	for id <= 0 || c.byID[id] != nil {
		id = c.newID()
	}
	s.id, s.lastUsed = id, now
	s.elem = c.lru.PushFront(s)
	c.byID[id] = s
	return id
}

// remove closes the session of id, if there is one.
func (c *fetchSessionCache) remove(id int32) {
	c.mu.Lock()
	defer c.unlock()
	if s := c.byID[id]; s != nil {
		c.removeLocked(s)
	}
}

// unlock releases mu, then closes the sessions removed meanwhile.
func (c *fetchSessionCache) unlock() {
	dropped := c.dropped
	c.dropped = nil
	c.mu.Unlock()
	for _, s := range dropped {
		s.close()
	}
}

func (c *fetchSessionCache) removeLocked(s *fetchSession) {
	c.lru.Remove(s.elem)
	s.elem = nil
	delete(c.byID, s.id)
	c.dropped = append(c.dropped, s)
}

// dropIdleLocked drops the sessions unused since before now - c.idle.
func (c *fetchSessionCache) dropIdleLocked(now time.Time) {
	for e := c.lru.Back(); e != nil; e = c.lru.Back() {
		s := e.Value.(*fetchSession)
		if now.Sub(s.lastUsed) <= c.idle {
			return
		}
		c.removeLocked(s)
	}
}

// len is how many sessions the cache holds.
func (c *fetchSessionCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID)
}
