package broker

// When a coordinator's records cannot be appended to its internal topic,
// its driver throws the coordinator's memory away and loads it again from
// the log (coordinator_driver.go, rebuild). These tests break the appends:
// on the filesystem (a write error, after which the partition's log
// refuses writes until it is reopened by a restart) and by configuration
// (max.message.bytes 0 on the internal topic, which refuses every batch
// for as long as it is set, and no longer).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/group"
	"github.com/samsa-io/samsa/internal/vfs"
	"github.com/samsa-io/samsa/metadata"
)

var errInjected = errors.New("injected I/O error")

// faultFS fails, while armed, the writes (writes), syncs (syncs) or reads
// (reads) of the segment files of the partition directories whose name
// starts with prefix (a "/" ends a partition's directory name:
// "__consumer_offsets-7/" names one partition, "__consumer_offsets-" all
// of them).
type faultFS struct {
	vfs.FS
	prefix               string // immutable once the broker starts
	writes, syncs, reads atomic.Bool
}

type faultFile struct {
	vfs.File
	fs  *faultFS
	hit bool // a segment file under prefix
}

func (f faultFile) Write(p []byte) (int, error) {
	if f.hit && f.fs.writes.Load() {
		return 0, errInjected
	}
	return f.File.Write(p)
}

func (f faultFile) Sync() error {
	if f.hit && f.fs.syncs.Load() {
		return errInjected
	}
	return f.File.Sync()
}

func (f faultFile) ReadAt(p []byte, off int64) (int, error) {
	if f.hit && f.fs.reads.Load() {
		return 0, errInjected
	}
	return f.File.ReadAt(p, off)
}

// segmentUnder reports whether the file name is a segment of a partition
// directory whose name starts with prefix.
func segmentUnder(prefix, name string) bool {
	return strings.Contains(name, "/"+prefix) && strings.HasSuffix(name, ".log")
}

func (s *faultFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return faultFile{f, s, segmentUnder(s.prefix, name)}, nil
}

func (s *faultFS) Create(name string) (vfs.File, error) {
	f, err := s.FS.Create(name)
	return s.wrap(name, f, err)
}

func (s *faultFS) Open(name string) (vfs.File, error) {
	f, err := s.FS.Open(name)
	return s.wrap(name, f, err)
}

func (s *faultFS) OpenAppend(name string) (vfs.File, error) {
	f, err := s.FS.OpenAppend(name)
	return s.wrap(name, f, err)
}

// holdingFS holds, once armed, the Sync of the segment files of the
// partition directories whose name starts with prefix, until released.
type holdingFS struct {
	vfs.FS
	prefix  string        // immutable once the broker starts
	armed   atomic.Bool   // holding syncs
	held    chan struct{} // gets a value when a sync is held
	release chan struct{} // closed to let held syncs go on
}

type holdingFile struct {
	vfs.File
	fs  *holdingFS
	hit bool
}

func (f holdingFile) Sync() error {
	if f.hit && f.fs.armed.Load() {
		select {
		case f.fs.held <- struct{}{}:
		default:
		}
		<-f.fs.release
	}
	return f.File.Sync()
}

func (s *holdingFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return holdingFile{f, s, segmentUnder(s.prefix, name)}, nil
}

func (s *holdingFS) Create(name string) (vfs.File, error) {
	f, err := s.FS.Create(name)
	return s.wrap(name, f, err)
}

func (s *holdingFS) OpenAppend(name string) (vfs.File, error) {
	f, err := s.FS.OpenAppend(name)
	return s.wrap(name, f, err)
}

// offsetsPartitionDir is the directory prefix of group's __consumer_offsets
// partition, with the default partition count.
func offsetsPartitionDir(groupID string) string {
	return fmt.Sprintf("%s-%d/", offsetsTopic, group.Partition(groupID, DefaultConfig().Groups.Partitions))
}

// onFaultFS makes a faultFS failing the segments under prefix, and a
// broker config on it, in a data directory that outlives the broker, so
// that another can start on the same data.
func onFaultFS(t *testing.T, prefix string) (*faultFS, func(*Config)) {
	fs := &faultFS{FS: vfs.NewCrashableMem(), prefix: prefix}
	dir := t.TempDir()
	return fs, func(c *Config) { c.DataDir, c.FS = dir, fs }
}

