package broker

// Fetch (key 1), versions 4–17.
//
// Returns record batches from each partition asked for, verbatim as stored,
// from the fetch offset up to the high watermark (READ_UNCOMMITTED) or the
// last stable offset (READ_COMMITTED: the first offset of the partition's
// earliest ongoing transaction, or the high watermark), with, for
// READ_COMMITTED, the aborted transactions that overlap the data returned
// (producer id and first offset, from the partition's producer state,
// producers.go), which consumers use to skip aborted records. The LSO moves
// when a marker is durable, and wakes long polls as an append does.
//
// Limits (KIP-74): max_bytes (v3+) bounds the whole response and
// partition_max_bytes each partition, but the first batch of the first
// partition that has data is returned whole even when it is larger than
// both, so a consumer is never stuck behind a large batch. Batches are never
// cut: a later partition whose next batch does not fit what is left returns
// no data this time.
//
// Record sets are not copied: each partition's batches are found as a
// storage.Section and sent from the segment file by the connection's
// writer with sendfile(2) (fetch_frame.go; docs/data-path.md says what that
// changes for CRC checks).
//
// Long poll: when fewer than min_bytes are available the request watches
// the partitions' logs with one storage.Waiter and waits, up to
// max_wait_ms, for it to be signalled; it is answered as soon as an append
// brings enough bytes (or a partition errors). Watching costs O(1) per
// partition and the wait is on one channel, however many partitions there
// are (storage/waiter.go). Nothing polls and no lock is held while waiting;
// broker shutdown (the broker's context) answers at once with what there
// is. Each read of a partition notes its log's change count first, and a
// caught-up partition whose count has not moved is not read again on the
// long poll's later passes (readMemo).
//
// A fetch in a session (with the session's reader) reads only the
// partitions whose log changed since its last fetch, those the request
// moved and those not caught up, and its long poll only those that change
// while it waits: the session's waiter watches all its partitions between
// fetches and names those that changed (pollSession;
// fetch_session_reader.go says which partitions a fetch reads, and why
// that misses nothing). Its cost grows with what changed, not with the
// session.
//
// Versions: v4 added the last stable offset and aborted transactions; v5
// the log start offset; v7 fetch sessions (KIP-227); v9 current leader epoch
// (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH); v11 rack and preferred read
// replica (always -1: read from the leader); v12 flexible encoding and last
// fetched epoch (not checked: there is one leader epoch history); v13 topic
// ids instead of names (UNKNOWN_TOPIC_ID); v15 replica state in a tag; v16
// and v17 leader and directory tags for followers. Requests below v10 get
// UNSUPPORTED_COMPRESSION_TYPE for a partition whose data is zstd, as Kafka.
//
// Fetch sessions (KIP-227, v7+): a consumer may open a session and then
// send only the partitions whose position changed, and get back only those
// that changed; fetch_session.go says how, and holds the sessions.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/metadata"
	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/storage"
)

// fetchTarget is one partition a fetch reads, resolved, with what the last
// read pass found for it.
type fetchTarget struct {
	key   partitionKey      // as the request, or the session, names it
	pos   fetchPosition     // where to read
	entry *sessionPartition // the session's, for a fetch in a session
	// include: the response carries the partition (all do, but the
	// unchanged ones of an incremental fetch).
	include bool

	name string     // the topic's name
	part *partition // nil when err is set
	err  error      // found when resolving: answered without reading
	read fetchRead
	memo readMemo // of the last read, this fetch's or, in a session, an earlier one's
	seq  uint64   // the entry's place in the session's order, when it became a target
}

// outcome is what the last read pass found: records, an error, or
// neither, and the partition's offsets.
func (t *fetchTarget) outcome() (records, failed bool, offs storage.Offsets) {
	return t.read.sec.Len() > 0, t.read.err != nil, t.read.offsets
}

// fetchRead is what one pass read for a partition: the batches of sec,
// still in their segment file.
type fetchRead struct {
	sec     storage.Section
	offsets storage.Offsets
	err     error
}

