package broker

// A session's reader watches its partitions between fetches and reads only
// those that changed (fetch_session.go): that each fetch reads what changed
// and little else, that no append is missed however it races the fetches,
// and that the watches end with the partitions, the sessions and the
// topics they belong to.

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/storage"
)

// sessionOf is the cached session of id.
func sessionOf(tb testing.TB, b *Broker, id int32) *fetchSession {
	tb.Helper()
	c := b.fetchSessions
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.byID[id]
	if s == nil {
		tb.Fatalf("no session %d", id)
	}
	return s
}

// lastRead is what the last fetch with s's reader read: how many targets,
// and whether they were every partition.
func lastRead(tb testing.TB, s *fetchSession) (int, bool) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reader == nil {
		tb.Fatal("the session's reader is lent after its fetch was answered")
	}
	return s.reader.lastTargets, s.reader.lastRescan
}

// topicLogs are the logs of the partitions of topic.
func topicLogs(tb testing.TB, b *Broker, topic string, n int) []*storage.Log {
	tb.Helper()
	logs := make([]*storage.Log, n)
	for p := range logs {
		part, ok := b.parts.get(topic, int32(p))
		if !ok {
			tb.Fatalf("no partition %s-%d", topic, p)
		}
		logs[p] = part.log
	}
	return logs
}

// checkWatches fails unless each log has the watches want says.
func checkWatches(tb testing.TB, what string, logs []*storage.Log, want func(p int) int) {
	tb.Helper()
	for p, l := range logs {
		if got := l.Watches(); got != want(p) {
			tb.Fatalf("%s: partition %d has %d watches, want %d", what, p, got, want(p))
		}
	}
}

func TestFetchSessionReadsOnlyWhatChanged(t *testing.T) {
	const partitions = 3000
	b := startHotpathBroker(t)
	createHotpathTopic(t, b, dialHotpath(t, b), "wide", partitions)
	logs := topicLogs(t, b, "wide", partitions)
	lp := &longPoller{c: dialHotpath(t, b), topicID: b.meta.Image().Topics["wide"].ID, logs: logs, session: true}
	lp.open(t)
	s := sessionOf(t, b, lp.req.SessionID)
	if n, all := lastRead(t, s); n != partitions || !all {
		t.Fatalf("the full fetch read %d partitions (all: %v), want all %d", n, all, partitions)
	}
	checkWatches(t, "after the full fetch", logs, func(int) int { return 1 })
	batch := hotpathBatch(t, 1)
	for i := range 100 {
		p := rand.IntN(partitions)
		if i%10 == 9 {
			p = lp.last // the partition the request moves gets a record too
		}
		if _, err := logs[p].Append(batch); err != nil {
			t.Fatal(err)
		}
		lp.send(t)
		lp.c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		lp.receive(t, p)
		// The partition appended to, and the one the request moved: the
		// image is the same, so no fetch reads every partition.
		if n, all := lastRead(t, s); all || n > 2 {
			t.Fatalf("a fetch after an append to one partition read %d of %d (all: %v)", n, partitions, all)
		}
	}
}

