package group

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// knownMember is a member id (and generation) some JoinGroup handed out.
type knownMember struct {
	group, id  string
	generation int32
}

// model is what the committed offsets must be: it changes only on a
// commit's accepted partitions, an OffsetDelete's, a DeleteGroups, and the
// tombstones that expiry and topic deletion write.
type model map[string]map[string]int64 // group → "topic/partition" → offset

func (m model) set(group, tp string, o int64) {
	if m[group] == nil {
		m[group] = map[string]int64{}
	}
	m[group][tp] = o
}

func (m model) del(group, tp string) {
	delete(m[group], tp)
	if len(m[group]) == 0 {
		delete(m, group)
	}
}

// Random joins, syncs, heartbeats, leaves, commits (good and bad), fetches,
// deletes and ticks: after every step the coordinator's offsets are the
// model's, every record is in its group's partition, no input but a commit
// writes an offset, and the log replays to the same state.
func TestOffsetsChangeOnlyByCommitDeleteOrExpiry(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runOffsetProperty(t, seed, 400) })
	}
}

func runOffsetProperty(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 7))
	cfg := testConfig()
	cfg.MaxMetadataBytes = 8
	h := newHarnessConfig(t, cfg)
	m := model{}
	var members []knownMember
	groups := []string{"g0", "g1", "g2"}
	topics := []string{"orders", "payments", "nope"}
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	generation := func() int32 { return int32(rng.IntN(4)) - 1 }

	// noOffsetValues fails if out writes an offset (only commits may).
	noOffsetValues := func(what string, out Output) {
		t.Helper()
		for _, r := range out.Records {
			if v, _ := keyVersion(r.Key); v <= 1 && r.Value != nil {
				t.Fatalf("step %s wrote an offset", what)
			}
		}
	}
	// applyTombstones takes the offset tombstones of out into the model.
	applyTombstones := func(out Output) {
		for _, r := range out.Records {
			if v, _ := keyVersion(r.Key); v <= 1 && r.Value == nil {
				var k kmsg.OffsetCommitKey
				if err := k.ReadFrom(r.Key); err != nil {
					t.Fatal(err)
				}
				if _, ok := m[k.Group][fmt.Sprintf("%s/%d", k.Topic, k.Partition)]; !ok {
					t.Fatalf("tombstone of %s %s/%d, which was not committed", k.Group, k.Topic, k.Partition)
				}
				m.del(k.Group, fmt.Sprintf("%s/%d", k.Topic, k.Partition))
			}
		}
	}
	noteJoins := func(out Output) {
		for _, r := range out.Replies {
			if j, ok := r.Response.(*kmsg.JoinGroupResponse); ok && j.MemberID != "" {
				// The group of the reply is not in it; the caller's
				// request tells, and all members are tried on all groups.
				for _, g := range groups {
					members = append(members, knownMember{g, j.MemberID, j.Generation})
				}
			}
		}
	}
	member := func() knownMember {
		if len(members) == 0 || rng.IntN(5) == 0 {
			return knownMember{pick(groups), pick([]string{"", "stranger"}), generation()}
		}
		return members[rng.IntN(len(members))]
	}

	for step := 0; step < steps; step++ {
		var what string
		switch op := rng.IntN(14); op {
		case 0, 1, 2: // OffsetCommit
			mb := member()
			if rng.IntN(2) == 0 {
				mb = knownMember{mb.group, "", -1}
			}
			req := kmsg.NewPtrOffsetCommitRequest()
			req.Version = int16(rng.IntN(10))
			req.Group = mb.group
			req.MemberID = mb.id
			req.Generation = mb.generation
			var offsets []int64 // by position in the request
			for range 1 + rng.IntN(3) {
				rt := kmsg.NewOffsetCommitRequestTopic()
				rt.Topic = pick(topics)
				rp := kmsg.NewOffsetCommitRequestTopicPartition()
				rp.Partition = int32(rng.IntN(4))
				rp.Offset = rng.Int64N(1000)
				md := strings.Repeat("m", rng.IntN(10))
				rp.Metadata = &md
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				offsets = append(offsets, rp.Offset)
			}
			what = fmt.Sprintf("commit v%d %s member %q gen %d", req.Version, req.Group, req.MemberID, req.Generation)
			call := h.call(req.Version)
			out := h.take(h.c.OffsetCommit(call, req))
			resp := h.replies[call.Token].(*kmsg.OffsetCommitResponse)
			accepted := 0
			for i, rt := range resp.Topics {
				rp := rt.Partitions[0]
				if rp.ErrorCode == 0 {
					accepted++
					m.set(req.Group, fmt.Sprintf("%s/%d", rt.Topic, rp.Partition), offsets[i])
				}
			}
			if len(out.Records) != accepted {
				t.Fatalf("%s: %d records for %d accepted partitions", what, len(out.Records), accepted)
			}
		case 3: // JoinGroup
			mb := member()
			if rng.IntN(2) == 0 {
				mb.id = ""
			}
			what = "join " + mb.group
			req := joinRequest(mb.group, mb.id, pick([]string{"consumer", "connect"}), pick(topics))
			out := h.take(h.c.JoinGroup(h.call(5), req))
			noOffsetValues(what, out)
			noteJoins(out)
		case 4: // SyncGroup
			mb := member()
			what = "sync " + mb.group
			req := kmsg.NewPtrSyncGroupRequest()
			req.Version = 3
			req.Group, req.MemberID, req.Generation = mb.group, mb.id, mb.generation
			req.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: mb.id, MemberAssignment: []byte{0, 0}}}
			out := h.take(h.c.SyncGroup(h.call(3), req))
			noOffsetValues(what, out)
			noteJoins(out)
		case 5: // Heartbeat
			mb := member()
			what = "heartbeat " + mb.group
			out := h.take(h.c.Heartbeat(h.call(3), &kmsg.HeartbeatRequest{Version: 3, Group: mb.group, MemberID: mb.id, Generation: mb.generation}))
			noOffsetValues(what, out)
		case 6: // LeaveGroup
			mb := member()
			what = "leave " + mb.group
			req := kmsg.NewPtrLeaveGroupRequest()
			req.Version = 3
			req.Group = mb.group
			req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: mb.id}}
			out := h.take(h.c.LeaveGroup(h.call(3), req))
			noOffsetValues(what, out)
			noteJoins(out)
		case 7: // OffsetDelete
			group := pick(groups)
			what = "offset delete " + group
			req := kmsg.NewPtrOffsetDeleteRequest()
			req.Group = group
			topic := pick(topics)
			req.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: int32(rng.IntN(3))}}}}
			call := h.call(0)
			out := h.take(h.c.OffsetDelete(call, req))
			noOffsetValues(what, out)
			resp := h.replies[call.Token].(*kmsg.OffsetDeleteResponse)
			if resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
				if len(out.Records) != 0 {
					t.Fatalf("%s: refused, but wrote %d records", what, len(out.Records))
				}
				break
			}
			applyTombstones(out)
			tp := fmt.Sprintf("%s/%d", topic, req.Topics[0].Partitions[0].Partition)
			if _, ok := m[group][tp]; ok {
				t.Fatalf("%s: %s survived", what, tp)
			}
		case 8: // DeleteGroups
			group := pick(groups)
			what = "delete group " + group
			code, recs := h.c.DeleteGroup(h.now, group)
			h.log = append(h.log, recs...)
			out := Output{Records: recs}
			noOffsetValues(what, out)
			if code != 0 {
				if len(recs) != 0 {
					t.Fatalf("%s: refused (%d) but wrote records", what, code)
				}
				break
			}
			applyTombstones(out)
			if len(m[group]) != 0 {
				t.Fatalf("%s: offsets %v survived", what, m[group])
			}
		case 9: // time passes
			d := time.Duration(rng.IntN(20_000)) * time.Millisecond
			if rng.IntN(20) == 0 {
				d = time.Duration(rng.IntN(3)) * time.Hour
			}
			what = fmt.Sprintf("advance %v", d)
			out := h.advance(d)
			noOffsetValues(what, out)
			// The test lasts less than the retention: nothing expires.
			if ts := tombstones(out.Records); ts[0]+ts[1] != 0 {
				t.Fatalf("%s: %d offsets expired within the retention", what, ts[0]+ts[1])
			}
		case 10: // topics change: payments is deleted or comes back
			ts := testTopics()
			if rng.IntN(2) == 0 {
				delete(ts, "payments")
			}
			what = "set topics"
			out := h.take(h.c.SetTopics(h.now, ts))
			noOffsetValues(what, out)
			applyTombstones(out)
			for g, offs := range m {
				for tp := range offs {
					if strings.HasPrefix(tp, "payments/") && len(ts) == 1 {
						t.Fatalf("%s: %s of %s survived the topic's deletion", what, tp, g)
					}
				}
			}
		case 12, 13: // ConsumerGroupHeartbeat: join, heartbeat or leave
			group := pick(groups)
			req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			req.Version = 1
			req.Group = group
			req.MemberID = pick([]string{"c1", "c2", "c3"})
			switch rng.IntN(3) {
			case 0:
				req.MemberEpoch = 0
				req.RebalanceTimeoutMillis = 10_000
				req.SubscribedTopicNames = []string{pick(topics)}
				req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			case 1:
				req.MemberEpoch = int32(rng.IntN(6))
			default:
				req.MemberEpoch = -1
			}
			what = fmt.Sprintf("consumer heartbeat %s %s epoch %d", group, req.MemberID, req.MemberEpoch)
			call := h.call(1)
			out := h.take(h.c.ConsumerGroupHeartbeat(call, req))
			noOffsetValues(what, out)
			if r := h.replies[call.Token].(*kmsg.ConsumerGroupHeartbeatResponse); r.ErrorCode == 0 && r.MemberEpoch > 0 {
				members = append(members, knownMember{group, req.MemberID, r.MemberEpoch})
			}
		case 11: // reads change nothing
			what = "reads"
			h.c.ListGroups(5, nil, nil)
			for _, g := range groups {
				h.c.DescribeGroup(5, g)
				h.c.ConsumerGroupDescribe(0, g, false)
			}
		}

		// The coordinator's offsets are the model's.
		got := model{}
		h.c.Offsets(func(o GroupOffset) { got.set(o.Group, fmt.Sprintf("%s/%d", o.Topic, o.Partition), o.Offset) })
		if !maps.EqualFunc(got, m, maps.Equal) {
			t.Fatalf("step %d (%s): offsets %v, want %v", step, what, got, m)
		}
		for _, g := range groups {
			want := m[g]
			if want == nil {
				want = map[string]int64{}
			}
			if f := fetched(h.fetch(g, nil)); !maps.Equal(f, want) {
				t.Fatalf("step %d (%s): fetch of %s %v, want %v", step, what, g, f, want)
			}
		}
		if step%50 == 49 {
			h.checkReplay()
		}
	}
	h.checkReplay()
}