// The handler allocates per request, not per partition or record: the
// partitions' state, the response's partitions and the response each in
// one piece (tested by TestFetchAllocationsDoNotGrowWithRecords). A fetch
// in a session borrows the session's buffers for the partitions' state.
func handleFetch(b *Broker, ctx context.Context, r *request, req *kmsg.FetchRequest) kmsg.Response {
	out := newFetchResponse(r.version)
	resp := out.FetchResponse
	now := time.Now()
	session, full, err := b.fetchSessions.begin(r.version, req, now)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp
	}
	img := b.meta.Image()
	var work *fetchWork // a fetch without a session allocates one only to wait (longPoll)
	var targets []fetchTarget
	own := false // the fetch holds its session's reader (fetch_session_reader.go)
	parts := 0   // the partitions it answers for
	if session != nil {
		work = session.lend()
		defer session.giveBack(work)
		own = work.session == session
		parts = session.targets(work, img, req.IsolationLevel == 1)
		targets = work.targets
	} else {
		targets = requestTargets(req)
		parts = len(targets)
	}
	scratch := b.bufs.take(fetchScratch)
	defer b.bufs.put(scratch)
	rd := fetchReader{b: b, img: img, version: r.version, maxBytes: int(req.MaxBytes),
		committed: req.IsolationLevel == 1, scratch: (*scratch)[:fetchScratch]}
	if rd.maxBytes <= 0 {
		rd.maxBytes = math.MaxInt32
	}
	rd.resolve(targets)
	if own {
		work.watch(targets)
	}

	// A read that finds enough is the answer. One that does not waits for
	// the logs to change.
	total, failed := rd.read(targets)
	wait := time.Duration(req.MaxWaitMillis) * time.Millisecond
	if parts > 0 && !failed && total < int(req.MinBytes) && wait > 0 {
		switch {
		case own:
			rd.pollSession(ctx, session, work, int(req.MinBytes), wait)
			targets = work.targets
		case work == nil:
			work = &fetchWork{}
			fallthrough
		default:
			rd.longPoll(ctx, targets, int(req.MinBytes), wait, work)
		}
	}

	if session != nil {
		session.respond(targets, full, own)
		if full {
			resp.SessionID = b.fetchSessions.add(session, now)
		} else {
			resp.SessionID = session.id
		}
	}
	fillFetchResponse(out, targets, rd.committed)
	return out
}

// requestTargets returns the partitions of a fetch without a session, in
// request order.
func requestTargets(req *kmsg.FetchRequest) []fetchTarget {
	targets := make([]fetchTarget, 0, countPartitions(req.Topics))
	v := req.GetVersion()
	for i := range req.Topics {
		rt := &req.Topics[i]
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			k := partitionKey{topic: rt.Topic, partition: rp.Partition}
			if v >= 13 {
				k = partitionKey{id: rt.TopicID, partition: rp.Partition}
			}
			targets = append(targets, fetchTarget{key: k, pos: positionOf(rp), include: true})
		}
	}
	return targets
}

// fetchReader reads the partitions of one fetch.
type fetchReader struct {
	b         *Broker
	img       *metadata.Image // the metadata the partitions are found in
	version   int16
	maxBytes  int
	committed bool   // read_committed: up to the last stable offset
	scratch   []byte // for storage.Log.ReadSection
}

// readMemo is what the last read of a partition found, for the reads that
// follow: in the same fetch's long poll, and in a session's next fetches.
// It stays true while the log's change count, noted before the read, has
// not moved: appends, truncation, transaction markers, moves of the log
// start offset (retention, DeleteRecords) and closing the log move it.
type readMemo struct {
	changes   uint64       // the log's change count, noted before the read
	log       *storage.Log // the partition's; nil: no read to remember
	offset    int64        // the fetch offset read from
	epoch     int32        // the current leader epoch checked
	committed bool
	// caughtUp: there was nothing to read from offset; offsets is what
	// the read found.
	caughtUp bool
	offsets  storage.Offsets
}

