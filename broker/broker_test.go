package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/samsatest"
)

func TestMetadataAutoCreatesTopicAndSurvivesRestart(t *testing.T) {
	sb := samsatest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(sb.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("auto-created")
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = true
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("metadata: %+v", resp.Topics)
	}
	id := resp.Topics[0].TopicID
	if id == ([16]byte{}) || resp.ClusterID == nil || len(resp.Brokers) != 1 {
		t.Fatalf("topic id %x, cluster %v, brokers %v", id, resp.ClusterID, resp.Brokers)
	}
	cl.Close()

	sb.Restart()
	cl2, err := kgo.NewClient(kgo.SeedBrokers(sb.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	req.AllowAutoTopicCreation = false
	resp2, err := req.RequestWith(ctx, cl2)
	if err != nil {
		t.Fatal(err)
	}
	if resp2.Topics[0].ErrorCode != 0 || resp2.Topics[0].TopicID != id || *resp2.ClusterID != *resp.ClusterID {
		t.Fatalf("after restart: %+v cluster %v", resp2.Topics[0], *resp2.ClusterID)
	}
}
