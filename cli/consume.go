package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// StartOffset is where `samsa consume -o` starts reading, per partition.
// Exactly one way is set.
type StartOffset struct {
	kind  startKind
	n     int64         // offset, or records from start/end
	at    time.Time     // timestamp
	ago   time.Duration // before now
	input string
}

type startKind int

const (
	fromStart     startKind = iota // start (+n records)
	fromEnd                        // end (-n records)
	fromOffset                     // exact offset
	fromTimestamp                  // the first record at or after a time
	fromAgo                        // the first record at or after now minus a duration
)

func (s StartOffset) String() string { return s.input }

// ParseStartOffset parses a -o/--offset value:
//
//	start, oldest, beginning   the first record still in the log
//	end, newest, latest        only records written from now on
//	start+N                    N records after the start
//	end-N                      the last N records of each partition
//	N                          offset N (clamped to the log)
//	2024-05-01T12:00:00Z       the first record at or after this RFC 3339 time
//	@1714564800000             the same, in Unix milliseconds
//	-5m, -2h30m, -3d           the first record at or after this long ago
func ParseStartOffset(s string) (StartOffset, error) {
	in := strings.TrimSpace(s)
	out := StartOffset{input: in}
	bad := func(why string) (StartOffset, error) {
		return StartOffset{}, Usagef("bad --offset %q: %s; use start, end, start+N, end-N, an offset, an RFC 3339 time, @unix-millis, or a duration ago such as -5m", s, why)
	}
	lower := strings.ToLower(in)
	switch lower {
	case "start", "oldest", "beginning", "earliest":
		out.kind = fromStart
		return out, nil
	case "end", "newest", "latest":
		out.kind = fromEnd
		return out, nil
	case "":
		return bad("empty")
	}
	for _, p := range []struct {
		prefix string
		kind   startKind
		sign   string
	}{{"start+", fromStart, "+"}, {"end-", fromEnd, "-"}} {
		if rest, ok := strings.CutPrefix(lower, p.prefix); ok {
			n, err := strconv.ParseInt(rest, 10, 64)
			if err != nil || n < 0 {
				return bad("want a record count after " + p.sign)
			}
			out.kind, out.n = p.kind, n
			return out, nil
		}
	}
	if rest, ok := strings.CutPrefix(in, "@"); ok {
		ms, err := strconv.ParseInt(rest, 10, 64)
		if err != nil || ms < 0 {
			return bad("want Unix milliseconds after @")
		}
		out.kind, out.at = fromTimestamp, time.UnixMilli(ms)
		return out, nil
	}
	if rest, ok := strings.CutPrefix(in, "-"); ok {
		d, err := parseDuration(rest)
		if err != nil || d <= 0 {
			return bad("want a duration after - (such as -90s, -5m, -2h, -7d)")
		}
		out.kind, out.ago = fromAgo, d
		return out, nil
	}
	if n, err := strconv.ParseInt(in, 10, 64); err == nil {
		out.kind, out.n = fromOffset, n
		return out, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, in); err == nil {
		out.kind, out.at = fromTimestamp, t
		return out, nil
	}
	if strings.Contains(in, "T") || strings.Count(in, "-") >= 2 {
		return bad("not an RFC 3339 time (2024-05-01T12:00:00Z)")
	}
	return bad("not understood")
}

// parseDuration is time.ParseDuration that also takes days ("3d").
func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil {
			return 0, err
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	return time.ParseDuration(s)
}

// resolve turns the start into an offset for one partition, given its log
// start and end offsets and, for times, the offset listed for that time
// (-1 when no record is that late).
func (s StartOffset) resolve(logStart, logEnd, atTime int64) int64 {
	clamp := func(o int64) int64 { return max(logStart, min(logEnd, o)) }
	switch s.kind {
	case fromStart:
		return clamp(logStart + s.n)
	case fromEnd:
		return clamp(logEnd - s.n)
	case fromOffset:
		return clamp(s.n)
	default:
		if atTime < 0 {
			return logEnd
		}
		return clamp(atTime)
	}
}