// unchanged reports whether the log has not changed since the read.
func (m *readMemo) unchanged() bool {
	return m.log != nil && m.log.Changes() == m.changes
}

// holds reports whether the memo is of a read of ft as r reads it: of the
// log of the partition found, from the same position.
func (m *readMemo) holds(ft *fetchTarget, r *fetchReader) bool {
	return ft.err == nil && m.log == ft.part.log && m.offset == ft.pos.fetchOffset &&
		m.epoch == ft.pos.leaderEpoch && m.committed == r.committed
}

// resolve finds each target's partition, or the error it is answered
// with, and drops a memo that is not of that partition's log at the
// target's position.
func (r *fetchReader) resolve(targets []fetchTarget) {
	var (
		last  *fetchTarget // the last target looked up, whose topic the next ones often share
		topic *metadata.Topic
		err   error
	)
	for i := range targets {
		ft := &targets[i]
		if last == nil || !ft.key.sameTopic(last.key) {
			ft.name, topic, err = fetchTopic(r.img, r.version, ft.key)
		} else {
			ft.name = last.name
		}
		last = ft
		if ft.err = err; err == nil {
			ft.part, ft.err = fetchPartition(r.b, topic, r.version, ft)
		}
		if !ft.memo.holds(ft, r) {
			ft.memo = readMemo{}
		}
	}
}

// fillFetchResponse fills the response with the targets it includes, a
// topic for each run of targets of one topic.
func fillFetchResponse(out *fetchResponse, targets []fetchTarget, readCommitted bool) {
	resp := out.FetchResponse
	n, topics, sets := 0, 0, 0
	var last *fetchTarget
	for i := range targets {
		ft := &targets[i]
		if !ft.include {
			continue
		}
		n++
		if last == nil || !ft.key.sameTopic(last.key) {
			topics++
		}
		last = ft
		if ft.read.sec.Len() > 0 {
			sets++
		}
	}
	resp.Topics = make([]kmsg.FetchResponseTopic, 0, topics)
	parts := make([]kmsg.FetchResponseTopicPartition, n)
	out.sets = out.inline.sets[:0]
	if sets > len(out.inline.sets) {
		out.sets = make([]fetchSet, 0, sets)
	}
	last, n = nil, 0
	for i := range targets {
		ft := &targets[i]
		if !ft.include {
			ft.read.sec.Release()
			continue
		}
		if last == nil || !ft.key.sameTopic(last.key) {
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = ft.key.topic, ft.key.id
			st.Partitions = parts[n:n:len(parts)]
			resp.Topics = append(resp.Topics, st)
		}
		last = ft
		st := &resp.Topics[len(resp.Topics)-1]
		st.Partitions = st.Partitions[:len(st.Partitions)+1]
		n++
		sp := &st.Partitions[len(st.Partitions)-1]
		*sp = kmsg.NewFetchResponseTopicPartition()
		sp.Partition = ft.key.partition
		rd := ft.read
		// Never null: librdkafka rejects a null record set ("invalid
		// MessageSetSize -1") and kmsg sends nil as null. The batches
		// themselves go in when the response is written (fetch_frame.go).
		sp.RecordBatches = []byte{}
		if rd.err != nil {
			sp.ErrorCode = errorCode(rd.err)
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			continue
		}
		sp.HighWatermark = rd.offsets.HighWatermark
		sp.LastStableOffset = rd.offsets.LastStable
		sp.LogStartOffset = rd.offsets.LogStart
		if rd.sec.Len() > 0 {
			out.sets = append(out.sets, fetchSet{topic: len(resp.Topics) - 1, partition: len(st.Partitions) - 1, sec: rd.sec})
			ft.part.traffic.fetched(&rd.sec) // BytesOut (metrics.go)
		}
		if readCommitted {
			sp.AbortedTransactions = abortedInRead(ft, rd)
		}
	}
}

