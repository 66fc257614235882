package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/samsa-io/samsa/group"
	"github.com/samsa-io/samsa/internal/vfs"
	"github.com/samsa-io/samsa/metadata"
	"github.com/samsa-io/samsa/storage"
	"github.com/samsa-io/samsa/txn"
)

// Config is what a broker needs to start.
type Config struct {
	NodeID int32
	// DataDir holds the partition logs (logs/) and the metadata log
	// (metadata/).
	DataDir string
	// KafkaAddr is where the Kafka API listens, e.g. ":9092".
	KafkaAddr string
	// AdvertisedAddr is the host:port clients are told to connect to;
	// empty means the listener's address.
	AdvertisedAddr string
	// AutoCreateTopics creates a topic on first use (auto.create.topics.enable).
	AutoCreateTopics bool
	// DefaultPartitions is num.partitions for auto-created topics.
	DefaultPartitions int32
	// MaxRequestBytes is socket.request.max.bytes.
	MaxRequestBytes int32
	Logger          *slog.Logger
	// FS is the filesystem for partition logs; vfs.Default when nil.
	FS vfs.FS
	// Groups configures the group coordinator (offsets.topic.num.partitions,
	// group.min.session.timeout.ms, …); a zero Partitions means
	// group.DefaultConfig().
	Groups group.Config
	// Transactions configures the transaction coordinator
	// (transaction.state.log.num.partitions, transaction.max.timeout.ms,
	// …); a zero field means Kafka's default.
	Transactions txn.Config
	// FetchSessionCacheSlots is max.incremental.fetch.session.cache.slots:
	// how many fetch sessions (KIP-227) the broker keeps, evicting the
	// least recently used beyond (fetch_session.go). Zero means Kafka's
	// default, 1000; below zero, none: clients fetch without sessions.
	FetchSessionCacheSlots int
	// SyncFSThreshold is storage.StoreOptions.SyncFSThreshold: from how
	// many logs a group-commit round uses one syncfs(2) instead of an
	// fdatasync per log. Zero means storage.DefaultSyncFSThreshold;
	// below zero, never (a filesystem shared with other busy writers).
	SyncFSThreshold int
	// Metrics is where the broker registers its Prometheus collectors
	// (consumer group lag, …); nil registers none. Close unregisters them.
	Metrics prometheus.Registerer
}

// DefaultConfig returns the defaults of `samsa serve`.
func DefaultConfig() Config {
	return Config{
		NodeID:            0,
		DataDir:           "./samsa-data",
		KafkaAddr:         ":9092",
		AutoCreateTopics:  true,
		DefaultPartitions: 1,
		MaxRequestBytes:   100 << 20,
		Groups:            group.DefaultConfig(),
		Transactions:      txn.DefaultConfig(),
	}
}

// Broker is a running Samsa broker.
type Broker struct {
	cfg    Config
	logger *slog.Logger
	apis   apiTable

	lock  *dirLock
	store *storage.Store
	meta  *metadata.Controller
	ln    net.Listener
	host  string // advertised
	port  int32

	parts       *partitions
	producerIDs producerIDAllocator    // init_producer_id.go
	groups      *groups                // the group coordinator's driver (groups.go)
	txns        *txnDriver             // the transaction coordinator's driver (transactions.go)
	metrics     []prometheus.Collector // registered with cfg.Metrics (group_metrics.go, commit_metrics.go)
	bufs        bufferPool             // request frames, responses, fetch read buffers (buffers.go)
	workers     *workers               // run request handlers (workers.go); immutable
	// fetchSessions holds the fetch sessions (fetch_session.go); immutable.
	fetchSessions *fetchSessionCache

	// brokerMetrics counts requests, traffic and fsyncs, and reads the
	// logs at scrape time (metrics.go); immutable.
	brokerMetrics *brokerMetrics

	ctx    context.Context // cancelled on shutdown: long polls return
	cancel context.CancelFunc

	mu     sync.Mutex
	conns  map[*conn]struct{} // guarded by mu
	closed bool               // guarded by mu
	wg     sync.WaitGroup     // accept loop and connections
}

