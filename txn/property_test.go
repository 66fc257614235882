package txn

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A property test: producers sharing transactional ids do random things
// (InitProducerId with and without KIP-360 fields, adds, verify-only adds,
// EndTxn v3 and v5), markers are reported written in random order,
// sometimes with failed partitions and sometimes twice, and time passes
// (timeouts, expiry). After every step:
//   - a producer id's epoch never goes down (records, markers, replies);
//   - markers are asked for only after the transaction's Prepare* record,
//     matching it, and once per Prepare* record;
//   - no token is answered twice, and at the end every token is answered
//     (adds held for markers included);
//   - the log, replayed, gives the live state, and Loaded asks for the
//     markers of exactly the transactions being completed.
func TestPropertyRandomProducers(t *testing.T) {
	seeds := 60
	if testing.Short() {
		seeds = 10
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runProperty(t, seed, 250) })
	}
}

type propProducer struct {
	id    string
	pid   int64
	epoch int16
	known bool
	v5    bool // ends with EndTxn v5
	// initToken is the InitProducerId waiting for a fence, 0 if none.
	initToken Token
}

type propRun struct {
	*harness
	rng       *rand.Rand
	producers []*propProducer
	maxEpoch  map[int64]int16
	// marked holds the log index of every Prepare* record whose markers
	// were asked for.
	marked map[int]bool
	// written holds markers ids already reported.
	written []uint64
}

func runProperty(t *testing.T, seed uint64, steps int) {
	h := newHarness(t)
	h.cfg.IDExpiration = 3 * time.Minute
	h.c = New(h.cfg)
	r := &propRun{harness: h, rng: rand.New(rand.NewPCG(seed, 42)), maxEpoch: map[int64]int16{}, marked: map[int]bool{}}
	r.producers = []*propProducer{{id: "shared"}, {id: "shared"}, {id: "solo"}}
	for _, p := range r.producers {
		p.v5 = r.rng.IntN(2) == 0
	}
	if seed%2 == 1 {
		// Start near the end of the epochs, so that rotations happen.
		v := kmsg.NewTxnMetadataValue()
		v.Version, v.ProducerID, v.ProducerEpoch, v.TimeoutMillis = 1, 500, math.MaxInt16-3, 20000
		v.StartTimestamp, v.LastUpdateTimestamp = -1, t0.UnixMilli()
		rec := Record{Partition: Partition("shared", h.cfg.Partitions), Key: keyOf("shared"), Value: v.AppendTo(nil)}
		h.log = append(h.log, rec)
		if err := h.c.Replay(rec.Partition, rec.Key, rec.Value); err != nil {
			t.Fatal(err)
		}
		h.c.Loaded(h.now)
		r.maxEpoch[500] = math.MaxInt16 - 3
	}
	for step := range steps {
		r.step(step)
		h.checkReload()
	}
	// Drain: every markers written, then every token is answered.
	for len(h.markers) > 0 {
		for _, id := range slices.Sorted(maps.Keys(h.markers)) {
			r.observe(h.written(id))
		}
	}
	h.checkReload()
	for tok := Token(1); tok <= h.next; tok++ {
		if _, ok := h.replies[tok]; !ok {
			t.Fatalf("token %d never answered", tok)
		}
	}
}

var propPartitions = []TopicPartition{tp("a", 0), tp("a", 1), tp("b", 0)}