// TestFetchSessionLearnsAMovedLogStart moves the log start offset of
// partitions a session is caught up on, without appending: by
// DeleteRecords between fetches and while a fetch waits, and by retention.
// The next response must carry each partition with its new log start
// offset, the fetch having read only it: no fetch of the session reads
// every partition while the image stays the same, so only the log's
// change can have it read.
func TestFetchSessionLearnsAMovedLogStart(t *testing.T) {
	const partitions = 20
	b := startHotpathBroker(t)
	c := dialHotpath(t, b)
	createHotpathTopic(t, b, c, "start", partitions)
	logs := topicLogs(t, b, "start", partitions)
	// Partitions 3 and 7 hold offsets 0 and 1 in one segment, 5 in two.
	for _, p := range []int{3, 5, 7} {
		for i := range 2 {
			if i == 1 && p == 5 {
				if err := logs[p].Roll(); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := logs[p].Append(hotpathBatch(t, 1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	lp := &longPoller{c: dialHotpath(t, b), topicID: b.meta.Image().Topics["start"].ID, logs: logs, session: true}
	lp.open(t) // from the log ends: caught up everywhere
	s := sessionOf(t, b, lp.req.SessionID)

	// starts lists the partitions resp carries, with their log start
	// offsets; it fails on errors and records.
	starts := func(resp *kmsg.FetchResponse) map[int32]int64 {
		t.Helper()
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			t.Fatal(err)
		}
		got := map[int32]int64{}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					t.Fatalf("partition %d: %v", rp.Partition, err)
				}
				if len(rp.RecordBatches) > 0 {
					t.Fatalf("partition %d returned records", rp.Partition)
				}
				got[rp.Partition] = rp.LogStartOffset
			}
		}
		return got
	}
	// fetch sends the next incremental fetch, which does not wait, and
	// checks what it carries and that it read only those partitions.
	fetch := func(what string, want map[int32]int64) {
		t.Helper()
		if got := starts(c.call(nextEpoch(lp.req)).(*kmsg.FetchResponse)); !maps.Equal(got, want) {
			t.Fatalf("%s: the incremental fetch carried %v, want %v", what, got, want)
		}
		if n, all := lastRead(t, s); all || n != len(want) {
			t.Fatalf("%s: the incremental fetch read %d partitions (all: %v), want %d", what, n, all, len(want))
		}
	}
	deleteRecords := func(p int32, offset int64) {
		t.Helper()
		req := kmsg.NewPtrDeleteRecordsRequest()
		req.SetVersion(2)
		req.TimeoutMillis = 30000
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = "start"
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = p, offset
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := dialHotpath(t, b).call(req).(*kmsg.DeleteRecordsResponse)
		if sp := resp.Topics[0].Partitions[0]; sp.ErrorCode != 0 || sp.LowWatermark != offset {
			t.Fatalf("DeleteRecords of partition %d to %d: error %d, low watermark %d", p, offset, sp.ErrorCode, sp.LowWatermark)
		}
	}

	fetch("caught up", map[int32]int64{})
	deleteRecords(3, 1)
	fetch("after DeleteRecords of partition 3", map[int32]int64{3: 1})
	fetch("nothing new since", map[int32]int64{})

	// Retention deletes the first segment of partition 5. The config is
	// the log's alone: a topic config would be a new image, which has a
	// fetch read every partition.
	cfg := logs[5].Config()
	cfg.RetentionBytes = 1
	if err := logs[5].SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := logs[5].EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if got := logs[5].Offsets().LogStart; got != 1 {
		t.Fatalf("retention left partition 5 starting at %d, want 1", got)
	}
	fetch("after retention of partition 5", map[int32]int64{5: 1})

	// While a fetch waits: its long poll reads partition 7 when its log
	// start moves, and the response, when the wait ends without records,
	// carries it.
	wait := *nextEpoch(lp.req)
	wait.MinBytes, wait.MaxWaitMillis = 1, 500
	if _, err := c.nc.Write(hotpathFrame(&wait)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the fetch holds the session's reader", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.reader == nil
	})
	deleteRecords(7, 2)
	c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	body, err := c.readResponse()
	if err != nil {
		t.Fatal(err)
	}
	if got := starts(decodeHotpathResponse(t, &wait, body).(*kmsg.FetchResponse)); !maps.Equal(got, map[int32]int64{7: 2}) {
		t.Fatalf("DeleteRecords of partition 7 while a fetch waited: the fetch carried %v, want 7 at 2", got)
	}
	if n, all := lastRead(t, s); all || n != 1 {
		t.Fatalf("the waiting fetch read %d partitions (all: %v), want 1", n, all)
	}
}

