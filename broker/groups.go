package broker

// The group coordinator's driver: the I/O around group.Coordinator, a pure
// state machine. Every call into the coordinator is made under one mutex,
// and the records it returns are appended to __consumer_offsets under the
// same mutex, so the log holds the changes in the order the state machine
// made them. Outside the mutex the driver waits until those records are
// durable and only then hands the replies to the handlers waiting for them;
// a reply whose records could not be written is answered with an error.
//
// A request is matched to its reply by a token from a counter: the handler
// registers a channel for its token, and a reply may come from the call it
// made (most requests) or from a later one (a JoinGroup completes when the
// rebalance does, which another member's request or a timer tick causes).
// A timer calls Tick at the coordinator's Deadline. The coordinator learns
// the cluster's topics at start and after every metadata change.
//
// At start-up the driver creates __consumer_offsets if it is absent, then
// replays every partition of it into the coordinator in the background;
// until that ends group requests are answered COORDINATOR_LOAD_IN_PROGRESS.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
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

// offsetsSegmentBytes is offsets.topic.segment.bytes (100 MiB).
const offsetsSegmentBytes = 100 << 20

// minTickDelay is the least time between a call and the Tick it arms: a
// deadline already past fires after this, so a coordinator that keeps
// reporting one cannot make the timer spin.
const minTickDelay = 10 * time.Millisecond

// loadReadBytes is how much of a partition one replay read asks for.
const loadReadBytes = 1 << 20

// groups drives the group coordinator.
//
// Lock order: groups.mu, then partitions.mu (read, to find a log), then a
// storage.Log's locks (appends). Nothing is proposed to the metadata log
// under groups.mu: setTopics runs on the metadata's apply goroutine.
type groups struct {
	b      *Broker
	logger *slog.Logger
	done   chan struct{} // closed by close: waiting handlers give up
	loader sync.WaitGroup

	mu         sync.Mutex
	coord      *group.Coordinator                 // guarded by mu
	partitions int32                              // partitions of __consumer_offsets; immutable after newGroups
	loaded     bool                               // replay finished; guarded by mu
	closed     bool                               // guarded by mu
	next       group.Token                        // the last token handed out; guarded by mu
	waiting    map[group.Token]chan kmsg.Response // replies due to handlers; guarded by mu
	topics     map[string]group.Topic             // the topics last given to the coordinator; guarded by mu
	pending    map[string]group.Topic             // topics seen while loading, given at Loaded; guarded by mu
	timer      *time.Timer                        // fires Tick; guarded by mu
	armedFor   time.Time                          // the deadline timer is set for; guarded by mu
	cancelMeta func()                             // stops metadata callbacks; set once in start
}

// newGroups makes sure __consumer_offsets exists and returns a driver that
// has not loaded it yet.
func newGroups(ctx context.Context, b *Broker, cfg group.Config) (*groups, error) {
	g := &groups{
		b:       b,
		logger:  b.logger.With("component", "groups"),
		done:    make(chan struct{}),
		waiting: map[group.Token]chan kmsg.Response{},
	}
	n, err := b.ensureInternalTopic(ctx, offsetsTopic, cfg.Partitions, "producer")
	if err != nil {
		return nil, err
	}
	if n != cfg.Partitions {
		g.logger.Warn("__consumer_offsets exists with another partition count than offsets.topic.num.partitions; using the topic's",
			"partitions", n, "configured", cfg.Partitions)
		cfg.Partitions = n
	}
	g.partitions = n
	g.coord = group.New(cfg)
	return g, nil
}

// ensureInternalTopic creates a coordinator's compacted internal topic
// (__consumer_offsets, __transaction_state) if it does not exist, and
// returns its partition count. Both have segments of 100 MiB, Kafka's
// offsets.topic.segment.bytes and transaction.state.log.segment.bytes.
func (b *Broker) ensureInternalTopic(ctx context.Context, name string, partitions int32, compression string) (int32, error) {
	if t, ok := b.meta.Image().Topics[name]; ok {
		return int32(len(t.Partitions)), nil
	}
	t, err := b.createTopic(ctx, metadata.NewTopic{
		Name:              name,
		Partitions:        partitions,
		ReplicationFactor: 1,
		Configs: map[string]string{
			"cleanup.policy":   "compact",
			"compression.type": compression,
			"segment.bytes":    strconv.Itoa(offsetsSegmentBytes),
		},
	})
	if err != nil {
		if t, ok := b.meta.Image().Topics[name]; ok {
			return int32(len(t.Partitions)), nil
		}
		return 0, fmt.Errorf("create %s: %w", name, err)
	}
	return int32(len(t.Partitions)), nil
}