func (r *propRun) step(step int) {
	h, rng := r.harness, r.rng
	p := r.producers[rng.IntN(len(r.producers))]
	switch op := rng.IntN(10); op {
	case 0, 1: // InitProducerId
		if p.initToken != 0 {
			return // still waiting
		}
		pid, epoch := int64(-1), int16(-1)
		if p.known && rng.IntN(3) == 0 {
			pid, epoch = p.pid, p.epoch
		}
		out, resp := h.initFull(int16(3+rng.IntN(3)), p.id, int32(5000+rng.IntN(30000)), pid, epoch)
		r.observe(out)
		if resp == nil {
			p.initToken = h.next
			return
		}
		r.learnInit(p, resp)
	case 2, 3: // AddPartitionsToTxn
		if !p.known {
			return
		}
		var tps []TopicPartition
		for _, tp := range propPartitions {
			if rng.IntN(2) == 0 {
				tps = append(tps, tp)
			}
		}
		if rng.IntN(3) == 0 {
			tx := batchTxn(p.id, p.pid, p.epoch, false, tps0(tps).Topic, tps0(tps).Partition)
			out, _ := h.addBatch(4, tx)
			r.observe(out)
			return
		}
		out, _ := h.add(int16(rng.IntN(4)), p.id, p.pid, p.epoch, tps...)
		r.observe(out)
	case 4: // AddOffsetsToTxn
		if !p.known {
			return
		}
		req := kmsg.NewPtrAddOffsetsToTxnRequest()
		req.Version = 3
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = p.id, p.pid, p.epoch, "g"
		r.observe(h.take(h.c.AddOffsetsToTxn(h.call(3), req, 4)))
	case 5: // EndTxn
		if !p.known {
			return
		}
		v := int16(3)
		if p.v5 {
			v = 5
		}
		out, resp := h.end(v, p.id, p.pid, p.epoch, rng.IntN(2) == 0)
		r.observe(out)
		if resp.ErrorCode == 0 && v >= 5 {
			p.pid, p.epoch = resp.ProducerID, resp.ProducerEpoch
		}
	case 6, 7: // markers written, perhaps with a failure, perhaps again
		if len(r.written) > 0 && rng.IntN(4) == 0 {
			id := r.written[rng.IntN(len(r.written))]
			if out := h.c.MarkersWritten(h.now, id, nil); len(out.Records)+len(out.Markers)+len(out.Replies) != 0 {
				h.t.Fatalf("markers %d reported twice changed something: %+v", id, out)
			}
			return
		}
		if len(h.markers) == 0 {
			return
		}
		ids := slices.Sorted(maps.Keys(h.markers))
		id := ids[rng.IntN(len(ids))]
		var failed []TopicPartition
		if m := h.markers[id]; rng.IntN(4) == 0 {
			failed = m.Partitions[:1]
		}
		r.written = append(r.written, id)
		r.observe(h.written(id, failed...))
		r.learnPending()
	case 8: // time passes; the driver ticks at the deadline
		h.now = h.now.Add(time.Duration(rng.IntN(40000)) * time.Millisecond)
		if d, ok := h.c.Deadline(); ok && !d.After(h.now) {
			r.observe(h.take(h.c.Tick(h.now)))
			r.checkNothingOverdue()
		}
	case 9: // verify-only, and the produce-time check
		if !p.known {
			return
		}
		tp := propPartitions[rng.IntN(len(propPartitions))]
		out, resp := h.addBatch(5, batchTxn(p.id, p.pid, p.epoch, true, tp.Topic, tp.Partition))
		if len(out.Records) != 0 {
			h.t.Fatal("verify-only wrote records")
		}
		code := resp.Transactions[0].Topics[0].Partitions[0].ErrorCode
		in := h.c.InTransaction(p.pid, p.epoch, tp)
		if (code == 0) != (in == 0) {
			h.t.Fatalf("verify says %d, InTransaction %d", code, in)
		}
		if in == 0 {
			tx := h.c.byProducer[p.pid]
			if _, ok := tx.partitions[tp]; !ok || tx.state != stateOngoing || tx.epoch != p.epoch {
				h.t.Fatalf("InTransaction accepted %v for %+v", tp, tx)
			}
		}
	}
}

func tps0(tps []TopicPartition) TopicPartition {
	if len(tps) == 0 {
		return propPartitions[0]
	}
	return tps[0]
}

// learnInit takes a producer's InitProducerId answer.
func (r *propRun) learnInit(p *propProducer, resp *kmsg.InitProducerIDResponse) {
	if resp.ErrorCode == 0 {
		p.pid, p.epoch, p.known = resp.ProducerID, resp.ProducerEpoch, true
	}
}

