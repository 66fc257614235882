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
// Long poll: when fewer than min_bytes are available the request waits, up to
// max_wait_ms, on the partitions' storage.Log.Changed channels, and is
// answered as soon as an append brings enough bytes (or a partition errors).
// Nothing polls and no lock is held while waiting; broker shutdown (the
// broker's context) answers at once with what there is.
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
// Fetch sessions: Samsa never creates one. A request with epoch 0 (asking
// for a session) or -1 (no session) is a full fetch whatever its session id
// (Kafka closes the session named, if any; kafka-go sends id -1 and epoch
// -1) and is answered with session id 0, which tells the client that no
// session was created: it sends full fetches from then on, as Kafka's
// clients do with a broker whose session cache is full. Any other epoch is
// an incremental fetch in a session that does not exist:
// FETCH_SESSION_ID_NOT_FOUND. forgotten_topics_data is ignored.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/metadata"
	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/storage"
)

// fetchTarget is one partition of a fetch request, resolved, with what
// the last read pass found for it.
type fetchTarget struct {
	topic string
	req   *kmsg.FetchRequestTopicPartition
	part  *partition // nil when err is set
	err   error      // found when resolving: answered without reading
	read  fetchRead
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
// one piece (tested by TestFetchAllocationsDoNotGrowWithRecords).
func handleFetch(b *Broker, ctx context.Context, r *request, req *kmsg.FetchRequest) kmsg.Response {
	out := newFetchResponse(r.version)
	resp := out.FetchResponse
	if req.SessionEpoch != 0 && req.SessionEpoch != -1 {
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp
	}
	img := b.meta.Image()
	n := 0
	for i := range req.Topics {
		n += len(req.Topics[i].Partitions)
	}
	targets := make([]fetchTarget, 0, n) // in request order
	for i := range req.Topics {
		rt := &req.Topics[i]
		name, t, err := fetchTopic(img, r.version, rt)
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			ft := fetchTarget{topic: name, req: rp, err: err}
			if err == nil {
				ft.part, ft.err = fetchPartition(b, t, r.version, rp)
			}
			targets = append(targets, ft)
		}
	}

	maxBytes := int(req.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = math.MaxInt32
	}
	readCommitted := req.IsolationLevel == 1
	wait := time.Duration(req.MaxWaitMillis) * time.Millisecond
	var timer *time.Timer
	scratch := b.bufs.take(fetchScratch)
	defer b.bufs.put(scratch)
	// A read that finds enough is the answer. One that does not is made
	// again after taking the logs' change channels, so that an append
	// between the read and the wait is not missed; then it waits.
	var changed []<-chan struct{}
	for {
		total, failed := readFetch((*scratch)[:fetchScratch], targets, r.version, maxBytes, readCommitted)
		if n == 0 || failed || total >= int(req.MinBytes) || wait <= 0 {
			break
		}
		if changed == nil {
			changed = changeChannels(targets, make([]<-chan struct{}, 0, n))
			if len(changed) == 0 {
				break
			}
			continue
		}
		releaseReads(targets) // not held while waiting
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		if !waitForChange(ctx, b.ctx, timer.C, changed) {
			readFetch((*scratch)[:fetchScratch], targets, r.version, maxBytes, readCommitted)
			break
		}
		changed = changeChannels(targets, changed[:0])
	}

	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	parts := make([]kmsg.FetchResponseTopicPartition, n)
	sets := 0
	for k := range targets {
		if targets[k].read.sec.Len() > 0 {
			sets++
		}
	}
	out.sets = out.inline.sets[:0]
	if sets > len(out.inline.sets) {
		out.sets = make([]fetchSet, 0, sets)
	}
	k := 0
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := &resp.Topics[i]
		*st = kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		if r.version < 13 {
			st.TopicID = [16]byte{}
		} else {
			st.Topic = ""
		}
		st.Partitions = parts[k : k+len(rt.Partitions) : k+len(rt.Partitions)]
		for j := range rt.Partitions {
			ft := &targets[k]
			k++
			rd := ft.read
			sp := &st.Partitions[j]
			*sp = kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rt.Partitions[j].Partition
			if rd.err != nil {
				sp.ErrorCode = errorCode(rd.err)
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
				sp.RecordBatches = []byte{}
			} else {
				sp.HighWatermark = rd.offsets.HighWatermark
				sp.LastStableOffset = rd.offsets.LastStable
				sp.LogStartOffset = rd.offsets.LogStart
				// Never null: librdkafka rejects a null record set
				// ("invalid MessageSetSize -1") and kmsg sends nil as
				// null. The batches themselves go in when the response is
				// written (fetch_frame.go).
				sp.RecordBatches = []byte{}
				if rd.sec.Len() > 0 {
					out.sets = append(out.sets, fetchSet{topic: i, partition: j, sec: rd.sec})
					ft.part.traffic.fetched(&rd.sec) // BytesOut (metrics.go)
				}
				if readCommitted {
					sp.AbortedTransactions = abortedInRead(ft, rd)
				}
			}
		}
	}
	return out
}

