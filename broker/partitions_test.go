package broker_test

import (
	"os"
	"path/filepath"
	"testing"

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