// TestFetchSessionMissesNoAppendRacingFetches appends to random partitions
// of a session from another goroutine while a client long-polls the
// session as a consumer does, sending the partitions that returned records
// at their next offset. Every record must come back once, in order, and
// without a rescan to find what the waiter missed: a missed append leaves
// the long poll waiting past the read deadline.
func TestFetchSessionMissesNoAppendRacingFetches(t *testing.T) {
	const partitions, appends = 1000, 3000
	b := startHotpathBroker(t)
	createHotpathTopic(t, b, dialHotpath(t, b), "racing", partitions)
	logs := topicLogs(t, b, "racing", partitions)
	lp := &longPoller{c: dialHotpath(t, b), topicID: b.meta.Image().Topics["racing"].ID, logs: logs, session: true}
	lp.open(t)
	req := lp.req
	req.MinBytes = 1
	all := req.Topics[0].Partitions
	done := make(chan error, 1)
	batch := hotpathBatch(t, 1)
	go func() {
		for range appends {
			for range rand.IntN(1 << rand.IntN(10)) {
				runtime.Gosched()
			}
			if _, err := logs[rand.IntN(partitions)].Append(batch); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	received := 0
	var moved []int32 // the partitions that returned records last
	for received < appends {
		rt := kmsg.NewFetchRequestTopic()
		rt.TopicID = lp.topicID
		for _, p := range moved {
			rt.Partitions = append(rt.Partitions, all[p])
		}
		req.Topics = []kmsg.FetchRequestTopic{rt}
		lp.c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp := lp.c.call(req).(*kmsg.FetchResponse)
		req.SessionEpoch++
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			t.Fatal(err)
		}
		moved = moved[:0]
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					t.Fatalf("partition %d: %v", rp.Partition, err)
				}
				if len(rp.RecordBatches) == 0 {
					continue
				}
				at := &all[rp.Partition].FetchOffset
				next, n := batchesFrom(t, rp.RecordBatches, *at)
				*at, received = next, received+n
				moved = append(moved, rp.Partition)
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for p, l := range logs {
		if end := l.Offsets().LogEnd; all[p].FetchOffset != end {
			t.Fatalf("partition %d read to %d, its end is %d", p, all[p].FetchOffset, end)
		}
	}
}

// batchesFrom checks that record batches start at offset and follow each
// other, and returns the offset after them and their records.
func batchesFrom(tb testing.TB, b []byte, offset int64) (next int64, records int) {
	tb.Helper()
	for len(b) > 0 {
		// Base offset, length, leader epoch, magic, CRC, attributes, last
		// offset delta, first and max timestamps, producer id and epoch,
		// base sequence, record count.
		if len(b) < 61 {
			tb.Fatalf("a batch of %d bytes", len(b))
		}
		base := int64(binary.BigEndian.Uint64(b))
		size := 12 + int(binary.BigEndian.Uint32(b[8:]))
		if base != offset || size > len(b) {
			tb.Fatalf("a batch at %d of %d bytes, want one at %d", base, size, offset)
		}
		offset = base + int64(binary.BigEndian.Uint32(b[23:])) + 1
		records += int(binary.BigEndian.Uint32(b[57:]))
		b = b[size:]
	}
	return offset, records
}

// TestFetchSessionWatchesEnd checks that the watches of a session's
// partitions end when the partitions are forgotten (also while a fetch in
// the session waits), when the session is closed, evicted (also while a
// fetch in it waits) or dropped idle.
func TestFetchSessionWatchesEnd(t *testing.T) {
	const partitions = 8
	b := startOneSessionBroker(t)
	createHotpathTopic(t, b, dialHotpath(t, b), "ends", partitions)
	logs := topicLogs(t, b, "ends", partitions)
	id := b.meta.Image().Topics["ends"].ID
	open := func() *longPoller {
		lp := &longPoller{c: dialHotpath(t, b), topicID: id, logs: logs, session: true}
		lp.open(t)
		return lp
	}
	one := func(int) int { return 1 }
	none := func(int) int { return 0 }

	a := open()
	checkWatches(t, "a session opened", logs, one)
	forget := a.req
	forget.Topics = nil
	forget.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{{TopicID: id, Partitions: []int32{0, 1, 2, 3}}}
	forget.MaxWaitMillis = 0
	if resp := a.c.call(forget).(*kmsg.FetchResponse); resp.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(resp.ErrorCode))
	}
	checkWatches(t, "partitions 0-3 forgotten", logs, func(p int) int { return p / 4 })
	closing := *forget
	closing.SessionEpoch, closing.ForgottenTopics = -1, nil
	a.c.call(&closing)
	checkWatches(t, "the session closed", logs, none)

	// Partitions forgotten by a fetch while another waits, which holds the
	// session's reader: the watches end when it gives the reader back.
	a = open()
	s := sessionOf(t, b, a.req.SessionID)
	waitForFetch := func() {
		eventually(t, "the fetch holds the session's reader", func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.reader == nil
		})
	}
	a.send(t)
	waitForFetch()
	meanwhile := *a.req
	meanwhile.Topics, meanwhile.MaxWaitMillis = nil, 0
	meanwhile.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{{TopicID: id, Partitions: []int32{6, 7}}}
	a.req.SessionEpoch++
	if resp := dialHotpath(t, b).call(&meanwhile).(*kmsg.FetchResponse); resp.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(resp.ErrorCode))
	}
	if _, err := logs[5].Append(hotpathBatch(t, 1)); err != nil {
		t.Fatal(err)
	}
	a.c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	a.receive(t, 5)
	checkWatches(t, "partitions 6-7 forgotten while a fetch waited", logs, func(p int) int { return 1 - p/6 })

	// Evicted by another session, while a fetch in it waits.
	a.send(t)
	waitForFetch()
	other := open() // evicts a: the cache has one slot
	if _, err := logs[4].Append(hotpathBatch(t, 1)); err != nil {
		t.Fatal(err)
	}
	a.receive(t, 4)
	checkWatches(t, "a session evicted while a fetch in it waited", logs, one) // the other's
	// Evicted between fetches.
	_ = other
	open()
	checkWatches(t, "a session evicted between fetches", logs, one)
	b.fetchSessions.get(0, time.Now().Add(fetchSessionIdle+time.Minute))
	checkWatches(t, "sessions dropped idle", logs, none)
}