// abortedInRead lists, for a read_committed fetch, the aborted
// transactions that overlap what was read: those whose abort marker is at
// or after the fetch offset and that start below the last stable offset
// the read stopped at (the data itself ends at or before it, so the list
// may name a transaction starting after the data, which clients ignore;
// Kafka bounds it by the end of the data read). Never null: an empty list
// says there are none.
func abortedInRead(ft *fetchTarget, rd fetchRead) []kmsg.FetchResponseTopicPartitionAbortedTransaction {
	if rd.sec.Len() == 0 {
		return []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
	}
	out := ft.part.producers.abortedTransactions(ft.pos.fetchOffset, rd.offsets.LastStable)
	if out == nil {
		out = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
	}
	return out
}

// fetchTopic finds the topic of a partition by name (before v13) or id.
func fetchTopic(img *metadata.Image, version int16, k partitionKey) (string, *metadata.Topic, error) {
	if version >= 13 {
		t := img.TopicsByID[k.id]
		if t == nil {
			return "", nil, fmt.Errorf("%w: %s", kerr.UnknownTopicID, k.id)
		}
		return t.Name, t, nil
	}
	t := img.Topics[k.topic]
	if t == nil {
		return k.topic, nil, fmt.Errorf("%w: %s", kerr.UnknownTopicOrPartition, k.topic)
	}
	return k.topic, t, nil
}

// fetchPartition finds a partition of t and checks the client's leader
// epoch (v9+).
func fetchPartition(b *Broker, t *metadata.Topic, version int16, ft *fetchTarget) (*partition, error) {
	p := ft.key.partition
	if p < 0 || int(p) >= len(t.Partitions) {
		return nil, fmt.Errorf("%w: %s-%d", kerr.UnknownTopicOrPartition, t.Name, p)
	}
	part, ok := b.parts.get(t.Name, p)
	if !ok {
		return nil, fmt.Errorf("%w: %s-%d is not ready on this broker", kerr.UnknownTopicOrPartition, t.Name, p)
	}
	if version >= 9 {
		if err := checkLeaderEpoch(t.Partitions[p].LeaderEpoch, ft.pos.leaderEpoch); err != nil {
			return nil, err
		}
	}
	return part, nil
}

// read reads every partition once, honouring the byte limits, and reports
// the bytes read and whether any partition failed. Sections of an earlier
// pass are released first. A caught-up partition whose log has not changed
// since its last read is not read again.
func (r *fetchReader) read(targets []fetchTarget) (int, bool) {
	releaseReads(targets)
	total, failed := 0, false
	first := true // no partition has returned data yet: its first batch is returned whole
	for i := range targets {
		ft := &targets[i]
		rd := fetchRead{err: ft.err}
		switch {
		case rd.err != nil:
		case ft.memo.caughtUp && ft.memo.unchanged():
			rd.offsets = ft.memo.offsets
		default:
			changes := ft.part.log.Changes() // first: a change from now on moves it
			limit := min(int(ft.pos.maxBytes), r.maxBytes-total)
			if !first && limit <= 0 {
				rd.offsets = ft.part.log.Offsets()
			} else {
				rd = readPartition(r.scratch, ft, r.version, max(limit, 0), r.committed)
				if rd.err == nil && !first && rd.sec.Len() > limit {
					rd.sec.Release() // the next batch does not fit what is left
				}
			}
			ft.memo = r.memoOf(ft, changes, rd)
		}
		if rd.err != nil {
			failed = true
			rd.sec.Release()
		}
		if n := rd.sec.Len(); n > 0 {
			total += n
			first = false
		}
		ft.read = rd
	}
	return total, failed
}

// memoOf is the memo of a read of ft that found rd.
func (r *fetchReader) memoOf(ft *fetchTarget, changes uint64, rd fetchRead) readMemo {
	offs, at := rd.offsets, ft.pos.fetchOffset
	upTo := offs.HighWatermark
	if r.committed {
		upTo = offs.LastStable
	}
	return readMemo{changes: changes, log: ft.part.log, offset: at, epoch: ft.pos.leaderEpoch, committed: r.committed,
		caughtUp: rd.err == nil && rd.sec.Len() == 0 && at >= upTo && at >= offs.LogStart && at <= offs.LogEnd,
		offsets:  offs}
}

