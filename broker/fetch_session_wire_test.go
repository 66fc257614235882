package broker_test

// Fetch sessions (KIP-227) request by request: what incremental responses
// carry, the session errors, closing, the long poll over the session's
// partitions, deleted and unknown topics, and the order partitions are
// read in.

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/broker"
	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/samsatest"
)

// sessionFetcher sends the Fetch requests of one session, in one version,
// each over a new connection: a session is not tied to a connection.
type sessionFetcher struct {
	t         *testing.T
	addr      string
	v         int16
	ids       map[string][16]byte // topic ids by name
	id, epoch int32
	maxBytes  int32
}

func newSessionFetcher(t *testing.T, sb *samsatest.Broker, cl *kgo.Client, v int16, topics ...string) *sessionFetcher {
	f := &sessionFetcher{t: t, addr: sb.Addr(), v: v, ids: map[string][16]byte{}, maxBytes: 50 << 20}
	for _, name := range topics {
		f.ids[name] = topicID(t, cl, name)
	}
	return f
}

// request builds a request at the fetcher's session and epoch asking for
// parts (topic → partition → fetch offset) and forgetting forgotten, that
// does not wait.
func (f *sessionFetcher) request(parts map[string]map[int32]int64, forgotten map[string][]int32) *kmsg.FetchRequest {
	req := broker.NewFetchReq().Version(f.v).Session(f.id, f.epoch).MaxBytes(f.maxBytes)
	for _, name := range slices.Sorted(maps.Keys(parts)) {
		req.TopicAt(name, f.ids[name], parts[name])
	}
	for _, name := range slices.Sorted(maps.Keys(forgotten)) {
		req.Forget(name, f.ids[name], forgotten[name]...)
	}
	return req.Request()
}

// fetch sends a request and, when it succeeds, moves to the session's next
// epoch (the first, after a full fetch that opened a session).
func (f *sessionFetcher) fetch(parts map[string]map[int32]int64, forgotten map[string][]int32) *kmsg.FetchResponse {
	f.t.Helper()
	return f.send(f.request(parts, forgotten))
}

func (f *sessionFetcher) send(req *kmsg.FetchRequest) *kmsg.FetchResponse {
	f.t.Helper()
	resp := rawRequest(f.t, f.addr, req).(*kmsg.FetchResponse)
	f.advance(req, resp)
	return resp
}

func (f *sessionFetcher) advance(req *kmsg.FetchRequest, resp *kmsg.FetchResponse) {
	switch {
	case resp.ErrorCode != 0:
	case req.SessionEpoch == 0:
		f.id, f.epoch = resp.SessionID, 1
	case req.SessionEpoch > 0:
		f.epoch++
	}
}

