package txn

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// t0 is the fake clock's start.
var t0 = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// harness drives a coordinator with a fake clock and keeps every record it
// wrote, in order, as the log of __transaction_state, every Markers it
// asked for, and every reply by token.
type harness struct {
	t   testing.TB
	c   *Coordinator
	cfg Config
	now time.Time
	// next is the last token handed out; pids the last producer id.
	next Token
	pids int64
	log  []Record
	// markers not yet reported written, by ID.
	markers map[uint64]Markers
	replies map[Token]kmsg.Response
}

func newHarness(t testing.TB) *harness {
	cfg := DefaultConfig()
	cfg.Partitions = 7
	return &harness{t: t, c: New(cfg), cfg: cfg, now: t0, pids: 999,
		markers: map[uint64]Markers{}, replies: map[Token]kmsg.Response{}}
}

// call is the Call of a new request at the harness's time, with a fresh
// producer id reserved.
func (h *harness) call(version int16) Call {
	h.next++
	h.pids++
	return Call{Now: h.now, Token: h.next, Version: version, NewProducerID: h.pids}
}

// take appends an output's records to the log and keeps its markers and
// replies; a token answered twice fails the test.
func (h *harness) take(out Output) Output {
	h.t.Helper()
	for _, r := range out.Records {
		if want := Partition(idOfKey(h.t, r.Key), h.cfg.Partitions); r.Partition != want {
			h.t.Fatalf("record of %q in partition %d, want %d", idOfKey(h.t, r.Key), r.Partition, want)
		}
		h.log = append(h.log, r)
	}
	for _, m := range out.Markers {
		if _, dup := h.markers[m.ID]; dup {
			h.t.Fatalf("markers %d asked for twice", m.ID)
		}
		h.markers[m.ID] = m
	}
	for _, r := range out.Replies {
		if prev, dup := h.replies[r.Token]; dup {
			h.t.Fatalf("token %d answered twice: %#v then %#v", r.Token, prev, r.Response)
		}
		h.replies[r.Token] = r.Response
	}
	return out
}

func idOfKey(t testing.TB, key []byte) string {
	t.Helper()
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(key); err != nil || k.Version != 0 {
		t.Fatalf("bad key %x: %v", key, err)
	}
	return k.TransactionalID
}

// lastValue decodes the last record written for id; nil for a tombstone.
func (h *harness) lastValue(id string) *kmsg.TxnMetadataValue {
	h.t.Helper()
	for i := len(h.log) - 1; i >= 0; i-- {
		if idOfKey(h.t, h.log[i].Key) != id {
			continue
		}
		if h.log[i].Value == nil {
			return nil
		}
		v := new(kmsg.TxnMetadataValue)
		if err := v.ReadFrom(h.log[i].Value); err != nil {
			h.t.Fatal(err)
		}
		return v
	}
	h.t.Fatalf("no record of %q", id)
	return nil
}

// initID sends InitProducerId v4 without KIP-360 fields; resp is nil when
// the reply is not due yet.
func (h *harness) initID(id string, timeoutMs int32) (Output, *kmsg.InitProducerIDResponse) {
	return h.initFull(4, id, timeoutMs, -1, -1)
}

func (h *harness) initFull(v int16, id string, timeoutMs int32, pid int64, epoch int16) (Output, *kmsg.InitProducerIDResponse) {
	h.t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = v
	req.TransactionalID = &id
	req.TransactionTimeoutMillis = timeoutMs
	req.ProducerID, req.ProducerEpoch = pid, epoch
	call := h.call(v)
	out := h.take(h.c.InitProducerID(call, req))
	if r, ok := h.replies[call.Token]; ok {
		return out, r.(*kmsg.InitProducerIDResponse)
	}
	return out, nil
}

// mustInit initializes id and returns its producer id and epoch.
func (h *harness) mustInit(id string) (int64, int16) {
	h.t.Helper()
	_, resp := h.initID(id, 60000)
	if resp == nil || resp.ErrorCode != 0 {
		h.t.Fatalf("InitProducerId %q: %+v", id, resp)
	}
	return resp.ProducerID, resp.ProducerEpoch
}

func tp(topic string, p int32) TopicPartition { return TopicPartition{topic, p} }

// add sends AddPartitionsToTxn and returns each partition's code; nil
// codes when the add is held (hold.go).
func (h *harness) add(v int16, id string, pid int64, epoch int16, tps ...TopicPartition) (Output, map[TopicPartition]int16) {
	h.t.Helper()
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = v
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = id, pid, epoch
	byTopic := map[string][]int32{}
	for _, tp := range tps {
		byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
	}
	for _, topic := range slices.Sorted(maps.Keys(byTopic)) {
		rt := kmsg.NewAddPartitionsToTxnRequestTopic()
		rt.Topic, rt.Partitions = topic, byTopic[topic]
		req.Topics = append(req.Topics, rt)
	}
	call := h.call(v)
	out := h.take(h.c.AddPartitionsToTxn(call, req))
	r, ok := h.replies[call.Token]
	if !ok {
		return out, nil // held for the markers of the transaction before
	}
	resp := r.(*kmsg.AddPartitionsToTxnResponse)
	codes := map[TopicPartition]int16{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			codes[TopicPartition{t.Topic, p.Partition}] = p.ErrorCode
		}
	}
	if len(codes) != len(tps) {
		h.t.Fatalf("AddPartitionsToTxn answered %d partitions of %d", len(codes), len(tps))
	}
	return out, codes
}

