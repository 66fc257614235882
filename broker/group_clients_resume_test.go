package broker_test

// sarama's and kafka-go's group consumers commit, stop and resume from
// their commits: after a consumer restart and after a broker restart.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/samsatest"
)

const resumePartitions = 3

// resumeSetup starts a broker with a 3-partition topic.
func resumeSetup(t *testing.T, topic string) (*samsatest.Broker, *kgo.Client, *kadm.Client, context.Context) {
	t.Helper()
	sb, cl, adm, ctx := adminClients(t, groupTestConfig(), watchRefusals(t))
	if _, err := adm.CreateTopic(ctx, resumePartitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	return sb, cl, adm, ctx
}

// produceRounds appends n records to every partition of topic.
func produceRounds(t *testing.T, ctx context.Context, addr, topic string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for p := range int32(resumePartitions) {
		for range n {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte("v")})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// wantCommitted checks the group's committed offset of every partition.
func wantCommitted(t *testing.T, ctx context.Context, addr, groupID, topic string, want int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	eventually(t, fmt.Sprintf("%s committed %d", groupID, want), func() (bool, string) {
		fetched, err := adm.FetchOffsets(ctx, groupID)
		if err != nil {
			return false, err.Error()
		}
		for p := range int32(resumePartitions) {
			if o, ok := fetched.Lookup(topic, p); !ok || o.At != want {
				return false, fmtOffsets(fetched)
			}
		}
		return true, ""
	})
}

// consumption is what one consumer run saw: per partition the offsets
// read, in order.
type consumption struct {
	mu      sync.Mutex
	offsets map[int32][]int64 // guarded by mu
}

func (c *consumption) add(p int32, offset int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.offsets == nil {
		c.offsets = map[int32][]int64{}
	}
	c.offsets[p] = append(c.offsets[p], offset)
}

// check reports whether every partition was read from first up to and
// including last, each offset once and in order.
func (c *consumption) check(first, last int64) (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var want []int64
	for o := first; o <= last; o++ {
		want = append(want, o)
	}
	for p := range int32(resumePartitions) {
		if !slices.Equal(c.offsets[p], want) {
			return false, fmt.Sprintf("partition %d read %v, want %d..%d", p, c.offsets[p], first, last)
		}
	}
	return true, ""
}

// saramaHandler reads every claim, marking each message below upTo (and
// recording it); it ignores the rest.
type saramaHandler struct {
	upTo int64
	seen *consumption
}

func (saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h saramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			if msg.Offset < h.upTo {
				h.seen.add(msg.Partition, msg.Offset)
				sess.MarkMessage(msg, "")
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

// saramaRun consumes topic in group until every partition has been read
// up to (not including) upTo, marking what it read, then closes the
// consumer, which commits.
func saramaRun(t *testing.T, addr, groupID, topic string, v sarama.KafkaVersion, upTo int64) *consumption {
	t.Helper()
	cfg := saramaConfig(v)
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	group, err := sarama.NewConsumerGroup([]string{addr}, groupID, cfg)
	if err != nil {
		t.Fatal(err)
	}
	seen := &consumption{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{topic}, saramaHandler{upTo: upTo, seen: seen}); err != nil &&
				!errors.Is(err, sarama.ErrClosedConsumerGroup) {
				done <- err
				return
			}
		}
		done <- nil
	}()
	eventually(t, "sarama read up to "+fmt.Sprint(upTo), func() (bool, string) {
		seen.mu.Lock()
		defer seen.mu.Unlock()
		for p := range int32(resumePartitions) {
			o := seen.offsets[p]
			if len(o) == 0 || o[len(o)-1] != upTo-1 {
				return false, fmt.Sprint(seen.offsets)
			}
		}
		return true, ""
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("sarama Consume: %v", err)
	}
	if err := group.Close(); err != nil {
		t.Fatalf("sarama close: %v", err)
	}
	return seen
}

func TestSaramaConsumerGroupResumesFromCommits(t *testing.T) {
	for _, v := range []sarama.KafkaVersion{sarama.V2_1_0_0, sarama.MaxVersion} {
		t.Run(v.String(), func(t *testing.T) {
			const topic, groupID = "sarama-resume", "sarama-group"
			sb, _, _, ctx := resumeSetup(t, topic)
			produceRounds(t, ctx, sb.Addr(), topic, 10)

			// Read and commit the first half.
			if ok, why := saramaRun(t, sb.Addr(), groupID, topic, v, 5).check(0, 4); !ok {
				t.Errorf("first run: %s", why)
			}
			wantCommitted(t, ctx, sb.Addr(), groupID, topic, 5)

			// A new consumer resumes at offset 5.
			seen := saramaRun(t, sb.Addr(), groupID, topic, v, 10)
			if ok, why := seen.check(5, 9); !ok {
				t.Errorf("after a consumer restart: %s", why)
			}
			wantCommitted(t, ctx, sb.Addr(), groupID, topic, 10)

			// And after the broker restarts.
			sb.Restart()
			produceRounds(t, ctx, sb.Addr(), topic, 3)
			seen = saramaRun(t, sb.Addr(), groupID, topic, v, 13)
			if ok, why := seen.check(10, 12); !ok {
				t.Errorf("after a broker restart: %s", why)
			}
			wantCommitted(t, ctx, sb.Addr(), groupID, topic, 13)
		})
	}
}

// kafkagoRun reads topic in group with a kafka-go Reader, committing each
// message below upTo, until every partition has been committed up to
// upTo; then it closes the reader, which leaves the group.
func kafkagoRun(t *testing.T, addr, groupID, topic string, upTo int64) *consumption {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           []string{addr},
		GroupID:           groupID,
		Topic:             topic,
		StartOffset:       kafka.FirstOffset,
		MaxWait:           100 * time.Millisecond,
		HeartbeatInterval: 500 * time.Millisecond,
		SessionTimeout:    6 * time.Second,
		JoinGroupBackoff:  100 * time.Millisecond,
		ReadBackoffMax:    100 * time.Millisecond,
		// CommitInterval 0: CommitMessages commits synchronously.
	})
	defer func() {
		if err := r.Close(); err != nil {
			t.Errorf("kafka-go reader close: %v", err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seen := &consumption{}
	committed := map[int32]bool{}
	for len(committed) < resumePartitions {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("kafka-go fetch: %v (committed up to %d: %v)", err, upTo, slices.Sorted(maps.Keys(committed)))
		}
		if m.Offset >= upTo {
			continue
		}
		seen.add(int32(m.Partition), m.Offset)
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("kafka-go commit: %v", err)
		}
		if m.Offset == upTo-1 {
			committed[int32(m.Partition)] = true
		}
	}
	return seen
}

func TestKafkaGoConsumerGroupResumesFromCommits(t *testing.T) {
	const topic, groupID = "kafkago-resume", "kafkago-group"
	sb, _, _, ctx := resumeSetup(t, topic)
	produceRounds(t, ctx, sb.Addr(), topic, 10)

	if ok, why := kafkagoRun(t, sb.Addr(), groupID, topic, 5).check(0, 4); !ok {
		t.Errorf("first run: %s", why)
	}
	wantCommitted(t, ctx, sb.Addr(), groupID, topic, 5)

	seen := kafkagoRun(t, sb.Addr(), groupID, topic, 10)
	if ok, why := seen.check(5, 9); !ok {
		t.Errorf("after a consumer restart: %s", why)
	}
	wantCommitted(t, ctx, sb.Addr(), groupID, topic, 10)

	sb.Restart()
	produceRounds(t, ctx, sb.Addr(), topic, 3)
	seen = kafkagoRun(t, sb.Addr(), groupID, topic, 13)
	if ok, why := seen.check(10, 12); !ok {
		t.Errorf("after a broker restart: %s", why)
	}
	wantCommitted(t, ctx, sb.Addr(), groupID, topic, 13)
}