// carried lists, sorted, the partitions of a response: "topic-partition",
// with "+records" when it returned records and "!ERROR" when it failed.
func (f *sessionFetcher) carried(resp *kmsg.FetchResponse) []string {
	out := []string{}
	for _, rt := range resp.Topics {
		name := rt.Topic
		if f.v >= 13 {
			name = fmt.Sprintf("id:%x", rt.TopicID[:4])
			for n, id := range f.ids {
				if id == rt.TopicID {
					name = n
				}
			}
		}
		for _, rp := range rt.Partitions {
			s := fmt.Sprintf("%s-%d", name, rp.Partition)
			if rp.ErrorCode != 0 {
				s += "!" + kerr.ErrorForCode(rp.ErrorCode).(*kerr.Error).Message
			} else if len(rp.RecordBatches) > 0 {
				s += "+records"
			}
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// expect fails the test unless resp succeeded with the partitions want.
func (f *sessionFetcher) expect(what string, resp *kmsg.FetchResponse, want ...string) {
	f.t.Helper()
	if resp.ErrorCode != 0 {
		f.t.Fatalf("%s: %v", what, kerr.ErrorForCode(resp.ErrorCode))
	}
	if got := f.carried(resp); !slices.Equal(got, append([]string{}, want...)) {
		f.t.Fatalf("%s: the response carried %v, want %v", what, got, want)
	}
}

// produceOne appends a batch of n records to partition p of topic.
func produceOne(t *testing.T, cl *kgo.Client, topic string, p int32, n int) {
	t.Helper()
	if res := produceRaw(t, cl, topic, p, buildBatch(t, record.CodecNone, "s", n, 1, -1, -1, -1)); res.ErrorCode != 0 {
		t.Fatalf("produce to %s-%d: %v", topic, p, kerr.ErrorForCode(res.ErrorCode))
	}
}

func TestFetchSessionIncrementalResponsesCarryOnlyChanges(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb)
	for _, v := range []int16{7, 12, 13, 17} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			topic := fmt.Sprintf("inc%d", v)
			makeTopic(t, cl, topic, 3, nil)
			for p := range int32(3) {
				produceOne(t, cl, topic, p, 2)
			}
			f := newSessionFetcher(t, sb, cl, v, topic)
			at := func(offs ...int64) map[string]map[int32]int64 {
				m := map[int32]int64{}
				for i := 0; i < len(offs); i += 2 {
					m[int32(offs[i])] = offs[i+1]
				}
				return map[string]map[int32]int64{topic: m}
			}
			name := func(p int) string { return fmt.Sprintf("%s-%d", topic, p) }

			resp := f.fetch(at(0, 0, 1, 0, 2, 0), nil)
			if resp.SessionID <= 0 {
				t.Fatalf("a full fetch at epoch 0 opened no session: id %d", resp.SessionID)
			}
			f.expect("the full fetch", resp, name(0)+"+records", name(1)+"+records", name(2)+"+records")
			f.expect("positions moved past the records", f.fetch(at(0, 2, 1, 2, 2, 2), nil))
			f.expect("nothing new", f.fetch(nil, nil))
			produceOne(t, cl, topic, 1, 1)
			f.expect("partition 1 grew", f.fetch(nil, nil), name(1)+"+records")
			f.expect("partition 1 read", f.fetch(at(1, 3), nil))
			f.expect("partition 2 forgotten", f.fetch(nil, map[string][]int32{topic: {2}}))
			produceOne(t, cl, topic, 2, 1)
			f.expect("a forgotten partition grew", f.fetch(nil, nil))

			// A repeated epoch, and one from the other side of v13, are
			// refused and leave the session as it was.
			stale := f.request(nil, nil)
			stale.SessionEpoch = f.epoch - 1
			if resp := f.send(stale); resp.ErrorCode != kerr.InvalidFetchSessionEpoch.Code || len(resp.Topics) != 0 {
				t.Fatalf("a repeated epoch: error %d, %d topics", resp.ErrorCode, len(resp.Topics))
			}
			other := f.request(at(0, 0), nil)
			if v >= 13 {
				other.SetVersion(12)
			} else {
				other.SetVersion(13)
			}
			if resp := f.send(other); resp.ErrorCode != kerr.FetchSessionTopicIDError.Code || len(resp.Topics) != 0 {
				t.Fatalf("v%d in a v%d session: error %d, %d topics", other.GetVersion(), v, resp.ErrorCode, len(resp.Topics))
			}
			f.expect("partition 2 added again", f.fetch(at(2, 2), nil), name(2)+"+records")

			// Epoch -1 closes the session, with a full fetch without one.
			closing := f.request(at(0, 0), nil)
			closing.SessionEpoch = -1
			resp = f.send(closing)
			if resp.SessionID != 0 {
				t.Fatalf("closing fetch answered with session %d", resp.SessionID)
			}
			f.expect("the closing fetch", resp, name(0)+"+records")
			if resp := f.fetch(nil, nil); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code || len(resp.Topics) != 0 {
				t.Fatalf("a fetch in the closed session: error %d, %d topics", resp.ErrorCode, len(resp.Topics))
			}
		})
	}
}

