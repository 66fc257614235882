package broker

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/storage"
)

// startBroker starts a broker in this package's tests (samsatest imports
// this package, so they cannot use it).
func startBroker(t testing.TB, mod func(*Config)) *Broker {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.DiscardHandler)
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b.Close(ctx)
	})
	return b
}

// handleDirect runs a request through the API table as a connection would.
func handleDirect(ctx context.Context, b *Broker, req kmsg.Request, version int16) kmsg.Response {
	req.SetVersion(version)
	r := &request{key: req.Key(), version: version, clientID: "test", body: req, conn: &conn{b: b, logger: b.logger}}
	return b.handle(ctx, r)
}

// waitLoaded waits until a coordinator's driver has loaded its internal
// topic.
func waitLoaded[C coordinator, T ~uint64](t *testing.T, d *coordDriver[C, T]) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for d.state() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s never loaded", d.topic)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// asIfLoading makes a loaded driver answer as if it were still loading,
// until the test ends.
func asIfLoading[C coordinator, T ~uint64](t *testing.T, d *coordDriver[C, T]) {
	waitLoaded(t, d)
	d.mu.Lock()
	d.loaded = false
	d.mu.Unlock()
	t.Cleanup(func() {
		d.mu.Lock()
		d.loaded = true
		d.mu.Unlock()
	})
}

func TestCoordinatorAppendSplitsOversizeBatchesAndReadsBackInOrder(t *testing.T) {
	store, err := storage.OpenStore(filepath.Join(t.TempDir(), "logs"), storage.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cfg := storage.DefaultConfig()
	cfg.Compact = true
	cfg.Delete = false
	cfg.MaxMessageBytes = 300
	l, err := store.Create(storage.TopicPartition{Topic: offsetsTopic, Partition: 0}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var recs []record.Record
	for i := range 20 {
		var value []byte
		if i%5 != 4 { // every fifth a tombstone
			value = fmt.Appendf(nil, "value-%02d-%040d", i, i)
		}
		recs = append(recs, record.Record{Offset: int64(i), Timestamp: 1, Key: fmt.Appendf(nil, "key-%02d", i), Value: value})
	}
	opts := record.DefaultBuildOptions()
	opts.PartitionLeaderEpoch = 0
	end, err := appendBuilt(l, l.Append, opts, recs)
	if err != nil {
		t.Fatal(err)
	}
	if end != 20 {
		t.Fatalf("end offset %d, want 20", end)
	}
	batches := 0
	data, err := l.Read(nil, 0, 1<<20, end)
	if err != nil {
		t.Fatal(err)
	}
	for b := data.Data; len(b) > 0; batches++ {
		h, err := record.ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if h.Size() > 300 {
			t.Errorf("a batch of %d bytes, over max.message.bytes", h.Size())
		}
		b = b[h.Size():]
	}
	if batches < 2 {
		t.Errorf("%d batches: the records were not split", batches)
	}

	i := 0
	n, err := readBatchRecords(context.Background(), l, func(_ batchInfo, offset int64, key, value []byte) {
		want := recs[i]
		if offset != int64(i) || string(key) != string(want.Key) || string(value) != string(want.Value) || (value == nil) != (want.Value == nil) {
			t.Errorf("record %d: offset %d key %q value %q, want key %q value %q", i, offset, key, value, want.Key, want.Value)
		}
		i++
	})
	if err != nil || n != 20 || i != 20 {
		t.Fatalf("read %d records (%d seen): %v", n, i, err)
	}
}

func TestGroupRequestsBeforeLoadingEndsGetLoadInProgress(t *testing.T) {
	b := startBroker(t, nil)
	asIfLoading(t, &b.groups.coordDriver)
	ctx := context.Background()
	want := kerr.CoordinatorLoadInProgress.Code

	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "g", "consumer", 10000, 10000
	if got := handleDirect(ctx, b, join, 9).(*kmsg.JoinGroupResponse); got.ErrorCode != want || got.Generation != -1 {
		t.Errorf("JoinGroup: %+v", got)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group = "g"
	if got := handleDirect(ctx, b, hb, 4).(*kmsg.HeartbeatResponse); got.ErrorCode != want {
		t.Errorf("Heartbeat: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.Generation = "g", -1
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: offsetsTopic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}, {Partition: 1, Offset: 1}}}}
	got := handleDirect(ctx, b, commit, 9).(*kmsg.OffsetCommitResponse)
	if len(got.Topics) != 1 || len(got.Topics[0].Partitions) != 2 {
		t.Fatalf("OffsetCommit: %+v", got)
	}
	for _, p := range got.Topics[0].Partitions {
		if p.ErrorCode != want {
			t.Errorf("OffsetCommit partition %d: %v", p.Partition, kerr.ErrorForCode(p.ErrorCode))
		}
	}
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "a"}, {Group: "b"}}
	if got := handleDirect(ctx, b, fetch, 9).(*kmsg.OffsetFetchResponse); len(got.Groups) != 2 || got.Groups[0].ErrorCode != want || got.Groups[1].Group != "b" {
		t.Errorf("OffsetFetch v9: %+v", got.Groups)
	}
	fetch = kmsg.NewPtrOffsetFetchRequest()
	fetch.Group = "a"
	fetch.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0, 1}}}
	if got := handleDirect(ctx, b, fetch, 1).(*kmsg.OffsetFetchResponse); len(got.Topics) != 1 || len(got.Topics[0].Partitions) != 2 || got.Topics[0].Partitions[1].ErrorCode != want {
		t.Errorf("OffsetFetch v1 (no group-level error): %+v", got.Topics)
	}
	if got := handleDirect(ctx, b, kmsg.NewPtrListGroupsRequest(), 5).(*kmsg.ListGroupsResponse); got.ErrorCode != want {
		t.Errorf("ListGroups: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	describe := kmsg.NewPtrDescribeGroupsRequest()
	describe.Groups = []string{"g"}
	if got := handleDirect(ctx, b, describe, 5).(*kmsg.DescribeGroupsResponse); got.Groups[0].ErrorCode != want || got.Groups[0].Group != "g" {
		t.Errorf("DescribeGroups: %+v", got.Groups)
	}
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"g", "g", "h"}
	if got := handleDirect(ctx, b, del, 2).(*kmsg.DeleteGroupsResponse); len(got.Groups) != 2 || got.Groups[0].ErrorCode != want || got.Groups[1].ErrorCode != want {
		t.Errorf("DeleteGroups (a group named twice is answered once): %+v", got.Groups)
	}
	cgh := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	cgh.Group = "g"
	if got := handleDirect(ctx, b, cgh, 1).(*kmsg.ConsumerGroupHeartbeatResponse); got.ErrorCode != want {
		t.Errorf("ConsumerGroupHeartbeat: %v", kerr.ErrorForCode(got.ErrorCode))
	}
}

