package broker_test

// KIP-848 consumer groups through franz-go's ServerSideBalancer: the
// broker assigns partitions with its uniform and range assignors.

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/broker"
	"github.com/samsa-io/samsa/samsatest"
)

// kip848Config sets group.consumer.session.timeout.ms to session and a
// heartbeat interval well under it, so that a dead member is noticed
// quickly.
func kip848Config(session time.Duration) samsatest.Option {
	return samsatest.WithConfig(func(c *broker.Config) {
		c.Groups.Consumer.SessionTimeout = session
		c.Groups.Consumer.HeartbeatInterval = session / 10
	})
}

func TestKIP848MembersLeaveDieAndJoin(t *testing.T) {
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer // picks the server's assignor
	}{
		{"uniform", kgo.StickyBalancer()},
		{"range", kgo.RangeBalancer()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			membersLeaveDieAndJoin(t, true, kgo.Balancers(tc.balancer), kgo.ServerSideBalancer())
		})
	}
}
