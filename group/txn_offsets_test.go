package group

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnLog is __consumer_offsets as the driver writes it: plain records,
// transactional records of a producer, and markers.
type txnLog struct {
	entries []txnEntry
}

type txnEntry struct {
	rec        Record
	producerID int64 // -1 for a plain record
	marker     bool  // a control batch of producerID on rec.Partition
	commit     bool
}

// txnHarness is a harness that also keeps the transactional records and
// the markers in its log, to replay it.
type txnHarness struct {
	*harness
	log txnLog
}

func newTxnHarness(t *testing.T) *txnHarness {
	return &txnHarness{harness: newHarness(t)}
}

func (h *txnHarness) plain(out Output) {
	h.take(out)
	for _, r := range out.Records {
		h.log.entries = append(h.log.entries, txnEntry{rec: r, producerID: -1})
	}
}

// txnCommit sends a TxnOffsetCommit of producerID and returns its codes.
func (h *txnHarness) txnCommit(version int16, producerID int64, group, member string, generation int32,
	offsets map[string]map[int32]int64) map[string]int16 {
	h.t.Helper()
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version = version
	req.TransactionalID = "tx"
	req.Group = group
	req.ProducerID, req.ProducerEpoch = producerID, 0
	req.MemberID, req.Generation = member, generation
	for topic, parts := range offsets {
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = topic
		for p, o := range parts {
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset = p, o
			md := "txn"
			rp.Metadata = &md
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	call := h.call(version)
	out := h.c.TxnOffsetCommit(call, req)
	h.take(out)
	for _, r := range out.Records {
		h.log.entries = append(h.log.entries, txnEntry{rec: r, producerID: producerID})
	}
	resp := h.replies[call.Token].(*kmsg.TxnOffsetCommitResponse)
	codes := map[string]int16{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			codes[fmt.Sprintf("%s/%d", t.Topic, p.Partition)] = p.ErrorCode
		}
	}
	return codes
}

// marker writes producerID's marker to group's partition.
func (h *txnHarness) marker(group string, producerID int64, commit bool) {
	p := Partition(group, h.cfg.Partitions)
	h.c.ReplayMarker(p, producerID, commit)
	h.log.entries = append(h.log.entries, txnEntry{rec: Record{Partition: p}, producerID: producerID, marker: true, commit: commit})
}

// stableFetch is an OffsetFetch with require_stable: "topic/partition" →
// offset, or the error code as a negative number below -1000.
func (h *txnHarness) stableFetch(group string, topics map[string][]int32) map[string]int64 {
	req := kmsg.NewOffsetFetchRequestGroup()
	req.Group = group
	for topic, parts := range topics {
		rt := kmsg.NewOffsetFetchRequestGroupTopic()
		rt.Topic, rt.Partitions = topic, parts
		req.Topics = append(req.Topics, rt)
	}
	resp := h.c.OffsetFetch(h.call(9), req, true)
	out := map[string]int64{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			v := p.Offset
			if p.ErrorCode != 0 {
				v = -1000 - int64(p.ErrorCode)
			}
			out[fmt.Sprintf("%s/%d", t.Topic, p.Partition)] = v
		}
	}
	return out
}

// replayed replays the log, transactional records and markers included,
// into a new coordinator.
func (h *txnHarness) replayed() *Coordinator {
	h.t.Helper()
	c := New(h.cfg)
	for _, e := range h.log.entries {
		var err error
		switch {
		case e.marker:
			c.ReplayMarker(e.rec.Partition, e.producerID, e.commit)
		case e.producerID >= 0:
			err = c.ReplayTransactional(e.rec.Partition, e.producerID, e.rec.Key, e.rec.Value)
		default:
			err = c.Replay(e.rec.Partition, e.rec.Key, e.rec.Value)
		}
		if err != nil {
			h.t.Fatal(err)
		}
	}
	c.Loaded(h.now)
	c.SetTopics(h.now, testTopics())
	return c
}