// start follows the metadata and begins loading in the background.
func (g *groups) start() {
	g.cancelMeta = g.b.meta.OnChange(func(_, next *metadata.Image) { g.setTopics(next) })
	g.loader.Go(g.load)
}

// close stops the timer and the metadata callbacks, waits for the loader,
// and makes waiting handlers give up.
func (g *groups) close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	if g.timer != nil {
		g.timer.Stop()
	}
	close(g.done)
	g.mu.Unlock()
	if g.cancelMeta != nil {
		g.cancelMeta()
	}
	g.loader.Wait()
}

// load replays __consumer_offsets into the coordinator.
func (g *groups) load() {
	start := time.Now()
	var records int
	for p := range g.partitions {
		n, err := g.loadPartition(p)
		records += n
		if err != nil {
			if g.b.ctx.Err() == nil {
				g.logger.Error("loading __consumer_offsets failed; its groups are not served", "partition", p, "err", err)
			}
			return
		}
	}
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
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
	g.logger.Info("loaded __consumer_offsets", "partitions", g.partitions, "records", records,
		"took", time.Since(start).Round(time.Millisecond))
	go g.deliver(out.Replies, w)
}

// loadPartition replays one partition from its log start to its end.
func (g *groups) loadPartition(p int32) (int, error) {
	part, ok := g.b.parts.get(offsetsTopic, p)
	if !ok {
		return 0, fmt.Errorf("no log for %s-%d", offsetsTopic, p)
	}
	// Transactional offsets stay pending until their producer's marker
	// (txn_offset_commit.go).
	return readBatchRecords(g.b.ctx, part.log, func(b batchInfo, offset int64, key, value []byte) {
		var err error
		switch {
		case b.control:
			err = g.replayMarker(p, b.producerID, key, value)
		case b.transactional:
			err = g.replayTransactional(p, b.producerID, key, value)
		default:
			err = g.replay(p, key, value)
		}
		if err != nil {
			g.logger.Warn("skipping a record of __consumer_offsets that does not replay",
				"partition", p, "offset", offset, "err", err)
		}
	})
}

// readRecords calls fn for every record of l, from its log start to its
// end as they are now, skipping control batches. The key and value are
// fn's to keep; a nil value is a tombstone.
func readRecords(ctx context.Context, l *storage.Log, fn func(offset int64, key, value []byte)) (int, error) {
	return readBatchRecords(ctx, l, func(b batchInfo, offset int64, key, value []byte) {
		if !b.control {
			fn(offset, key, value)
		}
	})
}

// batchInfo is what a record's batch says about it.
type batchInfo struct {
	producerID             int64
	transactional, control bool
}

