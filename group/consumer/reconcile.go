package consumer

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// reconcile moves member m towards its target assignment, given the
// partitions it reported owning (nil when the heartbeat omitted them). It
// follows KIP-848's rules (Kafka's CurrentAssignmentBuilder):
//
//   - partitions the target no longer gives m are revoked first: while m
//     still reports one of them it stays at its epoch, in stateUnrevoked,
//     and is told its assignment without them;
//   - once it has released them, it moves to the target epoch and is given
//     the target's partitions that no other member holds; those still held
//     elsewhere (not yet released by their previous owner) are withheld,
//     stateUnreleased, and given on a later heartbeat once free.
//
// It reports whether m changed, and queues m's current assignment record
// if so.
func (g *Group) reconcile(now time.Time, m *member, owned []kmsg.ConsumerGroupHeartbeatRequestTopic) bool {
	if m.reconciledTo(g.assignmentEpoch) {
		return false
	}
	if m.state == stateUnrevoked && ownsAny(owned, m.pendingRevocation) {
		return false
	}
	target := g.target[m.id]

	var keep, revoke, add []topicPartition
	unreleased := false
	m.assigned.each(func(tp topicPartition) {
		if target.has(tp) {
			keep = append(keep, tp)
		} else {
			revoke = append(revoke, tp)
		}
	})
	target.each(func(tp topicPartition) {
		if m.assigned.has(tp) {
			return
		}
		if _, held := g.owners[tp]; held {
			unreleased = true
			return
		}
		add = append(add, tp)
	})

	epoch, state := g.assignmentEpoch, stateStable
	assigned, pending := assignmentOf(keep), assignmentOf(revoke)
	switch {
	case len(revoke) > 0 && ownsAny(owned, pending):
		epoch, state = m.epoch, stateUnrevoked
	default:
		assigned = assignmentOf(append(keep, add...))
		pending = make(assignment)
		if unreleased {
			state = stateUnreleased
		}
	}

	if epoch == m.epoch && epoch == m.previousEpoch && state == m.state &&
		assigned.equal(m.assigned) && pending.equal(m.pendingRevocation) {
		return false
	}
	g.setAssignment(m, epoch, state, assigned, pending)
	if state == stateUnrevoked {
		m.rebalanceDeadline = now.Add(rebalanceTimeout(m, g.cfg))
	} else {
		m.rebalanceDeadline = time.Time{}
	}
	g.emitCurrentAssignment(m)
	return true
}

// setAssignment updates m's epoch, state and partitions, the owners of
// the partitions it held and now holds, and the epochs at which it got
// them (KIP-1251: kept partitions keep theirs, new ones get epoch).
func (g *Group) setAssignment(m *member, epoch int32, state memberState, assigned, pending assignment) {
	g.release(m)
	at := make(map[topicPartition]int32, assigned.len()+pending.len())
	hold := func(tp topicPartition) {
		g.owners[tp] = m.id
		if e, ok := m.assignedAt[tp]; ok {
			at[tp] = e
		} else {
			at[tp] = epoch
		}
	}
	assigned.each(hold)
	pending.each(hold)
	m.previousEpoch, m.epoch = m.epoch, epoch
	m.state = state
	m.assigned, m.pendingRevocation = assigned, pending
	m.assignedAt = at
}

// release frees every partition m holds.
func (g *Group) release(m *member) {
	free := func(tp topicPartition) {
		if g.owners[tp] == m.id {
			delete(g.owners, tp)
		}
	}
	m.assigned.each(free)
	m.pendingRevocation.each(free)
}

// rebalanceTimeout is how long m may keep partitions it must revoke.
func rebalanceTimeout(m *member, cfg Config) time.Duration {
	if m.rebalanceTimeout > 0 {
		return time.Duration(m.rebalanceTimeout) * time.Millisecond
	}
	return cfg.SessionTimeout
}