// releaseReads releases the sections the targets' last pass read.
func releaseReads(targets []fetchTarget) {
	for i := range targets {
		targets[i].read.sec.Release()
	}
}

// readPartition finds a partition's batches from the fetch offset.
func readPartition(scratch []byte, ft *fetchTarget, version int16, limit int, readCommitted bool) fetchRead {
	var rd fetchRead
	l := ft.part.log
	offs := l.Offsets()
	upTo := offs.HighWatermark
	if readCommitted {
		upTo = offs.LastStable
	}
	if at := ft.pos.fetchOffset; at >= upTo && at >= offs.LogStart && at <= offs.LogEnd {
		// Caught up, as most partitions of a large session are: nothing
		// to read, and no need to look for it.
		rd.offsets = offs
		return rd
	}
	rd.sec, rd.offsets, rd.err = l.ReadSection(ft.pos.fetchOffset, limit, upTo, scratch)
	if rd.err != nil {
		if errors.Is(rd.err, storage.ErrOffsetOutOfRange) {
			rd.err = fmt.Errorf("%w: %s-%d offset %d is outside [%d, %d]", kerr.OffsetOutOfRange,
				ft.name, ft.key.partition, ft.pos.fetchOffset, rd.offsets.LogStart, rd.offsets.LogEnd)
		}
		return rd
	}
	if version < 10 && rd.sec.HasCodec(record.CodecZstd) {
		rd.sec.Release()
		rd.err = fmt.Errorf("%w: fetch requests before v10 cannot receive zstd batches", kerr.UnsupportedCompressionType)
	}
	return rd
}

// longPoll reads the targets again each time one of their logs changes,
// until they hold minBytes or one fails, or until wait passes or the
// request or the broker ends (it then reads them once more). Every target
// has been read, and none failed.
//
// Each log is watched from just after that read: a change since signals
// the waiter, and one between the read and the watch moved the change
// count noted before the read, which is looked at once the watch has
// begun.
func (r *fetchReader) longPoll(ctx context.Context, targets []fetchTarget, minBytes int, wait time.Duration, work *fetchWork) {
	if work.waiter == nil {
		work.waiter = storage.NewWaiter()
	}
	w := work.waiter
	changed := false
	for i := range targets {
		m := &targets[i].memo
		w.Watch(m.log, nil)
		changed = changed || !m.unchanged()
	}
	defer w.UnwatchAll()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		if !changed {
			releaseReads(targets) // not held while waiting
			if !waitForChange(ctx, r.b.ctx, timer.C, w.C) {
				r.read(targets)
				return
			}
		}
		changed = false
		if total, failed := r.read(targets); failed || total >= minBytes {
			return
		}
	}
}

// pollSession is longPoll for a fetch that holds its session's reader,
// whose waiter watches every partition of the session that has been read:
// each time it names partitions as changed, those not yet targets of the
// fetch become targets (resolved and watched first), and the targets are
// read again.
func (r *fetchReader) pollSession(ctx context.Context, s *fetchSession, w *fetchWork, minBytes int, wait time.Duration) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		releaseReads(w.targets) // not held while waiting
		woke := waitForChange(ctx, r.b.ctx, timer.C, w.waiter.C)
		if added := s.addChanged(w); len(added) > 0 {
			r.resolve(added)
			w.watch(added)
		}
		if total, failed := r.read(w.targets); !woke || failed || total >= minBytes {
			return
		}
	}
}

// waitForChange waits until a watched log changes (true), or the wait
// times out, the request's or the broker's context ends (false).
func waitForChange(ctx, brokerCtx context.Context, timeout <-chan time.Time, changed <-chan struct{}) bool {
	select {
	case <-changed:
		return true
	case <-timeout:
	case <-ctx.Done():
	case <-brokerCtx.Done():
	}
	return false
}