// restart closes b and starts a broker on the same data. Closing may
// report a log that failed: that is the fault the test injected.
func restart(t *testing.T, b *Broker, mod func(*Config)) *Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Logf("closing the broker: %v", err)
	}
	return startBroker(t, mod)
}

// kadmFor is an admin client of b; opts come after the defaults.
func kadmFor(t *testing.T, b *Broker, opts ...kgo.Opt) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addr().String())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// testCtx is a context for one client call: the call may retry while a
// coordinator loads, never for this long.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// startWithTopic starts a broker with mod and creates topic t, of one
// partition, on it; it returns the broker and an admin client of it.
func startWithTopic(t *testing.T, mod func(*Config)) (*Broker, *kadm.Client) {
	t.Helper()
	b := startBroker(t, mod)
	adm := kadmFor(t, b)
	if _, err := adm.CreateTopic(testCtx(t), 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	return b, adm
}

// startWithCommit is startWithTopic, and group g commits offset 5 of t-0.
func startWithCommit(t *testing.T, mod func(*Config)) (*Broker, *kadm.Client) {
	t.Helper()
	b, adm := startWithTopic(t, mod)
	if err := commitOffset(t, adm, "g", 5); err != nil {
		t.Fatal(err)
	}
	return b, adm
}

// commitOffset commits offset for partition 0 of topic t in groupID and
// returns the partition's error (or the request's).
func commitOffset(t *testing.T, adm *kadm.Client, groupID string, offset int64) error {
	t.Helper()
	var offsets kadm.Offsets
	offsets.AddOffset("t", 0, offset, -1)
	resps, err := adm.CommitOffsets(testCtx(t), groupID, offsets)
	if err != nil {
		return err
	}
	r, ok := resps.Lookup("t", 0)
	if !ok {
		t.Fatalf("commit to %s: no answer for t-0: %+v", groupID, resps)
	}
	return r.Err
}

// fetchedOffset is the committed offset of partition 0 of topic t in
// groupID (-1 for none).
func fetchedOffset(t *testing.T, adm *kadm.Client, groupID string) int64 {
	t.Helper()
	resps, err := adm.FetchOffsets(testCtx(t), groupID)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", groupID, err)
	}
	r, ok := resps.Lookup("t", 0)
	if !ok {
		return -1
	}
	if r.Err != nil {
		t.Fatalf("fetch offsets of %s: %v", groupID, r.Err)
	}
	return r.At
}

// otherPartitionGroup is a group id whose __consumer_offsets partition is
// not groupID's.
func otherPartitionGroup(groupID string) string {
	n := DefaultConfig().Groups.Partitions
	for i := 0; ; i++ {
		id := fmt.Sprintf("other-%d", i)
		if group.Partition(id, n) != group.Partition(groupID, n) {
			return id
		}
	}
}

// An OffsetCommit whose record cannot be written is answered with a
// retriable error and forgotten: once the coordinator has reloaded,
// OffsetFetch shows the commit from before, and so it does after a
// restart. The failed partition refuses writes until the restart (the
// storage engine does not trust a log after an I/O error), so the group
// commits again after it, and that survives another.
func TestFailedOffsetCommitIsForgotten(t *testing.T) {
	fs, mod := onFaultFS(t, offsetsPartitionDir("g"))
	b, adm := startWithCommit(t, mod)

	fs.writes.Store(true)
	once := kadmFor(t, b, kgo.RequestRetries(0)) // one attempt: the answer to the failed append
	if err := commitOffset(t, once, "g", 9); !errors.Is(err, kerr.CoordinatorNotAvailable) {
		t.Fatalf("commit while writes fail: %v, want COORDINATOR_NOT_AVAILABLE", err)
	}
	fs.writes.Store(false)
	if got := fetchedOffset(t, adm, "g"); got != 5 {
		t.Fatalf("after the failed commit, OffsetFetch shows %d, want 5 (the commit before it)", got)
	}
	other := otherPartitionGroup("g")
	if err := commitOffset(t, adm, other, 7); err != nil {
		t.Fatalf("commit to %s (another partition) after the fault: %v", other, err)
	}

	b = restart(t, b, mod)
	adm = kadmFor(t, b)
	if got := fetchedOffset(t, adm, "g"); got != 5 {
		t.Fatalf("after a restart, OffsetFetch shows %d, want 5", got)
	}
	if got := fetchedOffset(t, adm, other); got != 7 {
		t.Fatalf("after a restart, %s's offset is %d, want 7", other, got)
	}
	if err := commitOffset(t, adm, "g", 12); err != nil {
		t.Fatalf("commit after the restart: %v", err)
	}
	b = restart(t, b, mod)
	if got := fetchedOffset(t, kadmFor(t, b), "g"); got != 12 {
		t.Fatalf("after another restart, OffsetFetch shows %d, want 12", got)
	}
}

