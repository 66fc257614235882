package broker_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/broker"
	"github.com/samsa-io/samsa/samsatest"
)

// roundTrip sends req, in the version it is set to, on a connection of its
// own and returns the response.
func roundTrip(t *testing.T, addr string, req kmsg.Request) kmsg.Response {
	t.Helper()
	c := dialRaw(t, addr)
	c.write(requestFrame(req, 1))
	resp := c.readResponse(req, 1)
	c.nc.Close()
	return resp
}

// groupTestConfig makes groups settle fast: no initial rebalance delay and
// a short minimum session timeout.
func groupTestConfig() samsatest.Option {
	return samsatest.WithConfig(func(c *broker.Config) {
		c.Groups.Classic.InitialRebalanceDelay = 0
		c.Groups.Classic.MinSessionTimeout = time.Second
		c.Groups.Consumer.HeartbeatInterval = 200 * time.Millisecond
	})
}

// eventually polls cond until it holds or the test's patience runs out.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: never happened; last: %s", what, last)
}

func TestOffsetsTopicIsCreatedInternalAndRefusesProduce(t *testing.T) {
	sb, cl, adm, ctx := adminClients(t)
	topics, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	td, ok := topics["__consumer_offsets"]
	if !ok || !td.IsInternal || len(td.Partitions) != 50 || td.Err != nil {
		t.Fatalf("__consumer_offsets: present %v, %+v", ok, td)
	}
	if plain, _ := adm.ListTopics(ctx); plain.Has("__consumer_offsets") {
		t.Error("ListTopics without internal topics lists __consumer_offsets")
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On("__consumer_offsets", nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"cleanup.policy": "compact", "segment.bytes": "104857600", "compression.type": "producer"} {
		found := false
		for _, c := range rc.Configs {
			if c.Key == name {
				found = true
				if c.MaybeValue() != want {
					t.Errorf("%s = %q, want %q", name, c.MaybeValue(), want)
				}
			}
		}
		if !found {
			t.Errorf("config %s not described", name)
		}
	}

	res := cl.ProduceSync(ctx, &kgo.Record{Topic: "__consumer_offsets", Key: []byte("k"), Value: []byte("v")})
	if err := res.FirstErr(); !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("producing to __consumer_offsets: %v, want INVALID_TOPIC_EXCEPTION", err)
	}

	dr, err := adm.DeleteTopics(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	if err := dr["__consumer_offsets"].Err; !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("deleting __consumer_offsets: %v, want INVALID_TOPIC_EXCEPTION", err)
	}

	// A restart keeps the topic, not a new one.
	id := td.ID
	cl.Close()
	sb.Restart()
	cl2, err := kgo.NewClient(kgo.SeedBrokers(sb.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	topics, err = kadm.NewClient(cl2).ListTopicsWithInternal(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	if got := topics["__consumer_offsets"]; got.ID != id || len(got.Partitions) != 50 {
		t.Fatalf("after restart: %+v, want id %v", got, id)
	}
}

func TestApiVersionsAdvertisesTheGroupAPIs(t *testing.T) {
	_, _, adm, ctx := adminClients(t)
	vs, err := adm.ApiVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, bv := range vs {
		for key, max := range map[kmsg.Key]int16{
			kmsg.OffsetCommit: 9, kmsg.OffsetFetch: 9, kmsg.FindCoordinator: 6, kmsg.JoinGroup: 9,
			kmsg.Heartbeat: 4, kmsg.LeaveGroup: 5, kmsg.SyncGroup: 5, kmsg.DescribeGroups: 5,
			kmsg.ListGroups: 5, kmsg.DeleteGroups: 2, kmsg.OffsetDelete: 0,
			kmsg.ConsumerGroupHeartbeat: 1, kmsg.ConsumerGroupDescribe: 1,
		} {
			lo, hi, ok := bv.KeyVersions(int16(key))
			if !ok || lo != 0 || hi != max {
				t.Errorf("%s: advertised %v %d–%d, want 0–%d", kmsg.NameForKey(int16(key)), ok, lo, hi, max)
			}
		}
	}
}

func TestFindCoordinatorNamesThisBroker(t *testing.T) {
	sb := samsatest.Start(t)
	addr := sb.Broker().Addr().String()
	for v := int16(0); v <= 6; v++ {
		for _, keyType := range []int8{0, 1} {
			if v == 0 && keyType == 1 {
				continue // v0 knows only groups
			}
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.SetVersion(v)
			req.CoordinatorType = keyType
			if v < 4 {
				req.CoordinatorKey = "g"
			} else {
				req.CoordinatorKeys = []string{"g", "other"}
			}
			resp := roundTrip(t, addr, req).(*kmsg.FindCoordinatorResponse)
			if v < 4 {
				if resp.ErrorCode != 0 || resp.NodeID != 0 || resp.Port == 0 || resp.Host == "" {
					t.Errorf("v%d key type %d: %+v", v, keyType, resp)
				}
				continue
			}
			if len(resp.Coordinators) != 2 {
				t.Fatalf("v%d: %d coordinators for 2 keys", v, len(resp.Coordinators))
			}
			for i, c := range resp.Coordinators {
				if c.Key != req.CoordinatorKeys[i] || c.ErrorCode != 0 || c.NodeID != 0 || c.Port == 0 || c.Host == "" {
					t.Errorf("v%d key type %d: %+v", v, keyType, c)
				}
			}
		}
	}
	// Share groups (key type 2) have no coordinator here.
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.SetVersion(6)
	req.CoordinatorType = 2
	req.CoordinatorKeys = []string{"g:topic:0"}
	resp := roundTrip(t, addr, req).(*kmsg.FindCoordinatorResponse)
	if len(resp.Coordinators) != 1 || resp.Coordinators[0].ErrorCode != kerr.InvalidRequest.Code || resp.Coordinators[0].NodeID != -1 {
		t.Fatalf("share coordinator: %+v", resp.Coordinators)
	}

	// kadm finds it too.
	cl, err := kgo.NewClient(kgo.SeedBrokers(sb.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	found := kadm.NewClient(cl).FindGroupCoordinators(ctx, "a", "b")
	if err := found.Error(); err != nil || len(found) != 2 || found["a"].NodeID != 0 {
		t.Fatalf("FindGroupCoordinators: %v %+v", err, found)
	}
}

// Requests Kafka refuses before the coordinator sees them.
func TestGroupRequestsWithoutAGroupID(t *testing.T) {
	sb := samsatest.Start(t)
	addr := sb.Broker().Addr().String()
	code := func(resp kmsg.Response) int16 {
		switch r := resp.(type) {
		case *kmsg.JoinGroupResponse:
			return r.ErrorCode
		case *kmsg.SyncGroupResponse:
			return r.ErrorCode
		case *kmsg.HeartbeatResponse:
			return r.ErrorCode
		case *kmsg.LeaveGroupResponse:
			return r.ErrorCode
		case *kmsg.OffsetDeleteResponse:
			return r.ErrorCode
		case *kmsg.ConsumerGroupHeartbeatResponse:
			return r.ErrorCode
		case *kmsg.ConsumerGroupDescribeResponse:
			return r.Groups[0].ErrorCode
		}
		t.Fatalf("unexpected %T", resp)
		return 0
	}
	join := kmsg.NewPtrJoinGroupRequest()
	join.ProtocolType, join.SessionTimeoutMillis = "consumer", 10000
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{}}}
	sync := kmsg.NewPtrSyncGroupRequest()
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "m"}}
	describe := kmsg.NewPtrConsumerGroupDescribeRequest()
	describe.Groups = []string{""}
	for _, tc := range []struct {
		req     kmsg.Request
		version int16
		want    *kerr.Error
	}{
		{join, 0, kerr.InvalidGroupID},
		{join, 9, kerr.InvalidGroupID},
		{sync, 0, kerr.InvalidGroupID},
		{kmsg.NewPtrHeartbeatRequest(), 4, kerr.InvalidGroupID},
		{leave, 5, kerr.InvalidGroupID},
		{kmsg.NewPtrOffsetDeleteRequest(), 0, kerr.InvalidGroupID},
		{describe, 1, kerr.InvalidGroupID},
		{kmsg.NewPtrConsumerGroupHeartbeatRequest(), 1, kerr.InvalidRequest},
	} {
		tc.req.SetVersion(tc.version)
		if got := code(roundTrip(t, addr, tc.req)); got != tc.want.Code {
			t.Errorf("%s v%d with no group id: %v, want %v", kmsg.NameForKey(tc.req.Key()), tc.version, kerr.ErrorForCode(got), tc.want)
		}
	}

	// SyncGroup v5 must name the protocol type and name.
	sync = kmsg.NewPtrSyncGroupRequest()
	sync.SetVersion(5)
	sync.Group, sync.MemberID, sync.Generation = "g", "m", 1
	if got := roundTrip(t, addr, sync).(*kmsg.SyncGroupResponse).ErrorCode; got != kerr.InconsistentGroupProtocol.Code {
		t.Errorf("SyncGroup v5 without protocol: %v", kerr.ErrorForCode(got))
	}
}

func TestAdminCommitFetchDeleteOffsetsAndGroups(t *testing.T) {
	sb, _, adm, ctx := adminClients(t, groupTestConfig())
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}

	// A simple consumer (no members) commits.
	var offsets kadm.Offsets
	offsets.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 5, LeaderEpoch: -1, Metadata: "first"})
	offsets.Add(kadm.Offset{Topic: "orders", Partition: 1, At: 7, LeaderEpoch: -1})
	committed, err := adm.CommitOffsets(ctx, "simple", offsets)
	if err != nil || committed.Error() != nil {
		t.Fatalf("commit: %v %v", err, committed.Error())
	}

	fetched, err := adm.FetchOffsets(ctx, "simple")
	if err != nil || fetched.Error() != nil {
		t.Fatalf("fetch: %v %v", err, fetched.Error())
	}
	if o, _ := fetched.Lookup("orders", 0); o.At != 5 || o.Metadata != "first" {
		t.Errorf("orders-0: %+v", o)
	}
	if o, _ := fetched.Lookup("orders", 1); o.At != 7 {
		t.Errorf("orders-1: %+v", o)
	}
	if _, ok := fetched.Lookup("orders", 2); ok {
		t.Errorf("orders-2 has an offset it was never given")
	}

	// Every version of OffsetFetch: v0–v7 ask for one group, v8+ batch.
	for v := int16(0); v <= 9; v++ {
		checkOffsetFetch(t, sb.Addr(), v, map[int32]int64{0: 5, 1: 7, 2: -1})
	}

	// Offsets for a topic that does not exist are refused.
	var bad kadm.Offsets
	bad.Add(kadm.Offset{Topic: "nonexistent", Partition: 0, At: 1, LeaderEpoch: -1})
	bad.Add(kadm.Offset{Topic: "orders", Partition: 9, At: 1, LeaderEpoch: -1})
	bad.Add(kadm.Offset{Topic: "orders", Partition: 2, At: 3, LeaderEpoch: -1})
	res, err := adm.CommitOffsets(ctx, "simple", bad)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := res.Lookup("nonexistent", 0); !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("commit to a topic that does not exist: %v", r.Err)
	}
	if r, _ := res.Lookup("orders", 9); !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("commit to a partition that does not exist: %v", r.Err)
	}
	if r, _ := res.Lookup("orders", 2); r.Err != nil {
		t.Errorf("the valid partition of a mixed commit: %v", r.Err)
	}

	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := listed["simple"]; !ok {
		t.Fatalf("ListGroups: %v", listed.Groups())
	}
	described, err := adm.DescribeGroups(ctx, "simple")
	if err != nil {
		t.Fatal(err)
	}
	if d := described["simple"]; d.Err != nil || d.State != "Empty" || len(d.Members) != 0 {
		t.Fatalf("DescribeGroups: %+v", d)
	}

	// Delete one partition's offset.
	deleted, err := adm.DeleteOffsets(ctx, "simple", kadm.TopicsSet{"orders": {0: {}}})
	if err != nil || deleted.Error() != nil {
		t.Fatalf("DeleteOffsets: %v %v", err, deleted.Error())
	}
	fetched, err = adm.FetchOffsets(ctx, "simple")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fetched.Lookup("orders", 0); ok {
		t.Error("orders-0 still has an offset after DeleteOffsets")
	}
	if o, _ := fetched.Lookup("orders", 1); o.At != 7 {
		t.Errorf("orders-1 after deleting orders-0: %+v", o)
	}

	// Offsets survive a restart.
	sb.Restart()
	cl2, err := kgo.NewClient(kgo.SeedBrokers(sb.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	adm = kadm.NewClient(cl2)
	eventually(t, "offsets fetched after a restart", func() (bool, string) {
		fetched, err = adm.FetchOffsets(ctx, "simple")
		if err != nil {
			return false, err.Error()
		}
		o1, _ := fetched.Lookup("orders", 1)
		o2, _ := fetched.Lookup("orders", 2)
		_, has0 := fetched.Lookup("orders", 0)
		return o1.At == 7 && o2.At == 3 && !has0, fmtOffsets(fetched)
	})

	// Delete the group: its offsets go with it.
	dg, err := adm.DeleteGroups(ctx, "simple", "never-existed")
	if err != nil {
		t.Fatal(err)
	}
	if r := dg["simple"]; r.Err != nil {
		t.Fatalf("DeleteGroups simple: %v", r.Err)
	}
	if r := dg["never-existed"]; !errors.Is(r.Err, kerr.GroupIDNotFound) {
		t.Errorf("DeleteGroups of a group that never existed: %v", r.Err)
	}
	fetched, err = adm.FetchOffsets(ctx, "simple")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(fetched.Offsets().Sorted()); n != 0 {
		t.Errorf("%d offsets left after DeleteGroups: %s", n, fmtOffsets(fetched))
	}
	listed, err = adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := listed["simple"]; ok {
		t.Error("ListGroups still lists a deleted group")
	}

	// And the deletion survives a restart.
	cl2.Close()
	sb.Restart()
	cl3, err := kgo.NewClient(kgo.SeedBrokers(sb.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl3.Close()
	adm = kadm.NewClient(cl3)
	eventually(t, "group list after a restart", func() (bool, string) {
		listed, err := adm.ListGroups(ctx)
		if err != nil {
			return false, err.Error()
		}
		_, ok := listed["simple"]
		return !ok, fmt.Sprint(listed.Groups())
	})
}

// fmtOffsets lists fetched offsets for a failure message.
func fmtOffsets(r kadm.OffsetResponses) string {
	var out []string
	r.Each(func(o kadm.OffsetResponse) {
		out = append(out, fmt.Sprintf("%s-%d@%d(%v)", o.Topic, o.Partition, o.At, o.Err))
	})
	slices.Sort(out)
	return fmt.Sprint(out)
}

// checkOffsetFetch asks for group "simple"'s offsets of orders-0..2 in
// version v and checks them against want (-1: none committed).
func checkOffsetFetch(t *testing.T, addr string, v int16, want map[int32]int64) {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.SetVersion(v)
	parts := []int32{0, 1, 2}
	got := map[int32]int64{}
	if v < 8 {
		req.Group = "simple"
		req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "orders", Partitions: parts}}
		resp := roundTrip(t, addr, req).(*kmsg.OffsetFetchResponse)
		if resp.ErrorCode != 0 || len(resp.Topics) != 1 || resp.Topics[0].Topic != "orders" {
			t.Fatalf("OffsetFetch v%d: %+v", v, resp)
		}
		for _, p := range resp.Topics[0].Partitions {
			if p.ErrorCode != 0 {
				t.Errorf("OffsetFetch v%d partition %d: %v", v, p.Partition, kerr.ErrorForCode(p.ErrorCode))
			}
			got[p.Partition] = p.Offset
		}
	} else {
		req.Groups = []kmsg.OffsetFetchRequestGroup{
			{Group: "simple", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "orders", Partitions: parts}}},
			{Group: "unknown-group", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "orders", Partitions: parts}}},
		}
		resp := roundTrip(t, addr, req).(*kmsg.OffsetFetchResponse)
		if len(resp.Groups) != 2 || resp.Groups[0].Group != "simple" || resp.Groups[0].ErrorCode != 0 || len(resp.Groups[0].Topics) != 1 {
			t.Fatalf("OffsetFetch v%d: %+v", v, resp.Groups)
		}
		for _, p := range resp.Groups[0].Topics[0].Partitions {
			got[p.Partition] = p.Offset
		}
		if g := resp.Groups[1]; g.Group != "unknown-group" || g.ErrorCode != 0 {
			t.Errorf("OffsetFetch v%d of a group with no offsets: %+v", v, g)
		}
		for _, rt := range resp.Groups[1].Topics {
			for _, p := range rt.Partitions {
				if p.Offset != -1 {
					t.Errorf("OffsetFetch v%d: a group with no offsets has %s-%d at %d", v, rt.Topic, p.Partition, p.Offset)
				}
			}
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("OffsetFetch v%d: %v, want %v", v, got, want)
	}
}
