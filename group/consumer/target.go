package consumer

import (
	"maps"
	"regexp"
	"slices"
	"time"

	"github.com/samsa-io/samsa/group/assign"
)

// regexpEntry is a compiled subscription regex.
type regexpEntry struct {
	re *regexp.Regexp
}

// compileRegex compiles a subscription regex so that it must match a whole
// topic name, as Kafka's Pattern.matcher(name).matches() does.
func compileRegex(source string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(source); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + source + `)$`)
}

func (g *Group) regex(source string) *regexp.Regexp {
	if e, ok := g.regexes[source]; ok {
		return e.re
	}
	re, err := compileRegex(source)
	if err != nil { // validated before it was stored; match nothing
		re = regexp.MustCompile(`^\b$`)
	}
	g.regexes[source] = &regexpEntry{re: re}
	return re
}

// refresh resolves every member's subscription against the cluster's
// topics and reports whether the subscription metadata (the subscribed
// topics, their ids and partition counts) changed. After a replay, when
// the metadata is first seen, it reports a change only if the restored
// target assignment no longer fits the topics.
func (g *Group) refresh(topics map[string]Topic) bool {
	matches := make(map[string][]string)
	used := make(map[string]bool)
	for _, m := range g.members {
		if m.topicRegex == nil {
			continue
		}
		src := *m.topicRegex
		used[src] = true
		if _, done := matches[src]; done {
			continue
		}
		re := g.regex(src)
		names := []string{}
		for name := range topics {
			if re.MatchString(name) {
				names = append(names, name)
			}
		}
		matches[src] = names
	}
	for src := range g.regexes {
		if !used[src] {
			delete(g.regexes, src)
		}
	}

	sub := make(map[string]Topic)
	for _, m := range g.members {
		var names []string
		for _, n := range m.topicNames {
			if _, ok := topics[n]; ok {
				names = append(names, n)
			}
		}
		if m.topicRegex != nil {
			names = append(names, matches[*m.topicRegex]...)
		}
		slices.Sort(names)
		m.topics = slices.Compact(names)
		for _, n := range m.topics {
			t := topics[n]
			t.Name = n
			sub[n] = t
		}
	}

	if !g.metadataKnown {
		g.metadataKnown = true
		g.subscribed = sub
		return !g.targetFits()
	}
	changed := !maps.Equal(sub, g.subscribed)
	g.subscribed = sub
	return changed
}

// unsubscribe recomputes the subscription metadata from the members'
// resolved topics, after members left.
func (g *Group) unsubscribe() {
	sub := make(map[string]Topic)
	for _, m := range g.members {
		for _, n := range m.topics {
			if t, ok := g.subscribed[n]; ok {
				sub[n] = t
			}
		}
	}
	g.subscribed = sub
}

// targetFits is whether the target assignment gives every subscribed
// partition to exactly one member subscribed to its topic, and nothing
// else.
func (g *Group) targetFits() bool {
	byID := make(map[[16]byte]Topic, len(g.subscribed))
	for _, t := range g.subscribed {
		byID[t.ID] = t
	}
	seen := make(map[topicPartition]bool)
	for id, a := range g.target {
		m, ok := g.members[id]
		if !ok {
			return false
		}
		for topic, ps := range a {
			t, ok := byID[topic]
			if !ok || !slices.Contains(m.topics, t.Name) {
				return false
			}
			for _, p := range ps {
				tp := topicPartition{topic, p}
				if p < 0 || p >= t.Partitions || seen[tp] {
					return false
				}
				seen[tp] = true
			}
		}
	}
	total := 0
	for _, t := range g.subscribed {
		total += int(t.Partitions)
	}
	return len(seen) == total
}

// bump increases the group epoch and computes the new target assignment
// (at once unless the topics are not known yet).
func (g *Group) bump() {
	g.epoch++
	g.emit(groupMetadataKey(g.id), groupMetadataValue(g.epoch))
	g.maybeComputeTarget()
}

// maybeComputeTarget computes the target assignment if it lags the group
// epoch and the topics are known.
func (g *Group) maybeComputeTarget() {
	if g.epoch > g.assignmentEpoch && g.metadataKnown {
		g.computeTarget()
	}
}

// computeTarget runs the group's assignor over the members and the
// subscribed topics, stores the new target assignment and queues the
// records of what changed (Kafka's TargetAssignmentBuilder).
func (g *Group) computeTarget() {
	fn, _ := assign.Lookup(g.preferredAssignor())
	ids := slices.Sorted(maps.Keys(g.members))
	members := make([]assign.Member, 0, len(ids))
	for _, id := range ids {
		m := g.members[id]
		am := assign.Member{ID: id, Current: g.target[id]}
		if m.instanceID != nil {
			am.InstanceID = *m.instanceID
		}
		for _, n := range m.topics {
			if t, ok := g.subscribed[n]; ok {
				am.Topics = append(am.Topics, t.ID)
			}
		}
		members = append(members, am)
	}
	partitions := make(map[[16]byte]int32, len(g.subscribed))
	for _, t := range g.subscribed {
		partitions[t.ID] = t.Partitions
	}
	result := fn(members, partitions)
	for _, id := range ids {
		next := assignmentFrom(result[id])
		if prev, ok := g.target[id]; ok && prev.equal(next) {
			continue
		}
		g.target[id] = next
		g.emit(targetMemberKey(g.id, id), targetMemberValue(next))
	}
	g.assignmentEpoch = g.epoch
	g.emit(targetMetadataKey(g.id), targetMetadataValue(g.assignmentEpoch))
}

// preferredAssignor is the assignor most members ask for (ties go to the
// earlier in Config.Assignors), or the default, the first configured.
func (g *Group) preferredAssignor() string {
	names := g.cfg.assignors()
	count := make(map[string]int)
	for _, m := range g.members {
		if m.serverAssignor != nil {
			count[*m.serverAssignor]++
		}
	}
	best := names[0]
	for _, n := range names {
		if count[n] > count[best] {
			best = n
		}
	}
	return best
}

// knownAssignor is whether name is a configured assignor.
func (g *Group) knownAssignor(name string) bool {
	return slices.Contains(g.cfg.assignors(), name)
}

// SetTopics tells the group the cluster's topics changed: subscriptions by
// regex are matched again and the target assignment recomputed when the
// subscribed partitions changed.
func (g *Group) SetTopics(now time.Time, topics map[string]Topic) {
	if g.dead {
		return
	}
	if g.refresh(topics) {
		g.bump()
	}
	g.maybeComputeTarget()
}

// Subscribed is the set of topic names the members subscribe to now: the
// names they list, and the existing topics their regexes match.
func (g *Group) Subscribed() map[string]bool {
	out := make(map[string]bool)
	for n := range g.subscribed {
		out[n] = true
	}
	for _, m := range g.members {
		for _, n := range m.topicNames {
			out[n] = true
		}
	}
	return out
}
