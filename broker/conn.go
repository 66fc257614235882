package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/storage"
)

// maxInFlight bounds the requests of one connection being handled at once;
// the reader stops reading until the oldest is answered.
const maxInFlight = 64

// conn serves one client connection: one goroutine reads and decodes
// requests, each request is handled in its own goroutine, and one goroutine
// writes the responses back in request order, as Kafka's protocol requires.
type conn struct {
	b      *Broker
	nc     net.Conn
	logger *slog.Logger

	// clientID is the client id of the last request read, which the next
	// one shares unless the client changed it. Reader goroutine only.
	clientID string
	// sectionOut is nc as file sections are sent to it (sectionWriter),
	// set on first use. Writer goroutine only.
	sectionOut io.Writer
}

// request is one request read from the connection: its header and decoded
// body, and its place in the response order. The reader sets everything
// but the response before the request is queued for the writer.
type request struct {
	key           int16
	version       int16
	correlationID int32
	clientID      string
	body          kmsg.Request
	conn          *conn

	// frame holds the request's bytes, from the broker's buffer pool: the
	// body may point into them. Given back, and nil, once the handler is
	// done with a Produce or Fetch request (recyclableFrame), or earlier
	// by the handler (releaseFrame).
	frame    *[]byte
	received time.Time // when it was read, for its latency (metrics.go)

	// The response. done is released when it is ready: out is then the
	// encoded response, empty (nil buf) when none is due (acks=0 produce),
	// and closeConn asks the writer to close the connection after the
	// responses before it. Written before done is released (by the
	// handler's goroutine, or the reader for a request it could not
	// parse), read by the writer after.
	done      sync.WaitGroup
	out       outFrame
	closeConn bool

	// Produce requests of one connection append in request order, as
	// Kafka's one-request-at-a-time connections do; an idempotent producer
	// pipelines batches and relies on it. prevProduce is the connection's
	// previous Produce request (nil for the first, and for other APIs),
	// whose appended is released by its passTurn. Set by the reader before
	// the handler starts; passTurn clears prevProduce, so that requests do
	// not hold on to each other.
	prevProduce *request
	appended    sync.WaitGroup // one to release for a Produce request
	ordered     bool           // a Produce request: appended is to be released
	passOnce    sync.Once
}

// waitTurn waits until the connection's previous Produce request has made
// its appends.
func (r *request) waitTurn() {
	if r.prevProduce != nil {
		r.prevProduce.appended.Wait()
	}
}

// passTurn lets the connection's next Produce request append. The
// connection calls it when the handler returns, if the handler has not.
func (r *request) passTurn() {
	if r.ordered {
		r.passOnce.Do(func() {
			r.prevProduce = nil
			r.appended.Done()
		})
	}
}

// outFrame is an encoded response: buf, or when parts is not nil, the parts
// in order — ranges of buf and file sections (a Fetch response's record
// sets, fetch_frame.go). A frame owns its buffer and sections until
// release. The zero outFrame is no response.
type outFrame struct {
	buf    []byte
	pooled *[]byte // buf's holder from the buffer pool; nil when buf is not pooled
	parts  []framePart
	fetch  *fetchResponse // the sections' owner, when there are sections
}

// framePart is buf[from:to], or sec when sec is not nil.
type framePart struct {
	from, to int
	sec      *storage.Section
}

// release gives back the frame's buffer and sections.
func (f *outFrame) release(b *Broker) {
	if f.fetch != nil {
		f.fetch.release()
	}
	if f.pooled != nil {
		*f.pooled = f.buf // written or copied: no longer referenced
		b.bufs.put(f.pooled)
	}
	*f = outFrame{}
}

// smallSection is the size below which a record set is read into the
// write buffer rather than sent with sendfile(2): for it, one read costs
// less than a flush and a sendfile.
const smallSection = 8 << 10