// readBatchRecords is readRecords with control batches, and with each
// record's batch.
func readBatchRecords(ctx context.Context, l *storage.Log, fn func(b batchInfo, offset int64, key, value []byte)) (int, error) {
	offs := l.Offsets()
	offset, end := offs.LogStart, offs.LogEnd
	var buf, scratch []byte
	var it record.Iter
	n := 0
	for offset < end {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		res, err := l.Read(buf[:0], offset, loadReadBytes, end)
		if err != nil {
			return n, err
		}
		buf = res.Data
		data := res.Data
		if len(data) == 0 {
			break // nothing more below end (the tail was compacted away)
		}
		for len(data) > 0 {
			h, err := record.ParseHeader(data)
			if err != nil {
				return n, err
			}
			if h.Size() > len(data) {
				return n, fmt.Errorf("%w: a batch at offset %d runs past the read", record.ErrCorrupt, h.BaseOffset)
			}
			batch := data[:h.Size()]
			data = data[h.Size():]
			offset = h.LastOffset() + 1
			info := batchInfo{producerID: h.ProducerID, transactional: h.Attributes.Transactional(), control: h.Attributes.Control()}
			if err := it.Init(batch, scratch); err != nil {
				return n, err
			}
			for it.Next() {
				rec := it.Record()
				var value []byte
				if rec.Value != nil {
					value = bytes.Clone(rec.Value)
				}
				fn(info, rec.Offset, bytes.Clone(rec.Key), value)
				n++
			}
			if err := it.Err(); err != nil {
				return n, err
			}
			scratch = it.Buffer()
		}
	}
	return n, nil
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
	case sameTopics(g.topics, topics):
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

func sameTopics(a, b map[string]group.Topic) bool {
	if len(a) != len(b) {
		return false
	}
	for name, t := range a {
		if b[name] != t {
			return false
		}
	}
	return true
}

// tick runs the coordinator's timers; the timer calls it.
func (g *groups) tick() {
	g.mu.Lock()
	if g.closed || !g.loaded {
		g.mu.Unlock()
		return
	}
	g.armedFor = time.Time{}
	out := g.coord.Tick(time.Now())
	w := g.appendLocked(out.Records)
	g.rearmLocked()
	g.mu.Unlock()
	g.deliver(out.Replies, w)
}

// rearmLocked sets the timer for the coordinator's deadline.
func (g *groups) rearmLocked() {
	if g.closed {
		return
	}
	d, ok := g.coord.Deadline()
	if !ok {
		if g.timer != nil {
			g.timer.Stop()
		}
		g.armedFor = time.Time{}
		return
	}
	if g.timer != nil && d.Equal(g.armedFor) {
		return
	}
	if g.timer != nil {
		g.timer.Stop()
	}
	g.armedFor = d
	g.timer = time.AfterFunc(max(time.Until(d), minTickDelay), g.tick)
}

// written is where an Output's records went: durable once every log is
// durable up to its end. err is set when a record could not be appended.
type written struct {
	logs []*storage.Log
	ends []int64
	err  error
}

// appendLocked appends records to __consumer_offsets: per partition one
// batch (or more, if one would exceed max.message.bytes), in order.
func (g *groups) appendLocked(recs []group.Record) written {
	return g.appendBatchesLocked(recs, record.DefaultBuildOptions())
}

// appendBatchesLocked is appendLocked with batches built with opts (a
// transactional producer's, for TxnOffsetCommit: txn_offset_commit.go).
func (g *groups) appendBatchesLocked(recs []group.Record, opts record.BuildOptions) written {
	var w written
	if len(recs) == 0 {
		return w
	}
	now := time.Now().UnixMilli()
	img := g.b.meta.Image()
	var order []int32
	byPartition := map[int32][]record.Record{}
	for _, r := range recs {
		if _, ok := byPartition[r.Partition]; !ok {
			order = append(order, r.Partition)
		}
		rs := byPartition[r.Partition]
		byPartition[r.Partition] = append(rs, record.Record{Offset: int64(len(rs)), Timestamp: now, Key: r.Key, Value: r.Value})
	}
	for _, p := range order {
		part, ok := g.b.parts.get(offsetsTopic, p)
		t := img.Topics[offsetsTopic]
		if !ok || t == nil || int(p) >= len(t.Partitions) {
			w.err = errors.Join(w.err, fmt.Errorf("%w: %s-%d does not exist", kerr.CoordinatorNotAvailable, offsetsTopic, p))
			continue
		}
		o := opts
		o.PartitionLeaderEpoch = t.Partitions[p].LeaderEpoch
		end, err := appendCoordinatorRecords(part, o, byPartition[p])
		if err != nil {
			w.err = errors.Join(w.err, fmt.Errorf("%s-%d: %w", offsetsTopic, p, err))
		}
		if end >= 0 {
			w.logs, w.ends = append(w.logs, part.log), append(w.ends, end)
		}
	}
	if w.err != nil && !g.closed {
		g.logger.Error("appending to __consumer_offsets failed", "err", w.err)
	}
	return w
}

// appendRecords appends recs to l as few batches as max.message.bytes
// allows, returning the end offset of what was appended (-1 for nothing).
func appendRecords(l *storage.Log, epoch int32, recs []record.Record) (int64, error) {
	opts := record.DefaultBuildOptions()
	opts.PartitionLeaderEpoch = epoch
	return appendBuilt(l, l.Append, opts, recs)
}

// appendBuilt is appendRecords with batches built with opts and appended
// to l with appendTo.
func appendBuilt(l *storage.Log, appendTo func([]byte) (storage.AppendResult, error), opts record.BuildOptions, recs []record.Record) (int64, error) {
	batch, err := record.Build(opts, recs)
	if err != nil {
		return -1, err
	}
	if int64(len(batch)) > l.Config().MaxMessageBytes && len(recs) > 1 {
		half := len(recs) / 2
		end, err := appendBuilt(l, appendTo, opts, recs[:half])
		if err != nil {
			return end, err
		}
		second := make([]record.Record, len(recs)-half)
		for i, r := range recs[half:] {
			r.Offset = int64(i)
			second[i] = r
		}
		if end2, err := appendBuilt(l, appendTo, opts, second); end2 >= 0 || err != nil {
			return max(end, end2), err
		}
		return end, nil
	}
	res, err := appendTo(batch)
	if err != nil {
		return -1, err
	}
	return res.LastOffset + 1, nil
}

// deliver waits until w is durable and hands out the replies; if the
// records were not written, or are not durable, each reply carries an
// error instead.
func (g *groups) deliver(replies []group.Reply, w written) {
	err := w.err
	if err == nil && len(w.logs) > 0 {
		if err = storage.WaitDurableAll(w.logs, w.ends); err != nil && !errors.Is(err, storage.ErrClosed) {
			g.logger.Error("__consumer_offsets is not durable", "err", err)
		}
	}
	for _, r := range replies {
		resp := r.Response
		if err != nil && resp != nil {
			setGroupError(resp, appendErrorCode(resp, err))
		}
		g.mu.Lock()
		ch, ok := g.waiting[r.Token]
		delete(g.waiting, r.Token)
		g.mu.Unlock()
		if ok {
			ch <- resp // buffered: one reply per token
		}
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

// The errors of a coordinator that is still loading, or shutting down.
var (
	errLoading = kerr.CoordinatorLoadInProgress
	errClosing = kerr.CoordinatorNotAvailable
)

// call runs f on the coordinator with a new token and returns the reply to
// that token. A deferred reply (JoinGroup, SyncGroup) may come from a later
// call; any other must be in f's Output. If the reply does not come, or the
// broker shuts down first, the request gets an error response.
func (g *groups) call(ctx context.Context, r *request, req kmsg.Request, deferred bool,
	f func(c *group.Coordinator, call group.Call) group.Output) kmsg.Response {
	g.mu.Lock()
	switch {
	case g.closed:
		g.mu.Unlock()
		return errorResponse(req, errClosing.Code)
	case !g.loaded:
		g.mu.Unlock()
		return errorResponse(req, errLoading.Code)
	}
	g.next++
	tok := g.next
	ch := make(chan kmsg.Response, 1)
	g.waiting[tok] = ch
	out := f(g.coord, group.Call{
		Now:        time.Now(),
		Token:      tok,
		Version:    r.version,
		ClientID:   r.clientID,
		ClientHost: clientHost(r),
	})
	w := g.appendLocked(out.Records)
	g.rearmLocked()
	g.mu.Unlock()
	g.deliver(out.Replies, w)

	if !deferred {
		select {
		case resp := <-ch:
			return g.checkReply(req, resp)
		default:
			g.forget(tok)
			g.logger.Error("the group coordinator gave no reply", "api", kmsg.NameForKey(req.Key()))
			return errorResponse(req, kerr.UnknownServerError.Code)
		}
	}
	select {
	case resp := <-ch:
		return g.checkReply(req, resp)
	case <-ctx.Done():
	case <-g.done:
	}
	g.forget(tok)
	select {
	case resp := <-ch: // delivered meanwhile
		return g.checkReply(req, resp)
	default:
		return errorResponse(req, errClosing.Code)
	}
}

// checkReply makes sure a reply is a response to req.
func (g *groups) checkReply(req kmsg.Request, resp kmsg.Response) kmsg.Response {
	if resp == nil || resp.Key() != req.Key() {
		g.logger.Error("the group coordinator replied with the wrong response", "api", kmsg.NameForKey(req.Key()))
		return errorResponse(req, kerr.UnknownServerError.Code)
	}
	resp.SetVersion(req.GetVersion())
	return resp
}

func (g *groups) forget(tok group.Token) {
	g.mu.Lock()
	delete(g.waiting, tok)
	g.mu.Unlock()
}

// read runs f on the loaded coordinator; it returns the error code for the
// coordinator's state (loading, closed) and does not run f then.
func (g *groups) read(f func(c *group.Coordinator)) int16 {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.closed:
		return errClosing.Code
	case !g.loaded:
		return errLoading.Code
	}
	f(g.coord)
	return 0
}

// write runs f on the loaded coordinator and appends the records it
// returns, waiting until they are durable; the error code is nonzero when
// f did not run or its records were not written.
func (g *groups) write(f func(c *group.Coordinator, now time.Time) []group.Record) int16 {
	g.mu.Lock()
	switch {
	case g.closed:
		g.mu.Unlock()
		return errClosing.Code
	case !g.loaded:
		g.mu.Unlock()
		return errLoading.Code
	}
	recs := f(g.coord, time.Now())
	w := g.appendLocked(recs)
	g.rearmLocked()
	g.mu.Unlock()
	err := w.err
	if err == nil && len(w.logs) > 0 {
		err = storage.WaitDurableAll(w.logs, w.ends)
	}
	if err != nil {
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
