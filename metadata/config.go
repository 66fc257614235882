package metadata

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/raft"
)

// Config configures a Controller. Zero fields take the defaults listed.
type Config struct {
	NodeID int32        // this node's id, >= 0
	Dir    string       // metadata directory, e.g. <data-dir>/metadata
	Logger *slog.Logger // nil: discard
	// Transport carries raft's messages to the other voters. Nil: an
	// in-memory transport, for a one-voter cluster. A Transport passed in is
	// the caller's to close.
	Transport raft.Transport

	// The broker to register on start (the node itself): where clients
	// connect to it.
	Host string
	Port int32
	Rack string

	// SnapshotThreshold is how many records past the last snapshot trigger
	// a new one (default 8192); raft checks every SnapshotInterval
	// (default 2 min).
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration

	// HeartbeatTimeout and ElectionTimeout are raft's (defaults 100 ms and
	// 150 ms: a one-voter node leads within about 200 ms of start). The
	// leader lease is half the heartbeat timeout.
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration

	// LockTimeout bounds how long Open waits for another process (or
	// another Controller) to release the directory (default 1 s).
	LockTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 2 * time.Minute
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = 100 * time.Millisecond
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = max(150*time.Millisecond, c.HeartbeatTimeout)
	}
	if c.LockTimeout == 0 {
		c.LockTimeout = time.Second
	}
}

// Validate reports what is wrong with c, after defaults are applied.
func (c *Config) Validate() error {
	var errs []error
	if c.NodeID < 0 {
		errs = append(errs, fmt.Errorf("node id %d is negative", c.NodeID))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("no metadata directory"))
	}
	if c.Host == "" {
		errs = append(errs, errors.New("no broker host"))
	}
	if c.Port <= 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("broker port %d out of range", c.Port))
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		errs = append(errs, fmt.Errorf("election timeout %s below heartbeat timeout %s", c.ElectionTimeout, c.HeartbeatTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("metadata: config: %w", err)
	}
	return nil
}

// raftConfig returns raft's configuration for c.
func (c *Config) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = serverID(c.NodeID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.HeartbeatTimeout / 2
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.SnapshotInterval = c.SnapshotInterval
	rc.Logger = newHCLogAdapter(c.Logger)
	return rc
}

func serverID(nodeID int32) raft.ServerID {
	return raft.ServerID(fmt.Sprint(nodeID))
}