func (c *conn) serve(ctx context.Context) {
	defer c.nc.Close()
	c.b.brokerMetrics.connectionOpened()
	defer c.b.brokerMetrics.connectionClosed()
	queue := make(chan *request, maxInFlight)
	var writer sync.WaitGroup
	writer.Go(func() { c.writeLoop(queue) })
	defer writer.Wait()
	defer close(queue)

	var handlers sync.WaitGroup
	defer handlers.Wait()
	fr := &frameReader{r: bufio.NewReaderSize(c.nc, 64<<10), maxBytes: c.b.cfg.MaxRequestBytes, pool: &c.b.bufs}
	var lastProduce *request
	for {
		frame, err := fr.next()
		received := time.Now() // for the request's latency (metrics.go)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
				c.logger.Info("closing connection", "err", err)
			}
			return
		}
		req, err := c.parse(*frame)
		if err != nil {
			// An ApiVersions version the broker does not know is answered
			// in v0 with UNSUPPORTED_VERSION and the supported ranges, so that
			// the client retries with one it finds there. Anything else the
			// broker cannot decode cannot be answered in its version:
			// close, as Kafka does.
			failed := &request{conn: c}
			var unsupported *unsupportedError
			if errors.As(err, &unsupported) && unsupported.key == apiVersionsKey {
				failed.out = outFrame{buf: c.b.apiVersionsFallback(unsupported.correlationID)}
				c.b.brokerMetrics.requestError(apiVersionsKey, kerr.UnsupportedVersion.Code)
				queue <- failed
				continue
			}
			c.logger.Info("closing connection: request cannot be served", "err", err)
			failed.closeConn = true
			queue <- failed
			return
		}
		req.frame, req.received = frame, received
		if req.key == int16(kmsg.Produce) {
			req.prevProduce, req.ordered = lastProduce, true
			req.appended.Add(1)
			lastProduce = req
		}
		req.done.Add(1)
		queue <- req
		handlers.Add(1)
		c.b.workers.goRun(func() {
			defer handlers.Done()
			c.handle(ctx, req)
		})
	}
}

// handle handles one request and encodes its response, on a worker
// goroutine of its own (workers.go).
func (c *conn) handle(ctx context.Context, req *request) {
	defer req.done.Done()
	defer req.passTurn()
	defer func() {
		if v := recover(); v != nil {
			c.logger.Error("handler panicked; closing connection", "api", kmsg.NameForKey(req.key),
				"version", req.version, "panic", v, "stack", string(debug.Stack()))
			req.out.release(c.b)
			req.closeConn = true
		}
	}()
	resp := c.b.handle(ctx, req)
	if resp != nil {
		req.out = c.b.encodeFrame(req, resp)
		c.b.brokerMetrics.responseErrors(req, resp, &req.out) // ErrorsPerSec (request_errors.go)
	}
	c.b.brokerMetrics.request(req.key, req.version, time.Since(req.received))
	if recyclableFrame(req.key) {
		req.releaseFrame(c.b)
		req.body = nil
	}
}

// releaseFrame gives the request's frame back to the pool; the handler
// must not read the parts of the body that pointed into it after this.
func (r *request) releaseFrame(b *Broker) {
	b.bufs.put(r.frame)
	r.frame = nil
}

// recyclableFrame reports whether the frame of a request of this API can
// be given back to the pool once the request is handled and its response
// encoded: true for Produce (the batches are in the log) and Fetch (kmsg
// copies its strings; nothing of it is in the response). Other requests'
// bodies may be kept by a coordinator (JoinGroup's protocol metadata, …).
func recyclableFrame(key int16) bool {
	return key == int16(kmsg.Produce) || key == int16(kmsg.Fetch)
}

// writeLoop writes responses in request order.
func (c *conn) writeLoop(queue <-chan *request) {
	w := bufio.NewWriterSize(c.nc, 64<<10)
	broken := false
	for p := range queue {
		p.done.Wait()
		if broken {
			p.out.release(c.b)
			continue
		}
		if p.closeConn {
			w.Flush()
			c.nc.Close()
			broken = true
			continue
		}
		if p.out.buf == nil {
			continue
		}
		err := c.writeFrame(w, &p.out)
		p.out.release(c.b)
		if err != nil {
			c.nc.Close()
			broken = true
			continue
		}
		// Flush when nothing else is ready to go out with it.
		if len(queue) == 0 {
			if err := w.Flush(); err != nil {
				c.nc.Close()
				broken = true
			}
		}
	}
	if !broken {
		w.Flush()
	}
}

// writeFrame writes f through w; a large file section goes straight from
// its file to the connection, after what w holds.
func (c *conn) writeFrame(w *bufio.Writer, f *outFrame) error {
	if f.parts == nil {
		_, err := w.Write(f.buf)
		return err
	}
	for _, part := range f.parts {
		if part.sec == nil {
			if _, err := w.Write(f.buf[part.from:part.to]); err != nil {
				return err
			}
			continue
		}
		n := part.sec.Len()
		if n <= smallSection {
			if w.Available() < n {
				if err := w.Flush(); err != nil {
					return err
				}
			}
			b, err := part.sec.AppendTo(w.AvailableBuffer())
			if err != nil {
				return err
			}
			if _, err := w.Write(b); err != nil {
				return err
			}
			continue
		}
		if err := w.Flush(); err != nil {
			return err
		}
		if c.sectionOut == nil {
			c.sectionOut = sectionWriter(c.nc)
		}
		if _, err := part.sec.WriteTo(c.sectionOut); err != nil {
			return err
		}
	}
	return nil
}