// learnPending delivers answers that were waiting for markers.
func (r *propRun) learnPending() {
	for _, p := range r.producers {
		if p.initToken == 0 {
			continue
		}
		if resp, ok := r.replies[p.initToken]; ok {
			r.learnInit(p, resp.(*kmsg.InitProducerIDResponse))
			p.initToken = 0
		}
	}
}

// observe checks an output already taken by the harness.
func (r *propRun) observe(out Output) {
	h := r.harness
	h.t.Helper()
	see := func(what string, pid int64, epoch int16) {
		if max, ok := r.maxEpoch[pid]; ok && epoch < max {
			h.t.Fatalf("%s: producer %d at epoch %d after %d", what, pid, epoch, max)
		}
		r.maxEpoch[pid] = max(r.maxEpoch[pid], epoch)
	}
	for _, rec := range out.Records {
		if rec.Value == nil {
			continue
		}
		var v kmsg.TxnMetadataValue
		if err := v.ReadFrom(rec.Value); err != nil {
			h.t.Fatal(err)
		}
		see("record", v.ProducerID, v.ProducerEpoch)
	}
	for _, m := range out.Markers {
		see("markers", m.ProducerID, m.ProducerEpoch)
		id, ok := h.c.inflight[m.ID]
		if !ok {
			h.t.Fatalf("markers %d not in flight", m.ID)
		}
		// The last record of id must be its Prepare*, matching.
		last := -1
		for i := len(h.log) - 1; i >= 0; i-- {
			if idOfKey(h.t, h.log[i].Key) == id {
				last = i
				break
			}
		}
		var v kmsg.TxnMetadataValue
		if last < 0 || h.log[last].Value == nil || v.ReadFrom(h.log[last].Value) != nil {
			h.t.Fatalf("markers for %q without a record", id)
		}
		want := state(2)
		if !m.Commit {
			want = 3
		}
		if state(v.State) != want || v.ProducerID != m.ProducerID || v.ProducerEpoch != m.ProducerEpoch {
			h.t.Fatalf("markers %+v after record %+v", m, v)
		}
		if r.marked[last] {
			h.t.Fatalf("markers asked twice for record %d of %q", last, id)
		}
		r.marked[last] = true
		if len(m.Partitions) == 0 {
			h.t.Fatalf("markers with no partitions")
		}
	}
	for _, rep := range out.Replies {
		switch resp := rep.Response.(type) {
		case *kmsg.InitProducerIDResponse:
			if resp.ErrorCode == 0 {
				see("InitProducerId reply", resp.ProducerID, resp.ProducerEpoch)
			}
		case *kmsg.EndTxnResponse:
			if resp.ErrorCode == 0 && resp.Version >= 5 {
				see("EndTxn reply", resp.ProducerID, resp.ProducerEpoch)
			}
		}
	}
	for id, t := range h.c.txns {
		if t.state == stateDead || t.state == statePrepareEpochFence {
			h.t.Fatalf("%q held in state %s", id, t.state)
		}
		if (t.markers != 0) != t.state.preparing() {
			h.t.Fatalf("%q in %s with markers %d", id, t.state, t.markers)
		}
		if len(t.held) > 0 && !t.state.preparing() {
			h.t.Fatalf("%q holds %d adds in %s", id, len(t.held), t.state)
		}
		if t.fencer != nil && t.state != statePrepareAbort {
			h.t.Fatalf("%q has a waiting InitProducerId in %s", id, t.state)
		}
	}
}

// checkNothingOverdue checks that Tick left nothing past its time, and
// that the next deadline is not late.
func (r *propRun) checkNothingOverdue() {
	h := r.harness
	d, ok := h.c.Deadline()
	for id, t := range h.c.txns {
		due, has := h.c.deadline(t)
		if has && !due.After(h.now) {
			h.t.Fatalf("%q overdue after Tick: due %v, now %v", id, due, h.now)
		}
		if has && (!ok || d.After(due)) {
			h.t.Fatalf("deadline %v later than %q's %v", d, id, due)
		}
	}
}