// checkReplay compares the committed and pending offsets of a replay with
// the live coordinator's.
func (h *txnHarness) checkReplay() {
	h.t.Helper()
	got, want := dump(h.replayed()), dump(h.c)
	for id, w := range want {
		if !maps.Equal(got[id].Offsets, w.Offsets) {
			h.t.Fatalf("replayed group %q has offsets %v, want %v", id, got[id].Offsets, w.Offsets)
		}
	}
	r := h.replayed()
	for id := range want {
		if r.PendingTxnOffsets(id) != h.c.PendingTxnOffsets(id) {
			h.t.Fatalf("replayed group %q pending %v, want %v", id, r.PendingTxnOffsets(id), h.c.PendingTxnOffsets(id))
		}
	}
}

func TestTxnOffsetsBecomeVisibleOnlyWhenCommitted(t *testing.T) {
	h := newTxnHarness(t)
	h.plain(h.c.OffsetCommit(h.call(8), commitReq("g", "orders", 0, 5)))

	codes := h.txnCommit(3, 7, "g", "", -1, map[string]map[int32]int64{"orders": {0: 10, 1: 11}})
	if !maps.Equal(codes, map[string]int16{"orders/0": 0, "orders/1": 0}) {
		t.Fatalf("txn commit codes %v", codes)
	}
	if got := fetched(h.fetch("g", map[string][]int32{"orders": {0, 1}})); !maps.Equal(got, map[string]int64{"orders/0": 5, "orders/1": -1}) {
		t.Fatalf("fetch before the marker %v", got)
	}
	unstable := -1000 - int64(kerr.UnstableOffsetCommit.Code)
	if got := h.stableFetch("g", map[string][]int32{"orders": {0, 1, 2}}); !maps.Equal(got, map[string]int64{"orders/0": unstable, "orders/1": unstable, "orders/2": -1}) {
		t.Fatalf("stable fetch before the marker %v", got)
	}
	h.checkReplay()

	// A marker of another producer, or on another partition, settles nothing.
	h.marker("g", 8, true)
	h.c.ReplayMarker(Partition("g", h.cfg.Partitions)+1, 7, true)
	if !h.c.PendingTxnOffsets("g") {
		t.Fatal("another producer's marker settled the offsets")
	}

	h.marker("g", 7, true)
	if got := h.stableFetch("g", map[string][]int32{"orders": {0, 1}}); !maps.Equal(got, map[string]int64{"orders/0": 10, "orders/1": 11}) {
		t.Fatalf("stable fetch after commit %v", got)
	}
	if h.c.PendingTxnOffsets("g") {
		t.Fatal("offsets still pending after the commit marker")
	}
	h.checkReplay()
}

func TestAbortedTxnOffsetsAreDropped(t *testing.T) {
	h := newTxnHarness(t)
	h.plain(h.c.OffsetCommit(h.call(8), commitReq("g", "orders", 0, 5)))
	h.txnCommit(3, 7, "g", "", -1, map[string]map[int32]int64{"orders": {0: 10}})
	h.marker("g", 7, false)
	if got := h.stableFetch("g", map[string][]int32{"orders": {0}}); got["orders/0"] != 5 {
		t.Fatalf("after abort: %v, want the plain commit 5", got)
	}
	h.checkReplay()
	// A second transaction of the same producer commits.
	h.txnCommit(3, 7, "g", "", -1, map[string]map[int32]int64{"orders": {0: 12}})
	h.marker("g", 7, true)
	if got := h.stableFetch("g", map[string][]int32{"orders": {0}}); got["orders/0"] != 12 {
		t.Fatalf("after the second transaction: %v, want 12", got)
	}
	h.checkReplay()
}

