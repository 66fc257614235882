package classic

import (
	"bytes"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupMetadataVersion is the GroupMetadataValue version Kafka writes: the
// newest non-flexible one.
const groupMetadataVersion = 3

// Dirty reports whether the group changed in a way that must be persisted
// since the last call to Snapshot (a new generation, an assignment, members
// leaving); the coordinator then writes Snapshot as a GroupMetadata record.
//
// As Kafka, the group is persisted when it is first joined (empty), when a
// leader's assignment makes it Stable, when a join phase leaves it Empty,
// and when a static member's new member id replaces the old one without a
// rebalance. A generation still waiting for its assignment is not: after a
// restart, its members find the last persisted generation and rejoin.
func (g *Group) Dirty() bool { return g.dirty }

// Snapshot returns the group as Kafka persists it (GroupMetadataValue, the
// newest version) and clears Dirty.
//
// Only a Stable group is written with its members, protocol and leader; in
// any other state the record has none (as Kafka's records of a new or
// emptied group), since a generation still in progress is not persisted.
func (g *Group) Snapshot(now time.Time) *kmsg.GroupMetadataValue {
	g.dirty = false
	g.fresh = false
	v := new(kmsg.GroupMetadataValue)
	v.Default()
	v.Version = groupMetadataVersion
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	v.CurrentStateTimestamp = now.UnixMilli() // a new group's state began now
	if !g.stateSince.IsZero() {
		v.CurrentStateTimestamp = g.stateSince.UnixMilli()
	}
	if g.state != Stable {
		return v
	}
	if g.protocol != nil {
		p := *g.protocol
		v.Protocol = &p
	}
	if g.leader != "" {
		l := g.leader
		v.Leader = &l
	}
	for _, id := range g.order {
		m := g.members[id]
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID = id
		vm.InstanceID = m.instanceID
		vm.ClientID = m.clientID
		vm.ClientHost = m.clientHost
		vm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout.Milliseconds())
		vm.SessionTimeoutMillis = int32(m.sessionTimeout.Milliseconds())
		vm.Subscription = orEmpty(bytes.Clone(m.metadata(g.Protocol())))
		vm.Assignment = orEmpty(bytes.Clone(m.assignment))
		v.Members = append(v.Members, vm)
	}
	return v
}

// Restore rebuilds a group from its last persisted snapshot; its members
// get a fresh session from now.
func Restore(id string, cfg Config, v *kmsg.GroupMetadataValue, now time.Time) *Group {
	g := New(id, cfg)
	g.fresh = false
	g.protocolType = v.ProtocolType
	g.generation = v.Generation
	if v.Protocol != nil {
		p := *v.Protocol
		g.protocol = &p
	}
	if v.CurrentStateTimestamp >= 0 {
		g.stateSince = time.UnixMilli(v.CurrentStateTimestamp)
	}
	if g.protocol != nil {
		for _, vm := range v.Members {
			if _, dup := g.members[vm.MemberID]; dup {
				continue
			}
			if vm.InstanceID != nil {
				if _, dup := g.static[*vm.InstanceID]; dup {
					continue
				}
			}
			m := &member{
				id:               vm.MemberID,
				instanceID:       vm.InstanceID,
				clientID:         vm.ClientID,
				clientHost:       vm.ClientHost,
				rebalanceTimeout: millis(vm.RebalanceTimeoutMillis),
				sessionTimeout:   millis(vm.SessionTimeoutMillis),
				protocolType:     v.ProtocolType,
				protocols: []kmsg.JoinGroupRequestProtocol{{
					Name:     *g.protocol,
					Metadata: bytes.Clone(vm.Subscription),
				}},
				assignment: bytes.Clone(vm.Assignment),
			}
			if vm.RebalanceTimeoutMillis == -1 {
				m.rebalanceTimeout = m.sessionTimeout // written before v1
			}
			g.add(m, nil)
			m.resetSession(now)
		}
	}
	// A record with members but no protocol cannot describe a working
	// generation; such a group restarts empty.
	if v.Leader != nil {
		if _, ok := g.members[*v.Leader]; ok {
			g.leader = *v.Leader
		}
	}
	if len(g.members) > 0 {
		g.state = Stable
	} else {
		g.protocol = nil
	}
	if g.stateSince.IsZero() {
		g.stateSince = now
	}
	g.subscribed = g.computeSubscribed()
	return g
}

// Describe answers DescribeGroups for this group. As Kafka, the protocol
// and the members' metadata are given only for a Stable group; members'
// assignments always.
func (g *Group) Describe(version int16) kmsg.DescribeGroupsResponseGroup {
	d := kmsg.NewDescribeGroupsResponseGroup()
	d.Group = g.id
	d.State = string(g.state)
	d.ProtocolType = g.protocolType
	stable := g.state == Stable && g.protocol != nil
	if stable {
		d.Protocol = *g.protocol
	}
	for _, id := range g.order {
		m := g.members[id]
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID = id
		dm.InstanceID = m.instanceID
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		dm.MemberAssignment = orEmpty(bytes.Clone(m.assignment))
		dm.ProtocolMetadata = []byte{}
		if stable {
			dm.ProtocolMetadata = orEmpty(bytes.Clone(m.metadata(*g.protocol)))
		}
		d.Members = append(d.Members, dm)
	}
	return d
}

// Subscribed reports the topics the members subscribe to, decoded from
// their "consumer" protocol metadata; ok is false when that is unknown (not
// a consumer group), and then OffsetDelete must treat every topic as in use
// while the group has members.
//
// As Kafka, the topics are those of the current generation: they are
// computed when a generation starts (and on Restore).
func (g *Group) Subscribed() (topics map[string]bool, ok bool) {
	if g.subscribed == nil {
		return nil, false
	}
	out := make(map[string]bool, len(g.subscribed))
	for t := range g.subscribed {
		out[t] = true
	}
	return out, true
}

// computeSubscribed decodes the members' subscriptions for the selected
// protocol; nil when they are unknown.
func (g *Group) computeSubscribed() map[string]bool {
	if g.protocolType != "consumer" {
		return nil
	}
	topics := make(map[string]bool)
	if len(g.members) == 0 {
		return topics
	}
	if g.protocol == nil {
		return nil
	}
	for _, id := range g.order {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(g.members[id].metadata(*g.protocol)); err != nil {
			return nil
		}
		for _, t := range meta.Topics {
			topics[t] = true
		}
	}
	return topics
}

func orEmpty(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
