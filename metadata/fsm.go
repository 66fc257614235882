package metadata

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// fsm is the raft state machine: it decodes each committed record, applies
// it to the current image and tells the listeners.
//
// Lock order: notifyMu before listenersMu.
type fsm struct {
	logger *slog.Logger

	image atomic.Pointer[Image] // the current image; replaced, never modified

	// notifyMu is held while the image is replaced and the listeners are
	// told, and while a new listener gets its first call, so that every
	// listener sees each change exactly once and in order.
	notifyMu sync.Mutex

	listenersMu sync.Mutex
	listeners   []*listener // guarded by listenersMu; copied on write
	restoredAt  uint64      // raft index of the last snapshot restored; guarded by notifyMu
}

type listener struct {
	fn       func(prev, next *Image)
	canceled atomic.Bool
}

func newFSM(logger *slog.Logger) *fsm {
	f := &fsm{logger: logger}
	f.image.Store(EmptyImage())
	return f
}

// Apply implements raft.FSM. It returns the apply error, if any, which
// raft hands to the proposer through ApplyFuture.Response.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	rec, err := DecodeRecord(l.Data)
	if err != nil {
		f.logger.Error("metadata: skipping undecodable record", "offset", l.Index, "err", err)
		return err
	}
	f.notifyMu.Lock()
	defer f.notifyMu.Unlock()
	prev := f.image.Load()
	next, err := Apply(prev, l.Index, rec)
	if err != nil {
		f.logger.Debug("metadata: record not applied", "offset", l.Index, "type", rec.Type(), "err", err)
		return err
	}
	f.publish(prev, next)
	return nil
}

// publish makes next the current image and tells the listeners. The caller
// holds notifyMu.
func (f *fsm) publish(prev, next *Image) {
	f.image.Store(next)
	f.listenersMu.Lock()
	ls := f.listeners
	f.listenersMu.Unlock()
	for _, l := range ls {
		if !l.canceled.Load() {
			l.fn(prev, next)
		}
	}
}

// subscribe calls fn(nil, current) and then registers it for every later
// change.
func (f *fsm) subscribe(fn func(prev, next *Image)) (cancel func()) {
	l := &listener{fn: fn}
	f.notifyMu.Lock()
	fn(nil, f.image.Load())
	f.listenersMu.Lock()
	f.listeners = append(slices.Clip(f.listeners), l)
	f.listenersMu.Unlock()
	f.notifyMu.Unlock()
	return func() {
		l.canceled.Store(true)
		f.listenersMu.Lock()
		defer f.listenersMu.Unlock()
		f.listeners = slices.DeleteFunc(slices.Clone(f.listeners), func(x *listener) bool { return x == l })
	}
}

// Snapshot implements raft.FSM. An image is immutable, so the snapshot is
// just the current pointer; Persist serialises it on raft's snapshot
// goroutine while Apply goes on.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return imageSnapshot{f.image.Load()}, nil
}

// Restore implements raft.FSM: it replaces the image with a snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	img, err := decodeSnapshot(rc)
	if err != nil {
		return err
	}
	f.notifyMu.Lock()
	defer f.notifyMu.Unlock()
	f.restoredAt = img.Offset
	f.publish(f.image.Load(), img)
	return nil
}

type imageSnapshot struct{ img *Image }

func (s imageSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := encodeSnapshot(sink, s.img); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (imageSnapshot) Release() {}

// snapshotVersion is the version of the snapshot body.
const snapshotVersion = 0

// snapshotBody is an image as a snapshot stores it: lists sorted by key, so
// that equal images give equal bytes.
type snapshotBody struct {
	Version       int
	ClusterID     string
	ControllerID  int32
	Offset        uint64
	Brokers       []Broker
	Topics        []*Topic
	BrokerConfigs map[int32]map[string]string
	// NextProducerID is absent (zero) in snapshots from before it existed.
	NextProducerID int64 `json:",omitempty"`
}

func encodeSnapshot(w io.Writer, img *Image) error {
	body := snapshotBody{
		Version:        snapshotVersion,
		ClusterID:      img.ClusterID,
		ControllerID:   img.ControllerID,
		Offset:         img.Offset,
		BrokerConfigs:  img.BrokerConfigs,
		NextProducerID: img.NextProducerID,
	}
	for _, id := range img.BrokerIDs() {
		body.Brokers = append(body.Brokers, img.Brokers[id])
	}
	for _, name := range img.TopicNames() {
		body.Topics = append(body.Topics, img.Topics[name])
	}
	return json.NewEncoder(w).Encode(body)
}

func decodeSnapshot(r io.Reader) (*Image, error) {
	var body snapshotBody
	if err := json.NewDecoder(r).Decode(&body); err != nil {
		return nil, fmt.Errorf("%w: snapshot: %v", ErrCorruptRecord, err)
	}
	if body.Version != snapshotVersion {
		return nil, fmt.Errorf("%w: snapshot version %d", ErrUnknownRecord, body.Version)
	}
	img := EmptyImage()
	img.ClusterID, img.ControllerID, img.Offset = body.ClusterID, body.ControllerID, body.Offset
	img.NextProducerID = body.NextProducerID
	for _, b := range body.Brokers {
		img.Brokers[b.NodeID] = b
	}
	for _, t := range body.Topics {
		img.Topics[t.Name] = t
		img.TopicsByID[t.ID] = t
	}
	for id, cfg := range body.BrokerConfigs {
		img.BrokerConfigs[id] = cfg
	}
	return img, nil
}
