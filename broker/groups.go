package broker

// The group coordinator's driver: the I/O around group.Coordinator, a pure
// state machine, on the plumbing it shares with the transaction
// coordinator's driver (coordinator_driver.go): calls under one mutex,
// records appended to __consumer_offsets under it, replies handed out once
// those records are durable, a timer at the coordinator's Deadline, and a
// replay of __consumer_offsets at start-up and whenever records failed (a
// rebuild), until which group requests are answered
// COORDINATOR_LOAD_IN_PROGRESS.
//
// What is the group coordinator's own: a reply may come from the call a
// handler made (most requests) or from a later one (a JoinGroup completes
// when the rebalance does, which another member's request or a timer tick
// causes); the coordinator learns the cluster's topics at start and after
// every metadata change; a reply whose records could not be written gets
// the error Kafka's coordinator maps the append error to, before the
// coordinator is rebuilt from the log; the replay also reads transactional
// batches and markers (txn_offset_commit.go).

import (
	"context"
	"errors"
	"maps"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group"
	"github.com/samsa-io/samsa/metadata"
	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/storage"
)

// offsetsTopic is Kafka's internal topic of group state and offsets.
const offsetsTopic = "__consumer_offsets"

// groups drives the group coordinator.
//
// Lock order: groups.mu, then partitions.mu (read, to find a log), then a
// storage.Log's locks (appends). Nothing is proposed to the metadata log
// under groups.mu: setTopics runs on the metadata's apply goroutine.
type groups struct {
	coordDriver[*group.Coordinator, group.Token]

	topics  map[string]group.Topic // the topics last given to the coordinator; guarded by mu
	pending map[string]group.Topic // topics seen while loading, given at Loaded; guarded by mu
}

// newGroups makes sure __consumer_offsets exists and returns a driver that
// has not loaded it yet.
func newGroups(ctx context.Context, b *Broker, cfg group.Config) (*groups, error) {
	n, err := b.ensureInternalTopic(ctx, offsetsTopic, "offsets.topic.num.partitions", cfg.Partitions, "producer")
	if err != nil {
		return nil, err
	}
	cfg.Partitions = n
	g := &groups{}
	g.setup(b, g, "groups", offsetsTopic, n, func() *group.Coordinator { return group.New(cfg) })
	return g, nil
}

// load replays __consumer_offsets into the coordinator of incarnation.
// Transactional offsets stay pending until their producer's marker
// (txn_offset_commit.go).
func (g *groups) load(incarnation uint64) {
	ok := g.replayAll(func(p int32, b batchInfo, key, value []byte) error {
		switch {
		case b.control:
			return g.replayMarker(p, b.producerID, key, value)
		case b.transactional:
			return g.replayTransactional(p, b.producerID, key, value)
		default:
			return g.replay(p, key, value)
		}
	})
	if !ok {
		return
	}
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.fillingLocked(incarnation) {
		return
	}
	g.coord.Loaded(now)
	g.loaded = true
	topics := g.pending
	g.pending = nil
	if topics == nil {
		topics = imageTopics(g.b.meta.Image())
	}
	g.topics = topics
	out := g.coord.SetTopics(now, topics)
	w := g.appendLocked(out.Records)
	g.rearmLocked()
	go g.deliver(out.Replies, w)
}

func (g *groups) replay(p int32, key, value []byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.coord.Replay(p, key, value)
}

// imageTopics is what the coordinator knows of the image's topics.
func imageTopics(img *metadata.Image) map[string]group.Topic {
	out := make(map[string]group.Topic, len(img.Topics))
	for name, t := range img.Topics {
		out[name] = group.Topic{Name: name, ID: [16]byte(t.ID), Partitions: int32(len(t.Partitions))}
	}
	return out
}

// setTopics gives the coordinator the image's topics when they changed. It
// runs on the metadata's apply goroutine, so the durability wait and the
// replies happen on another.
func (g *groups) setTopics(img *metadata.Image) {
	topics := imageTopics(img)
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.closed:
		return
	case !g.loaded:
		g.pending = topics
		return
	case maps.Equal(g.topics, topics):
		return
	}
	g.topics = topics
	out := g.coord.SetTopics(time.Now(), topics)
	w := g.appendLocked(out.Records)
	g.rearmLocked()
	if len(out.Replies) > 0 || len(w.logs) > 0 || w.err != nil {
		go g.deliver(out.Replies, w)
	}
}

// tick runs the coordinator's timers; the timer calls it.
func (g *groups) tick() {
	g.mu.Lock()
	if g.stateLocked() != 0 {
		g.mu.Unlock()
		return
	}
	g.firedLocked()
	out := g.coord.Tick(time.Now())
	w := g.appendLocked(out.Records)
	g.rearmLocked()
	g.mu.Unlock()
	g.deliver(out.Replies, w)
}

// appendLocked appends records to __consumer_offsets: per partition one
// batch (or more, if one would exceed max.message.bytes), in order.
func (g *groups) appendLocked(recs []group.Record) written {
	return g.appendBatchesLocked(recs, record.DefaultBuildOptions())
}

