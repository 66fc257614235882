package broker

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config.SyncFSThreshold reaches the group committer: a round over eight
// logs uses syncfs from a threshold of 1, and never below zero.
func TestSyncFSThresholdReachesTheCommitter(t *testing.T) {
	for _, tc := range []struct {
		threshold  int
		wantSyncFS bool
	}{{-1, false}, {1, true}} {
		t.Run(strconv.Itoa(tc.threshold), func(t *testing.T) {
			b := startBroker(t, func(c *Config) { c.SyncFSThreshold = tc.threshold })
			cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr().String()), kgo.ManualFlushing(),
				kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := kadm.NewClient(cl).CreateTopic(ctx, 8, 1, nil, "t"); err != nil {
				t.Fatal(err)
			}
			before := b.Store().Committer().Stats()
			for p := range int32(8) {
				cl.Produce(ctx, &kgo.Record{Topic: "t", Partition: p, Value: []byte("v")}, nil)
			}
			if err := cl.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			after := b.Store().Committer().Stats()
			if after.LogsSynced-before.LogsSynced < 8 {
				t.Fatalf("%d logs synced, want at least 8", after.LogsSynced-before.LogsSynced)
			}
			if got := after.SyncFSCalls > before.SyncFSCalls; got != tc.wantSyncFS {
				t.Fatalf("syncfs used: %v, want %v (stats before %+v, after %+v)", got, tc.wantSyncFS, before, after)
			}
		})
	}
}
