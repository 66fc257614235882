package group

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group/classic"
)

// DescribeGroup answers one group of a DescribeGroups.
//
// As in Kafka 4.x, DescribeGroups describes classic groups only: an
// unknown group and a consumer group are described as Dead, and from v6
// on also with GROUP_ID_NOT_FOUND and a message.
func (c *Coordinator) DescribeGroup(version int16, groupID string) kmsg.DescribeGroupsResponseGroup {
	g := c.lookup(groupID)
	if g != nil && g.consumer == nil {
		g.ensureClassic(c.cfg.Classic)
		d := g.classic.Describe(version)
		d.Group = groupID
		return d
	}
	d := kmsg.NewDescribeGroupsResponseGroup()
	d.Group = groupID
	d.State = string(classic.Dead)
	if version >= 6 {
		d.ErrorCode = kerr.GroupIDNotFound.Code
		msg := fmt.Sprintf("Group %s not found.", groupID)
		if g != nil {
			msg = fmt.Sprintf("Group %s is not a classic group.", groupID)
		}
		d.ErrorMessage = errorString(msg)
	}
	return d
}

// ListGroups lists the groups, filtered by state and type (KIP-518, KIP-848)
// when the filters are not empty. As in Kafka, the filters ignore case (and
// the states' surrounding spaces); an unknown type matches nothing.
// Groups come sorted by id.
func (c *Coordinator) ListGroups(version int16, states, types []string) []kmsg.ListGroupsResponseGroup {
	stateSet := make(map[string]bool, len(states))
	for _, s := range states {
		stateSet[strings.ToLower(strings.TrimSpace(s))] = true
	}
	typeSet := make(map[string]bool, len(types))
	for _, t := range types {
		typeSet[strings.ToLower(t)] = true
	}
	var out []kmsg.ListGroupsResponseGroup
	for _, id := range slices.Sorted(maps.Keys(c.groups)) {
		g := c.groups[id]
		g.ensureClassic(c.cfg.Classic)
		state := g.state()
		if len(states) > 0 && !stateSet[strings.ToLower(state)] {
			continue
		}
		if len(types) > 0 && !typeSet[g.typ()] {
			continue
		}
		l := kmsg.NewListGroupsResponseGroup()
		l.Group = id
		l.ProtocolType = g.protocolType()
		l.GroupState = state
		l.GroupType = g.typ()
		out = append(out, l)
	}
	return out
}

// DeleteGroup deletes an empty group and its offsets (DeleteGroups); it
// returns the error code for the group and the tombstones to write:
// GROUP_ID_NOT_FOUND for an unknown group, NON_EMPTY_GROUP for a group
// with members. The tombstones delete every offset, then the group's own
// records.
func (c *Coordinator) DeleteGroup(now time.Time, groupID string) (int16, []Record) {
	c.observe(now)
	g := c.lookup(groupID)
	if g == nil {
		return kerr.GroupIDNotFound.Code, nil
	}
	g.ensureClassic(c.cfg.Classic)
	if !g.empty() {
		return kerr.NonEmptyGroup.Code, nil
	}
	return 0, c.deleteGroup(g, nil)
}

// deleteGroup appends the tombstones of every offset of g and of g itself,
// and forgets it.
func (c *Coordinator) deleteGroup(g *group, out []Record) []Record {
	for _, topic := range slices.Sorted(maps.Keys(g.offsets)) {
		for _, p := range slices.Sorted(maps.Keys(g.offsets[topic])) {
			out = append(out, c.offsetTombstone(g.id, topic, p))
		}
	}
	out = c.groupTombstones(g, out)
	c.remove(g)
	return out
}
