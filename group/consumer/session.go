package consumer

import (
	"maps"
	"slices"
	"time"
)

// Tick advances time: members whose session expired are removed, and so
// are members that kept partitions to revoke past their rebalance timeout.
// Their partitions are reassigned with one bump of the group epoch.
func (g *Group) Tick(now time.Time) {
	var expired []*member
	for _, id := range slices.Sorted(maps.Keys(g.members)) {
		m := g.members[id]
		late := !m.sessionDeadline.IsZero() && !now.Before(m.sessionDeadline)
		stuck := m.state == stateUnrevoked && !m.rebalanceDeadline.IsZero() && !now.Before(m.rebalanceDeadline)
		if late || stuck {
			expired = append(expired, m)
		}
	}
	if len(expired) == 0 {
		return
	}
	for _, m := range expired {
		g.removeMember(m)
	}
	g.unsubscribe()
	g.bump()
}

// Deadline is when Tick next has something to do.
func (g *Group) Deadline() (t time.Time, ok bool) {
	consider := func(d time.Time) {
		if !d.IsZero() && (!ok || d.Before(t)) {
			t, ok = d, true
		}
	}
	for _, m := range g.members {
		consider(m.sessionDeadline)
		if m.state == stateUnrevoked {
			consider(m.rebalanceDeadline)
		}
	}
	return t, ok
}

// Delete deletes the group (DeleteGroups, or expiry once it is empty): it
// queues the tombstones of every record the group has, in Kafka's order,
// and leaves the group Dead. A later join starts it afresh.
func (g *Group) Delete() {
	for _, id := range slices.Sorted(maps.Keys(g.members)) {
		g.removeMember(g.members[id])
	}
	g.emit(targetMetadataKey(g.id), nil)
	g.emit(partitionMetadataKey(g.id), nil)
	g.emit(groupMetadataKey(g.id), nil)
	records := g.records
	*g = *New(g.id, g.cfg)
	g.records = records
	g.dead = true
}
