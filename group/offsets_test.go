package group

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestSimpleConsumerCommitMakesAnEmptyGroup(t *testing.T) {
	h := newHarness(t)
	resp := h.commit(8, "simple", "", -1, map[string]map[int32]int64{"orders": {0: 10, 2: 30}})
	if got := commitCodes(resp); !maps.Equal(got, map[string]int16{"orders/0": 0, "orders/2": 0}) {
		t.Fatalf("commit codes %v", got)
	}
	if len(h.log) != 2 {
		t.Fatalf("commit wrote %d records, want 2", len(h.log))
	}
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(h.log[1].Key); err != nil || k.Group != "simple" || k.Topic != "orders" || k.Partition != 2 {
		t.Fatalf("record key %+v (%v)", k, err)
	}
	o, err := decodeOffsetValue(h.log[1].Value)
	if err != nil || o.offset != 30 || o.leaderEpoch != 7 || o.metadata != "md-orders-2" || o.committed != t0.UnixMilli() {
		t.Fatalf("record value %+v (%v)", o, err)
	}

	got := h.fetch("simple", map[string][]int32{"orders": {0, 1, 2}, "payments": {0}})
	want := map[string]int64{"orders/0": 10, "orders/1": -1, "orders/2": 30, "payments/0": -1}
	if got.ErrorCode != 0 || !maps.Equal(fetched(got), want) {
		t.Fatalf("fetch %v (error %d), want %v", fetched(got), got.ErrorCode, want)
	}
	for _, p := range got.Topics[0].Partitions {
		if p.Partition == 2 && (p.LeaderEpoch != 7 || p.Metadata == nil || *p.Metadata != "md-orders-2") {
			t.Fatalf("fetched partition %+v", p)
		}
	}

	l := h.c.ListGroups(5, nil, nil)
	if len(l) != 1 || l[0].Group != "simple" || l[0].GroupState != "Empty" || l[0].GroupType != "classic" || l[0].ProtocolType != "" {
		t.Fatalf("list %+v", l)
	}
	h.checkReplay()
}

func TestOffsetFetchOfAllPartitionsAndUnknownGroups(t *testing.T) {
	h := newHarness(t)
	h.commit(8, "g", "", -1, map[string]map[int32]int64{"payments": {1: 5}, "orders": {0: 1}})
	got := h.fetch("g", nil)
	if want := map[string]int64{"orders/0": 1, "payments/1": 5}; !maps.Equal(fetched(got), want) {
		t.Fatalf("fetch all %v, want %v", fetched(got), want)
	}
	if got.Topics[0].Topic != "orders" || got.Topics[1].Topic != "payments" {
		t.Fatalf("topics not sorted: %+v", got.Topics)
	}

	// As Kafka: an unknown group is not an error.
	got = h.fetch("nobody", map[string][]int32{"orders": {0}})
	if got.ErrorCode != 0 || !maps.Equal(fetched(got), map[string]int64{"orders/0": -1}) {
		t.Fatalf("fetch of unknown group: %+v", got)
	}
	if got := h.fetch("nobody", nil); got.ErrorCode != 0 || len(got.Topics) != 0 {
		t.Fatalf("fetch all of unknown group: %+v", got)
	}
	if _, ok := h.c.groups["nobody"]; ok {
		t.Fatal("fetch made a group")
	}
}