// setTopicConfig sets (value non-nil) or deletes a config of topic and
// waits until its logs have it.
func setTopicConfig(t *testing.T, b *Broker, adm *kadm.Client, topic, name string, value *string, applied func(*partition) bool) {
	t.Helper()
	op := kadm.SetConfig
	if value == nil {
		op = kadm.DeleteConfig
	}
	resps, err := adm.AlterTopicConfigs(testCtx(t), []kadm.AlterConfig{{Op: op, Name: name, Value: value}}, topic)
	if err == nil {
		_, err = resps.On(topic, nil)
	}
	if err == nil {
		err = resps[0].Err
	}
	if err != nil {
		t.Fatalf("alter %s of %s: %v", name, topic, err)
	}
	eventually(t, name+" of "+topic+" reaches its logs", func() bool {
		for p := range int32(len(b.meta.Image().Topics[topic].Partitions)) {
			if part, ok := b.parts.get(topic, p); !ok || !applied(part) {
				return false
			}
		}
		return true
	})
}

// refuseBatches makes every append to topic fail (max.message.bytes 0)
// until the returned function restores the default.
func refuseBatches(t *testing.T, b *Broker, adm *kadm.Client, topic string) (restore func()) {
	zero := "0"
	setTopicConfig(t, b, adm, topic, "max.message.bytes", &zero, func(p *partition) bool {
		return p.log.Config().MaxMessageBytes == 0
	})
	return func() {
		setTopicConfig(t, b, adm, topic, "max.message.bytes", nil, func(p *partition) bool {
			return p.log.Config().MaxMessageBytes > 0
		})
	}
}

// While __consumer_offsets refuses batches, a commit is answered
// INVALID_COMMIT_OFFSET_SIZE (Kafka's answer to a record too large for the
// topic) and forgotten, also a group's first; once it takes them again, the same group commits
// in the same process, and that survives a restart.
func TestRefusedOffsetCommitIsForgottenAndTheNextOneKept(t *testing.T) {
	_, mod := onFaultFS(t, "")
	b, adm := startWithCommit(t, mod)

	restore := refuseBatches(t, b, adm, offsetsTopic)
	for _, id := range []string{"g", "new"} {
		if err := commitOffset(t, adm, id, 9); !errors.Is(err, kerr.InvalidCommitOffsetSize) {
			t.Fatalf("commit to %s while batches are refused: %v, want INVALID_COMMIT_OFFSET_SIZE", id, err)
		}
	}
	restore()
	if got := fetchedOffset(t, adm, "g"); got != 5 {
		t.Fatalf("after the refused commit, OffsetFetch shows %d, want 5", got)
	}
	if got := fetchedOffset(t, adm, "new"); got != -1 {
		t.Fatalf("after the refused commit of a new group, OffsetFetch shows %d, want none", got)
	}
	if err := commitOffset(t, adm, "g", 12); err != nil {
		t.Fatalf("commit after the fault: %v", err)
	}
	b = restart(t, b, mod)
	if got := fetchedOffset(t, kadmFor(t, b), "g"); got != 12 {
		t.Fatalf("after a restart, OffsetFetch shows %d, want 12", got)
	}
}

