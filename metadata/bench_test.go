package metadata

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// BenchmarkOpenFirstBoot measures Open on an empty directory: bootstrap,
// election, and the three start-up records.
func BenchmarkOpenFirstBoot(b *testing.B) {
	root := b.TempDir()
	for i := 0; b.Loop(); i++ {
		c := open(b, testConfig(filepath.Join(root, fmt.Sprint(i))))
		b.StopTimer()
		closeController(b, c)
		b.StartTimer()
	}
}

// BenchmarkReopen measures Open of a directory holding 1000 topics, half
// of them in a snapshot and half in the log after it.
func BenchmarkReopen(b *testing.B) {
	cfg := testConfig(b.TempDir())
	c := open(b, cfg)
	for i := range 1000 {
		if i == 500 {
			if err := c.Snapshot(); err != nil {
				b.Fatal(err)
			}
		}
		mustCreate(b, c, NewTopic{Name: fmt.Sprintf("t%d", i), Partitions: 3, ReplicationFactor: 1})
	}
	closeController(b, c)
	for b.Loop() {
		c := open(b, cfg)
		b.StopTimer()
		closeController(b, c)
		b.StartTimer()
	}
}

// BenchmarkProposal measures one proposal at a time: the latency of a
// commit (an fsync of raft.db) and apply.
func BenchmarkProposal(b *testing.B) {
	c := open(b, testConfig(b.TempDir()))
	tp := mustCreate(b, c, NewTopic{Name: "t", Partitions: 1, ReplicationFactor: 1})
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		if err := c.AlterTopicConfigs(ctx, tp.ID, map[string]string{"retention.ms": fmt.Sprint(i)}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProposalParallel measures concurrent proposals (config changes
// of 16 topics), which raft commits in batches.
func BenchmarkProposalParallel(b *testing.B) {
	c := open(b, testConfig(b.TempDir()))
	var ids []TopicID
	for i := range 16 {
		ids = append(ids, mustCreate(b, c, NewTopic{Name: fmt.Sprintf("t%d", i), Partitions: 1, ReplicationFactor: 1}).ID)
	}
	var n atomic.Int64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			set := map[string]string{"retention.ms": fmt.Sprint(i)}
			if err := c.AlterTopicConfigs(context.Background(), ids[i%16], set, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkApplyCreateTopic10k measures Apply of a topic creation on an
// image of 10,000 topics: copy-on-write copies the two topic maps, so a
// topic change costs O(topics).
func BenchmarkApplyCreateTopic10k(b *testing.B) {
	img := EmptyImage()
	for i := range 10000 {
		rec := CreateTopicRecord{Name: fmt.Sprintf("t%d", i), ID: newRandomID(), Partitions: onePartition(1)}
		var err error
		if img, err = Apply(img, uint64(i+1), rec); err != nil {
			b.Fatal(err)
		}
	}
	rec := CreateTopicRecord{Name: "new", ID: newRandomID(), Partitions: onePartition(1)}
	for b.Loop() {
		if _, err := Apply(img, 10001, rec); err != nil {
			b.Fatal(err)
		}
	}
}