func TestTheLaterOfPlainAndTxnOffsetCommitsWins(t *testing.T) {
	h := newTxnHarness(t)
	// Transactional 10, then plain 20: the commit marker keeps 20.
	h.txnCommit(3, 7, "g", "", -1, map[string]map[int32]int64{"orders": {0: 10, 1: 10}})
	h.plain(h.c.OffsetCommit(h.call(8), commitReq("g", "orders", 0, 20)))
	h.marker("g", 7, true)
	got := fetched(h.fetch("g", map[string][]int32{"orders": {0, 1}}))
	if !maps.Equal(got, map[string]int64{"orders/0": 20, "orders/1": 10}) {
		t.Fatalf("offsets %v", got)
	}
	h.checkReplay()

	// Plain 30, then transactional 25: the marker makes it 25.
	h.plain(h.c.OffsetCommit(h.call(8), commitReq("g", "orders", 0, 30)))
	h.txnCommit(3, 9, "g", "", -1, map[string]map[int32]int64{"orders": {0: 25}})
	h.marker("g", 9, true)
	if got := fetched(h.fetch("g", map[string][]int32{"orders": {0}})); got["orders/0"] != 25 {
		t.Fatalf("offsets %v, want orders/0 at 25", got)
	}
	h.checkReplay()
}

func TestOffsetDeleteDropsPendingTxnOffsets(t *testing.T) {
	h := newTxnHarness(t)
	h.txnCommit(3, 7, "g", "", -1, map[string]map[int32]int64{"orders": {0: 10}})
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = "g"
	rt := kmsg.NewOffsetDeleteRequestTopic()
	rt.Topic = "orders"
	rp := kmsg.NewOffsetDeleteRequestTopicPartition()
	rp.Partition = 0
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	out := h.c.OffsetDelete(h.call(0), req)
	if len(out.Records) != 1 || out.Records[0].Value != nil {
		t.Fatalf("OffsetDelete wrote %+v, want one tombstone", out.Records)
	}
	h.plain(out)
	if h.c.PendingTxnOffsets("g") {
		t.Fatal("pending offsets survived OffsetDelete")
	}
	h.marker("g", 7, true)
	if got := fetched(h.fetch("g", map[string][]int32{"orders": {0}})); got["orders/0"] != -1 {
		t.Fatalf("deleted pending offset committed: %v", got)
	}
	h.checkReplay()
}

// until ticks at each deadline up to (and then at) limit, keeping what
// the ticks write in the log.
func (h *txnHarness) until(limit time.Time) {
	h.t.Helper()
	for {
		d, ok := h.c.Deadline()
		if !ok || d.After(limit) {
			break
		}
		h.now = d
		h.plain(h.c.Tick(h.now))
	}
	h.now = limit
	h.plain(h.c.Tick(h.now))
}

// An offset with a transactional commit pending does not expire, and a
// group with one is not deleted, as in Kafka: the commit marker then makes
// the transaction's offsets the group's, and a replay agrees.
func TestPendingTxnOffsetsOutliveExpiry(t *testing.T) {
	h := newTxnHarness(t)
	h.plain(h.c.OffsetCommit(h.call(8), commitReq("g", "orders", 0, 5)))
	h.plain(h.c.OffsetCommit(h.call(8), commitReq("g", "orders", 1, 6)))
	h.txnCommit(3, 7, "g", "", -1, map[string]map[int32]int64{"orders": {0: 10}, "payments": {0: 3}})
	h.txnCommit(3, 8, "only-pending", "", -1, map[string]map[int32]int64{"orders": {2: 4}})

	h.until(t0.Add(8 * day))
	if got := fetched(h.fetch("g", map[string][]int32{"orders": {0, 1}})); !maps.Equal(got, map[string]int64{"orders/0": 5, "orders/1": -1}) {
		t.Fatalf("offsets after retention: %v, want orders/0 kept (pending) and orders/1 expired", got)
	}
	for _, id := range []string{"g", "only-pending"} {
		if _, ok := h.c.groups[id]; !ok {
			t.Fatalf("group %q deleted with transactional offsets pending", id)
		}
	}
	h.checkReplay()

	h.marker("g", 7, true)
	h.marker("only-pending", 8, true)
	if got := fetched(h.fetch("g", map[string][]int32{"orders": {0}, "payments": {0}})); !maps.Equal(got, map[string]int64{"orders/0": 10, "payments/0": 3}) {
		t.Fatalf("offsets after the commit marker: %v", got)
	}
	if got := fetched(h.fetch("only-pending", map[string][]int32{"orders": {2}})); got["orders/2"] != 4 {
		t.Fatalf("offsets of only-pending after the commit marker: %v", got)
	}
	h.checkReplay()

	// Once committed they expire like any other, and the groups go.
	h.until(h.now.Add(8 * day))
	for _, id := range []string{"g", "only-pending"} {
		if _, ok := h.c.groups[id]; ok {
			t.Fatalf("group %q outlived its offsets", id)
		}
	}
	h.checkReplay()
}

