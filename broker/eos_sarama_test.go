package broker_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/samsa-io/samsa/samsatest"
)

// TestEOSSaramaTransactionalProducer runs sarama's transactional producer
// at the protocol versions of Kafka 2.5 (the first of KIP-447) and the
// newest sarama knows: transactions committed and aborted, with offsets
// committed in them. A read_committed consumer sees only the committed
// records, a read_uncommitted one every record in the order written, and
// the group's offset is the committed transaction's.
func TestEOSSaramaTransactionalProducer(t *testing.T) {
	for _, v := range []sarama.KafkaVersion{sarama.V2_5_0_0, sarama.MaxVersion} {
		t.Run(v.String(), func(t *testing.T) { testEOSSaramaTransactions(t, v) })
	}
}

func testEOSSaramaTransactions(t *testing.T, v sarama.KafkaVersion) {
	const (
		topic      = "sarama-txn"
		group      = "sarama-txn-group"
		partitions = 3
	)
	sb := samsatest.Start(t, watchRefusals(t))
	_, adm := saramaClients(t, sb, v)
	if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}

	cfg := saramaConfig(v)
	cfg.Producer.Transaction.ID = "sarama-txn-" + v.String()
	cfg.Producer.Transaction.Retry.Backoff = 50 * time.Millisecond
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	producer, err := sarama.NewSyncProducer([]string{sb.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { producer.Close() })

	// txn produces values, record i to partition i % partitions, commits
	// offset for the group in the transaction when it is not negative,
	// and commits or aborts.
	txn := func(commit bool, offset int64, values ...string) {
		t.Helper()
		if err := producer.BeginTxn(); err != nil {
			t.Fatalf("begin: %v", err)
		}
		var msgs []*sarama.ProducerMessage
		for i, v := range values {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: int32(i % partitions), Value: sarama.StringEncoder(v)})
		}
		if err := producer.SendMessages(msgs); err != nil {
			t.Fatalf("send: %v", err)
		}
		if offset >= 0 {
			if err := producer.AddOffsetsToTxn(map[string][]*sarama.PartitionOffsetMetadata{
				topic: {{Partition: 0, Offset: offset}},
			}, group); err != nil {
				t.Fatalf("add offsets: %v", err)
			}
		}
		if commit {
			err = producer.CommitTxn()
		} else {
			err = producer.AbortTxn()
		}
		if err != nil {
			t.Fatalf("end (commit %v): %v", commit, err)
		}
		if status := producer.TxnStatus(); status&sarama.ProducerTxnFlagReady == 0 {
			t.Fatalf("after the transaction the producer is %v", status)
		}
	}
	first, aborted, second := seq("first", 9), seq("aborted", 9), seq("second", 9)
	var ends []string
	for p := range partitions {
		ends = append(ends, fmt.Sprintf("end-%d", p))
	}
	txn(true, -1, first...)
	txn(false, 7, aborted...)
	txn(true, 4, second...)
	txn(true, -1, ends...)

	// What each partition should hold, in order.
	want := func(batches ...[]string) map[int32][]string {
		out := map[int32][]string{}
		for _, b := range batches {
			for i, v := range b {
				p := int32(i % partitions)
				out[p] = append(out[p], v)
			}
		}
		return out
	}
	for _, tc := range []struct {
		level sarama.IsolationLevel
		want  map[int32][]string
	}{
		{sarama.ReadCommitted, want(first, second, ends)},
		{sarama.ReadUncommitted, want(first, aborted, second, ends)},
	} {
		ccfg := saramaConfig(v)
		ccfg.Consumer.IsolationLevel = tc.level
		consumer, err := sarama.NewConsumer([]string{sb.Addr()}, ccfg)
		if err != nil {
			t.Fatal(err)
		}
		for p := range int32(partitions) {
			if got := eosSaramaReadUntil(t, consumer, topic, p, fmt.Sprintf("end-%d", p)); !slices.Equal(got, tc.want[p]) {
				t.Errorf("isolation level %d, partition %d: read %v, want %v", tc.level, p, got, tc.want[p])
			}
		}
		consumer.Close()
	}

	offsets, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0}})
	if err != nil {
		t.Fatal(err)
	}
	if b := offsets.GetBlock(topic, 0); b == nil || b.Err != sarama.ErrNoError || b.Offset != 4 {
		t.Fatalf("group offset of %s-0: %+v, want 4 (from the committed transaction, not 7 from the aborted one)", topic, b)
	}
}

// eosSaramaReadUntil reads partition p of topic from its start until the
// record last and returns the values read, last included.
func eosSaramaReadUntil(t *testing.T, c sarama.Consumer, topic string, p int32, last string) []string {
	t.Helper()
	pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var got []string
	deadline := time.After(30 * time.Second) // bounds a read that stalls; not a timing assertion
	for {
		select {
		case m := <-pc.Messages():
			got = append(got, string(m.Value))
			if string(m.Value) == last {
				return got
			}
		case err := <-pc.Errors():
			t.Fatalf("consume %s-%d: %v", topic, p, err)
		case <-deadline:
			t.Fatalf("consume %s-%d: no %s after reading %v", topic, p, last, got)
		}
	}
}
