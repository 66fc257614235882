package broker

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/samsa-io/samsa/metadata"
	"github.com/samsa-io/samsa/storage"
)

// partition is this broker's state of one partition it holds.
type partition struct {
	tp      storage.TopicPartition
	topicID metadata.TopicID
	log     *storage.Log
	// producers is the producer state (producers.go): sequence checks that
	// make a retried batch be written once, and ongoing transactions.
	producers *producerTable
	// traffic counts the topic's bytes and records in and out, shared by
	// its partitions (metrics.go); immutable.
	traffic *topicTraffic
}

// partitions keeps the partition logs in step with the metadata image:
// every partition of every topic in the image has a log, and no log outlives
// its topic. Handlers look partitions up here.
type partitions struct {
	b *Broker

	mu    sync.RWMutex
	byTP  map[storage.TopicPartition]*partition // guarded by mu
	image *metadata.Image                       // the image last reconciled; guarded by mu
}

func newPartitions(b *Broker) *partitions {
	return &partitions{b: b, byTP: map[storage.TopicPartition]*partition{}}
}

// partitionMetadataName is the file in a partition's directory naming the
// topic id the log belongs to, so that a topic deleted and created again
// under the same name while the broker was down is not served old data.
const partitionMetadataName = "partition.metadata"

// follow reconciles now and after every metadata change.
func (ps *partitions) follow(meta *metadata.Controller) {
	meta.OnChange(func(_, next *metadata.Image) { ps.reconcile(next) })
}

// get returns a partition this broker holds.
func (ps *partitions) get(topic string, p int32) (*partition, bool) {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	part, ok := ps.byTP[storage.TopicPartition{Topic: topic, Partition: p}]
	return part, ok
}

// logConfigFor is the storage config of a topic's logs, from the image.
func (ps *partitions) logConfigFor(topic string) storage.Config {
	img := ps.b.meta.Image()
	cfg := storage.DefaultConfig()
	var topicConfigs map[string]string
	if t, ok := img.Topics[topic]; ok {
		topicConfigs = t.Configs
	}
	applyTopicConfigs(&cfg, topicConfigs, brokerConfigs(img, ps.b.cfg.NodeID))
	return cfg
}

// brokerConfigs merges the cluster-wide and this broker's dynamic configs.
func brokerConfigs(img *metadata.Image, node int32) map[string]string {
	out := map[string]string{}
	for k, v := range img.BrokerConfigs[-1] {
		out[k] = v
	}
	for k, v := range img.BrokerConfigs[node] {
		out[k] = v
	}
	return out
}

// reconcile creates, reconfigures and deletes logs to match img.
func (ps *partitions) reconcile(img *metadata.Image) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.image != nil && img.Offset < ps.image.Offset {
		return // an older image than one already applied
	}
	ps.image = img
	store := ps.b.store
	want := map[storage.TopicPartition]*metadata.Topic{}
	for _, t := range img.Topics {
		for i := range t.Partitions {
			want[storage.TopicPartition{Topic: t.Name, Partition: int32(i)}] = t
		}
	}
	// Logs whose topic is gone, or is a new topic of the same name.
	stamped := map[storage.TopicPartition]metadata.TopicID{}
	for _, tp := range store.Partitions() {
		t, ok := want[tp]
		id := ps.topicIDLocked(tp)
		if ok && (id == t.ID || id.IsZero()) { // zero: not yet stamped, stamped below
			stamped[tp] = id
			continue
		}
		delete(ps.byTP, tp)
		if err := store.Delete(tp); err != nil {
			ps.b.logger.Error("deleting partition log", "partition", tp, "err", err)
		}
	}
	brokerCfg := brokerConfigs(img, ps.b.cfg.NodeID)
	var news []storage.NewLog
	for tp, t := range want {
		cfg := storage.DefaultConfig()
		applyTopicConfigs(&cfg, t.Configs, brokerCfg)
		if p, ok := ps.byTP[tp]; ok {
			if err := p.log.SetConfig(cfg); err != nil {
				ps.b.logger.Error("topic config rejected by storage", "topic", tp.Topic, "err", err)
			}
			continue
		}
		l, ok := store.Log(tp)
		if !ok {
			news = append(news, storage.NewLog{Partition: tp, Config: cfg,
				Files: map[string][]byte{partitionMetadataName: partitionMetadata(t.ID)}})
			continue
		}
		if err := l.SetConfig(cfg); err != nil {
			ps.b.logger.Error("topic config rejected by storage", "topic", tp.Topic, "err", err)
		}
		if stamped[tp] != t.ID {
			if err := ps.stampTopicID(l, t.ID); err != nil {
				ps.b.logger.Error("writing partition metadata", "partition", tp, "err", err)
				continue
			}
		}
		ps.serveLocked(l, tp, t)
	}
	for i, l := range ps.createLogs(news) {
		if l != nil {
			tp := news[i].Partition
			ps.serveLocked(l, tp, want[tp])
		}
	}
}

