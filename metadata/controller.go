package metadata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Controller keeps the metadata log with raft and serves its image.
type Controller struct {
	// Set by Open, then immutable.
	cfg           Config
	logger        *slog.Logger
	raft          *raft.Raft
	fsm           *fsm
	store         *raftboltdb.BoltStore // raft's log and stable store
	transport     raft.Transport
	ownsTransport bool // transport was made by Open, so Close closes it

	ctx    context.Context // canceled by Close; bounds leader-side work
	cancel context.CancelFunc

	ready     chan struct{} // closed after the first leadership's start-up work
	readyErr  error         // written before ready is closed
	watchDone chan struct{} // closed when watchLeadership returns

	partitionsMu sync.Mutex // serialises CreatePartitions, whose record depends on the count

	closeOnce sync.Once
	closeErr  error // written once, under closeOnce
}

// Open starts the controller in cfg.Dir. When the directory holds no state
// it bootstraps a one-voter cluster of this node. It returns once this node
// leads, every record in the log is applied, the cluster has an id and this
// broker is registered as cfg describes; or with ctx's error. (Only a
// leader proposes: with more voters, a node that does not win the election
// waits in Open until it does or ctx ends. Forwarding is the cluster step.)
func Open(ctx context.Context, cfg Config) (*Controller, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	dbPath := filepath.Join(cfg.Dir, "raft.db")
	store, err := raftboltdb.New(raftboltdb.Options{
		Path:        dbPath,
		BoltOptions: &bbolt.Options{Timeout: cfg.LockTimeout},
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s is locked (still locked after %s)", ErrDirInUse, dbPath, cfg.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("metadata: open %s: %w", dbPath, err)
	}
	c := &Controller{
		cfg:       cfg,
		logger:    cfg.Logger,
		store:     store,
		transport: cfg.Transport,
		ready:     make(chan struct{}),
		watchDone: make(chan struct{}),
	}
	if c.transport == nil {
		_, c.transport = raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("samsa-node-%d", cfg.NodeID)))
		c.ownsTransport = true
	}
	if err := c.startRaft(); err != nil {
		c.closeStores()
		return nil, err
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go c.watchLeadership()

	select {
	case <-c.ready:
		err = c.readyErr
	case <-ctx.Done():
		err = fmt.Errorf("metadata: waiting to lead: %w", ctx.Err())
	}
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	img := c.Image()
	c.logger.Info("metadata: controller ready", "cluster", img.ClusterID, "node", cfg.NodeID,
		"offset", img.Offset, "topics", len(img.Topics), "brokers", len(img.Brokers))
	return c, nil
}

// startRaft bootstraps the cluster if the directory is new and starts raft,
// which restores the newest snapshot into the FSM.
func (c *Controller) startRaft() error {
	rc := c.cfg.raftConfig()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(c.cfg.Dir, 2, rc.Logger)
	if err != nil {
		return fmt.Errorf("metadata: snapshot store: %w", err)
	}
	exists, err := raft.HasExistingState(c.store, c.store, snaps)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	if !exists {
		servers := []raft.Server{{Suffrage: raft.Voter, ID: rc.LocalID, Address: c.transport.LocalAddr()}}
		err := raft.BootstrapCluster(rc, c.store, c.store, snaps, c.transport, raft.Configuration{Servers: servers})
		if err != nil {
			return fmt.Errorf("metadata: bootstrap: %w", err)
		}
		c.logger.Debug("metadata: bootstrapped a one-voter cluster", "dir", c.cfg.Dir)
	}
	c.fsm = newFSM(c.logger)
	c.raft, err = raft.NewRaft(rc, c.fsm, c.store, c.store, snaps, c.transport)
	if err != nil {
		return fmt.Errorf("metadata: start raft: %w", err)
	}
	return nil
}