// A JoinGroup waiting for its rebalance is answered COORDINATOR_NOT_AVAILABLE
// when the coordinator is thrown away, whether another request's record
// could not be written or did not become durable: the coordinator that
// would have completed the rebalance is gone, and the client looks it up
// again and rejoins. It is not left waiting for its rebalance timeout.
func TestWaitingJoinGroupIsAnsweredWhenTheCoordinatorReloads(t *testing.T) {
	for _, fault := range []string{"write", "sync"} {
		t.Run(fault, func(t *testing.T) {
			fs, onFS := onFaultFS(t, offsetsTopic+"-")
			b := startBroker(t, func(c *Config) {
				onFS(c)
				slowRebalance(c)
			})
			ctx := context.Background()
			if _, err := b.createTopic(ctx, metadata.NewTopic{Name: "t", Partitions: 1, ReplicationFactor: 1}); err != nil {
				t.Fatal(err)
			}
			out := waitingJoin(t, b, ctx)

			map[string]*atomic.Bool{"write": &fs.writes, "sync": &fs.syncs}[fault].Store(true)
			commit := kmsg.NewPtrOffsetCommitRequest()
			commit.Group, commit.Generation = "admin", -1
			commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 3, LeaderEpoch: -1}}}}
			resp := handleDirect(ctx, b, commit, 8).(*kmsg.OffsetCommitResponse)
			if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.CoordinatorNotAvailable.Code {
				t.Fatalf("commit while %ss fail: %v", fault, kerr.ErrorForCode(code))
			}
			select {
			case resp := <-out:
				join := resp.(*kmsg.JoinGroupResponse)
				if join.ErrorCode != kerr.CoordinatorNotAvailable.Code || join.Generation != -1 || join.Version != 3 {
					t.Fatalf("waiting JoinGroup after the failed %s: %+v", fault, join)
				}
			case <-time.After(time.Minute):
				t.Fatalf("the waiting JoinGroup was not answered after the failed %s threw the coordinator away", fault)
			}
			fs.writes.Store(false)
			fs.syncs.Store(false)
			waitLoaded(t, &b.groups.coordDriver)
		})
	}
}

// waitDriver waits until cond, called with d.mu held, holds.
func waitDriver[C coordinator, T ~uint64](t *testing.T, d *coordDriver[C, T], what string, cond func() bool) {
	t.Helper()
	eventually(t, what, func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return cond()
	})
}

// waitLoadsEnd waits until a driver's loader has stopped (loaded or
// failed).
func waitLoadsEnd[C coordinator, T ~uint64](t *testing.T, d *coordDriver[C, T]) {
	t.Helper()
	waitDriver(t, d, d.topic+" stops loading", func() bool { return !d.loading })
}

// A reload that cannot read the log leaves the coordinator not serving
// (COORDINATOR_LOAD_IN_PROGRESS), also once the disk reads again: what it
// loaded is incomplete. A restart loads it whole.
func TestFailedReloadLeavesTheCoordinatorNotServing(t *testing.T) {
	fs, mod := onFaultFS(t, offsetsPartitionDir("g"))
	b, _ := startWithCommit(t, mod)

	fs.writes.Store(true)
	fs.reads.Store(true)
	once := kadmFor(t, b, kgo.RequestRetries(0))
	if err := commitOffset(t, once, "g", 9); !errors.Is(err, kerr.CoordinatorNotAvailable) {
		t.Fatalf("commit while writes fail: %v, want COORDINATOR_NOT_AVAILABLE", err)
	}
	waitLoadsEnd(t, &b.groups.coordDriver)
	fs.writes.Store(false)
	fs.reads.Store(false)
	if code := b.groups.state(); code != kerr.CoordinatorLoadInProgress.Code {
		t.Fatalf("after a reload that failed, the coordinator answers %v, want COORDINATOR_LOAD_IN_PROGRESS", kerr.ErrorForCode(code))
	}
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Group = "g"
	if resp := handleDirect(context.Background(), b, fetch, 5).(*kmsg.OffsetFetchResponse); resp.ErrorCode != kerr.CoordinatorLoadInProgress.Code {
		t.Fatalf("OffsetFetch after a reload that failed: %+v", resp)
	}

	b = restart(t, b, mod)
	if got := fetchedOffset(t, kadmFor(t, b), "g"); got != 5 {
		t.Fatalf("after a restart, OffsetFetch shows %d, want 5", got)
	}
}

// waitRebuilt waits until a driver has thrown its coordinator away at
// least once.
func waitRebuilt[C coordinator, T ~uint64](t *testing.T, d *coordDriver[C, T]) {
	t.Helper()
	waitDriver(t, d, "the "+d.topic+" coordinator is thrown away", func() bool { return d.incarnation > 0 })
}

// consumeCommitted reads partition 0 of topic t read_committed until it
// has n records, and returns their values.
func consumeCommitted(t *testing.T, b *Broker, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr().String()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"t": {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(t)
	var values []string
	for len(values) < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consuming t after %q: %v", values, err)
		}
		fs.EachRecord(func(r *kgo.Record) { values = append(values, string(r.Value)) })
	}
	return values
}