// kgoOffset is the start as kgo's reset offset, for group members whose
// group has no committed offset.
func (s StartOffset) kgoOffset(now time.Time) kgo.Offset {
	switch s.kind {
	case fromStart:
		return kgo.NewOffset().AtStart().Relative(s.n)
	case fromEnd:
		return kgo.NewOffset().AtEnd().Relative(-s.n)
	case fromOffset:
		return kgo.NewOffset().At(s.n)
	default:
		at, _ := s.instant(now)
		return kgo.NewOffset().AfterMilli(at.UnixMilli())
	}
}

// instant is the time a time or duration-ago place stands for.
func (s StartOffset) instant(now time.Time) (time.Time, bool) {
	switch s.kind {
	case fromTimestamp:
		return s.at, true
	case fromAgo:
		return now.Add(-s.ago), true
	}
	return time.Time{}, false
}

// ConsumeOptions are the arguments of `samsa consume`.
type ConsumeOptions struct {
	Topics     []string
	Offset     StartOffset // zero value: start
	Partitions []int32     // only these partitions; nil: all (not with Group)
	Group      string      // consume as a member of this group
	Count      int64       // stop after this many records; 0: no limit
	ExitAtEnd  bool        // stop at the end offsets seen at start-up
	// Format is "json" for one JSON object per record, else a record
	// template ([ParseRecordTemplate]); "" means one value per line.
	Format string
	// Now is the clock for durations ago; nil means time.Now.
	Now func() time.Time
}