// Start opens the data directory, starts the metadata quorum and begins
// serving the Kafka API.
func Start(ctx context.Context, cfg Config) (_ *Broker, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.FS == nil {
		cfg.FS = vfs.Default
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultConfig().MaxRequestBytes
	}
	if cfg.DefaultPartitions <= 0 {
		cfg.DefaultPartitions = 1
	}
	if cfg.Groups.Partitions <= 0 {
		cfg.Groups = group.DefaultConfig()
	}
	if cfg.FetchSessionCacheSlots == 0 {
		cfg.FetchSessionCacheSlots = defaultFetchSessionSlots
	}
	b := &Broker{cfg: cfg, logger: cfg.Logger, apis: newAPITable(), conns: map[*conn]struct{}{}, workers: newWorkers(maxIdleWorkers)}
	b.fetchSessions = newFetchSessionCache(cfg.FetchSessionCacheSlots, fetchSessionIdle, randomSessionID)
	b.brokerMetrics = newBrokerMetrics(b)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			b.cancel()
			b.release()
		}
	}()
	if b.lock, err = lockDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if b.ln, err = net.Listen("tcp", cfg.KafkaAddr); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.KafkaAddr, err)
	}
	if b.host, b.port, err = advertised(cfg.AdvertisedAddr, b.ln.Addr()); err != nil {
		return nil, err
	}
	b.meta, err = metadata.Open(ctx, metadata.Config{
		NodeID: cfg.NodeID,
		Dir:    filepath.Join(cfg.DataDir, "metadata"),
		Logger: b.logger.With("component", "metadata"),
		Host:   b.host,
		Port:   b.port,
	})
	if err != nil {
		return nil, fmt.Errorf("start metadata: %w", err)
	}
	b.parts = newPartitions(b)
	b.store, err = storage.OpenStore(filepath.Join(cfg.DataDir, "logs"), storage.StoreOptions{
		FS:        cfg.FS,
		Logger:    b.logger.With("component", "storage"),
		ConfigFor: b.parts.logConfigFor,
		Commits:   b.brokerMetrics,

		SyncFSThreshold: cfg.SyncFSThreshold,
	})
	if err != nil {
		return nil, fmt.Errorf("open logs: %w", err)
	}
	b.parts.follow(b.meta)
	if b.groups, err = newGroups(ctx, b, cfg.Groups); err != nil {
		return nil, err
	}
	b.groups.start()
	if b.txns, err = newTxnDriver(ctx, b, cfg.Transactions); err != nil {
		return nil, err
	}
	b.txns.start()
	if err = b.registerMetrics(); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	if err = b.brokerMetrics.register(cfg.Metrics); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	b.wg.Go(b.acceptLoop)
	b.logger.Info("broker started", "node", cfg.NodeID, "kafka", b.ln.Addr().String(),
		"advertised", net.JoinHostPort(b.host, strconv.Itoa(int(b.port))), "data", cfg.DataDir,
		"clean_shutdown", b.store.WasCleanShutdown())
	return b, nil
}

// advertised picks the host and port clients are told about.
func advertised(addr string, listen net.Addr) (string, int32, error) {
	if addr == "" {
		tcp := listen.(*net.TCPAddr)
		host := tcp.IP.String()
		if tcp.IP.IsUnspecified() {
			host = "localhost"
		}
		return host, int32(tcp.Port), nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("advertised address %q: %w", addr, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("advertised address %q: bad port", addr)
	}
	return host, int32(p), nil
}

// Addr is the address the Kafka API listens on.
func (b *Broker) Addr() net.Addr { return b.ln.Addr() }

// Store returns the partition logs (tests and tools).
func (b *Broker) Store() *storage.Store { return b.store }

func (b *Broker) acceptLoop() {
	for {
		nc, err := b.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				b.logger.Error("accept failed", "err", err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return
		}
		c := &conn{b: b, nc: nc, logger: b.logger.With("remote", nc.RemoteAddr().String())}
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			nc.Close()
			return
		}
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Go(func() {
			c.serve(b.ctx)
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
		})
	}
}

// Close stops accepting, lets requests in flight finish (long polls return
// at once), closes the connections, flushes and closes the logs (recording a
// clean shutdown), and stops the metadata quorum. ctx bounds the wait for
// requests in flight.
func (b *Broker) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	b.ln.Close()
	b.cancel()
	// Connections stop reading; what they have read is answered.
	b.mu.Lock()
	for c := range b.conns {
		c.stopReading()
	}
	b.mu.Unlock()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		b.mu.Lock()
		for c := range b.conns {
			c.nc.Close()
		}
		b.mu.Unlock()
		<-done
	}
	return b.release()
}

// release closes what Start opened, in reverse order.
func (b *Broker) release() error {
	var errs []error
	b.workers.close()
	b.unregisterMetrics()
	b.brokerMetrics.unregister()
	if b.txns != nil {
		b.txns.close() // before the groups: its marker writers tell them of markers
	}
	if b.groups != nil {
		b.groups.close()
	}
	if b.meta != nil {
		errs = append(errs, b.meta.Close())
	}
	if b.parts != nil && b.store != nil {
		b.snapshotProducers() // after the last append (producers.go)
	}
	if b.store != nil {
		errs = append(errs, b.store.Close())
	}
	if b.ln != nil {
		b.ln.Close()
	}
	if b.lock != nil {
		errs = append(errs, b.lock.unlock())
	}
	return errors.Join(errs...)
}
