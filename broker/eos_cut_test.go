package broker_test

// Exactly-once through real clients whose connections are cut: a dialer
// whose connections the test breaks in the middle of a request, or after
// the broker has answered one but before the client reads the answer.

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// What a cut connection returns to the client: the errors a connection
// reset by the peer gives, so that the client treats them as it would a
// real network failure.
var (
	errCutWrite = &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}
	errCutRead  = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	errCutDial  = &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
)

// eosCutter dials connections that it may cut. Each request of the APIs
// it cuts (Produce unless told otherwise) that a connection writes is, at
// random:
//   - torn: a random prefix of it is written and the connection closed, so
//     the broker reads a truncated frame and must not apply it;
//   - unanswered: written whole, and the connection closed as soon as the
//     first bytes of a response arrive, so the broker has handled the
//     request (and written its batch) but the client never learns of it and
//     sends it again;
//   - or left alone.
//
// cutAll closes every open connection at once, whatever it is doing; kill
// also refuses every later dial, so that the client looks like a crashed
// process to the broker.
type eosCutter struct {
	tornPct, unansweredPct int            // per request cut; immutable
	keys                   map[int16]bool // the API keys of the requests cut; immutable after newEOSCutter's caller sets it

	torn atomic.Int64 // requests torn
	lost atomic.Int64 // responses lost
	cuts atomic.Int64 // connections closed by cutAll or kill

	mu    sync.Mutex
	rng   *rand.Rand        // guarded by mu
	conns map[*eosConn]bool // open connections; guarded by mu
	dead  bool              // guarded by mu
}

func newEOSCutter(seed uint64, tornPct, unansweredPct int) *eosCutter {
	return &eosCutter{
		tornPct:       tornPct,
		unansweredPct: unansweredPct,
		keys:          map[int16]bool{int16(kmsg.Produce): true},
		rng:           rand.New(rand.NewPCG(seed, seed^0x5eed)),
		conns:         map[*eosConn]bool{},
	}
}

// dial is a kgo.Dialer.
func (c *eosCutter) dial(ctx context.Context, network, host string) (net.Conn, error) {
	c.mu.Lock()
	dead := c.dead
	c.mu.Unlock()
	if dead {
		return nil, errCutDial
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	conn := &eosConn{Conn: nc, cutter: c}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		nc.Close()
		return nil, errCutDial
	}
	c.conns[conn] = true
	return conn, nil
}

// decide picks the fate of one request of size n: how many of its
// bytes to write before cutting (-1: all, and do not cut), and whether to
// lose its response.
func (c *eosCutter) decide(n int) (tearAt int, loseResponse bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch roll := c.rng.IntN(100); {
	case roll < c.tornPct:
		return c.rng.IntN(n), false
	case roll < c.tornPct+c.unansweredPct:
		return -1, true
	}
	return -1, false
}

func (c *eosCutter) forget(conn *eosConn) {
	c.mu.Lock()
	delete(c.conns, conn)
	c.mu.Unlock()
}

// cutAll closes every open connection.
func (c *eosCutter) cutAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for conn := range c.conns {
		conn.Conn.Close()
		c.cuts.Add(1)
	}
	clear(c.conns)
}

// kill cuts every connection and refuses to dial again.
func (c *eosCutter) kill() {
	c.mu.Lock()
	c.dead = true
	c.mu.Unlock()
	c.cutAll()
}

// eosConn is a connection an eosCutter may cut.
type eosConn struct {
	net.Conn
	cutter *eosCutter
	// loseNext is set when the next response read is to be dropped with
	// the connection. kgo writes from one goroutine and reads from
	// another, hence atomic.
	loseNext atomic.Bool
}

// Write sees one whole request per call (kgo writes each request with one
// Write): size, then the header's API key.
func (c *eosConn) Write(b []byte) (int, error) {
	if len(b) >= 6 && c.cutter.keys[int16(binary.BigEndian.Uint16(b[4:6]))] && c.cutter.tornPct+c.cutter.unansweredPct > 0 {
		tearAt, lose := c.cutter.decide(len(b))
		if tearAt >= 0 {
			n, _ := c.Conn.Write(b[:tearAt])
			c.close()
			c.cutter.torn.Add(1)
			return n, errCutWrite
		}
		if lose {
			c.loseNext.Store(true)
		}
	}
	return c.Conn.Write(b)
}

// Read drops the connection, and what was read, once a response whose
// loss was decided starts to arrive.
func (c *eosConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && c.loseNext.Load() {
		c.close()
		c.cutter.lost.Add(1)
		return 0, errCutRead
	}
	return n, err
}

func (c *eosConn) Close() error {
	c.cutter.forget(c)
	return c.Conn.Close()
}

func (c *eosConn) close() {
	c.cutter.forget(c)
	c.Conn.Close()
}

// eosPause waits d, or until ctx ends: the moment of a cut or a kill is
// the point, not an event to wait for.
func eosPause(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// newEOSRand is a seeded random source for one goroutine.
func newEOSRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, ^seed)) }