// startOneSessionBroker is startHotpathBroker with room for one session.
func startOneSessionBroker(tb testing.TB) *Broker {
	tb.Helper()
	return startBroker(tb, func(c *Config) { c.FetchSessionCacheSlots = 1 })
}

// TestFetchSessionFollowsTopicsDeletedAndCreatedAgain deletes a topic that
// sessions by name and by id read, and creates it again: the old logs lose
// their watches once the sessions answer errors, the session by name
// watches the new logs and returns what is appended to them, with no
// rescan but those a new image brings.
func TestFetchSessionFollowsTopicsDeletedAndCreatedAgain(t *testing.T) {
	const partitions = 4
	b := startHotpathBroker(t)
	c := dialHotpath(t, b)
	createHotpathTopic(t, b, c, "again", partitions)
	old := topicLogs(t, b, "again", partitions)
	byID := &longPoller{c: dialHotpath(t, b), topicID: b.meta.Image().Topics["again"].ID, logs: old, session: true}
	byID.open(t)
	byName := newNameSession(t, b, "again", partitions)
	checkWatches(t, "two sessions opened", old, func(int) int { return 2 })

	del := kmsg.NewPtrDeleteTopicsRequest()
	del.SetVersion(5)
	del.TimeoutMillis = 30000
	del.TopicNames = []string{"again"}
	if resp := c.call(del).(*kmsg.DeleteTopicsResponse); resp.Topics[0].ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
	byID.req.MaxWaitMillis = 0
	eventually(t, "both sessions answer errors", func() bool {
		return allFailed(byID.c.call(nextEpoch(byID.req)), kerr.UnknownTopicID) &&
			allFailed(byName.fetch(), kerr.UnknownTopicOrPartition)
	})
	checkWatches(t, "the topic deleted", old, func(int) int { return 0 })
	eventually(t, "the deleted partitions are gone", func() bool {
		_, ok := b.parts.get("again", 0)
		return !ok
	})
	createHotpathTopic(t, b, c, "again", partitions)
	fresh := topicLogs(t, b, "again", partitions)
	eventually(t, "the session by name serves the new topic", func() bool {
		return allFailed(byName.fetch(), nil)
	})
	checkWatches(t, "the topic created again", fresh, func(int) int { return 1 })
	if _, err := fresh[2].Append(hotpathBatch(t, 1)); err != nil {
		t.Fatal(err)
	}
	resp := byName.fetch()
	if got := returnedRecords(resp); len(got) != 1 || got[0] != 2 {
		t.Fatalf("after an append to partition 2 of the new topic, records of %v", got)
	}
}

// nameSession is a fetch session by topic name (Fetch v12) over one topic.
type nameSession struct {
	c   *hotpathClient
	req *kmsg.FetchRequest
}

