package group

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group/consumer"
)

// KIP-848's protocol (ConsumerGroupHeartbeat) is the business of package
// consumer; here a heartbeat finds or makes its group and the group's
// records are collected.
//
// As in Kafka 4.x, a joining heartbeat (member epoch 0) to an empty classic
// group deletes that group (a tombstone for its metadata; its offsets stay)
// and makes a consumer group in its place; to a classic group with members
// it gets GROUP_ID_NOT_FOUND ("is not a consumer group"): Samsa does not
// convert a live classic group (Kafka's online upgrade of KIP-848).

// ConsumerGroupHeartbeat handles KIP-848's heartbeat; its reply is always in
// the returned Output.
func (c *Coordinator) ConsumerGroupHeartbeat(call Call, req *kmsg.ConsumerGroupHeartbeatRequest) Output {
	c.observe(call.Now)
	fail := func(code int16, msg string) Output {
		resp := kmsg.NewPtrConsumerGroupHeartbeatResponse()
		resp.Version = call.Version
		resp.ErrorCode = code
		resp.ErrorMessage = errorString(msg)
		return Output{Replies: []Reply{reply(call, resp)}}
	}
	if req.Group == "" {
		return fail(kerr.InvalidRequest.Code, "GroupId can't be empty.")
	}
	client := consumer.Client{ID: call.ClientID, Host: call.ClientHost}
	g := c.lookup(req.Group)
	if g != nil && g.consumer != nil {
		var out Output
		if resp := g.consumer.Heartbeat(call.Now, call.Version, client, req, c.topics); resp != nil {
			out.Replies = []Reply{reply(call, resp)}
		}
		c.persistConsumer(g, &out)
		c.schedule(g)
		return out
	}

	// A new consumer group, in place of nothing or of an empty classic
	// group.
	if g == nil && req.MemberEpoch != 0 {
		return fail(kerr.GroupIDNotFound.Code, fmt.Sprintf("Group %s not found.", req.Group))
	}
	if g != nil {
		g.ensureClassic(c.cfg.Classic)
		if req.MemberEpoch != 0 || !g.empty() {
			return fail(kerr.GroupIDNotFound.Code, fmt.Sprintf("Group %s is not a consumer group.", req.Group))
		}
	}
	fresh := consumer.New(req.Group, c.cfg.Consumer)
	resp := fresh.Heartbeat(call.Now, call.Version, client, req, c.topics)
	var out Output
	if resp != nil {
		out.Replies = []Reply{reply(call, resp)}
	}
	records := fresh.TakeRecords()
	if len(records) == 0 {
		return out // nothing joined (a refused heartbeat): no group
	}
	if g == nil {
		g = c.add(req.Group)
	} else {
		out.Records = c.groupTombstones(g, out.Records)
		c.timers.remove(g)
		g.classic, g.emptySince = nil, -1
	}
	g.consumer = fresh
	p := c.partition(g.id)
	for _, kv := range records {
		g.trackKey(kv.Key, kv.Value)
		out.Records = append(out.Records, Record{Partition: p, Key: kv.Key, Value: kv.Value})
	}
	c.schedule(g)
	return out
}

// ConsumerGroupDescribe answers one group of a ConsumerGroupDescribe.
func (c *Coordinator) ConsumerGroupDescribe(version int16, groupID string, includeAuthorizedOperations bool) kmsg.ConsumerGroupDescribeResponseGroup {
	fail := func(code int16, msg string) kmsg.ConsumerGroupDescribeResponseGroup {
		d := kmsg.NewConsumerGroupDescribeResponseGroup()
		d.Group = groupID
		d.ErrorCode = code
		if msg != "" {
			d.ErrorMessage = errorString(msg)
		}
		return d
	}
	if groupID == "" {
		return fail(kerr.InvalidGroupID.Code, "")
	}
	g := c.lookup(groupID)
	switch {
	case g == nil:
		return fail(kerr.GroupIDNotFound.Code, fmt.Sprintf("Group %s not found.", groupID))
	case g.consumer == nil:
		return fail(kerr.GroupIDNotFound.Code, fmt.Sprintf("Group %s is not a consumer group.", groupID))
	}
	d := g.consumer.Describe(version, c.topics)
	d.Group = groupID
	if !includeAuthorizedOperations {
		d.AuthorizedOperations = -2147483648 // Kafka's "not requested"
	}
	return d
}