// Consume prints records of the topics to out until the context ends, the
// count is reached, or (with ExitAtEnd) every partition has been read to
// the end it had at start-up. A group member commits the offsets of the
// records it printed.
func Consume(ctx context.Context, conn *Conn, out, errOut io.Writer, o ConsumeOptions) error {
	if len(o.Topics) == 0 {
		return Usagef("no topic given")
	}
	if o.Group != "" && len(o.Partitions) > 0 {
		return Usagef("--partitions cannot be used with --group: the group assigns partitions")
	}
	if o.Count < 0 {
		return Usagef("--num %d: want a positive count", o.Count)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	format := func(dst []byte, r *kgo.Record) []byte { return appendJSON(dst, r) }
	if o.Format != "json" {
		src := o.Format
		if src == "" {
			src = DefaultRecordTemplate
		}
		tmpl, err := ParseRecordTemplate(src)
		if err != nil {
			return err
		}
		format = tmpl.Append
	}

	adm, err := conn.Admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	parts, err := consumePartitions(ctx, adm, o.Topics, o.Partitions)
	if err != nil {
		return err
	}
	ends, err := adm.ListEndOffsets(ctx, o.Topics...)
	if err != nil {
		return fmt.Errorf("list end offsets: %w", err)
	}

	starts, err := startOffsets(ctx, adm, o, parts, ends, now())
	if err != nil {
		return err
	}
	var opts []kgo.Opt
	var tracker *endTracker
	if o.Group != "" {
		opts = append(opts,
			kgo.ConsumerGroup(o.Group),
			kgo.ConsumeTopics(o.Topics...),
			kgo.ConsumeResetOffset(o.Offset.kgoOffset(now())),
			kgo.AutoCommitMarks(),
		)
		if o.ExitAtEnd {
			// A member starts where the group committed, else at -o.
			committed, err := adm.FetchOffsets(ctx, o.Group)
			if err != nil {
				return fmt.Errorf("fetch offsets of group %q: %w", o.Group, err)
			}
			committed.Each(func(c kadm.OffsetResponse) {
				if c.Err == nil && c.At >= 0 && starts[c.Topic] != nil {
					if _, ok := starts[c.Topic][c.Partition]; ok {
						starts[c.Topic][c.Partition] = c.At
					}
				}
			})
			tracker = newEndTracker(ends, starts, true)
			opts = append(opts,
				kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) { tracker.assign(a) }),
				kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) { tracker.revoke(r) }),
				kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, r map[string][]int32) { tracker.revoke(r) }),
			)
		}
	} else {
		offsets := make(map[string]map[int32]kgo.Offset)
		for t, ps := range starts {
			offsets[t] = make(map[int32]kgo.Offset)
			for p, off := range ps {
				offsets[t][p] = kgo.NewOffset().At(off)
			}
		}
		opts = append(opts, kgo.ConsumePartitions(offsets))
		if o.ExitAtEnd {
			tracker = newEndTracker(ends, starts, false)
		}
	}
	cl, err := conn.Client(ctx, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	w := bufio.NewWriterSize(out, 64<<10)
	defer w.Flush()
	progress := newProgress(errOut, out, o.Count)
	defer progress.finish()
	var consumed int64
	var buf []byte
	for {
		if tracker != nil && tracker.done(groupCommitted(cl, o.Group != "")) {
			break
		}
		pollCtx := ctx
		var cancel context.CancelFunc = func() {}
		if tracker != nil {
			// Wake up now and then: a group member may reach the end
			// by its committed offsets alone, with nothing to fetch.
			pollCtx, cancel = context.WithTimeout(ctx, 500*time.Millisecond)
		}
		fetches := cl.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil {
			break
		}
		if fetches.IsClientClosed() {
			break
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			if fetchErr == nil {
				fetchErr = fmt.Errorf("fetch %s/%d: %w", t, p, err)
			}
		})
		if fetchErr != nil {
			return fetchErr
		}
		stop := false
		fetches.EachRecord(func(r *kgo.Record) {
			if stop {
				return
			}
			if tracker != nil && tracker.beyondEnd(r) {
				return
			}
			buf = format(buf[:0], r)
			w.Write(buf)
			consumed++
			if o.Group != "" {
				cl.MarkCommitRecords(r)
			}
			if tracker != nil {
				tracker.saw(r)
			}
			if o.Count > 0 && consumed >= o.Count {
				stop = true
			}
		})
		if err := w.Flush(); err != nil {
			return err
		}
		progress.update(consumed)
		if stop {
			break
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if o.Group != "" {
		commitCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := cl.CommitMarkedOffsets(commitCtx); err != nil {
			return fmt.Errorf("commit offsets of group %q: %w", o.Group, err)
		}
	}
	return nil
}

// consumePartitions checks that the topics (and partitions) exist and
// returns the partitions to read.
func consumePartitions(ctx context.Context, adm *kadm.Client, topics []string, only []int32) (map[string][]int32, error) {
	details, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	out := make(map[string][]int32)
	for _, t := range topics {
		if !details.Has(t) {
			return nil, UnknownTopicError(t, details.Names())
		}
		n := int32(len(details[t].Partitions))
		if len(only) == 0 {
			for p := int32(0); p < n; p++ {
				out[t] = append(out[t], p)
			}
			continue
		}
		for _, p := range only {
			if p < 0 || p >= n {
				return nil, Usagef("--partitions: topic %q has no partition %d (it has 0 to %d)", t, p, n-1)
			}
			out[t] = append(out[t], p)
		}
	}
	return out, nil
}

// startOffsets resolves where each partition starts.
func startOffsets(ctx context.Context, adm *kadm.Client, o ConsumeOptions, parts map[string][]int32, ends kadm.ListedOffsets, now time.Time) (map[string]map[int32]int64, error) {
	starts, err := adm.ListStartOffsets(ctx, o.Topics...)
	if err != nil {
		return nil, fmt.Errorf("list start offsets: %w", err)
	}
	var atTime kadm.ListedOffsets
	if at, ok := o.Offset.instant(now); ok {
		atTime, err = adm.ListOffsetsAfterMilli(ctx, at.UnixMilli(), o.Topics...)
	}
	if err != nil {
		return nil, fmt.Errorf("list offsets by time: %w", err)
	}
	out := make(map[string]map[int32]int64)
	for t, ps := range parts {
		out[t] = make(map[int32]int64)
		for _, p := range ps {
			s, ok1 := starts.Lookup(t, p)
			e, ok2 := ends.Lookup(t, p)
			if !ok1 || !ok2 || s.Err != nil || e.Err != nil {
				return nil, fmt.Errorf("list offsets of %s/%d: %v", t, p, errors.Join(s.Err, e.Err))
			}
			at := int64(-1)
			if a, ok := atTime.Lookup(t, p); ok && a.Err == nil {
				at = a.Offset
			}
			out[t][p] = o.Offset.resolve(s.Offset, e.Offset, at)
		}
	}
	return out, nil
}

// groupCommitted is the group's committed offsets, for a group member.
func groupCommitted(cl *kgo.Client, group bool) map[string]map[int32]kgo.EpochOffset {
	if !group {
		return nil
	}
	return cl.CommittedOffsets()
}