// TestFetchSessionLongPollWaitsOnPartitionsNotInTheRequest sends an
// incremental fetch that names no partition: its long poll waits on the
// session's, and returns when one of them grows.
func TestFetchSessionLongPollWaitsOnPartitionsNotInTheRequest(t *testing.T) {
	sb := samsatest.Start(t)
	admin := clientFor(t, sb)
	makeTopic(t, admin, "poll", 2, nil)
	f := newSessionFetcher(t, sb, admin, 17, "poll")
	f.expect("the full fetch", f.fetch(map[string]map[int32]int64{"poll": {0: 0, 1: 0}}, nil), "poll-0", "poll-1")

	written := make(writeHook, 1)
	cl := clientFor(t, sb, kgo.WithHooks(written)) // Fetch v17, the newest served
	req := f.request(nil, nil)
	req.MinBytes, req.MaxWaitMillis = 1, 20000
	type result struct {
		resp *kmsg.FetchResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := req.RequestWith(deadlineCtx(t), cl)
		done <- result{resp, err}
	}()
	<-written
	produceOne(t, admin, "poll", 1, 1)
	got := <-done
	if got.err != nil {
		t.Fatal(got.err)
	}
	f.advance(req, got.resp)
	f.expect("the long poll", got.resp, "poll-1+records")
}

// TestFetchSessionAnswersDeletedAndUnknownTopics keeps partitions of a
// deleted topic, and of a topic id nobody knows, in sessions: they are
// answered with errors on every fetch until forgotten, and a topic created
// again under the name is served to a session by name.
func TestFetchSessionAnswersDeletedAndUnknownTopics(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb)
	adm := kadm.NewClient(cl)
	ctx := deadlineCtx(t)
	deleteTopic := func(name string) {
		t.Helper()
		resp, err := adm.DeleteTopic(ctx, name)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Fatalf("delete %s: %v", name, err)
		}
	}

	t.Run("by id", func(t *testing.T) {
		makeTopic(t, cl, "keep", 1, nil)
		makeTopic(t, cl, "gone", 2, nil)
		f := newSessionFetcher(t, sb, cl, 17, "keep", "gone")
		f.expect("the full fetch", f.fetch(map[string]map[int32]int64{"keep": {0: 0}, "gone": {0: 0, 1: 0}}, nil),
			"gone-0", "gone-1", "keep-0")
		deleteTopic("gone")
		eventually(t, "the deleted topic's partitions answered UNKNOWN_TOPIC_ID", func() (bool, string) {
			got := f.carried(f.fetch(nil, nil))
			return slices.Equal(got, []string{"gone-0!UNKNOWN_TOPIC_ID", "gone-1!UNKNOWN_TOPIC_ID"}), fmt.Sprint(got)
		})
		f.ids["nobody"] = [16]byte{9, 9, 9}
		f.expect("an unknown topic id added", f.fetch(map[string]map[int32]int64{"nobody": {4: 0}}, nil),
			"gone-0!UNKNOWN_TOPIC_ID", "gone-1!UNKNOWN_TOPIC_ID", "nobody-4!UNKNOWN_TOPIC_ID")
		f.expect("again", f.fetch(nil, nil),
			"gone-0!UNKNOWN_TOPIC_ID", "gone-1!UNKNOWN_TOPIC_ID", "nobody-4!UNKNOWN_TOPIC_ID")
		f.expect("forgotten", f.fetch(nil, map[string][]int32{"gone": {0, 1}, "nobody": {4}}))
		produceOne(t, cl, "keep", 0, 1)
		f.expect("the other partition still served", f.fetch(nil, nil), "keep-0+records")
	})

	t.Run("by name", func(t *testing.T) {
		makeTopic(t, cl, "keep2", 1, nil)
		makeTopic(t, cl, "gone2", 2, nil)
		f := newSessionFetcher(t, sb, cl, 12, "keep2", "gone2")
		f.expect("the full fetch", f.fetch(map[string]map[int32]int64{"keep2": {0: 0}, "gone2": {0: 0, 1: 0}}, nil),
			"gone2-0", "gone2-1", "keep2-0")
		deleteTopic("gone2")
		eventually(t, "the deleted topic's partitions answered UNKNOWN_TOPIC_OR_PARTITION", func() (bool, string) {
			got := f.carried(f.fetch(nil, nil))
			return slices.Equal(got, []string{"gone2-0!UNKNOWN_TOPIC_OR_PARTITION", "gone2-1!UNKNOWN_TOPIC_OR_PARTITION"}), fmt.Sprint(got)
		})
		makeTopic(t, cl, "gone2", 2, nil)
		eventually(t, "the topic created again served", func() (bool, string) {
			got := f.carried(f.fetch(nil, nil))
			return slices.Equal(got, []string{"gone2-0", "gone2-1"}), fmt.Sprint(got)
		})
	})
}

