package metadata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func testConfig(dir string) Config {
	level := slog.LevelWarn
	if testing.Verbose() && os.Getenv("METADATA_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return Config{
		NodeID: 1,
		Dir:    dir,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		Host:   "localhost",
		Port:   9092,
	}
}

func open(t testing.TB, cfg Config) *Controller {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func closeController(t testing.TB, c *Controller) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func mustCreate(t testing.TB, c *Controller, nt NewTopic) *Topic {
	t.Helper()
	tp, err := c.CreateTopic(context.Background(), nt)
	if err != nil {
		t.Fatalf("CreateTopic %q: %v", nt.Name, err)
	}
	return tp
}

func TestOpenBootstrapsAndRegisters(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.Rack = "r1"
	c := open(t, cfg)
	img := c.Image()
	if len(img.ClusterID) != 22 {
		t.Fatalf("cluster id %q", img.ClusterID)
	}
	if img.ControllerID != 1 {
		t.Fatalf("controller %d", img.ControllerID)
	}
	if b := img.Brokers[1]; b != (Broker{NodeID: 1, Host: "localhost", Port: 9092, Rack: "r1"}) {
		t.Fatalf("broker %+v", b)
	}
	if img.Offset == 0 {
		t.Fatal("offset 0 after three records")
	}
}

func TestControllerProposalsAndReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := testConfig(t.TempDir())
	c := open(t, cfg)

	a := mustCreate(t, c, NewTopic{Name: "a", Partitions: 3, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "1000"}})
	if a.ID.IsZero() || len(a.Partitions) != 3 || a.Configs["retention.ms"] != "1000" {
		t.Fatalf("topic a = %+v", a)
	}
	for i, p := range a.Partitions {
		want := Partition{Leader: 1, Replicas: []int32{1}, ISR: []int32{1}}
		if !reflect.DeepEqual(p, want) {
			t.Fatalf("partition %d = %+v", i, p)
		}
	}
	b := mustCreate(t, c, NewTopic{Name: "b", Partitions: 1, ReplicationFactor: -1})

	if err := c.AlterTopicConfigs(ctx, a.ID, map[string]string{"cleanup.policy": "compact"}, []string{"retention.ms"}); err != nil {
		t.Fatal(err)
	}
	if err := c.AlterBrokerConfigs(ctx, -1, map[string]string{"log.retention.ms": "5"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.AlterBrokerConfigs(ctx, 1, map[string]string{"x": "y"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.CreatePartitions(ctx, a.ID, 5); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteTopic(ctx, b.ID); err != nil {
		t.Fatal(err)
	}

	img := c.Image()
	if got := img.Topics["a"]; len(got.Partitions) != 5 || !reflect.DeepEqual(got.Configs, map[string]string{"cleanup.policy": "compact"}) {
		t.Fatalf("topic a = %+v", got)
	}
	if _, ok := img.TopicsByID[b.ID]; ok {
		t.Fatal("topic b not deleted")
	}
	if !reflect.DeepEqual(img.BrokerConfigs, map[int32]map[string]string{-1: {"log.retention.ms": "5"}, 1: {"x": "y"}}) {
		t.Fatalf("broker configs %v", img.BrokerConfigs)
	}

	closeController(t, c)
	closeController(t, c) // idempotent
	if _, err := c.CreateTopic(ctx, NewTopic{Name: "late", Partitions: 1, ReplicationFactor: 1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("CreateTopic after Close: %v", err)
	}

	c2 := open(t, cfg)
	if !reflect.DeepEqual(c2.Image(), img) {
		t.Fatalf("reopened image differs:\n got %+v\nwant %+v", c2.Image(), img)
	}
}

func TestProposalErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := open(t, testConfig(t.TempDir()))
	a := mustCreate(t, c, NewTopic{Name: "a", Partitions: 2, ReplicationFactor: 1})
	unknown := TopicID{9}
	create := func(nt NewTopic) error {
		_, err := c.CreateTopic(ctx, nt)
		return err
	}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"exists", create(NewTopic{Name: "a", Partitions: 1, ReplicationFactor: 1}), ErrTopicExists},
		{"empty name", create(NewTopic{Partitions: 1, ReplicationFactor: 1}), ErrInvalidTopic},
		{"zero partitions", create(NewTopic{Name: "z", ReplicationFactor: 1}), ErrInvalidPartitions},
		{"rf above brokers", create(NewTopic{Name: "z", Partitions: 1, ReplicationFactor: 2}), ErrInvalidReplicationFactor},
		{"rf zero", create(NewTopic{Name: "z", Partitions: 1}), ErrInvalidReplicationFactor},
		{"delete unknown", c.DeleteTopic(ctx, unknown), ErrUnknownTopic},
		{"partitions of unknown", c.CreatePartitions(ctx, unknown, 3), ErrUnknownTopic},
		{"partitions not more", c.CreatePartitions(ctx, a.ID, 2), ErrInvalidPartitions},
		{"configs of unknown", c.AlterTopicConfigs(ctx, unknown, map[string]string{"k": "v"}, nil), ErrUnknownTopic},
		{"configs of node -2", c.AlterBrokerConfigs(ctx, -2, map[string]string{"k": "v"}, nil), ErrInvalidBroker},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	// Errors decided by Apply, past the proposal's own checks, come back too.
	if err := c.propose(ctx, DeleteTopicRecord{TopicID: unknown}); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("raced delete: %v", err)
	}
}

func TestReopenFromSnapshotAndLog(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	c := open(t, cfg)
	for i := range 5 {
		mustCreate(t, c, NewTopic{Name: fmt.Sprintf("before-%d", i), Partitions: 1, ReplicationFactor: 1})
	}
	if err := c.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if err := c.Snapshot(); err != nil { // nothing new: not an error
		t.Fatal(err)
	}
	snapAt := c.Image().Offset
	for i := range 3 {
		mustCreate(t, c, NewTopic{Name: fmt.Sprintf("after-%d", i), Partitions: 1, ReplicationFactor: 1})
	}
	if err := c.AlterBrokerConfigs(context.Background(), -1, map[string]string{"k": "v"}, nil); err != nil {
		t.Fatal(err)
	}
	want := c.Image()
	closeController(t, c)

	snaps, _ := filepath.Glob(filepath.Join(cfg.Dir, "snapshots", "*", "state.bin"))
	if len(snaps) != 1 {
		t.Fatalf("snapshots on disk: %v", snaps)
	}
	c2 := open(t, cfg)
	c2.fsm.notifyMu.Lock()
	restoredAt := c2.fsm.restoredAt
	c2.fsm.notifyMu.Unlock()
	if restoredAt != snapAt {
		t.Fatalf("restored a snapshot at %d, want %d", restoredAt, snapAt)
	}
	if !reflect.DeepEqual(c2.Image(), want) {
		t.Fatalf("reopened image differs:\n got %+v\nwant %+v", c2.Image(), want)
	}
}

func TestSnapshotThresholdTriggersSnapshot(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.SnapshotThreshold = 4
	cfg.SnapshotInterval = 10 * time.Millisecond
	c := open(t, cfg)
	for i := range 8 {
		mustCreate(t, c, NewTopic{Name: fmt.Sprintf("t%d", i), Partitions: 1, ReplicationFactor: 1})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		snaps, _ := filepath.Glob(filepath.Join(cfg.Dir, "snapshots", "*", "state.bin"))
		if len(snaps) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no snapshot after exceeding the threshold")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOnChangeSeesEveryChangeInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := open(t, testConfig(t.TempDir()))

	type change struct{ prev, next *Image }
	var mu sync.Mutex
	var changes []change
	cancel := c.OnChange(func(prev, next *Image) {
		mu.Lock()
		defer mu.Unlock()
		changes = append(changes, change{prev, next})
	})
	seen := func() []change {
		mu.Lock()
		defer mu.Unlock()
		return append([]change(nil), changes...)
	}
	if got := seen(); len(got) != 1 || got[0].prev != nil || got[0].next != c.Image() {
		t.Fatalf("first call: %+v", got)
	}

	a := mustCreate(t, c, NewTopic{Name: "a", Partitions: 1, ReplicationFactor: 1})
	// The proposal returns only after listeners saw its record.
	if got := seen(); got[len(got)-1].next.Topics["a"] == nil {
		t.Fatal("CreateTopic returned before OnChange saw the topic")
	}
	if err := c.CreatePartitions(ctx, a.ID, 2); err != nil {
		t.Fatal(err)
	}
	if err := c.AlterTopicConfigs(ctx, a.ID, map[string]string{"k": "v"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteTopic(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	_ = c.DeleteTopic(ctx, a.ID) // fails: no change to see

	got := seen()
	if len(got) != 5 {
		t.Fatalf("%d calls, want 5", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].prev != got[i-1].next || got[i].next.Offset <= got[i].prev.Offset {
			t.Fatalf("change %d does not follow change %d", i, i-1)
		}
	}
	if got[len(got)-1].next != c.Image() {
		t.Fatal("last change is not the current image")
	}

	cancel()
	mustCreate(t, c, NewTopic{Name: "b", Partitions: 1, ReplicationFactor: 1})
	if n := len(seen()); n != 5 {
		t.Fatalf("called after cancel: %d calls", n)
	}
}

func TestConcurrentCreateTopicOneWins(t *testing.T) {
	t.Parallel()
	c := open(t, testConfig(t.TempDir()))
	const n = 8
	for round, viaLog := range []bool{false, true} {
		name := fmt.Sprintf("race-%d", round)
		var wg sync.WaitGroup
		errs := make([]error, n)
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				if viaLog {
					// Skip CreateTopic's early check: only Apply decides.
					rec := CreateTopicRecord{Name: name, ID: newRandomID(), Partitions: onePartition(1)}
					errs[i] = c.propose(context.Background(), rec)
				} else {
					_, errs[i] = c.CreateTopic(context.Background(), NewTopic{Name: name, Partitions: 1, ReplicationFactor: 1})
				}
			})
		}
		close(start)
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, ErrTopicExists):
				t.Fatalf("unexpected error: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%s: %d winners", name, wins)
		}
	}
}