// waitingJoin sends a JoinGroup that must wait (the initial rebalance delay
// is an hour) and returns once the driver holds it.
func waitingJoin(t *testing.T, b *Broker, ctx context.Context) <-chan kmsg.Response {
	t.Helper()
	waitLoaded(t, &b.groups.coordDriver)
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType = "g", "consumer"
	join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = 30000, 600000
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}}
	out := make(chan kmsg.Response, 1)
	go func() { out <- handleDirect(ctx, b, join, 3) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b.groups.mu.Lock()
		n := len(b.groups.waiting)
		b.groups.mu.Unlock()
		if n == 1 {
			return out
		}
		select {
		case resp := <-out:
			t.Fatalf("the JoinGroup was answered at once: %+v", resp)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the JoinGroup never waited")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func slowRebalance(c *Config) { c.Groups.Classic.InitialRebalanceDelay = time.Hour }

func TestWaitingJoinGroupIsAnsweredWhenTheBrokerCloses(t *testing.T) {
	b := startBroker(t, slowRebalance)
	out := waitingJoin(t, b, b.ctx)
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		closed <- b.Close(ctx)
	}()
	resp := (<-out).(*kmsg.JoinGroupResponse)
	if resp.ErrorCode != kerr.CoordinatorNotAvailable.Code || resp.Version != 3 {
		t.Fatalf("JoinGroup at close: %+v", resp)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

func TestWaitingJoinGroupGivesUpWithItsContext(t *testing.T) {
	b := startBroker(t, slowRebalance)
	ctx, cancel := context.WithCancel(context.Background())
	out := waitingJoin(t, b, ctx)
	cancel()
	if resp := (<-out).(*kmsg.JoinGroupResponse); resp.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("JoinGroup whose context ended: %+v", resp)
	}
	b.groups.mu.Lock()
	n := len(b.groups.waiting)
	b.groups.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d replies still awaited after the handler gave up", n)
	}
}

// A member that stops heartbeating is removed when its session expires:
// only the driver's timer (Tick) can notice that.
func TestSilentMemberExpiresThroughTheTimer(t *testing.T) {
	b := startBroker(t, func(c *Config) {
		c.Groups.Classic.InitialRebalanceDelay = 0
		c.Groups.Classic.MinSessionTimeout = 10 * time.Millisecond
	})
	waitLoaded(t, &b.groups.coordDriver)
	ctx := context.Background()
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"t"}
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType = "expiring", "consumer"
	join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = 500, 60000
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
	resp := handleDirect(ctx, b, join, 9).(*kmsg.JoinGroupResponse)
	if resp.ErrorCode != kerr.MemberIDRequired.Code || resp.MemberID == "" {
		t.Fatalf("first join: %+v", resp)
	}
	join.MemberID = resp.MemberID
	resp = handleDirect(ctx, b, join, 9).(*kmsg.JoinGroupResponse)
	if resp.ErrorCode != 0 || resp.LeaderID != join.MemberID || resp.Generation < 1 {
		t.Fatalf("join: %+v", resp)
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = "expiring", join.MemberID, resp.Generation
	sync.ProtocolType, sync.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: join.MemberID, MemberAssignment: []byte{0, 0, 0, 0, 0, 0, 0, 0}}}
	// The session may already have expired on a slow machine: then the
	// sync fails, and the member is gone all the same.
	sresp := handleDirect(ctx, b, sync, 5).(*kmsg.SyncGroupResponse)
	if c := sresp.ErrorCode; c != 0 && c != kerr.UnknownMemberID.Code && c != kerr.RebalanceInProgress.Code {
		t.Fatalf("sync: %v", kerr.ErrorForCode(c))
	}

	describe := kmsg.NewPtrDescribeGroupsRequest()
	describe.Groups = []string{"expiring"}
	deadline := time.Now().Add(30 * time.Second)
	for {
		g := handleDirect(ctx, b, describe, 5).(*kmsg.DescribeGroupsResponse).Groups[0]
		if g.ErrorCode == 0 && g.State == "Empty" && len(g.Members) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the silent member was never removed: %+v", g)
		}
		time.Sleep(10 * time.Millisecond)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "expiring", join.MemberID, resp.Generation
	if got := handleDirect(ctx, b, hb, 4).(*kmsg.HeartbeatResponse); got.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat of the expired member: %v", kerr.ErrorForCode(got.ErrorCode))
	}
}