func TestOffsetCommitPerPartitionErrors(t *testing.T) {
	cfg := testConfig()
	cfg.MaxMetadataBytes = 4
	h := newHarnessConfig(t, cfg)

	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group = "g"
	add := func(topic string, partition int32, metadata string) {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition = partition
		rp.Offset = 1
		rp.Metadata = &metadata
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	add("orders", 0, "abcd")  // exactly the limit
	add("orders", 1, "abcde") // over
	add("orders", 2, "ééé😀")  // 5 UTF-16 units (7 bytes): over
	add("payments", 0, "éé😀") // 4 UTF-16 units: fits
	add("orders", 3, "")      // no partition 3
	add("orders", -1, "")     // no partition -1
	add("nope", 0, "")        // no such topic
	resp := h.commitRequest(req)
	want := map[string]int16{
		"orders/0":   0,
		"orders/1":   kerr.OffsetMetadataTooLarge.Code,
		"orders/2":   kerr.OffsetMetadataTooLarge.Code,
		"payments/0": 0,
		"orders/3":   kerr.UnknownTopicOrPartition.Code,
		"orders/-1":  kerr.UnknownTopicOrPartition.Code,
		"nope/0":     kerr.UnknownTopicOrPartition.Code,
	}
	if got := commitCodes(resp); !maps.Equal(got, want) {
		t.Fatalf("codes %v, want %v", got, want)
	}
	if len(h.log) != 2 {
		t.Fatalf("%d records, want 2", len(h.log))
	}
	if got := fetched(h.fetch("g", nil)); !maps.Equal(got, map[string]int64{"orders/0": 1, "payments/0": 1}) {
		t.Fatalf("offsets %v", got)
	}
}

func TestOffsetCommitOfOnlyUnknownPartitionsMakesNoGroup(t *testing.T) {
	h := newHarness(t)
	resp := h.commit(8, "g", "", -1, map[string]map[int32]int64{"nope": {0: 1}})
	if got := commitCodes(resp); got["nope/0"] != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("codes %v", got)
	}
	if len(h.c.groups) != 0 || len(h.log) != 0 {
		t.Fatalf("groups %v, log %d", dump(h.c), len(h.log))
	}

	// Before the first SetTopics no topic is known.
	c := New(testConfig())
	out := c.OffsetCommit(Call{Now: t0, Version: 8}, &kmsg.OffsetCommitRequest{Version: 8, Group: "g", Generation: -1,
		Topics: []kmsg.OffsetCommitRequestTopic{{Topic: "orders", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0}}}}})
	if code := out.Replies[0].Response.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("commit before SetTopics: code %d", code)
	}
}

func TestOffsetCommitToAnUnknownGroupWithAGeneration(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		version int16
		want    int16
	}{
		{0, 0}, // v0 has no generation: a simple commit
		{1, kerr.IllegalGeneration.Code},
		{8, kerr.IllegalGeneration.Code},
		{9, kerr.GroupIDNotFound.Code},
	} {
		gen := int32(3)
		if tc.version == 0 {
			gen = -1
		}
		group := "g" + strings.Repeat("x", int(tc.version))
		resp := h.commit(tc.version, group, "m", gen, map[string]map[int32]int64{"orders": {0: 1, 1: 2}})
		for tp, code := range commitCodes(resp) {
			if code != tc.want {
				t.Errorf("v%d %s: code %d, want %d", tc.version, tp, code, tc.want)
			}
		}
		if _, made := h.c.groups[group]; made != (tc.want == 0) {
			t.Errorf("v%d: group made = %v", tc.version, made)
		}
	}
}

func TestOffsetCommitV1TimestampAndV2Retention(t *testing.T) {
	h := newHarness(t)
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 1
	req.Group = "g"
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "orders"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Offset = 9
	rp.Timestamp = 12345
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	h.commitRequest(req)
	if o, _ := h.c.groups["g"].offset("orders", 0); o.committed != 12345 || o.expires != -1 || o.leaderEpoch != -1 {
		t.Fatalf("v1 commit stored %+v", o)
	}

	req.Version = 2
	req.RetentionTimeMillis = 60_000
	h.commitRequest(req)
	o, _ := h.c.groups["g"].offset("orders", 0)
	if o.committed != t0.UnixMilli() || o.expires != t0.UnixMilli()+60_000 {
		t.Fatalf("v2 commit stored %+v", o)
	}
	if v, _ := keyVersion(h.log[len(h.log)-1].Value); v != 1 {
		t.Fatalf("expiring commit written as value v%d, want v1", v)
	}
	h.checkReplay()
}

func TestOffsetCommitByClassicMembers(t *testing.T) {
	h := newHarness(t)
	member, gen := h.joinOne("g", "consumer", "orders")
	offsets := map[string]map[int32]int64{"orders": {0: 5}}
	for _, tc := range []struct {
		name       string
		member     string
		generation int32
		want       int16
	}{
		{"member", member, gen, 0},
		{"wrong generation", member, gen + 1, kerr.IllegalGeneration.Code},
		{"unknown member", "stranger", gen, kerr.UnknownMemberID.Code},
		{"simple consumer of a group with members", "", -1, kerr.UnknownMemberID.Code},
	} {
		resp := h.commit(7, "g", tc.member, tc.generation, offsets)
		if got := commitCodes(resp)["orders/0"]; got != tc.want {
			t.Errorf("%s: code %d, want %d", tc.name, got, tc.want)
		}
	}
	h.checkReplay()
}

