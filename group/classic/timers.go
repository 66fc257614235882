package classic

import "time"

// The group's timers, as Kafka schedules them:
//   - each member's session (member.deadline): a member not heard from is
//     removed, unless it waits in JoinGroup or SyncGroup (then the timer
//     just stops; it restarts when that phase completes);
//   - each KIP-394 pending member id (Group.pending);
//   - the join phase (Group.joinDeadline): the rebalance timeout, or the
//     initial delay of a new group;
//   - the pending sync (Group.syncDeadline): members that do not send
//     SyncGroup within the rebalance timeout after the join are removed.

// Tick advances time: expired sessions, rebalance timeouts, the initial
// delay.
func (g *Group) Tick(now time.Time) []Reply {
	// Fire the due timers earliest first, each at its own deadline, as a
	// precise timer would even when ticks come late. A timer that firing
	// sets anew is never due before the one that fired, and each firing
	// removes a member or moves the group on; the bound keeps one Tick
	// short should timers keep firing (the rest wait for the next Tick).
	for range 4*(len(g.members)+len(g.pending)) + 16 {
		if !g.fireNext(now) {
			break
		}
	}
	return g.flush()
}

// fireNext fires the earliest timer due at now; false when none is.
func (g *Group) fireNext(now time.Time) bool {
	type timer int
	const (
		none timer = iota
		session
		pendingMember
		joinPhase
		pendingSync
	)
	var (
		kind timer
		at   time.Time
		who  string
	)
	consider := func(k timer, t time.Time, id string) {
		if t.IsZero() || t.After(now) {
			return
		}
		if kind == none || t.Before(at) {
			kind, at, who = k, t, id
		}
	}
	for _, id := range g.order {
		consider(session, g.members[id].deadline, id)
	}
	for id, t := range g.pending {
		consider(pendingMember, t, id)
	}
	consider(joinPhase, g.joinDeadline, "")
	consider(pendingSync, g.syncDeadline, "")

	now = at // the timer fires at its deadline
	switch kind {
	case session:
		g.expireSession(now, g.members[who])
	case pendingMember:
		g.remove(who)
		if g.state == PreparingRebalance && g.allJoined() {
			g.completeJoin(now)
		}
	case joinPhase:
		if g.initial {
			g.initialDelayDone(now)
		} else {
			g.completeJoin(now)
		}
	case pendingSync:
		g.expirePendingSync(now)
	default:
		return false
	}
	return true
}

// expireSession handles a member's session timer.
func (g *Group) expireSession(now time.Time, m *member) {
	m.deadline = time.Time{}
	if m.satisfied() {
		return
	}
	g.remove(m.id)
	switch g.state {
	case Stable, CompletingRebalance:
		g.rebalanceOrCompleteJoin(now)
	case PreparingRebalance:
		if g.allJoined() {
			g.completeJoin(now)
		}
	}
}

// expirePendingSync removes the members that did not send SyncGroup in the
// generation, and rebalances.
func (g *Group) expirePendingSync(now time.Time) {
	g.syncDeadline = time.Time{}
	if g.syncGeneration != g.generation || len(g.pendingSync) == 0 {
		return
	}
	if g.state != CompletingRebalance && g.state != Stable {
		return
	}
	for _, id := range append([]string(nil), g.order...) {
		if g.pendingSync[id] {
			g.remove(id)
		}
	}
	clear(g.pendingSync)
	g.prepareRebalance(now)
}

// Deadline is when Tick next has something to do.
func (g *Group) Deadline() (t time.Time, ok bool) {
	earliest := func(d time.Time) {
		if !d.IsZero() && (!ok || d.Before(t)) {
			t, ok = d, true
		}
	}
	for _, m := range g.members {
		earliest(m.deadline)
	}
	for _, d := range g.pending {
		earliest(d)
	}
	earliest(g.joinDeadline)
	earliest(g.syncDeadline)
	return t, ok
}
