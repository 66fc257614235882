package broker

import (
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchSessionAllocationsDoNotGrowWithPartitions checks that an
// incremental fetch allocates the same, in objects and about in bytes,
// whether its session holds 1 partition or 256: what it needs per
// partition is borrowed from the session, and partitions without news
// cost the response nothing.
func TestFetchSessionAllocationsDoNotGrowWithPartitions(t *testing.T) {
	b := startHotpathBroker(t)
	c := dialHotpath(t, b)
	per := map[int32]float64{}
	bytesPer := map[int32]float64{}
	for _, n := range []int32{1, 256} {
		topic := fmt.Sprintf("session%d", n)
		createHotpathTopic(t, b, c, topic, n)
		id := b.meta.Image().Topics[topic].ID
		req := NewFetchReq().Version(17).Wait(0, 1).MaxBytes(1<<20).Session(0, 0).
			Topic("", id, 0, firstPartitions(n)...).
			Request()
		resp := c.call(req).(*kmsg.FetchResponse)
		if resp.ErrorCode != 0 || resp.SessionID <= 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != int(n) {
			t.Fatalf("opening a session of %d partitions: error %d, session %d, %d topics", n, resp.ErrorCode, resp.SessionID, len(resp.Topics))
		}

		// Incremental fetches of nothing new, one frame per epoch.
		const warm, rounds, perRound = 10, 5, 40
		frames := make([][]byte, warm+rounds*perRound)
		req.Topics = nil
		req.SessionID = resp.SessionID
		for i := range frames {
			req.SessionEpoch = int32(i + 1)
			frames[i] = hotpathFrame(req)
		}
		for _, f := range frames[:warm] {
			checkIncrementalEmpty(t, req, c.roundTrip(f))
		}
		least, leastBytes := math.Inf(1), math.Inf(1)
		for r := range rounds {
			before, beforeBytes := allocated()
			for _, f := range frames[warm+r*perRound : warm+(r+1)*perRound] {
				c.roundTrip(f)
			}
			after, afterBytes := allocated()
			least = min(least, float64(after-before)/perRound)
			leastBytes = min(leastBytes, float64(afterBytes-beforeBytes)/perRound)
			checkIncrementalEmpty(t, req, c.resp)
		}
		per[n], bytesPer[n] = least, leastBytes
		t.Logf("%.2f allocations, %.0f bytes per incremental fetch in a session of %d partitions", least, leastBytes, n)
	}
	// A fetch's state of a partition is over 100 bytes: 16 per partition
	// leaves room for the process's background noise, not for that.
	if bytesPer[256] > bytesPer[1]+16*256 {
		t.Errorf("an incremental fetch in a session of 256 partitions allocates %.0f bytes, in one of 1 partition %.0f: bytes grow with partitions",
			bytesPer[256], bytesPer[1])
	}
	if per[256] > per[1]+allocSlack {
		t.Errorf("an incremental fetch in a session of 256 partitions makes %.2f allocations, in one of 1 partition %.2f: allocations grow with partitions",
			per[256], per[1])
	}
}

// allocated is the number of heap objects and bytes the process has
// allocated so far.
func allocated() (objects, bytes uint64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs, ms.TotalAlloc
}

// checkIncrementalEmpty fails unless an incremental Fetch response
// succeeded and carried nothing.
func checkIncrementalEmpty(tb testing.TB, req *kmsg.FetchRequest, body []byte) {
	tb.Helper()
	resp := decodeHotpathResponse(tb, req, body).(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil || len(resp.Topics) != 0 || resp.SessionID != req.SessionID {
		tb.Fatalf("incremental fetch: error %v, %d topics, session %d", err, len(resp.Topics), resp.SessionID)
	}
}
