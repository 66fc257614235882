//go:build unix

package broker

// What a long-polling Fetch over many idle partitions costs the broker each
// time one of them gets a record: the fetch waits, an append to one
// partition wakes it, it answers with that partition, and the client asks
// again. cpu-µs/wake is the process's CPU time (user and system, the client
// side included: it is the same in every version) per wake; wake-µs the
// time from the append to the response read.
//
//	go test ./broker -run '^$' -bench BenchmarkFetchLongPollWake -benchtime 200x
//
// The append comes longPollSettle after the request is written, so that
// the fetch is waiting by then.

import (
	"encoding/binary"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/storage"
)

const (
	longPollPartitions = 2500
	longPollSettle     = 5 * time.Millisecond
)

func BenchmarkFetchLongPollWake(b *testing.B) {
	br := startHotpathBroker(b)
	c := dialHotpath(b, br)
	createHotpathTopic(b, br, c, "idle", longPollPartitions)
	id := br.meta.Image().Topics["idle"].ID
	logs := make([]*storage.Log, longPollPartitions)
	for p := range logs {
		part, _ := br.parts.get("idle", int32(p))
		logs[p] = part.log
	}
	batch := hotpathBatch(b, 1)
	for _, session := range []bool{true, false} {
		b.Run(fmt.Sprintf("partitions=%d/session=%v", longPollPartitions, session), func(b *testing.B) {
			lp := &longPoller{c: c, topicID: id, logs: logs, session: session}
			lp.open(b)
			var wake time.Duration
			cpu := processCPU()
			p := 0
			for b.Loop() {
				p = (p + 7919) % longPollPartitions // a prime: every partition in turn
				lp.send(b)
				time.Sleep(longPollSettle)
				if _, err := logs[p].Append(batch); err != nil {
					b.Fatal(err)
				}
				appended := time.Now()
				lp.receive(b, p)
				wake += time.Since(appended)
			}
			b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-µs/wake")
			b.ReportMetric(float64(wake.Microseconds())/float64(b.N), "wake-µs")
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
}

// open sets up the requests: a session's full fetch, answered at once.
func (lp *longPoller) open(tb testing.TB) {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(17)
	req.ReplicaID = -1
	req.MaxBytes, req.MinBytes, req.MaxWaitMillis = 1<<20, 1, 0
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.TopicID = lp.topicID
	for p, l := range lp.logs {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes, rp.FetchOffset = int32(p), 1<<20, l.Offsets().LogEnd
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
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
		all[lp.last].FetchOffset = lp.logs[lp.last].Offsets().LogEnd
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
	resp := decodeHotpathResponse(tb, lp.req, lp.c.readResponse()).(*kmsg.FetchResponse)
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
	lp.last = p
}

// readResponse reads one response and returns its bytes after the size,
// valid until the next read.
func (c *hotpathClient) readResponse() []byte {
	if _, err := io.ReadFull(c.nc, c.size[:]); err != nil {
		c.tb.Fatalf("read: %v", err)
	}
	n := int(binary.BigEndian.Uint32(c.size[:]))
	if cap(c.resp) < n {
		c.resp = make([]byte, n)
	}
	c.resp = c.resp[:n]
	if _, err := io.ReadFull(c.nc, c.resp); err != nil {
		c.tb.Fatalf("read: %v", err)
	}
	return c.resp
}

// processCPU is the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
