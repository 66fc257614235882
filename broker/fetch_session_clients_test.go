package broker_test

// Fetch sessions (KIP-227) through franz-go, which uses them by default:
// consumers whose partitions change (direct consumption, group
// rebalances) and consumers whose sessions are evicted read every record
// once, in order. A spy on the client's connections decodes the Fetch
// requests and responses, so that the tests know sessions were used.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/broker"
	"github.com/samsa-io/samsa/samsatest"
)

// fetchSpy is a dialer whose connections decode the Fetch requests the
// client writes and the responses it reads.
type fetchSpy struct {
	mu        sync.Mutex
	exchanges []fetchExchange // in the order the responses were read; guarded by mu
}

// fetchExchange is a Fetch request and its response.
type fetchExchange struct {
	req  *kmsg.FetchRequest
	resp *kmsg.FetchResponse
}

func (s *fetchSpy) dial(ctx context.Context, network, host string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	return &spyConn{Conn: c, spy: s, sent: map[int32]*kmsg.FetchRequest{}}, nil
}

// count is how many exchanges match.
func (s *fetchSpy) count(match func(fetchExchange) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.exchanges {
		if match(e) {
			n++
		}
	}
	return n
}

func (s *fetchSpy) summary() string {
	return fmt.Sprintf("%d fetches: %d opened a session, %d incremental, %d incremental that forgot partitions, %d incremental that added or moved partitions, %d FETCH_SESSION_ID_NOT_FOUND, %d other top-level errors",
		s.count(func(fetchExchange) bool { return true }), s.count(openedSession), s.count(incremental),
		s.count(forgot), s.count(addedOrMoved), s.count(sessionNotFound), s.count(otherTopLevelError))
}

func openedSession(e fetchExchange) bool { return e.req.SessionEpoch == 0 && e.resp.SessionID > 0 }
func incremental(e fetchExchange) bool {
	return e.req.SessionEpoch > 0 && e.resp.ErrorCode == 0 && e.resp.SessionID == e.req.SessionID
}
func forgot(e fetchExchange) bool       { return incremental(e) && len(e.req.ForgottenTopics) > 0 }
func addedOrMoved(e fetchExchange) bool { return incremental(e) && len(e.req.Topics) > 0 }
func sessionNotFound(e fetchExchange) bool {
	return e.resp.ErrorCode == kerr.FetchSessionIDNotFound.Code
}
func otherTopLevelError(e fetchExchange) bool {
	return e.resp.ErrorCode != 0 && !sessionNotFound(e)
}

// spyConn decodes the Fetch frames going through it.
type spyConn struct {
	net.Conn
	spy *fetchSpy

	mu   sync.Mutex
	out  []byte                       // written, not yet a whole frame; guarded by mu
	sent map[int32]*kmsg.FetchRequest // Fetch requests by correlation id; guarded by mu
	in   []byte                       // read, not yet a whole frame; the reader's
}

func (c *spyConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.out = append(c.out, p...)
	for {
		frame, rest, ok := cutFrame(c.out)
		if !ok {
			break
		}
		c.out = rest
		if req := decodeFetchRequest(frame); req != nil {
			c.sent[int32(binary.BigEndian.Uint32(frame[4:]))] = req
		}
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *spyConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in = append(c.in, p[:n]...)
	for {
		frame, rest, ok := cutFrame(c.in)
		if !ok {
			break
		}
		c.in = rest
		corr := int32(binary.BigEndian.Uint32(frame))
		c.mu.Lock()
		req := c.sent[corr]
		delete(c.sent, corr)
		c.mu.Unlock()
		if req == nil {
			continue
		}
		body := frame[4:]
		if req.IsFlexible() {
			body = skipTaggedFields(body)
		}
		resp := kmsg.NewPtrFetchResponse()
		resp.SetVersion(req.GetVersion())
		if err := resp.ReadFrom(body); err != nil {
			panic(fmt.Sprintf("spy: decoding a Fetch v%d response: %v", req.GetVersion(), err))
		}
		c.spy.mu.Lock()
		c.spy.exchanges = append(c.spy.exchanges, fetchExchange{req, resp})
		c.spy.mu.Unlock()
	}
	return n, err
}

// cutFrame cuts a whole size-prefixed frame, copied, off b.
func cutFrame(b []byte) (frame, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, b, false
	}
	n := int(binary.BigEndian.Uint32(b))
	if len(b) < 4+n {
		return nil, b, false
	}
	return slices.Clone(b[4 : 4+n]), b[4+n:], true
}

