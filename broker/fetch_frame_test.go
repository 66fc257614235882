package broker

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/storage"
)

// frameTestLog is a log with batches of sizes on both sides of
// smallSection, and the offsets where each group starts.
func frameTestLog(t *testing.T) (*storage.Log, []int64) {
	t.Helper()
	l, err := storage.Open(filepath.Join(t.TempDir(), "frame-0"), storage.DefaultConfig(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var starts []int64
	for g, size := range []int{50, 3000, 40000, 200} {
		starts = append(starts, l.Offsets().LogEnd)
		for i := range 3 {
			b, err := record.Build(record.DefaultBuildOptions(), []record.Record{
				{Value: []byte(fmt.Sprintf("%d-%d-%s", g, i, strings.Repeat("x", size)))},
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Append(b); err != nil {
				t.Fatal(err)
			}
		}
	}
	return l, starts
}

// frameTestResponse builds a Fetch response in the shape the handler makes,
// plus the fields it does not set (tags, brokers), whose record sets are
// sections of l read from starts (the last topic's second partition has
// none, the first's second partition an error). With inline, the record
// bytes are in the response itself, and there are no sections. It has
// 1 to 3 topics: 2 record sets, 4, or 7 (more than a fetchResponse holds
// without allocating for them).
func frameTestResponse(t *testing.T, l *storage.Log, starts []int64, version int16, inline bool, topics int) *fetchResponse {
	t.Helper()
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(version)
	resp.ThrottleMillis, resp.SessionID = 7, 0
	rack := "rack-a"
	resp.Brokers = []kmsg.FetchResponseBroker{{NodeID: 1, Host: "broker-1.example", Port: 9092, Rack: &rack}}
	out := &fetchResponse{FetchResponse: resp}
	next := 0
	for ti, name := range []string{"orders", "payments\x00\x11", "refunds"}[:topics] {
		st := kmsg.NewFetchResponseTopic()
		if version >= 13 {
			st.TopicID = [16]byte{byte(ti + 1), 0x11, 0x10}
		} else {
			st.Topic = name
		}
		for pi := range 3 {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = int32(pi)
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = 12, 12, 0
			sp.RecordBatches = []byte{}
			switch {
			case ti == 0 && pi == 1:
				sp.ErrorCode = 1
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			case ti == 1 && pi == 1:
				// no data
			default:
				from := starts[next%len(starts)]
				next++
				sec, _, err := l.ReadSection(from, 3*4096, 12, nil)
				if err != nil || sec.Len() == 0 {
					t.Fatalf("read at %d: %d bytes, %v", from, sec.Len(), err)
				}
				if inline {
					if sp.RecordBatches, err = sec.AppendTo(nil); err != nil {
						t.Fatal(err)
					}
					sec.Release()
				} else {
					out.sets = append(out.sets, fetchSet{topic: ti, partition: pi, sec: sec})
				}
			}
			if pi == 2 {
				sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 5, FirstOffset: 3}}
				sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset = 3, 9
				sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = 1, 4
				sp.SnapshotID.EndOffset, sp.SnapshotID.Epoch = 8, 2
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return out
}

// assemble returns the bytes a frame stands for.
func assemble(t *testing.T, f *outFrame) []byte {
	t.Helper()
	if f.parts == nil {
		return bytes.Clone(f.buf)
	}
	var out []byte
	for _, p := range f.parts {
		if p.sec == nil {
			out = append(out, f.buf[p.from:p.to]...)
			continue
		}
		var err error
		if out, err = p.sec.AppendTo(out); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestFetchFrameMatchesKmsg checks, for every Fetch version served, that a
// response whose record sets are sections encodes — as assembled, and as
// written to a socket by the connection's writer (sendfile for large
// sections) — to exactly kmsg's encoding of the same response with the
// record bytes in it.
func TestFetchFrameMatchesKmsg(t *testing.T) {
	l, starts := frameTestLog(t)
	b := &Broker{}
	for version := int16(4); version <= 17; version++ {
		for topics := 1; topics <= 3; topics++ {
			t.Run(fmt.Sprintf("v%d/topics=%d", version, topics), func(t *testing.T) {
				req := &request{key: int16(kmsg.Fetch), version: version, correlationID: 42}
				want := encodeResponseInto(make([]byte, 0, 64), req, frameTestResponse(t, l, starts, version, true, topics).FetchResponse)

				frame := frameTestResponse(t, l, starts, version, false, topics).frame(b, req)
				f := &frame
				if f.parts == nil {
					t.Fatal("the frame has no sections: it was copied")
				}
				if got := assemble(t, f); !bytes.Equal(got, want) {
					t.Fatalf("assembled frame differs from kmsg's encoding:\n got %d bytes %x…\nwant %d bytes %x…",
						len(got), got[:min(64, len(got))], len(want), want[:min(64, len(want))])
				}
				got, err := writeOverSocket(b, f)
				f.release(b)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("frame written to a socket differs from kmsg's encoding: got %d bytes, want %d", len(got), len(want))
				}
				// The response decodes as kmsg's own, record bytes included.
				back := kmsg.NewPtrFetchResponse()
				back.SetVersion(version)
				body := got[8:]
				if version >= 12 {
					body = body[1:]
				}
				if err := back.ReadFrom(body); err != nil {
					t.Fatalf("decode: %v", err)
				}
			})
		}
	}
}

// writeOverSocket writes f with the connection writer to a TCP socket and
// returns what arrived.
func writeOverSocket(b *Broker, f *outFrame) ([]byte, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, err
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		return nil, err
	}
	got := make(chan []byte, 1)
	go func() {
		data, _ := io.ReadAll(client)
		got <- data
	}()
	c := &conn{b: b, nc: server}
	w := bufio.NewWriterSize(server, 64<<10)
	err = c.writeFrame(w, f)
	if err == nil {
		err = w.Flush()
	}
	server.Close()
	return <-got, err
}

// TestFetchResponseMaterializes checks the copying path tests and the fuzz
// target use: encodeResponse reads the sections into the response.
func TestFetchResponseMaterializes(t *testing.T) {
	l, starts := frameTestLog(t)
	for _, version := range []int16{4, 11, 12, 17} {
		req := &request{key: int16(kmsg.Fetch), version: version, correlationID: 9}
		want := encodeResponseInto(make([]byte, 0, 64), req, frameTestResponse(t, l, starts, version, true, 2).FetchResponse)
		if got := encodeResponse(req, frameTestResponse(t, l, starts, version, false, 2)); !bytes.Equal(got, want) {
			t.Fatalf("v%d: encodeResponse differs from kmsg's encoding", version)
		}
	}
}
