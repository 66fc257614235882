package broker

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/storage"
)

// TestFetchLongPollMissesNoWakeUp long-polls 500 partitions, in a fetch
// session and without one, with a max wait of weeks, while one append per
// round races the fetch: it lands before the fetch reads, while it reads
// or begins to wait, or while it waits. The appends go to every partition
// in turn, in a random order (to 150 of them without a session, whose
// fetches are slower). A long poll that missed the append would not answer
// before the read deadline: no fetch of the session here reads every
// partition (the image stays the same), so nothing would find an append
// its waiter missed.
func TestFetchLongPollMissesNoWakeUp(t *testing.T) {
	const partitions = 500
	b := startHotpathBroker(t)
	createHotpathTopic(t, b, dialHotpath(t, b), "race", partitions)
	id := b.meta.Image().Topics["race"].ID
	logs := topicLogs(t, b, "race", partitions)
	batch := hotpathBatch(t, 1)
	for _, session := range []bool{true, false} {
		t.Run(fmt.Sprintf("session=%v", session), func(t *testing.T) {
			lp := &longPoller{c: dialHotpath(t, b), topicID: id, logs: logs, session: session}
			lp.open(t)
			lp.req.MaxWaitMillis = math.MaxInt32
			order := rand.Perm(partitions)
			if !session {
				order = order[:150]
			}
			for _, p := range order {
				lp.send(t)
				for range rand.IntN(1 << rand.IntN(10)) { // to land anywhere in the fetch
					runtime.Gosched()
				}
				if _, err := logs[p].Append(batch); err != nil {
					t.Fatal(err)
				}
				lp.c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
				lp.receive(t, p)
			}
		})
	}
}

// longPoller sends long-polling fetches of every partition of a topic, in
// a session or without one, from the end of each partition.
type longPoller struct {
	c       *hotpathClient
	topicID [16]byte
	logs    []*storage.Log
	session bool

	req  *kmsg.FetchRequest
	last int // the partition the last response returned; -1: none
	// next is where the next fetch of last reads from: its log end when
	// that response came, not when the next fetch is sent, which would
	// skip a record appended to it meanwhile.
	next int64
}

// open sets up the requests: a session's full fetch, answered at once.
func (lp *longPoller) open(tb testing.TB) {
	ends := map[int32]int64{}
	for p, l := range lp.logs {
		ends[int32(p)] = l.Offsets().LogEnd
	}
	req := NewFetchReq().Version(17).Wait(0, 1).MaxBytes(1<<20).
		TopicAt("", lp.topicID, ends).
		Request()
	lp.req, lp.last = req, -1
	if lp.session {
		req.SessionEpoch = 0
		resp := lp.c.call(req).(*kmsg.FetchResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil || resp.SessionID <= 0 {
			tb.Fatalf("opening a session: %v, id %d", err, resp.SessionID)
		}
		req.SessionID, req.SessionEpoch = resp.SessionID, 1
	}
	req.MaxWaitMillis = 30000
}

// send writes the next fetch: in a session, an incremental one that moves
// only the partition the last response returned.
func (lp *longPoller) send(tb testing.TB) {
	req := lp.req
	all := req.Topics[0].Partitions
	if lp.last >= 0 {
		all[lp.last].FetchOffset = lp.next
	}
	if lp.session {
		req.Topics = req.Topics[:0]
		if lp.last >= 0 {
			rt := kmsg.NewFetchRequestTopic()
			rt.TopicID = lp.topicID
			rt.Partitions = all[lp.last : lp.last+1]
			req.Topics = append(req.Topics, rt)
		}
	}
	if _, err := lp.c.nc.Write(hotpathFrame(req)); err != nil {
		tb.Fatal(err)
	}
	if lp.session {
		req.Topics = append(req.Topics[:0], kmsg.FetchRequestTopic{TopicID: lp.topicID, Partitions: all})
		req.SessionEpoch++
	}
}

// receive reads the response, which must return records of partition p
// (and, without a session, no records of any other).
func (lp *longPoller) receive(tb testing.TB, p int) {
	body, err := lp.c.readResponse()
	if err != nil {
		tb.Fatalf("partition %d got a record, but the long poll did not answer: %v", p, err)
	}
	resp := decodeHotpathResponse(tb, lp.req, body).(*kmsg.FetchResponse)
	returned := -1
	for _, t := range resp.Topics {
		for _, rp := range t.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				tb.Fatalf("partition %d: %v", rp.Partition, err)
			}
			if len(rp.RecordBatches) > 0 {
				if returned >= 0 {
					tb.Fatalf("partitions %d and %d returned records", returned, rp.Partition)
				}
				returned = int(rp.Partition)
			}
		}
	}
	if returned != p {
		tb.Fatalf("the long poll returned records of partition %d, want %d", returned, p)
	}
	lp.last, lp.next = p, lp.logs[p].Offsets().LogEnd
}

// readResponse reads one response and returns its bytes after the size,
// valid until the next read.
func (c *hotpathClient) readResponse() ([]byte, error) {
	if _, err := io.ReadFull(c.nc, c.size[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(c.size[:]))
	if cap(c.resp) < n {
		c.resp = make([]byte, n)
	}
	c.resp = c.resp[:n]
	if _, err := io.ReadFull(c.nc, c.resp); err != nil {
		return nil, err
	}
	return c.resp, nil
}