// decodeFetchRequest decodes a request frame (after its size) when it is a
// Fetch request.
func decodeFetchRequest(frame []byte) *kmsg.FetchRequest {
	if int16(binary.BigEndian.Uint16(frame)) != 1 {
		return nil
	}
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(int16(binary.BigEndian.Uint16(frame[2:])))
	body := frame[8:]
	if idLen := int16(binary.BigEndian.Uint16(body)); idLen > 0 {
		body = body[2+idLen:]
	} else {
		body = body[2:]
	}
	if req.IsFlexible() {
		body = skipTaggedFields(body)
	}
	if err := req.ReadFrom(body); err != nil {
		panic(fmt.Sprintf("spy: decoding a Fetch v%d request: %v", req.GetVersion(), err))
	}
	return req
}

// skipTaggedFields skips a header's tagged fields.
func skipTaggedFields(b []byte) []byte {
	n, used := binary.Uvarint(b)
	b = b[used:]
	for range n {
		_, used = binary.Uvarint(b) // tag
		b = b[used:]
		size, used := binary.Uvarint(b)
		b = b[used+int(size):]
	}
	return b
}

// orderChecker checks that the records of every partition are read once
// each, in order, whoever reads them: each record read must be at the
// partition's next offset.
type orderChecker struct {
	topic string

	mu   sync.Mutex
	next map[int32]int64 // guarded by mu
	errs []string        // guarded by mu
}

func newOrderChecker(topic string) *orderChecker {
	return &orderChecker{topic: topic, next: map[int32]int64{}}
}

func (o *orderChecker) read(who string, r *kgo.Record) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if want := o.next[r.Partition]; r.Offset != want || r.Topic != o.topic ||
		!strings.HasPrefix(string(r.Value), fmt.Sprintf("%d-", r.Partition)) {
		if len(o.errs) < 20 {
			o.errs = append(o.errs, fmt.Sprintf("%s read %s-%d@%d (%q), want offset %d", who, r.Topic, r.Partition, r.Offset, r.Value, want))
		}
		return
	}
	o.next[r.Partition] = r.Offset + 1
}

// nextOffset is the offset of partition p to be read next.
func (o *orderChecker) nextOffset(p int32) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.next[p]
}

// check fails the test with the records read out of order or twice.
func (o *orderChecker) check(t *testing.T) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.errs) > 0 {
		t.Fatalf("records read out of order, twice or skipped:\n%s", strings.Join(o.errs, "\n"))
	}
}

// caughtUp reports whether every partition has been read to its end.
func (o *orderChecker) caughtUp(ctx context.Context, adm *kadm.Client) (bool, string) {
	ends, err := adm.ListEndOffsets(ctx, o.topic)
	if err != nil {
		return false, err.Error()
	}
	behind := 0
	var first string
	ends.Each(func(e kadm.ListedOffset) {
		if n := o.nextOffset(e.Partition); n != e.Offset {
			if behind == 0 {
				first = fmt.Sprintf("partition %d at %d of %d", e.Partition, n, e.Offset)
			}
			behind++
		}
	})
	return behind == 0, fmt.Sprintf("%d partitions not read to the end (%s)", behind, first)
}

// pollInto polls cl once, for up to d, and passes the records to o.
func pollInto(t *testing.T, cl *kgo.Client, o *orderChecker, who string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	fs := cl.PollFetches(ctx)
	for _, err := range fs.Errors() {
		if !errors.Is(err.Err, context.DeadlineExceeded) {
			t.Fatalf("%s: fetch %s-%d: %v", who, err.Topic, err.Partition, err.Err)
		}
	}
	fs.EachRecord(func(r *kgo.Record) { o.read(who, r) })
}