func TestSecondOpenOfADirectoryFails(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	c := open(t, cfg)

	second := cfg
	second.LockTimeout = 100 * time.Millisecond
	_, err := Open(context.Background(), second)
	if !errors.Is(err, ErrDirInUse) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open: %v", err)
	}
	want := c.Image()
	closeController(t, c)
	c2 := open(t, cfg)
	if !reflect.DeepEqual(c2.Image(), want) {
		t.Fatal("image changed by the failed Open")
	}
}

func TestReopenRegistersOnlyChangedBroker(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	c := open(t, cfg)
	off := c.Image().Offset
	closeController(t, c)

	c = open(t, cfg)
	if got := c.Image().Offset; got != off {
		t.Fatalf("unchanged reopen wrote records: offset %d, was %d", got, off)
	}
	closeController(t, c)

	cfg.Port = 9093
	c = open(t, cfg)
	if b := c.Image().Brokers[1]; b.Port != 9093 || c.Image().Offset <= off {
		t.Fatalf("broker %+v at offset %d", b, c.Image().Offset)
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.Port = 0
	cfg.NodeID = -1
	if _, err := Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "port") {
		t.Fatalf("Open: %v", err)
	}
}

func TestConcurrentProducerIDReservationsAreDisjointAndSurviveReopen(t *testing.T) {
	cfg := testConfig(t.TempDir())
	c := open(t, cfg)
	var mu sync.Mutex
	var firsts []int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			first, err := c.ReserveProducerIDs(context.Background(), 1, 100)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			firsts = append(firsts, first)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(firsts)
	for i, f := range firsts {
		if f != int64(i)*100 {
			t.Fatalf("blocks start at %v, want 0, 100, ..., 700: disjoint and contiguous", firsts)
		}
	}
	closeController(t, c)
	c = open(t, cfg)
	if first, err := c.ReserveProducerIDs(context.Background(), 1, 100); err != nil || first != 800 {
		t.Fatalf("after reopen: first %d, err %v; want 800", first, err)
	}
}