// txnProducer is a transactional producer (id tx) to partition 0 of
// topic t on b, closed when the test ends, and produce, which begins a
// transaction and produces value in it.
func txnProducer(t *testing.T, b *Broker) (cl *kgo.Client, produce func(value string)) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr().String()), kgo.TransactionalID("tx"),
		kgo.DefaultProduceTopic("t"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx := testCtx(t)
	return cl, func(value string) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(value)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", value, err)
		}
	}
}

// commitSecond commits a second transaction, of "b", and checks that t
// reads a, b read_committed: the first transaction's "a" is there once.
func commitSecond(t *testing.T, b *Broker, cl *kgo.Client, produce func(string)) {
	t.Helper()
	produce("b")
	if err := cl.EndTransaction(testCtx(t), kgo.TryCommit); err != nil {
		t.Fatalf("the next commit: %v", err)
	}
	if got := consumeCommitted(t, b, 2); strings.Join(got, ",") != "a,b" {
		t.Fatalf("read committed %q, want a, b", got)
	}
}

// An EndTxn whose PrepareCommit cannot be appended to __transaction_state
// is answered with a retriable error and forgotten: the transaction is
// still ongoing in the reloaded coordinator, as in the log. So a
// transactional producer (franz-go) that keeps retrying commits once the
// topic takes batches again, and goes on with its next transaction.
func TestTransactionCommitsAfterItsOutcomeFailedToAppend(t *testing.T) {
	b, adm := startWithTopic(t, nil)
	cl, produce := txnProducer(t, b)
	ctx := testCtx(t)

	produce("a")
	restore := refuseBatches(t, b, adm, txnStateTopic)
	ended := make(chan error, 1)
	go func() { ended <- cl.EndTransaction(ctx, kgo.TryCommit) }()
	waitRebuilt(t, &b.txns.coordDriver)
	restore()
	if err := <-ended; err != nil {
		t.Fatalf("commit across the fault: %v", err)
	}

	commitSecond(t, b, cl, produce)
}

// After a rebuild the transaction coordinator writes the markers of a
// transaction whose outcome is in the log again: here its CompleteCommit
// cannot be appended after the first markers were written, so the markers
// are written again (each reload, until __transaction_state takes batches).
// A marker written twice changes nothing: the data is read committed
// once, and the producer's next transaction commits as usual.
func TestPreparedTransactionCompletesAfterItsCompletionFailedToAppend(t *testing.T) {
	fs := &holdingFS{FS: vfs.NewCrashableMem(), prefix: "t-0/", held: make(chan struct{}, 1), release: make(chan struct{})}
	released := false
	release := func() {
		if !released {
			released = true
			close(fs.release)
		}
	}
	b, adm := startWithTopic(t, func(c *Config) { c.DataDir, c.FS = t.TempDir(), fs })
	t.Cleanup(release) // before the broker closes (cleanups run last first)
	cl, produce := txnProducer(t, b)
	ctx := testCtx(t)

	produce("a")
	fs.armed.Store(true)
	// EndTxn is answered once PrepareCommit is durable; the commit marker
	// on t-0 is then held until __transaction_state refuses batches.
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fs.held:
	case <-time.After(time.Minute):
		t.Fatal("the commit marker on t-0 was never synced")
	}
	restore := refuseBatches(t, b, adm, txnStateTopic)
	fs.armed.Store(false)
	release()
	waitRebuilt(t, &b.txns.coordDriver)
	restore()

	commitSecond(t, b, cl, produce)
	part, _ := b.parts.get("t", 0)
	markers := 0
	if _, err := readBatchRecords(ctx, part.log, func(bi batchInfo, _ int64, _, _ []byte) {
		if bi.control {
			markers++
		}
	}); err != nil {
		t.Fatal(err)
	}
	if markers < 3 {
		t.Fatalf("%d markers on t-0: the first transaction's were not written again", markers)
	}
	describe := kmsg.NewPtrDescribeTransactionsRequest()
	describe.TransactionalIDs = []string{"tx"}
	resp := handleDirect(ctx, b, describe, 0).(*kmsg.DescribeTransactionsResponse)
	if st := resp.TransactionStates[0]; st.ErrorCode != 0 || st.State != "CompleteCommit" {
		t.Fatalf("the transaction after its commit: %+v", st)
	}
}