// appendBatchesLocked is appendLocked with batches built with opts (a
// transactional producer's, for TxnOffsetCommit: txn_offset_commit.go).
func (g *groups) appendBatchesLocked(recs []group.Record, opts record.BuildOptions) written {
	return g.appendToTopicLocked(coordRecords(recs), opts)
}

// deliver waits until w is durable and hands out the replies; if the
// records were not written, or are not durable, each reply carries an
// error instead, and then the coordinator is rebuilt from the log.
func (g *groups) deliver(replies []group.Reply, w written) {
	err := g.durable(w)
	for _, r := range replies {
		resp := r.Response
		if err != nil && resp != nil {
			setGroupError(resp, appendErrorCode(resp, err))
		}
		g.handOver(r.Token, resp)
	}
	if err != nil {
		g.rebuild(w, err)
	}
}

// appendErrorCode is the error a reply gets when its records were not
// written, as Kafka's coordinator maps append errors.
func appendErrorCode(resp kmsg.Response, err error) int16 {
	if errors.Is(err, storage.ErrMessageTooLarge) {
		switch resp.(type) {
		case *kmsg.OffsetCommitResponse, *kmsg.TxnOffsetCommitResponse:
			return kerr.InvalidCommitOffsetSize.Code
		}
		return kerr.UnknownServerError.Code
	}
	return kerr.CoordinatorNotAvailable.Code
}

// call runs f on the coordinator with a new token and returns the reply to
// that token. A deferred reply (JoinGroup, SyncGroup) may come from a later
// call; any other must be in f's Output. If the reply does not come, or the
// broker shuts down first, the request gets an error response.
func (g *groups) call(ctx context.Context, r *request, req kmsg.Request, deferred bool,
	f func(c *group.Coordinator, call group.Call) group.Output) kmsg.Response {
	g.mu.Lock()
	if code := g.stateLocked(); code != 0 {
		g.mu.Unlock()
		return errorResponse(req, code)
	}
	tok, ch := g.registerLocked()
	out := f(g.coord, groupCall(r, tok))
	w := g.appendLocked(out.Records)
	g.rearmLocked()
	g.mu.Unlock()
	g.deliver(out.Replies, w)
	if deferred {
		return g.awaitReply(ctx, req, tok, ch, errorResponse)
	}
	return g.replyNow(req, tok, ch, errorResponse)
}

// groupCall is what the coordinator is told of r, the request with tok.
func groupCall(r *request, tok group.Token) group.Call {
	return group.Call{
		Now:        time.Now(),
		Token:      tok,
		Version:    r.version,
		ClientID:   r.clientID,
		ClientHost: clientHost(r),
	}
}

// write runs f on the loaded coordinator and appends the records it
// returns, waiting until they are durable; the error code is nonzero when
// f did not run or its records were not written.
func (g *groups) write(f func(c *group.Coordinator, now time.Time) []group.Record) int16 {
	g.mu.Lock()
	if code := g.stateLocked(); code != 0 {
		g.mu.Unlock()
		return code
	}
	recs := f(g.coord, time.Now())
	w := g.appendLocked(recs)
	g.rearmLocked()
	g.mu.Unlock()
	if err := g.durable(w); err != nil {
		g.rebuild(w, err)
		return kerr.CoordinatorNotAvailable.Code
	}
	return 0
}

// clientHost is the client's address as Kafka shows it in DescribeGroups:
// "/" and the IP address.
func clientHost(r *request) string {
	if r.conn == nil || r.conn.nc == nil {
		return ""
	}
	addr := r.conn.nc.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	return "/" + addr
}

// errorResponse is req's response with error code on everything it
// answers.
func errorResponse(req kmsg.Request, code int16) kmsg.Response {
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	switch req := req.(type) {
	case *kmsg.OffsetCommitRequest:
		resp := resp.(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
	case *kmsg.JoinGroupRequest:
		resp.(*kmsg.JoinGroupResponse).MemberID = req.MemberID
	}
	setGroupError(resp, code)
	return resp
}

// setGroupError puts an error code on a group response in place of what
// it answered.
func setGroupError(resp kmsg.Response, code int16) {
	switch resp := resp.(type) {
	case *kmsg.JoinGroupResponse:
		resp.ErrorCode = code
		resp.Generation = -1
		resp.ProtocolType, resp.Protocol, resp.LeaderID, resp.SkipAssignment, resp.Members = nil, nil, "", false, nil
	case *kmsg.SyncGroupResponse:
		resp.ErrorCode = code
		resp.ProtocolType, resp.Protocol, resp.MemberAssignment = nil, nil, nil
	case *kmsg.HeartbeatResponse:
		resp.ErrorCode = code
	case *kmsg.LeaveGroupResponse:
		resp.ErrorCode = code
		resp.Members = nil
	case *kmsg.OffsetCommitResponse:
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = code
			}
		}
	case *kmsg.TxnOffsetCommitResponse:
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = code
			}
		}
	case *kmsg.OffsetDeleteResponse:
		resp.ErrorCode = code
		resp.Topics = nil
	case *kmsg.ConsumerGroupHeartbeatResponse:
		resp.ErrorCode = code
		resp.Assignment = nil
	}
}