// TestFetchSessionReadsPartitionsThatReturnedDataLast checks the order a
// session reads its partitions in: one that returned records goes to the
// end, so that when max_bytes leaves room for one batch the partitions
// take turns.
func TestFetchSessionReadsPartitionsThatReturnedDataLast(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb)
	makeTopic(t, cl, "turns", 3, nil)
	big := strings.Repeat("x", 1000)
	for range 3 {
		for p := range int32(3) {
			if res := produceRaw(t, cl, "turns", p, buildBatch(t, record.CodecNone, big, 1, 1, -1, -1, -1)); res.ErrorCode != 0 {
				t.Fatalf("produce: %v", kerr.ErrorForCode(res.ErrorCode))
			}
		}
	}
	f := newSessionFetcher(t, sb, cl, 17, "turns")
	f.maxBytes = 1 // the first batch comes whole, nothing after it fits
	at := func(p, offset int64) map[string]map[int32]int64 {
		return map[string]map[int32]int64{"turns": {int32(p): offset}}
	}
	f.expect("the full fetch", f.fetch(map[string]map[int32]int64{"turns": {0: 0, 1: 0, 2: 0}}, nil),
		"turns-0+records", "turns-1", "turns-2")
	// Each partition read moves behind the others, which are read first.
	f.expect("after partition 0", f.fetch(at(0, 1), nil), "turns-1+records")
	f.expect("after partition 1", f.fetch(at(1, 1), nil), "turns-2+records")
	f.expect("after partition 2", f.fetch(at(2, 1), nil), "turns-0+records")
	f.expect("partition 0 again", f.fetch(at(0, 2), nil), "turns-1+records")
}

// TestFetchSessionCarriesAMovedLogStart moves the log start of a caught-up
// partition with DeleteRecords, which appends nothing: an incremental
// fetch soon carries the partition with its new log start.
func TestFetchSessionCarriesAMovedLogStart(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb)
	makeTopic(t, cl, "trimmed", 2, nil)
	produceOne(t, cl, "trimmed", 0, 5)
	f := newSessionFetcher(t, sb, cl, 17, "trimmed")
	f.expect("the full fetch", f.fetch(map[string]map[int32]int64{"trimmed": {0: 5, 1: 0}}, nil), "trimmed-0", "trimmed-1")
	f.expect("nothing new", f.fetch(nil, nil))
	var to kadm.Offsets
	to.Add(kadm.Offset{Topic: "trimmed", Partition: 0, At: 3})
	deleted, err := kadm.NewClient(cl).DeleteRecords(deadlineCtx(t), to)
	if err == nil {
		err = deleted.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new log start sent", func() (bool, string) {
		resp := f.fetch(nil, nil)
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.Partition == 0 && rp.LogStartOffset == 3 && rp.ErrorCode == 0 {
					return true, ""
				}
			}
		}
		return false, fmt.Sprint(f.carried(resp))
	})
}
