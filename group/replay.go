package group

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group/classic"
	"github.com/samsa-io/samsa/group/consumer"
)

// Replay applies one record read back from __consumer_offsets at start-up,
// in log order; a nil value is a tombstone. Records it does not know are
// skipped, as Kafka does; a known record that does not decode is an error
// (the log is corrupt), and changes nothing.
//
// Classic groups are restored from their last snapshot by Loaded, which
// knows the time; consumer groups replay record by record. A group whose
// records are all tombstoned is gone; its offsets, if any remain, belong
// to a simple group from then on.
func (c *Coordinator) Replay(partition int32, key, value []byte) error {
	v, ok := keyVersion(key)
	if !ok {
		return nil
	}
	switch v {
	case 0, 1:
		return c.replayOffset(key, value)
	case groupMetadataKeyVersion:
		return c.replayClassic(key, value)
	}
	if id, ok := consumer.GroupID(key); ok {
		return c.replayConsumer(id, key, value)
	}
	return nil
}

func (c *Coordinator) replayOffset(key, value []byte) error {
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(key); err != nil {
		return &errCorrupt{"offset commit key", err}
	}
	g := c.lookup(k.Group)
	// A plain commit or a deletion after a transactional one: see
	// txn_offsets.go.
	c.txn.supersede(k.Group, topicPartition{k.Topic, k.Partition}, value == nil)
	if value == nil {
		if g != nil {
			g.deleteOffset(k.Topic, k.Partition)
			c.dropIfGone(g)
		}
		return nil
	}
	o, err := decodeOffsetValue(value)
	if err != nil {
		return &errCorrupt{"offset commit value", err}
	}
	if g == nil {
		g = c.add(k.Group)
	}
	g.setOffset(k.Topic, k.Partition, o)
	return nil
}

func (c *Coordinator) replayClassic(key, value []byte) error {
	var k kmsg.GroupMetadataKey
	if err := k.ReadFrom(key); err != nil {
		return &errCorrupt{"group metadata key", err}
	}
	g := c.lookup(k.Group)
	if value == nil {
		if g != nil && g.consumer == nil {
			g.classic, g.snapshot, g.persisted = nil, nil, false
			c.dropIfGone(g)
		}
		return nil
	}
	v := new(kmsg.GroupMetadataValue)
	if err := v.ReadFrom(value); err != nil {
		return &errCorrupt{"group metadata value", err}
	}
	if g == nil {
		g = c.add(k.Group)
	}
	// A classic group replaces whatever held the id: the consumer
	// group's tombstones may have been compacted away.
	g.consumer, g.keys, g.classic = nil, nil, nil
	g.snapshot, g.persisted = v, true
	return nil
}

func (c *Coordinator) replayConsumer(id string, key, value []byte) error {
	g := c.lookup(id)
	if value == nil && (g == nil || g.consumer == nil) {
		return nil // a tombstone of a group already gone
	}
	if g == nil {
		g = c.add(id)
	}
	created := g.consumer == nil
	prevClassic, prevSnapshot := g.classic, g.snapshot
	if created {
		// A consumer group replaces a classic group (whose tombstone may
		// have been compacted away) or a simple group.
		g.classic, g.snapshot, g.persisted = nil, nil, false
		g.consumer = consumer.New(id, c.cfg.Consumer)
	}
	if err := g.consumer.Replay(key, value); err != nil {
		if created {
			g.consumer, g.classic, g.snapshot = nil, prevClassic, prevSnapshot
			g.persisted = prevSnapshot != nil
			c.dropIfGone(g)
		}
		return err
	}
	g.trackKey(key, value)
	if len(g.keys) == 0 {
		g.consumer = nil
		c.dropIfGone(g)
	}
	return nil
}

// dropIfGone forgets, during replay, a group entry that holds neither a
// group nor offsets.
func (c *Coordinator) dropIfGone(g *group) {
	if g.classic == nil && g.consumer == nil && g.snapshot == nil && len(g.offsets) == 0 {
		c.remove(g)
	}
}

// dropIfSimple forgets a simple group that lost its last offset: it has no
// record in the log, so a restart would not know it either. (Kafka keeps
// it until its next cleanup, at most offsets.retention.check.interval.ms
// later.)
func (c *Coordinator) dropIfSimple(g *group) {
	if g.consumer == nil && !g.persisted && g.snapshot == nil && len(g.offsets) == 0 &&
		(g.classic == nil || (g.classic.Len() == 0 && g.classic.State() == classic.Empty)) {
		c.remove(g)
	}
}

// Loaded ends replay: members restored from the log get a fresh session
// from now.
func (c *Coordinator) Loaded(now time.Time) {
	c.observe(now)
	for _, g := range c.groups {
		switch {
		case g.snapshot != nil:
			g.classic = classic.Restore(g.id, c.cfg.Classic, g.snapshot, now)
			g.emptySince = g.snapshot.CurrentStateTimestamp
			g.snapshot = nil
		case g.consumer != nil:
			g.consumer.Loaded(now)
		}
		g.ensureClassic(c.cfg.Classic)
		c.schedule(g)
	}
}

// sortedKeys returns a consumer group's record keys in the order Kafka
// deletes a group: from the highest key version (current assignments) to
// the lowest (the group's epoch), so that replaying the tombstones never
// leaves members in a deleted group.
func sortedKeys(keys map[string]struct{}) []string {
	ks := slices.Collect(maps.Keys(keys))
	slices.SortFunc(ks, func(a, b string) int { return strings.Compare(b, a) })
	return ks
}