func TestOffsetDelete(t *testing.T) {
	h := newHarness(t)
	del := func(group string, topics map[string][]int32) *kmsg.OffsetDeleteResponse {
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = group
		for topic, parts := range topics {
			rt := kmsg.NewOffsetDeleteRequestTopic()
			rt.Topic = topic
			for _, p := range parts {
				rt.Partitions = append(rt.Partitions, kmsg.OffsetDeleteRequestTopicPartition{Partition: p})
			}
			req.Topics = append(req.Topics, rt)
		}
		call := h.call(0)
		h.take(h.c.OffsetDelete(call, req))
		return h.replies[call.Token].(*kmsg.OffsetDeleteResponse)
	}
	codes := func(resp *kmsg.OffsetDeleteResponse) map[string]int16 {
		out := map[string]int16{}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				out[t.Topic+"/"+string(rune('0'+p.Partition))] = p.ErrorCode
			}
		}
		return out
	}

	if resp := del("nobody", map[string][]int32{"orders": {0}}); resp.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("unknown group: %+v", resp)
	}
	if resp := del("", nil); resp.ErrorCode != kerr.InvalidGroupID.Code {
		t.Fatalf("empty group id: %+v", resp)
	}

	// A simple group: its offsets go, with tombstones.
	h.commit(8, "simple", "", -1, map[string]map[int32]int64{"orders": {0: 1, 1: 2}})
	n := len(h.log)
	resp := del("simple", map[string][]int32{"orders": {0, 2}})
	if resp.ErrorCode != 0 || !maps.Equal(codes(resp), map[string]int16{"orders/0": 0, "orders/2": 0}) {
		t.Fatalf("delete: %+v", resp)
	}
	if len(h.log) != n+1 || h.log[n].Value != nil {
		t.Fatalf("delete wrote %d records (want one tombstone)", len(h.log)-n)
	}
	if got := fetched(h.fetch("simple", nil)); !maps.Equal(got, map[string]int64{"orders/1": 2}) {
		t.Fatalf("after delete: %v", got)
	}
	h.checkReplay()

	// A consumer-protocol group with members: topics it uses are refused.
	member, gen := h.joinOne("live", "consumer", "orders")
	h.commit(7, "live", member, gen, map[string]map[int32]int64{"orders": {0: 1}, "payments": {0: 1}})
	resp = del("live", map[string][]int32{"orders": {0}, "payments": {0}})
	want := map[string]int16{"orders/0": kerr.GroupSubscribedToTopic.Code, "payments/0": 0}
	if resp.ErrorCode != 0 || !maps.Equal(codes(resp), want) {
		t.Fatalf("delete from live group: %+v, want %v", codes(resp), want)
	}
	if got := fetched(h.fetch("live", nil)); !maps.Equal(got, map[string]int64{"orders/0": 1}) {
		t.Fatalf("live group offsets after delete: %v", got)
	}

	// A group with members of another protocol: NON_EMPTY_GROUP.
	h.joinOne("workers", "connect")
	if resp := del("workers", map[string][]int32{"orders": {0}}); resp.ErrorCode != kerr.NonEmptyGroup.Code {
		t.Fatalf("delete from connect group: %+v", resp)
	}
	h.checkReplay()
}

// A classic member's accepted commit counts as a sign of life, as in Kafka:
// a member that only commits keeps its session.
func TestClassicCommitExtendsTheSession(t *testing.T) {
	h := newHarness(t)
	member, gen := h.joinOne("g", "consumer", "orders")
	for range 5 {
		h.until(h.now.Add(h.session * 3 / 4))
		if codes := commitCodes(h.commit(8, "g", member, gen, map[string]map[int32]int64{"orders": {0: 1}})); codes["orders/0"] != 0 {
			t.Fatalf("commit after %v: %v", h.now.Sub(t0), codes)
		}
	}
	if d := h.c.DescribeGroup(5, "g"); len(d.Members) != 1 || d.State != "Stable" {
		t.Fatalf("after commits only: state %s, %d members", d.State, len(d.Members))
	}
	h.until(h.now.Add(h.session + time.Second))
	if d := h.c.DescribeGroup(5, "g"); len(d.Members) != 0 {
		t.Fatalf("without commits or heartbeats the member stays: %d members", len(d.Members))
	}
}
