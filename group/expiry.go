package group

import (
	"maps"
	"slices"
	"time"

	"github.com/samsa-io/samsa/group/classic"
)

// Offsets expire as in Kafka 2.1+ (KIP-211), checked every
// offsets.retention.check.interval.ms:
//
//   - only the offsets of topics the group's members do not use;
//   - an offset committed with an explicit retention time (OffsetCommit
//     v2–v4) expires at that time;
//   - otherwise a classic group's offsets expire a retention period after
//     the group became Empty (or after their commit, if that time is
//     unknown); a simple group's (no protocol) and a consumer group's a
//     retention period after their commit; a classic group that is not
//     Empty keeps them, unless it is a Stable consumer-protocol group
//     whose subscriptions are known, which loses the offsets of topics it
//     no longer uses a retention period after their commit;
//   - never an offset that an open transaction has a commit of pending
//     (TxnOffsetCommit): the transaction's commit marker would make it the
//     group's offset again, and a replay of the log, where the tombstone
//     drops the pending commit, would not.
//
// A group left with no offsets, no members and no pending transactional
// offsets is deleted (a tombstone for its records), as Kafka's cleanup
// does.

// expire writes tombstones for expired offsets and empty groups.
func (c *Coordinator) expire(now time.Time, out *Output) {
	nowMs := ms(now)
	retention := c.cfg.OffsetsRetention.Milliseconds()
	for _, id := range slices.Sorted(maps.Keys(c.groups)) {
		g := c.groups[id]
		g.ensureClassic(c.cfg.Classic)
		base, ok := c.expiryBase(g)
		allExpired := ok
		if ok {
			for _, topic := range slices.Sorted(maps.Keys(g.offsets)) {
				if g.subscribed(topic) {
					allExpired = false
					continue
				}
				parts := g.offsets[topic]
				for _, p := range slices.Sorted(maps.Keys(parts)) {
					if expired(parts[p], base, nowMs, retention) && !c.pendingOffset(id, topic, p) {
						g.deleteOffset(topic, p)
						out.Records = append(out.Records, c.offsetTombstone(id, topic, p))
					} else {
						allExpired = false
					}
				}
			}
		}
		if (allExpired || len(g.offsets) == 0) && g.empty() && !c.PendingTxnOffsets(id) {
			out.Records = c.deleteGroup(g, out.Records)
		}
	}
}

// expiryBase returns what an offset's retention counts from, as Kafka's
// offsetExpirationCondition: the time the group became empty (a negative
// base means each offset's commit time); ok is false when the group's
// offsets do not expire now.
func (c *Coordinator) expiryBase(g *group) (base int64, ok bool) {
	if g.consumer != nil {
		return -1, true
	}
	switch {
	case g.classic.ProtocolType() == "":
		return -1, true // a simple group
	case g.classic.State() == classic.Empty:
		return g.emptySince, true
	case g.classic.ProtocolType() == "consumer" && g.classic.State() == classic.Stable:
		if _, known := g.classic.Subscribed(); known {
			return -1, true
		}
	}
	return 0, false
}

// expired reports whether o expired at nowMs.
func expired(o offset, base, nowMs, retention int64) bool {
	if o.expires >= 0 {
		return nowMs >= o.expires
	}
	if base < 0 {
		base = o.committed
	}
	return nowMs-base >= retention
}
