package txn

// Timers. A transaction still Ongoing after its timeout
// (transaction.timeout.ms, given by InitProducerId) is aborted by the
// coordinator, with its epoch bumped so that the producer, if it still
// lives, is fenced (Kafka's PrepareEpochFence then PrepareAbort). A
// transactional id with no transaction for transactional.id.expiration.ms
// is forgotten: a tombstone is written for it.

import (
	"slices"
	"strings"
	"time"
)

// Tick advances time: transactions past their timeout are aborted (their
// producer epoch bumped, as Kafka does), ids unused for IDExpiration are
// forgotten, adds held longer than holdLimit are answered.
func (c *Coordinator) Tick(now time.Time) Output {
	var out Output
	nowMillis := now.UnixMilli()
	expireBefore := now.Add(-c.cfg.IDExpiration).UnixMilli()
	// In id order, so that the output is deterministic.
	ids := make([]string, 0, len(c.txns))
	for id := range c.txns {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, strings.Compare)
	c.wake = time.Time{}
	for _, id := range ids {
		t := c.txns[id]
		if t != nil && len(t.held) > 0 {
			c.expireHeld(t, now, &out)
		}
		switch {
		case t == nil:
		case t.state == stateOngoing && t.markers == 0 && t.startMillis+int64(t.timeoutMillis) < nowMillis:
			c.abort(t, now, &out)
		case t.state.idle() && t.fencer == nil && t.updateMillis <= expireBefore:
			c.remove(t)
			out.Records = append(out.Records, c.tombstone(id))
		default:
			c.schedule(t)
		}
	}
	return out
}

// Deadline is when Tick next has something to do.
func (c *Coordinator) Deadline() (t time.Time, ok bool) {
	return c.wake, !c.wake.IsZero()
}