// mustAdd adds partitions and fails the test on any error.
func (h *harness) mustAdd(id string, pid int64, epoch int16, tps ...TopicPartition) Output {
	h.t.Helper()
	out, codes := h.add(3, id, pid, epoch, tps...)
	for tp, code := range codes {
		if code != 0 {
			h.t.Fatalf("adding %v to %q: code %d", tp, id, code)
		}
	}
	return out
}

// oneCode is the code shared by every partition of codes.
func oneCode(t testing.TB, codes map[TopicPartition]int16) int16 {
	t.Helper()
	var code int16
	first := true
	for _, c := range codes {
		if !first && c != code {
			t.Fatalf("codes differ: %v", codes)
		}
		code, first = c, false
	}
	return code
}

// end sends EndTxn.
func (h *harness) end(v int16, id string, pid int64, epoch int16, commit bool) (Output, *kmsg.EndTxnResponse) {
	h.t.Helper()
	req := kmsg.NewPtrEndTxnRequest()
	req.Version = v
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = id, pid, epoch, commit
	call := h.call(v)
	out := h.take(h.c.EndTxn(call, req))
	r, ok := h.replies[call.Token]
	if !ok {
		h.t.Fatalf("EndTxn not answered")
	}
	return out, r.(*kmsg.EndTxnResponse)
}

// written reports markers m written.
func (h *harness) written(id uint64, failed ...TopicPartition) Output {
	h.t.Helper()
	if _, ok := h.markers[id]; !ok {
		h.t.Fatalf("no markers %d pending", id)
	}
	delete(h.markers, id)
	return h.take(h.c.MarkersWritten(h.now, id, failed))
}

// onlyMarkers is the one Markers of out.
func onlyMarkers(t testing.TB, out Output) Markers {
	t.Helper()
	if len(out.Markers) != 1 {
		t.Fatalf("%d markers, want 1: %+v", len(out.Markers), out.Markers)
	}
	return out.Markers[0]
}

// writeAll reports every pending markers written, until none is left.
func (h *harness) writeAll() {
	h.t.Helper()
	for len(h.markers) > 0 {
		for _, id := range slices.Sorted(maps.Keys(h.markers)) {
			h.written(id)
		}
	}
}

// describe is DescribeTransaction at the harness's time.
func (h *harness) describe(id string) kmsg.DescribeTransactionsResponseTransactionState {
	return h.c.DescribeTransaction(h.now, id)
}

// snapshot is what a coordinator persists of each id, comparable.
type snapshot struct {
	ProducerID, PreviousProducerID, NextProducerID int64
	Epoch                                          int16
	TimeoutMillis                                  int32
	State                                          string
	Partitions                                     string
	StartMillis, UpdateMillis                      int64
	V2                                             bool
}

func snapshotOf(c *Coordinator) map[string]snapshot {
	s := map[string]snapshot{}
	for id, t := range c.txns {
		s[id] = snapshot{
			t.producerID, t.previousProducerID, t.nextProducerID, t.epoch, t.timeoutMillis,
			t.state.String(), fmt.Sprint(t.sortedPartitions()), t.startMillis, t.updateMillis, t.v2,
		}
	}
	return s
}

// reload replays the log into a new coordinator and ends with Loaded.
func (h *harness) reload() (*Coordinator, Output) {
	h.t.Helper()
	c := New(h.cfg)
	for _, r := range h.log {
		if err := c.Replay(r.Partition, r.Key, r.Value); err != nil {
			h.t.Fatalf("replay: %v", err)
		}
	}
	return c, c.Loaded(h.now)
}

// checkReload checks that the log rebuilds the live state, and that Loaded
// asks again for the markers of every transaction being completed.
func (h *harness) checkReload() {
	h.t.Helper()
	c, out := h.reload()
	live, replayed := snapshotOf(h.c), snapshotOf(c)
	for id := range live {
		if live[id] != replayed[id] {
			h.t.Fatalf("replayed %q:\n got %+v\nwant %+v", id, replayed[id], live[id])
		}
		if a, b := fmt.Sprint(h.c.DescribeTransaction(h.now, id)), fmt.Sprint(c.DescribeTransaction(h.now, id)); a != b {
			h.t.Fatalf("replayed %q describes as %s, live %s", id, b, a)
		}
	}
	if len(replayed) != len(live) {
		h.t.Fatalf("replayed %d ids, live %d", len(replayed), len(live))
	}
	var pending []string
	for id, t := range h.c.txns {
		if t.state.preparing() {
			pending = append(pending, id)
		}
	}
	if len(out.Markers) != len(pending) {
		h.t.Fatalf("Loaded asked for %d markers, %d transactions are being completed", len(out.Markers), len(pending))
	}
	for _, m := range out.Markers {
		id := c.inflight[m.ID]
		lt := h.c.txns[id]
		if lt == nil || !lt.state.preparing() || m.ProducerID != lt.producerID || m.ProducerEpoch != lt.epoch ||
			m.Commit != (lt.state == statePrepareCommit) || fmt.Sprint(m.Partitions) != fmt.Sprint(lt.sortedPartitions()) {
			h.t.Fatalf("Loaded asked for markers %+v of %q, live %+v", m, id, lt)
		}
	}
	if len(out.Replies) != 0 {
		h.t.Fatalf("Loaded replied: %+v", out.Replies)
	}
}