// TestFetchSessionsFollowDirectConsumerPartitionChanges consumes from
// half the partitions of a topic while records are produced to all, and
// checks that every record is read once and in order while the consumer
// pauses and resumes partitions (which franz-go sends, in its session, as
// partitions forgotten and added again) and swaps partitions in and out
// (after which it opens a new session, closing the old one).
func TestFetchSessionsFollowDirectConsumerPartitionChanges(t *testing.T) {
	const partitions = 64
	sb := samsatest.Start(t)
	admin := clientFor(t, sb)
	adm := kadm.NewClient(admin)
	makeTopic(t, admin, "direct", partitions, nil)
	f := newFeeder(t, sb.Addr(), newLedger(), "direct", partitions)
	f.start(t)

	rng := rand.New(rand.NewPCG(1, 2))
	consuming := map[int32]bool{}
	start := map[int32]kgo.Offset{}
	for _, p := range rng.Perm(partitions)[:partitions/2] {
		consuming[int32(p)] = true
		start[int32(p)] = kgo.NewOffset().AtStart()
	}
	spy := &fetchSpy{}
	cl := clientFor(t, sb, kgo.Dialer(spy.dial), kgo.FetchMaxWait(50*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"direct": start}))
	o := newOrderChecker("direct")
	var paused []int32
	for step := range 15 {
		for range 4 {
			pollInto(t, cl, o, "consumer", 200*time.Millisecond)
		}
		cl.ResumeFetchPartitions(map[string][]int32{"direct": paused})
		paused = nil
		if step%3 == 2 {
			// Swap 8 partitions out and 8 others in, from where they
			// were left.
			var out []int32
			in := map[int32]kgo.Offset{}
			for _, p := range rng.Perm(partitions) {
				p := int32(p)
				switch {
				case consuming[p] && len(out) < 8:
					out = append(out, p)
				case !consuming[p] && len(in) < 8:
					in[p] = kgo.NewOffset().At(o.nextOffset(p))
				}
			}
			cl.RemoveConsumePartitions(map[string][]int32{"direct": out})
			cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{"direct": in})
			for _, p := range out {
				delete(consuming, p)
			}
			for p := range in {
				consuming[p] = true
			}
			continue
		}
		for _, p := range rng.Perm(partitions) {
			if consuming[int32(p)] && len(paused) < 6 {
				paused = append(paused, int32(p))
			}
		}
		cl.PauseFetchPartitions(map[string][]int32{"direct": paused})
	}
	cl.ResumeFetchPartitions(map[string][]int32{"direct": paused})
	// All of them, to the end.
	rest := map[int32]kgo.Offset{}
	for p := range int32(partitions) {
		if !consuming[p] {
			rest[p] = kgo.NewOffset().At(o.nextOffset(p))
		}
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{"direct": rest})
	f.stop()
	ctx := deadlineCtx(t)
	eventually(t, "every record read", func() (bool, string) {
		pollInto(t, cl, o, "consumer", 200*time.Millisecond)
		return o.caughtUp(ctx, adm)
	})
	o.check(t)
	t.Log(spy.summary())
	if spy.count(forgot) == 0 || spy.count(addedOrMoved) == 0 || spy.count(openedSession) < 2 ||
		spy.count(otherTopLevelError) > 0 || spy.count(sessionNotFound) > 0 {
		t.Fatalf("the consumer did not fetch in sessions throughout: %s", spy.summary())
	}
}