func TestTxnOffsetCommitChecksTheGroupAsKafka(t *testing.T) {
	h := newTxnHarness(t)
	member, gen := h.joinOne("live", "consumer", "orders")
	one := map[string]map[int32]int64{"orders": {0: 1}}
	codes := func(m map[string]int16) int16 { return m["orders/0"] }

	cases := []struct {
		name       string
		version    int16
		group      string
		member     string
		generation int32
		want       int16
	}{
		{"the member in its generation", 3, "live", member, gen, 0},
		{"another generation", 3, "live", member, gen + 1, kerr.IllegalGeneration.Code},
		{"an unknown member", 3, "live", "nobody", gen, kerr.UnknownMemberID.Code},
		{"no member named, a group with members", 3, "live", "", -1, 0},
		{"v2 (no member fields) to a group with members", 2, "live", "", -1, 0},
		{"an unknown group with a generation", 3, "new", "m", 3, kerr.IllegalGeneration.Code},
		{"an unknown group without one makes a simple group", 3, "simple", "", -1, 0},
		{"an empty group id", 3, "", "", -1, kerr.InvalidGroupID.Code},
	}
	for i, c := range cases {
		got := codes(h.txnCommit(c.version, int64(100+i), c.group, c.member, c.generation, one))
		if got != c.want {
			t.Errorf("%s: %s, want %s", c.name, kerr.ErrorForCode(got), kerr.ErrorForCode(c.want))
		}
	}
	if !h.c.PendingTxnOffsets("simple") || h.c.lookup("simple") == nil {
		t.Fatal("the simple group was not made")
	}
	if h.c.lookup("new") != nil {
		t.Fatal("a refused commit made a group")
	}

	got := h.txnCommit(3, 200, "live", member, gen, map[string]map[int32]int64{"nosuch": {0: 1}, "orders": {9: 1}})
	if !maps.Equal(got, map[string]int16{"nosuch/0": kerr.UnknownTopicOrPartition.Code, "orders/9": kerr.UnknownTopicOrPartition.Code}) {
		t.Fatalf("unknown partitions: %v", got)
	}

	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version, req.Group, req.ProducerID = 3, "live", 201
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = "orders"
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	big := strings.Repeat("x", h.cfg.MaxMetadataBytes+1)
	rp.Metadata = &big
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	call := h.call(3)
	out := h.c.TxnOffsetCommit(call, req)
	if resp := out.Replies[0].Response.(*kmsg.TxnOffsetCommitResponse); resp.Topics[0].Partitions[0].ErrorCode != kerr.OffsetMetadataTooLarge.Code || len(out.Records) != 0 {
		t.Fatalf("large metadata: %+v, %d records", resp, len(out.Records))
	}
}

// commitReq is a simple consumer's OffsetCommit v8 of one offset.
func commitReq(group, topic string, partition int32, offset int64) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group = group
	req.Generation = -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = partition, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}