func newNameSession(tb testing.TB, b *Broker, topic string, partitions int32) *nameSession {
	req := NewFetchReq().Version(12).Wait(0, 1).MaxBytes(1<<20).
		Session(0, 0). // opens a session
		Topic(topic, [16]byte{}, 0, firstPartitions(partitions)...).
		Request()
	ns := &nameSession{c: dialHotpath(tb, b), req: req}
	resp := ns.c.call(req).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || resp.SessionID <= 0 {
		tb.Fatalf("opening a session by name: error %d, id %d", resp.ErrorCode, resp.SessionID)
	}
	req.SessionID, req.SessionEpoch, req.Topics = resp.SessionID, 1, nil
	return ns
}

// fetch sends the next incremental fetch, which does not wait.
func (ns *nameSession) fetch() *kmsg.FetchResponse {
	return ns.c.call(nextEpoch(ns.req)).(*kmsg.FetchResponse)
}

// nextEpoch returns req as an incremental fetch that names no partition and
// does not wait, and moves req to the epoch after.
func nextEpoch(req *kmsg.FetchRequest) *kmsg.FetchRequest {
	send := *req
	send.Topics, send.ForgottenTopics, send.MaxWaitMillis = nil, nil, 0
	req.SessionEpoch++
	return &send
}

// allFailed reports whether every partition of a successful response
// failed with want, or, for want nil, whether the response carries
// partitions and none failed.
func allFailed(r kmsg.Response, want error) bool {
	resp := r.(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 {
		panic(fmt.Sprintf("fetch failed: %v", kerr.ErrorForCode(resp.ErrorCode)))
	}
	n := 0
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			n++
			if err := kerr.ErrorForCode(rp.ErrorCode); err != want {
				return false
			}
		}
	}
	return n > 0
}

// returnedRecords lists the partitions a response returned records of.
func returnedRecords(resp *kmsg.FetchResponse) []int32 {
	var out []int32
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if len(rp.RecordBatches) > 0 {
				out = append(out, rp.Partition)
			}
		}
	}
	return out
}

// TestFetchSessionReadCommittedSeesTheStableOffsetMove keeps a read
// committed session caught up at a partition's last stable offset, below
// its high watermark, and then moves the stable offset without appending:
// the session's long poll must return the records now stable, with no
// rescan to find them.
func TestFetchSessionReadCommittedSeesTheStableOffsetMove(t *testing.T) {
	const partitions = 50
	b := startHotpathBroker(t)
	createHotpathTopic(t, b, dialHotpath(t, b), "stable", partitions)
	logs := topicLogs(t, b, "stable", partitions)
	if _, err := logs[7].Append(hotpathBatch(t, 1)); err != nil {
		t.Fatal(err)
	}
	logs[7].SetFirstUnstable(0) // as an open transaction would
	c := dialHotpath(t, b)
	req := NewFetchReq().Version(17).ReadCommitted().Wait(0, 1).MaxBytes(1<<20).Session(0, 0).
		Topic("", b.meta.Image().Topics["stable"].ID, 0, firstPartitions(partitions)...).
		Request()
	resp := c.call(req).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || resp.SessionID <= 0 || len(returnedRecords(resp)) != 0 {
		t.Fatalf("the full fetch: error %d, session %d, records of %v", resp.ErrorCode, resp.SessionID, returnedRecords(resp))
	}
	req.SessionID, req.SessionEpoch, req.Topics = resp.SessionID, 1, nil
	if got := returnedRecords(c.call(nextEpoch(req)).(*kmsg.FetchResponse)); len(got) != 0 {
		t.Fatalf("records of %v above the last stable offset", got)
	}
	// Caught up, partition 7 too: only a change of its log has it read.
	if n, all := lastRead(t, sessionOf(t, b, req.SessionID)); n != 0 || all {
		t.Fatalf("an incremental fetch with nothing new read %d partitions (all: %v)", n, all)
	}
	req.MaxWaitMillis = 20000
	if _, err := c.nc.Write(hotpathFrame(req)); err != nil {
		t.Fatal(err)
	}
	logs[7].SetFirstUnstable(-1) // the transaction ends
	c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	body, err := c.readResponse()
	if err != nil {
		t.Fatalf("the stable offset moved, but the long poll did not answer: %v", err)
	}
	if got := returnedRecords(decodeHotpathResponse(t, req, body).(*kmsg.FetchResponse)); len(got) != 1 || got[0] != 7 {
		t.Fatalf("after the stable offset moved, records of %v", got)
	}
}
