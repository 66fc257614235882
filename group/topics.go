package group

import (
	"maps"
	"slices"
	"time"
)

// SetTopics tells the coordinator the cluster's topics, by name; consumer
// groups reassign when partitions appear or topics come and go.
//
// As Kafka does when a topic is deleted, the offsets of a topic that was in
// the previous SetTopics and is not now (or is now another topic: its id
// changed) are deleted, with tombstones. The first call deletes nothing:
// offsets of topics deleted while no coordinator was watching expire by
// retention instead.
func (c *Coordinator) SetTopics(now time.Time, topics map[string]Topic) Output {
	c.observe(now)
	var out Output
	prev := c.topics
	c.topics = maps.Clone(topics)
	if c.topics == nil {
		c.topics = map[string]Topic{}
	}
	if prev != nil {
		gone := make(map[string]bool)
		for name, old := range prev {
			cur, ok := c.topics[name]
			if !ok || (old.ID != [16]byte{} && cur.ID != [16]byte{} && cur.ID != old.ID) {
				gone[name] = true
			}
		}
		if len(gone) > 0 {
			for _, id := range slices.Sorted(maps.Keys(c.groups)) {
				g := c.groups[id]
				for _, topic := range slices.Sorted(maps.Keys(g.offsets)) {
					if !gone[topic] {
						continue
					}
					for _, p := range slices.Sorted(maps.Keys(g.offsets[topic])) {
						out.Records = append(out.Records, c.offsetTombstone(id, topic, p))
					}
					delete(g.offsets, topic)
				}
				c.dropIfSimple(g)
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.groups)) {
		g := c.groups[id]
		if g.consumer == nil {
			continue
		}
		g.consumer.SetTopics(now, c.topics)
		c.persistConsumer(g, &out)
		c.schedule(g)
	}
	return out
}