// topicIDLocked returns the id of the topic tp's log belongs to: known when
// the partition is served, else read from its partition.metadata (zero when
// there is none).
func (ps *partitions) topicIDLocked(tp storage.TopicPartition) metadata.TopicID {
	if p, ok := ps.byTP[tp]; ok {
		return p.topicID
	}
	return ps.logTopicID(tp)
}

// createLogs creates the logs of new partitions together (one sync for
// all); when that fails, one by one, so that one bad partition does not
// keep the others from being created. A log that could not be created is
// nil.
func (ps *partitions) createLogs(news []storage.NewLog) []*storage.Log {
	if len(news) == 0 {
		return nil
	}
	logs, err := ps.b.store.CreateAll(news)
	if err == nil {
		return logs
	}
	logs = make([]*storage.Log, len(news))
	for i, n := range news {
		one, err := ps.b.store.CreateAll(news[i : i+1])
		if err != nil {
			ps.b.logger.Error("creating partition log", "partition", n.Partition, "err", err)
			continue
		}
		logs[i] = one[0]
	}
	return logs
}

// serveLocked starts serving partition tp of topic t from l, whose
// partition.metadata names t.
func (ps *partitions) serveLocked(l *storage.Log, tp storage.TopicPartition, t *metadata.Topic) {
	ps.byTP[tp] = &partition{tp: tp, topicID: t.ID, log: l, producers: openProducerTable(l, ps.b.logger),
		traffic: ps.b.brokerMetrics.topic(t.ID, tp.Topic)}
}

// logTopicID reads the topic id a log's directory was created for; zero
// when unknown.
func (ps *partitions) logTopicID(tp storage.TopicPartition) metadata.TopicID {
	l, ok := ps.b.store.Log(tp)
	if !ok {
		return metadata.TopicID{}
	}
	f, err := ps.b.cfg.FS.Open(filepath.Join(l.Dir(), partitionMetadataName))
	if err != nil {
		return metadata.TopicID{}
	}
	defer f.Close()
	buf := make([]byte, 128)
	n, _ := f.ReadAt(buf, 0)
	for line := range strings.SplitSeq(string(buf[:n]), "\n") {
		if v, ok := strings.CutPrefix(line, "topic_id: "); ok {
			id, err := metadata.ParseTopicID(strings.TrimSpace(v))
			if err == nil {
				return id
			}
		}
	}
	return metadata.TopicID{}
}

// partitionMetadata is the content of partition.metadata (Kafka's format).
func partitionMetadata(id metadata.TopicID) []byte {
	return fmt.Appendf(nil, "version: 0\ntopic_id: %s\n", id)
}

// stampTopicID writes the partition.metadata file of a log created without
// it (by an older version, or cut short by a crash).
func (ps *partitions) stampTopicID(l *storage.Log, id metadata.TopicID) error {
	fs := ps.b.cfg.FS
	name := filepath.Join(l.Dir(), partitionMetadataName)
	f, err := fs.Create(name + ".tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(partitionMetadata(id))
	err = errors.Join(err, f.Sync(), f.Close())
	if err != nil {
		return err
	}
	if err := fs.Rename(name+".tmp", name); err != nil {
		return err
	}
	return fs.SyncDir(l.Dir())
}