// TestFetchSessionsFollowGroupRebalances runs a group whose members join
// and leave while records are produced, with the range (eager) and
// cooperative-sticky balancers; every record is read once and in order.
// franz-go opens a new session (closing the old one) for each assignment
// and fetches incrementally in it.
func TestFetchSessionsFollowGroupRebalances(t *testing.T) {
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer
	}{
		{"range", kgo.RangeBalancer()},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const partitions = 32
			sb, _, adm, ctx := adminClients(t, groupTestConfig())
			if _, err := adm.CreateTopic(ctx, partitions, 1, nil, "rebalanced"); err != nil {
				t.Fatal(err)
			}
			f := newFeeder(t, sb.Addr(), newLedger(), "rebalanced", partitions)
			f.start(t)
			o := newOrderChecker("rebalanced")
			spies := map[string]*fetchSpy{} // by member name
			start := func(name string) *clientMember {
				spies[name] = &fetchSpy{}
				setup := memberSetup{read: o.read, dial: spies[name].dial, mustCommitOnRevoke: true}
				return startClientMember(t, sb.Addr(), name, "sessions", "rebalanced", setup, kgo.Balancers(tc.balancer))
			}
			stable := func(what string, n int) {
				eventually(t, what, func() (bool, string) {
					return describedOnce(ctx, adm, "sessions", "rebalanced", n, partitions)
				})
			}
			progressed := func(what string) {
				eventually(t, what, func() (bool, string) {
					ends, err := adm.ListEndOffsets(ctx, "rebalanced")
					if err != nil {
						return false, err.Error()
					}
					behind := 0
					ends.Each(func(e kadm.ListedOffset) {
						if o.nextOffset(e.Partition) == 0 {
							behind++
						}
					})
					return behind == 0, fmt.Sprintf("%d partitions not read from yet", behind)
				})
			}
			members := []*clientMember{start("m0")}
			stable("one member", 1)
			progressed("m0 reads")
			members = append(members, start("m1"))
			stable("two members", 2)
			members = append(members, start("m2"))
			stable("three members", 3)
			members[1].stop()
			members = slices.Delete(members, 1, 2)
			stable("m1 left", 2)
			f.stop()
			eventually(t, "every record read", func() (bool, string) { return o.caughtUp(ctx, adm) })
			o.check(t)
			for _, m := range members {
				t.Logf("%s: %s", m.name, spies[m.name].summary())
			}
			m0 := spies[members[0].name]
			if m0.count(openedSession) < 2 || m0.count(addedOrMoved) == 0 || m0.count(otherTopLevelError) > 0 {
				t.Fatalf("m0 did not fetch in a session for each of its assignments: %s", m0.summary())
			}
		})
	}
}

// TestFetchSessionsSurviveEviction gives the broker room for one session
// and runs two consumers of a topic: each session opened evicts the
// other's, whose next fetch is answered FETCH_SESSION_ID_NOT_FOUND and
// opens a new one. Both still read every record once, in order.
func TestFetchSessionsSurviveEviction(t *testing.T) {
	const partitions = 16
	sb := samsatest.Start(t, samsatest.WithConfig(func(c *broker.Config) { c.FetchSessionCacheSlots = 1 }))
	admin := clientFor(t, sb)
	adm := kadm.NewClient(admin)
	makeTopic(t, admin, "evicted", partitions, nil)
	f := newFeeder(t, sb.Addr(), newLedger(), "evicted", partitions)
	f.start(t)
	type consumer struct {
		cl  *kgo.Client
		spy *fetchSpy
		o   *orderChecker
	}
	var cs []consumer
	for range 2 {
		spy := &fetchSpy{}
		cl := clientFor(t, sb, kgo.Dialer(spy.dial), kgo.FetchMaxWait(50*time.Millisecond),
			kgo.ConsumeTopics("evicted"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		cs = append(cs, consumer{cl, spy, newOrderChecker("evicted")})
	}
	// Both poll until each has had its session evicted (more than once,
	// so that the fetches after an eviction are exercised too).
	pollBoth := func() {
		var wg sync.WaitGroup
		for i, c := range cs {
			wg.Go(func() { pollInto(t, c.cl, c.o, fmt.Sprintf("consumer %d", i), 200*time.Millisecond) })
		}
		wg.Wait()
	}
	eventually(t, "both sessions evicted", func() (bool, string) {
		pollBoth()
		a, b := cs[0].spy.count(sessionNotFound), cs[1].spy.count(sessionNotFound)
		return a >= 2 && b >= 2, fmt.Sprintf("FETCH_SESSION_ID_NOT_FOUND %d and %d times", a, b)
	})
	f.stop()
	ctx := deadlineCtx(t)
	eventually(t, "every record read by both", func() (bool, string) {
		pollBoth()
		for i, c := range cs {
			if ok, why := c.o.caughtUp(ctx, adm); !ok {
				return false, fmt.Sprintf("consumer %d: %s", i, why)
			}
		}
		return true, ""
	})
	for i, c := range cs {
		c.o.check(t)
		t.Logf("consumer %d: %s", i, c.spy.summary())
		if c.spy.count(openedSession) < 2 || c.spy.count(otherTopLevelError) > 0 {
			t.Errorf("consumer %d: %s", i, c.spy.summary())
		}
	}
}