// changeChannels appends to dst the change channels of the logs of
// targets.
func changeChannels(targets []fetchTarget, dst []<-chan struct{}) []<-chan struct{} {
	for _, ft := range targets {
		if ft.err == nil {
			dst = append(dst, ft.part.log.Changed())
		}
	}
	return dst
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
	out := ft.part.producers.abortedTransactions(ft.req.FetchOffset, rd.offsets.LastStable)
	if out == nil {
		out = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
	}
	return out
}

// fetchTopic finds a request topic by name (before v13) or id.
func fetchTopic(img *metadata.Image, version int16, rt *kmsg.FetchRequestTopic) (string, *metadata.Topic, error) {
	if version >= 13 {
		t := img.TopicsByID[metadata.TopicID(rt.TopicID)]
		if t == nil {
			return "", nil, fmt.Errorf("%w: %s", kerr.UnknownTopicID, metadata.TopicID(rt.TopicID))
		}
		return t.Name, t, nil
	}
	t := img.Topics[rt.Topic]
	if t == nil {
		return rt.Topic, nil, fmt.Errorf("%w: %s", kerr.UnknownTopicOrPartition, rt.Topic)
	}
	return rt.Topic, t, nil
}

// fetchPartition finds a partition of t and checks the client's leader
// epoch (v9+).
func fetchPartition(b *Broker, t *metadata.Topic, version int16, rp *kmsg.FetchRequestTopicPartition) (*partition, error) {
	if rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
		return nil, fmt.Errorf("%w: %s-%d", kerr.UnknownTopicOrPartition, t.Name, rp.Partition)
	}
	part, ok := b.parts.get(t.Name, rp.Partition)
	if !ok {
		return nil, fmt.Errorf("%w: %s-%d is not ready on this broker", kerr.UnknownTopicOrPartition, t.Name, rp.Partition)
	}
	if version >= 9 {
		if err := checkLeaderEpoch(t.Partitions[rp.Partition].LeaderEpoch, rp.CurrentLeaderEpoch); err != nil {
			return nil, err
		}
	}
	return part, nil
}

// readFetch reads every partition once, honouring the byte limits, and
// reports the bytes read and whether any partition failed. Sections of an
// earlier pass are released first.
func readFetch(scratch []byte, targets []fetchTarget, version int16, maxBytes int, readCommitted bool) (int, bool) {
	releaseReads(targets)
	total, failed := 0, false
	first := true // no partition has returned data yet: its first batch is returned whole
	for i := range targets {
		ft := &targets[i]
		rd := fetchRead{err: ft.err}
		if rd.err == nil {
			left := maxBytes - total
			limit := min(int(ft.req.PartitionMaxBytes), left)
			if !first && limit <= 0 {
				rd.offsets = ft.part.log.Offsets()
			} else {
				rd = readPartition(scratch, ft, version, max(limit, 0), readCommitted)
				if rd.err == nil && !first && rd.sec.Len() > limit {
					rd.sec.Release() // the next batch does not fit what is left
				}
			}
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
	rd.sec, rd.offsets, rd.err = l.ReadSection(ft.req.FetchOffset, limit, upTo, scratch)
	if rd.err != nil {
		if errors.Is(rd.err, storage.ErrOffsetOutOfRange) {
			rd.err = fmt.Errorf("%w: %s-%d offset %d is outside [%d, %d]", kerr.OffsetOutOfRange,
				ft.topic, ft.req.Partition, ft.req.FetchOffset, rd.offsets.LogStart, rd.offsets.LogEnd)
		}
		return rd
	}
	if version < 10 && rd.sec.HasCodec(record.CodecZstd) {
		rd.sec.Release()
		rd.err = fmt.Errorf("%w: fetch requests before v10 cannot receive zstd batches", kerr.UnsupportedCompressionType)
	}
	return rd
}

// waitForChange waits until one of the logs changes (true), or the wait
// times out, the request's or the broker's context ends (false).
func waitForChange(ctx, brokerCtx context.Context, timeout <-chan time.Time, changed []<-chan struct{}) bool {
	cases := make([]reflect.SelectCase, 0, 3+len(changed))
	cases = append(cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timeout)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(brokerCtx.Done())},
	)
	for _, ch := range changed {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
	}
	chosen, _, _ := reflect.Select(cases)
	return chosen >= 3
}
