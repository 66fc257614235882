package txn

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDescribeTransaction(t *testing.T) {
	h := newHarness(t)
	if d := h.describe("nope"); d.ErrorCode != kerr.TransactionalIDNotFound.Code || d.TransactionalID != "nope" {
		t.Fatalf("unknown id: %+v", d)
	}
	if d := h.describe(""); d.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("empty id: %+v", d)
	}
	pid, epoch := h.mustInit("tx")
	h.mustAdd("tx", pid, epoch, tp("b", 2), tp("a", 1), tp("b", 0))
	d := h.describe("tx")
	if d.ErrorCode != 0 || d.State != "Ongoing" || d.ProducerID != pid || d.ProducerEpoch != epoch ||
		d.TimeoutMillis != 60000 || d.StartTimestamp != t0.UnixMilli() {
		t.Fatalf("%+v", d)
	}
	if len(d.Topics) != 2 || d.Topics[0].Topic != "a" || d.Topics[1].Topic != "b" ||
		len(d.Topics[1].Partitions) != 2 || d.Topics[1].Partitions[0] != 0 || d.Topics[1].Partitions[1] != 2 {
		t.Fatalf("topics %+v", d.Topics)
	}
	for _, s := range []state{stateEmpty, stateOngoing, statePrepareCommit, statePrepareAbort,
		stateCompleteCommit, stateCompleteAbort, stateDead, statePrepareEpochFence} {
		if got, ok := stateNamed(s.String()); !ok || got != s {
			t.Errorf("state %d named %q", s, s.String())
		}
	}
}

func TestListTransactionsFilters(t *testing.T) {
	h := newHarness(t)
	pA, _ := h.mustInit("app-a") // Empty
	pB, eB := h.mustInit("app-b")
	h.mustAdd("app-b", pB, eB, tp("x", 0)) // Ongoing since t0
	h.now = h.now.Add(10 * time.Second)
	pC, eC := h.mustInit("other")
	h.mustAdd("other", pC, eC, tp("x", 1)) // Ongoing since t0+10s
	h.now = h.now.Add(5 * time.Second)

	list := func(v int16, states []string, pids []int64, duration int64, pattern *string) *kmsg.ListTransactionsResponse {
		req := kmsg.NewPtrListTransactionsRequest()
		req.Version, req.StateFilters, req.ProducerIDFilters = v, states, pids
		req.DurationFilterMillis, req.TransactionalIDPattern = duration, pattern
		return h.c.ListTransactions(h.now, req)
	}
	ids := func(r *kmsg.ListTransactionsResponse) []string {
		var s []string
		for _, ts := range r.TransactionStates {
			s = append(s, ts.TransactionalID+":"+ts.TransactionState)
		}
		return s
	}
	for _, tc := range []struct {
		name     string
		v        int16
		states   []string
		pids     []int64
		duration int64
		pattern  *string
		want     []string
	}{
		{"all", 0, nil, nil, -1, nil, []string{"app-a:Empty", "app-b:Ongoing", "other:Ongoing"}},
		{"state", 0, []string{"Ongoing"}, nil, -1, nil, []string{"app-b:Ongoing", "other:Ongoing"}},
		{"states", 0, []string{"Empty", "PrepareCommit"}, nil, -1, nil, []string{"app-a:Empty"}},
		{"producer ids", 0, nil, []int64{pA, pC}, -1, nil, []string{"app-a:Empty", "other:Ongoing"}},
		{"state and producer", 0, []string{"Ongoing"}, []int64{pA, pC}, -1, nil, []string{"other:Ongoing"}},
		// Running longer than 12s: app-b (15s); Empty has start -1 and
		// passes, as in Kafka.
		{"duration", 1, nil, nil, 12000, nil, []string{"app-a:Empty", "app-b:Ongoing"}},
		{"duration ignored before v1", 0, nil, nil, 12000, nil, []string{"app-a:Empty", "app-b:Ongoing", "other:Ongoing"}},
		{"pattern", 2, nil, nil, -1, ptr("app-.*"), []string{"app-a:Empty", "app-b:Ongoing"}},
		{"pattern matches whole ids", 2, nil, nil, -1, ptr("app"), nil},
		{"empty pattern", 2, nil, nil, -1, ptr(""), []string{"app-a:Empty", "app-b:Ongoing", "other:Ongoing"}},
		{"pattern ignored before v2", 1, nil, nil, -1, ptr("app-.*"), []string{"app-a:Empty", "app-b:Ongoing", "other:Ongoing"}},
	} {
		r := list(tc.v, tc.states, tc.pids, tc.duration, tc.pattern)
		if r.ErrorCode != 0 || r.Version != tc.v || fmtList(ids(r)) != fmtList(tc.want) {
			t.Errorf("%s: %v (code %d), want %v", tc.name, ids(r), r.ErrorCode, tc.want)
		}
	}
	r := list(0, []string{"Ongoing", "Bogus"}, nil, -1, nil)
	if len(r.UnknownStateFilters) != 1 || r.UnknownStateFilters[0] != "Bogus" || len(r.TransactionStates) != 2 {
		t.Fatalf("unknown state filter: %+v", r)
	}
	r = list(0, []string{"Bogus"}, nil, -1, nil)
	if len(r.TransactionStates) != 0 {
		t.Fatalf("only unknown states listed %v", ids(r))
	}
	if r := list(2, nil, nil, -1, ptr("app-(")); r.ErrorCode != kerr.InvalidRegularExpression.Code {
		t.Fatalf("bad pattern: %+v", r)
	}
}

func fmtList(s []string) string {
	out := ""
	for _, x := range s {
		out += x + ","
	}
	return out
}
