package broker

// DescribeLogDirs (key 35), versions 0–4.
//
// Samsa keeps every partition log in one directory, <data-dir>/logs, so
// there is one result: that directory (absolute), and for each partition
// asked for (all of them for a null list) that this broker holds, its size
// on disk, an offset lag of 0 (the broker leads every partition it holds)
// and is_future false (logs are never moved between directories). Partitions
// not held here are left out, as in Kafka. v3 adds the top-level error code;
// v4 the total and usable bytes of the volume, from statfs (-1 when
// statfs fails).

import (
	"context"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/storage"
)

func handleDescribeLogDirs(b *Broker, ctx context.Context, r *request, req *kmsg.DescribeLogDirsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	logDir := filepath.Join(b.cfg.DataDir, "logs")
	if abs, err := filepath.Abs(logDir); err == nil {
		logDir = abs
	}
	dir.Dir = logDir
	var fs unix.Statfs_t
	if err := unix.Statfs(logDir, &fs); err == nil {
		dir.TotalBytes = int64(fs.Blocks) * int64(fs.Bsize)
		dir.UsableBytes = int64(fs.Bavail) * int64(fs.Bsize)
	} else {
		b.logger.Warn("statfs of the log directory failed", "dir", logDir, "err", err)
		dir.TotalBytes, dir.UsableBytes = -1, -1 // unknown
	}

	var want []storage.TopicPartition
	if req.Topics == nil {
		want = b.store.Partitions()
	} else {
		for _, rt := range req.Topics {
			for _, p := range rt.Partitions {
				want = append(want, storage.TopicPartition{Topic: rt.Topic, Partition: p})
			}
		}
	}
	slices.SortFunc(want, func(a, b storage.TopicPartition) int {
		switch {
		case a.Topic != b.Topic:
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		default:
			return int(a.Partition) - int(b.Partition)
		}
	})
	want = slices.Compact(want)
	for _, tp := range want {
		p, ok := b.parts.get(tp.Topic, tp.Partition)
		if !ok {
			continue
		}
		if n := len(dir.Topics); n == 0 || dir.Topics[n-1].Topic != tp.Topic {
			t := kmsg.NewDescribeLogDirsResponseDirTopic()
			t.Topic = tp.Topic
			dir.Topics = append(dir.Topics, t)
		}
		rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		rp.Partition = tp.Partition
		rp.Size = p.log.Size()
		t := &dir.Topics[len(dir.Topics)-1]
		t.Partitions = append(t.Partitions, rp)
	}
	resp.Dirs = append(resp.Dirs, dir)
	return resp
}
