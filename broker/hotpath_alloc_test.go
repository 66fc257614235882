package broker

import (
	"math"
	"testing"
)

// allocsPerRequest is what one round trip of frame allocates, process-wide:
// the least of several rounds' averages, so that what the broker's
// background goroutines happen to allocate during a round (timers of the
// metadata quorum, a pool refilled after a GC) does not count against it.
func allocsPerRequest(c *hotpathClient, frame []byte) float64 {
	const rounds, perRound = 5, 40
	for range 10 { // warm up: pools, metric series, the log's index
		c.roundTrip(frame)
	}
	least := math.Inf(1)
	for range rounds {
		before := mallocs()
		for range perRound {
			c.roundTrip(frame)
		}
		least = min(least, float64(mallocs()-before)/perRound)
	}
	return least
}

// allocSlack is how many more allocations a request of many records may
// make than one of 1. A record (or, for Fetch, a batch) that cost an
// allocation would add 99 or 999. Some difference is not growth: a Fetch
// response of one small batch is copied into the connection's write
// buffer, larger ones go with sendfile(2), whose call allocates 3 times
// (storage/sendfile_linux.go); and under the race detector, sync.Pool
// drops a quarter of what it is given back.
const allocSlack = 5

// TestProduceAllocationsDoNotGrowWithRecords checks that what a Produce
// request allocates, handled through a real connection, does not depend on
// the records in its batch: the broker neither copies nor decodes them
// one by one.
func TestProduceAllocationsDoNotGrowWithRecords(t *testing.T) {
	b := startHotpathBroker(t)
	c := dialHotpath(t, b)
	createHotpathTopic(t, b, c, "produce", 1)
	for _, acks := range []int16{1, -1} {
		per := map[int]float64{}
		for _, n := range []int{1, 1000} {
			req := produceRequest(t, "produce", 1, n, acks)
			frame := hotpathFrame(req)
			checkProduced(t, req, c.roundTrip(frame))
			per[n] = allocsPerRequest(c, frame)
			checkProduced(t, req, c.resp)
		}
		t.Logf("acks=%d: %.2f allocations per request of 1 record, %.2f of 1000", acks, per[1], per[1000])
		if per[1000] > per[1]+allocSlack {
			t.Errorf("acks=%d: a request of 1000 records makes %.2f allocations, one of 1 record %.2f: allocations grow with records",
				acks, per[1000], per[1])
		}
	}
}

// TestFetchAllocationsDoNotGrowWithRecords checks that what a Fetch request
// allocates does not depend on the records, or batches, it returns.
func TestFetchAllocationsDoNotGrowWithRecords(t *testing.T) {
	f := newFetchFixture(t)
	for _, v := range []int16{4, 17} {
		per := map[fetchCase]float64{}
		for i, fc := range fetchCases {
			req := f.request(v, i)
			frame := hotpathFrame(req)
			checkFetched(t, req, f.c.roundTrip(frame), fc.records)
			per[fc] = allocsPerRequest(f.c, frame)
			checkFetched(t, req, f.c.resp, fc.records)
		}
		one := per[fetchCase{1, 1}]
		for _, fc := range fetchCases {
			t.Logf("v%d: %.2f allocations per request of %d records in batches of %d", v, per[fc], fc.records, fc.perBatch)
			if per[fc] > one+allocSlack {
				t.Errorf("v%d: a request of %d records in batches of %d makes %.2f allocations, one of 1 record %.2f: allocations grow with records",
					v, fc.records, fc.perBatch, per[fc], one)
			}
		}
	}
}