// rawSocket is a connection with its syscall.RawConn taken once: the
// connection's own SyscallConn allocates one at every call, which would be
// at every section sent with sendfile(2).
type rawSocket struct {
	net.Conn
	raw syscall.RawConn
}

func (s *rawSocket) SyscallConn() (syscall.RawConn, error) { return s.raw, nil }

// sectionWriter returns what to send file sections to nc through: a
// rawSocket when nc has a file descriptor, nc itself otherwise.
func sectionWriter(nc net.Conn) io.Writer {
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			return &rawSocket{Conn: nc, raw: raw}
		}
	}
	return nc
}

// frameReader reads size-prefixed requests of at most maxBytes from r,
// into buffers from pool (when not nil).
type frameReader struct {
	r        io.Reader
	maxBytes int32
	pool     *bufferPool
	size     [4]byte // here rather than on the stack, which it would escape
}

// readFrame reads one size-prefixed request of at most maxBytes.
func readFrame(r io.Reader, maxBytes int32) ([]byte, error) {
	frame, err := (&frameReader{r: r, maxBytes: maxBytes}).next()
	if err != nil {
		return nil, err
	}
	return *frame, nil
}

// next reads one request, into a pooled buffer when the pool has one with
// room for it.
func (fr *frameReader) next() (*[]byte, error) {
	if _, err := io.ReadFull(fr.r, fr.size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(fr.size[:]))
	if n < 8 {
		return nil, fmt.Errorf("request size %d is too small for a header", n)
	}
	if n > fr.maxBytes {
		return nil, fmt.Errorf("request of %d bytes exceeds socket.request.max.bytes (%d)", n, fr.maxBytes)
	}
	// Memory follows the bytes that arrive, not the size a peer declares:
	// a frame claiming 100 MiB and sending none pins only the first step
	// (or a recycled buffer, whose memory is already there).
	var bp *[]byte
	if fr.pool != nil {
		bp = fr.pool.get(int(n))
	}
	if bp == nil {
		frame := make([]byte, 0, min(classSize(int(n)), frameStep))
		bp = &frame
	}
	frame := *bp
	for int32(len(frame)) < n {
		if len(frame) == cap(frame) {
			// Doubling from a power of two up to n's class: the frame
			// ends in a buffer the pool gives back for the next one.
			grown := make([]byte, len(frame), min(2*cap(frame), classSize(int(n))))
			copy(grown, frame)
			frame = grown
		}
		m, err := fr.r.Read(frame[len(frame):min(cap(frame), int(n))])
		frame = frame[:len(frame)+m]
		if err != nil && int32(len(frame)) < n {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	*bp = frame
	return bp, nil
}

// frameStep is the largest first allocation for a request frame; it
// doubles as the bytes arrive. A produce request of a default-sized (1 MiB)
// batch fits in one step, so the common case allocates and copies once
// (and, with the pool warm, not at all).
const frameStep = 1 << 20

// unsupportedError is a request whose key or version the broker does not
// serve. It carries the header, so that an error response can be sent.
type unsupportedError struct {
	key, version  int16
	correlationID int32
}

func (e *unsupportedError) Error() string {
	return fmt.Sprintf("unsupported API %s (key %d) version %d", kmsg.NameForKey(e.key), e.key, e.version)
}

// parse decodes the request header and body.
func (c *conn) parse(frame []byte) (*request, error) {
	req, err := parseRequestAfter(c.b.apis, frame, c.clientID)
	if err != nil {
		return nil, err
	}
	req.conn = c
	c.clientID = req.clientID
	return req, nil
}

// parseRequest decodes a frame (without its size) into the request header
// and the body, for an API and version of apis.
func parseRequest(apis apiTable, frame []byte) (*request, error) {
	return parseRequestAfter(apis, frame, "")
}

// parseRequestAfter is parseRequest for a request that follows one with
// client id prevClientID, which it shares rather than allocates when its
// own is the same.
func parseRequestAfter(apis apiTable, frame []byte, prevClientID string) (*request, error) {
	if len(frame) < 8 {
		return nil, fmt.Errorf("request of %d bytes is too small for a header", len(frame))
	}
	req := &request{
		key:           int16(binary.BigEndian.Uint16(frame[0:])),
		version:       int16(binary.BigEndian.Uint16(frame[2:])),
		correlationID: int32(binary.BigEndian.Uint32(frame[4:])),
	}
	rest := frame[8:]
	api, ok := apis.lookup(req.key)
	if !ok || req.version < api.min || req.version > api.max {
		return nil, &unsupportedError{key: req.key, version: req.version, correlationID: req.correlationID}
	}
	req.body = kmsg.RequestForKey(req.key)
	req.body.SetVersion(req.version)
	// client_id: a nullable string with an int16 length.
	if len(rest) < 2 {
		return nil, errors.New("truncated client id")
	}
	idLen := int16(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if idLen > 0 {
		if len(rest) < int(idLen) {
			return nil, errors.New("truncated client id")
		}
		if id := rest[:idLen]; string(id) == prevClientID {
			req.clientID = prevClientID
		} else {
			req.clientID = string(id)
		}
		rest = rest[idLen:]
	}
	if req.body.IsFlexible() {
		var err error
		if rest, err = skipTags(rest); err != nil {
			return nil, err
		}
		// Before kmsg sees it: its tag loops trust the counts (layout.go).
		if err := checkFlexibleBody(req.key, req.version, rest); err != nil {
			return nil, fmt.Errorf("%s v%d: %w", kmsg.NameForKey(req.key), req.version, err)
		}
	}
	if err := req.body.ReadFrom(rest); err != nil {
		return nil, fmt.Errorf("%s v%d: %w", kmsg.NameForKey(req.key), req.version, err)
	}
	return req, nil
}

// skipTags skips a tagged-field section (KIP-482).
func skipTags(b []byte) ([]byte, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 {
		return nil, errors.New("bad tagged fields")
	}
	b = b[w:]
	for range n {
		if _, w = binary.Uvarint(b); w <= 0 {
			return nil, errors.New("bad tag")
		}
		b = b[w:]
		size, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < size {
			return nil, errors.New("bad tag size")
		}
		b = b[w+int(size):]
	}
	return b, nil
}

// encodeFrame encodes a handler's response for the writer.
func (b *Broker) encodeFrame(req *request, resp kmsg.Response) outFrame {
	if f, ok := resp.(*fetchResponse); ok {
		return f.frame(b, req)
	}
	return b.encodePooled(req, resp)
}

// encodePooled encodes a response into a buffer from the pool.
func (b *Broker) encodePooled(req *request, resp kmsg.Response) outFrame {
	bp := b.bufs.take(sizeHint(resp))
	return outFrame{buf: encodeResponseInto(*bp, req, resp), pooled: bp}
}

// encodeResponse frames a response: size, correlation id, the header's
// tagged fields when the response is flexible (never for ApiVersions, whose
// response header is always v0), then the body. A Fetch response's record
// sets are read into it.
func encodeResponse(req *request, resp kmsg.Response) []byte {
	if f, ok := resp.(*fetchResponse); ok {
		resp = f.materialize()
	}
	return encodeResponseInto(make([]byte, 0, sizeHint(resp)), req, resp)
}

// encodeResponseInto is encodeResponse appending to dst[:0].
func encodeResponseInto(dst []byte, req *request, resp kmsg.Response) []byte {
	resp.SetVersion(req.version)
	out := dst[:8]
	binary.BigEndian.PutUint32(out[4:], uint32(req.correlationID))
	if resp.IsFlexible() && req.key != apiVersionsKey {
		out = append(out, 0)
	}
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}

// sizeHint guesses a response's encoded size, so that a Fetch response's
// record bytes are copied once rather than at every doubling of the buffer,
// and a Produce response to many partitions is encoded without growing it.
func sizeHint(resp kmsg.Response) int {
	n := 256
	switch r := resp.(type) {
	case *kmsg.FetchResponse:
		for _, t := range r.Topics {
			n += len(t.Topic) + 64
			for _, p := range t.Partitions {
				n += len(p.RecordBatches) + 64 + 16*len(p.AbortedTransactions)
			}
		}
	case *kmsg.ProduceResponse:
		for _, t := range r.Topics {
			n += len(t.Topic) + 8
			for _, p := range t.Partitions {
				n += 48
				if p.ErrorMessage != nil {
					n += len(*p.ErrorMessage) + 16*len(p.ErrorRecords)
				}
			}
		}
	}
	return n
}

// fetchScratch is the size of the buffer a Fetch reads batch headers (and
// batches whose CRC is to be checked) through.
const fetchScratch = 16 << 10

// stopReading makes the reader return, so that the connection ends once the
// requests already read are answered (graceful shutdown).
func (c *conn) stopReading() {
	c.nc.SetReadDeadline(time.Now())
}
