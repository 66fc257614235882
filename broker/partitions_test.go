package broker_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/metadata"
)

// Every new log is created with its partition.metadata (Kafka's format)
// naming the topic's id, in the same sync as the log itself.
func TestNewPartitionsAreStampedWithTheirTopicID(t *testing.T) {
	sb, _, adm, ctx := adminClients(t)
	created, err := adm.CreateTopic(ctx, 24, 1, nil, "stamped")
	if err != nil {
		t.Fatal(err)
	}
	want := "version: 0\ntopic_id: " + metadata.TopicID(created.ID).String() + "\n"
	for p := range int32(24) {
		b, err := os.ReadFile(filepath.Join(logOf(t, sb, "stamped", p).Dir(), "partition.metadata"))
		if err != nil || string(b) != want {
			t.Fatalf("partition %d: partition.metadata %q, %v; want %q", p, b, err, want)
		}
	}
}

// A log whose partition.metadata is missing (made by an older version, or
// its creation cut short) is stamped again at start-up, and its data kept.
func TestMissingPartitionMetadataIsRestamped(t *testing.T) {
	sb, cl, adm, ctx := adminClients(t)
	created, err := adm.CreateTopic(ctx, 2, 1, nil, "restamp")
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "restamp", Value: []byte("kept")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for p := range int32(2) {
		names = append(names, filepath.Join(logOf(t, sb, "restamp", p).Dir(), "partition.metadata"))
	}
	sb.Stop()
	for _, name := range names {
		if err := os.Remove(name); err != nil {
			t.Fatal(err)
		}
	}
	sb.Restart()
	want := "version: 0\ntopic_id: " + metadata.TopicID(created.ID).String() + "\n"
	for _, name := range names {
		if b, err := os.ReadFile(name); err != nil || string(b) != want {
			t.Fatalf("%s after restart %q, %v; want %q", name, b, err, want)
		}
	}
	if ends := logOf(t, sb, "restamp", 0).Offsets().LogEnd + logOf(t, sb, "restamp", 1).Offsets().LogEnd; ends != 10 {
		t.Fatalf("%d records after restart, want 10", ends)
	}
}