// watchLeadership runs the leader's start-up work each time this node
// becomes leader, until Close.
func (c *Controller) watchLeadership() {
	defer close(c.watchDone)
	first := true
	for {
		select {
		case <-c.ctx.Done():
			return
		case leader := <-c.raft.LeaderCh():
			if !leader {
				continue
			}
			err := c.onLeader(c.ctx)
			if first {
				first = false
				c.readyErr = err
				close(c.ready)
			} else if err != nil {
				c.logger.Warn("metadata: leader start-up failed", "err", err)
			}
		}
	}
}

// onLeader waits until every record committed by earlier leaders is
// applied, then writes what the image lacks: the cluster id, this node as
// controller, and this broker's registration.
func (c *Controller) onLeader(ctx context.Context) error {
	if err := wait(ctx, c.raft.Barrier(0)); err != nil {
		return fmt.Errorf("metadata: replay: %w", raftError(err))
	}
	img := c.Image()
	if img.ClusterID == "" {
		if err := c.propose(ctx, ClusterInitRecord{ClusterID: newClusterID()}); err != nil {
			return err
		}
	}
	if img.ControllerID != c.cfg.NodeID {
		if err := c.propose(ctx, LeaderChangeRecord{NodeID: c.cfg.NodeID}); err != nil {
			return err
		}
	}
	self := Broker{NodeID: c.cfg.NodeID, Host: c.cfg.Host, Port: c.cfg.Port, Rack: c.cfg.Rack}
	if b, ok := img.Brokers[self.NodeID]; !ok || b != self {
		if err := c.propose(ctx, RegisterBrokerRecord{Broker: self}); err != nil {
			return err
		}
	}
	return nil
}

// Close shuts raft down and closes the stores. It is safe to call more
// than once; later calls return the first call's result.
func (c *Controller) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		err := c.raft.Shutdown().Error()
		<-c.watchDone
		c.closeErr = errors.Join(err, c.closeStores())
	})
	return c.closeErr
}

func (c *Controller) closeStores() error {
	var errs []error
	if closer, ok := c.transport.(raft.WithClose); ok && c.ownsTransport {
		errs = append(errs, closer.Close())
	}
	errs = append(errs, c.store.Close())
	return errors.Join(errs...)
}

// Image returns the current image. It is immutable: never modify it.
func (c *Controller) Image() *Image { return c.fsm.image.Load() }

// OnChange registers fn to be called after each applied record and after
// a snapshot is restored, in log order, with the image before and after.
// fn is called once right away with (nil, current image) on the caller's
// goroutine; later calls come from raft's apply goroutine, one at a time,
// and a proposal returns only after fn has seen its record. So fn must be
// quick and must not call OnChange or a proposal method (that deadlocks);
// it may call the returned cancel, after which fn is not called again.
func (c *Controller) OnChange(fn func(prev, next *Image)) (cancel func()) {
	return c.fsm.subscribe(fn)
}

// Snapshot makes raft take a snapshot now (tests, and operators before a
// backup). Nothing new to snapshot is not an error.
func (c *Controller) Snapshot() error {
	// Raft snapshots again even when nothing was applied since the last one.
	last, _ := strconv.ParseUint(c.raft.Stats()["last_snapshot_index"], 10, 64)
	if last != 0 && last == c.raft.AppliedIndex() {
		return nil
	}
	err := c.raft.Snapshot().Error()
	if errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("metadata: snapshot: %w", raftError(err))
	}
	return nil
}

// propose appends rec to the log and waits until it is applied. It returns
// the apply error, if any. If ctx ends first the record may still be
// applied later.
func (c *Controller) propose(ctx context.Context, rec Record) error {
	data, err := EncodeRecord(rec)
	if err != nil {
		return err
	}
	f := c.raft.Apply(data, 0)
	if err := wait(ctx, f); err != nil {
		return raftError(err)
	}
	if err, ok := f.Response().(error); ok {
		return err
	}
	return nil
}

// wait waits for f or for ctx to end.
func wait(ctx context.Context, f raft.Future) error {
	if ctx.Done() == nil {
		return f.Error()
	}
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// raftError maps raft's errors to this package's.
func raftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %v", ErrNotController, err)
	}
	return err
}
