package classic

import (
	"bytes"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// names returns the distinct protocol names, in order.
func names(protocols []kmsg.JoinGroupRequestProtocol) []string {
	out := make([]string, 0, len(protocols))
	for _, p := range protocols {
		if !contains(out, p.Name) {
			out = append(out, p.Name)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// copyProtocols keeps a request's protocols, so that the group does not
// alias the request's memory.
func copyProtocols(protocols []kmsg.JoinGroupRequestProtocol) []kmsg.JoinGroupRequestProtocol {
	out := make([]kmsg.JoinGroupRequestProtocol, len(protocols))
	for i, p := range protocols {
		out[i] = kmsg.JoinGroupRequestProtocol{Name: p.Name, Metadata: bytes.Clone(p.Metadata)}
	}
	return out
}

// metadata is the member's metadata for protocol; nil when it does not
// support it.
func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// matches reports whether protocols are exactly the member's (names,
// metadata and order): a rejoin with the same ones changes nothing.
func (m *member) matches(protocols []kmsg.JoinGroupRequestProtocol) bool {
	if len(protocols) != len(m.protocols) {
		return false
	}
	for i, p := range protocols {
		if p.Name != m.protocols[i].Name || !bytes.Equal(p.Metadata, m.protocols[i].Metadata) {
			return false
		}
	}
	return true
}

// vote is the member's most preferred protocol among candidates.
func (m *member) vote(candidates map[string]bool) (string, bool) {
	for _, p := range m.protocols {
		if candidates[p.Name] {
			return p.Name, true
		}
	}
	return "", false
}

// satisfied reports whether the member's session may pass without a
// heartbeat: it waits in JoinGroup or SyncGroup, and is not new.
func (m *member) satisfied() bool {
	return !m.isNew && (m.join != nil || m.sync != nil)
}

// isStatic reports whether the member has a group instance id.
func (m *member) isStatic() bool { return m.instanceID != nil }

// resetSession restarts the member's session at now.
func (m *member) resetSession(now time.Time) { m.deadline = now.Add(m.sessionTimeout) }

// count adds (delta 1) or removes (delta -1) the member's protocols from
// the group's supported counts.
func (g *Group) count(m *member, delta int) {
	for _, name := range names(m.protocols) {
		g.supported[name] += delta
		if g.supported[name] <= 0 {
			delete(g.supported, name)
		}
	}
}

// supports reports whether a member with protocolType and protocols may
// join: any non-empty type and protocol list when the group is empty;
// otherwise the group's type and a protocol every member supports.
func (g *Group) supports(protocolType string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	if g.state == Empty {
		return protocolType != "" && len(protocols) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		if g.supported[p.Name] == len(g.members) {
			return true
		}
	}
	return false
}

// selectProtocol picks the protocol for the next generation, as Kafka's
// selectProtocol: among the protocols all members support, each member
// votes for its most preferred, and the most votes win. Ties go to the
// protocol the earliest member prefers (Deviation: Kafka breaks ties by
// hash order).
func (g *Group) selectProtocol() (string, bool) {
	candidates := make(map[string]bool)
	for name, n := range g.supported {
		if n == len(g.members) {
			candidates[name] = true
		}
	}
	votes := make(map[string]int)
	var ranked []string // protocols in the order they got their first vote
	for _, id := range g.order {
		name, ok := g.members[id].vote(candidates)
		if !ok {
			continue
		}
		if votes[name] == 0 {
			ranked = append(ranked, name)
		}
		votes[name]++
	}
	best, ok := "", false
	for _, name := range ranked {
		if !ok || votes[name] > votes[best] {
			best, ok = name, true
		}
	}
	return best, ok
}

// add puts m into the group, with its JoinGroup waiting in join (nil when
// none).
func (g *Group) add(m *member, join *waiting) {
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	if g.leader == "" {
		g.leader = m.id
	}
	g.members[m.id] = m
	g.order = append(g.order, m.id)
	g.count(m, 1)
	m.join = join
	delete(g.pending, m.id)
}

// remove takes a member (or a pending member) out of the group. A request
// of the member still waiting is answered with UNKNOWN_MEMBER_ID, so that
// the client, if still there, joins again.
func (g *Group) remove(id string) {
	if m, ok := g.members[id]; ok {
		g.failJoin(m, unknownMemberID, "")
		g.failSync(m, unknownMemberID)
		g.count(m, -1)
		if m.instanceID != nil && g.static[*m.instanceID] == id {
			delete(g.static, *m.instanceID)
		}
		delete(g.members, id)
		for i, x := range g.order {
			if x == id {
				g.order = append(g.order[:i], g.order[i+1:]...)
				break
			}
		}
	}
	if g.leader == id {
		g.leader = ""
		if len(g.order) > 0 {
			g.leader = g.order[0]
		}
	}
	delete(g.pending, id)
	delete(g.pendingSync, id)
}

// validate checks that memberID (with instanceID, for a static member) is
// a current member, as Kafka's validateMember: an unknown instance id or
// member id is UNKNOWN_MEMBER_ID, an instance id now held by another
// member id is FENCED_INSTANCE_ID.
func (g *Group) validate(memberID string, instanceID *string) int16 {
	if instanceID != nil {
		existing, ok := g.static[*instanceID]
		if !ok {
			return unknownMemberID
		}
		if existing != memberID {
			return fencedInstanceID
		}
	}
	if _, ok := g.members[memberID]; !ok {
		return unknownMemberID
	}
	return 0
}

// allJoined reports whether every member waits in JoinGroup and no
// KIP-394 member id is outstanding.
func (g *Group) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if m.join == nil {
			return false
		}
	}
	return true
}

// awaitingJoin is the number of members waiting in JoinGroup.
func (g *Group) awaitingJoin() int {
	n := 0
	for _, m := range g.members {
		if m.join != nil {
			n++
		}
	}
	return n
}

// rebalanceTimeout is the longest rebalance timeout of the members.
func (g *Group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}
