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
	"slices"
	"sync"
	"time"

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
}

// request is a decoded request with its header.
type request struct {
	key           int16
	version       int16
	correlationID int32
	clientID      string
	body          kmsg.Request
	conn          *conn

	// Produce requests of one connection append in request order, as
	// Kafka's one-request-at-a-time connections do; an idempotent producer
	// pipelines batches and relies on it. turn is closed when the previous
	// Produce of the connection has appended (nil for the first), appended
	// is closed by passTurn. Both are set by the reader before the handler
	// starts and nil for other APIs.
	turn     <-chan struct{}
	appended chan struct{}
	passOnce sync.Once
}

// waitTurn waits until the connection's previous Produce request has made
// its appends.
func (r *request) waitTurn() {
	if r.turn != nil {
		<-r.turn
	}
}

// passTurn lets the connection's next Produce request append. The
// connection calls it when the handler returns, if the handler has not.
func (r *request) passTurn() {
	if r.appended != nil {
		r.passOnce.Do(func() { close(r.appended) })
	}
}

// pending is a request's place in the response order. out is nil when no
// response is due (acks=0 produce); closeConn asks the writer to close the
// connection after the responses before it.
type pending struct {
	done      chan struct{}
	out       *outFrame
	closeConn bool
}

// outFrame is an encoded response: buf, or when parts is not nil, the parts
// in order — ranges of buf and file sections (a Fetch response's record
// sets, fetch_frame.go). A frame owns its buffer (pooled) and sections
// until release.
type outFrame struct {
	buf   []byte
	parts []framePart
	fetch *fetchResponse // the sections' owner, when there are sections
}

// framePart is buf[from:to], or sec when sec is not nil.
type framePart struct {
	from, to int
	sec      *storage.Section
}

// release gives back the frame's buffer and sections.
func (f *outFrame) release(b *Broker) {
	if f == nil {
		return
	}
	if f.fetch != nil {
		f.fetch.release()
	}
	b.recycleBuffer(f.buf) // written or copied: no longer referenced
}

// smallSection is the size below which a record set is read into the
// write buffer rather than sent with sendfile(2): for it, one read costs
// less than a flush and a sendfile.
const smallSection = 8 << 10

func (c *conn) serve(ctx context.Context) {
	defer c.nc.Close()
	c.b.brokerMetrics.connectionOpened()
	defer c.b.brokerMetrics.connectionClosed()
	queue := make(chan *pending, maxInFlight)
	var writer sync.WaitGroup
	writer.Go(func() { c.writeLoop(queue) })
	defer writer.Wait()
	defer close(queue)

	var handlers sync.WaitGroup
	defer handlers.Wait()
	r := bufio.NewReaderSize(c.nc, 64<<10)
	var lastProduce chan struct{} // the previous Produce's appended
	for {
		frame, err := c.readFrame(r)
		received := time.Now() // for the request's latency (metrics.go)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
				c.logger.Info("closing connection", "err", err)
			}
			return
		}
		req, err := c.parse(frame)
		p := &pending{done: make(chan struct{})}
		queue <- p
		if err != nil {
			// An ApiVersions version the broker does not know is answered
			// in v0 with UNSUPPORTED_VERSION and the supported ranges, so that
			// the client retries with one it finds there. Anything else the
			// broker cannot decode cannot be answered in its version:
			// close, as Kafka does.
			var unsupported *unsupportedError
			if errors.As(err, &unsupported) && unsupported.key == apiVersionsKey {
				p.out = &outFrame{buf: c.b.apiVersionsFallback(unsupported.correlationID)}
				close(p.done)
				continue
			}
			c.logger.Info("closing connection: request cannot be served", "err", err)
			p.closeConn = true
			close(p.done)
			return
		}
		if req.key == int16(kmsg.Produce) {
			req.turn, req.appended = lastProduce, make(chan struct{})
			lastProduce = req.appended
		}
		handlers.Go(func() {
			defer close(p.done)
			defer req.passTurn()
			defer func() {
				if v := recover(); v != nil {
					c.logger.Error("handler panicked; closing connection", "api", kmsg.NameForKey(req.key),
						"version", req.version, "panic", v, "stack", string(debug.Stack()))
					p.out, p.closeConn = nil, true
				}
			}()
			resp := c.b.handle(ctx, req)
			if resp != nil {
				p.out = c.b.encodeFrame(req, resp)
			}
			c.b.brokerMetrics.request(req.key, req.version, time.Since(received))
			if req.key == int16(kmsg.Produce) {
				// The batches are in the log and the response holds
				// nothing of the request.
				c.b.recycleFrame(frame)
			}
		})
	}
}

// writeLoop writes responses in request order.
func (c *conn) writeLoop(queue <-chan *pending) {
	w := bufio.NewWriterSize(c.nc, 64<<10)
	broken := false
	for p := range queue {
		<-p.done
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
		if p.out == nil {
			continue
		}
		err := c.writeFrame(w, p.out)
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
		if _, err := part.sec.WriteTo(c.nc); err != nil {
			return err
		}
	}
	return nil
}

// readFrame reads one size-prefixed request, into a recycled buffer when
// one is large enough.
func (c *conn) readFrame(r *bufio.Reader) ([]byte, error) {
	return readFrameWith(r, c.b.cfg.MaxRequestBytes, c.b.takeFrame)
}

// readFrame reads one size-prefixed request of at most maxBytes.
func readFrame(r io.Reader, maxBytes int32) ([]byte, error) {
	return readFrameWith(r, maxBytes, nil)
}

// readFrameWith is readFrame taking its buffer from take (when not nil),
// which returns one with room for n bytes, or nil.
func readFrameWith(r io.Reader, maxBytes int32, take func(n int) []byte) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 8 {
		return nil, fmt.Errorf("request size %d is too small for a header", n)
	}
	if n > maxBytes {
		return nil, fmt.Errorf("request of %d bytes exceeds socket.request.max.bytes (%d)", n, maxBytes)
	}
	// Memory follows the bytes that arrive, not the size a peer declares:
	// a frame claiming 100 MiB and sending none pins only the first step
	// (or a recycled buffer, whose memory is already there).
	var frame []byte
	if take != nil {
		frame = take(int(n))
	}
	if frame == nil {
		frame = make([]byte, 0, min(n, frameStep))
	}
	for int32(len(frame)) < n {
		if len(frame) == cap(frame) {
			frame = slices.Grow(frame, int(min(n-int32(len(frame)), int32(len(frame)))))
		}
		m, err := r.Read(frame[len(frame):min(cap(frame), int(n))])
		frame = frame[:len(frame)+m]
		if err != nil && int32(len(frame)) < n {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return frame, nil
}

// frameStep is the first allocation for a request frame; it doubles as
// the bytes arrive. A produce request of a default-sized (1 MiB) batch
// fits in one step, so the common case allocates and copies once.
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
	req, err := parseRequest(c.b.apis, frame)
	if err != nil {
		return nil, err
	}
	req.conn = c
	return req, nil
}

// parseRequest decodes a frame (without its size) into the request header
// and the body, for an API and version of apis.
func parseRequest(apis apiTable, frame []byte) (*request, error) {
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
		req.clientID = string(rest[:idLen])
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
func (b *Broker) encodeFrame(req *request, resp kmsg.Response) *outFrame {
	if f, ok := resp.(*fetchResponse); ok {
		return f.frame(b, req)
	}
	return &outFrame{buf: encodeResponseInto(b.takeBuffer(sizeHint(resp)), req, resp)}
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
// record bytes are copied once rather than at every doubling of the buffer.
func sizeHint(resp kmsg.Response) int {
	n := 256
	if f, ok := resp.(*kmsg.FetchResponse); ok {
		for _, t := range f.Topics {
			n += len(t.Topic) + 64
			for _, p := range t.Partitions {
				n += len(p.RecordBatches) + 64 + 16*len(p.AbortedTransactions)
			}
		}
	}
	return n
}

// Response buffers of at least pooledBufferMin bytes (Fetch responses,
// mostly) are reused rather than allocated and zeroed for each response.
const pooledBufferMin = 64 << 10

// takeBuffer returns an empty buffer with room for n bytes.
func (b *Broker) takeBuffer(n int) []byte {
	if n >= pooledBufferMin {
		if bp, ok := b.respBufs.Get().(*[]byte); ok && cap(*bp) >= n {
			return (*bp)[:0]
		}
	}
	return make([]byte, 0, max(n, 8))
}

// recycleBuffer gives a written response's buffer back for reuse.
func (b *Broker) recycleBuffer(buf []byte) {
	if cap(buf) >= pooledBufferMin && cap(buf) <= 64<<20 {
		buf = buf[:0]
		b.respBufs.Put(&buf)
	}
}

// takeFrame returns a recycled request buffer with room for n bytes, or
// nil. Only large frames are recycled, and only Produce requests' (the
// large ones, and those whose handler keeps nothing of the request).
func (b *Broker) takeFrame(n int) []byte {
	if n < pooledBufferMin {
		return nil
	}
	if bp, ok := b.frameBufs.Get().(*[]byte); ok && cap(*bp) >= n {
		return (*bp)[:0]
	}
	return nil
}

// recycleFrame gives a handled request's frame back for reuse.
func (b *Broker) recycleFrame(frame []byte) {
	if cap(frame) >= pooledBufferMin && cap(frame) <= 64<<20 {
		frame = frame[:0]
		b.frameBufs.Put(&frame)
	}
}

// fetchScratch is the size of the buffer a Fetch reads batch headers (and
// batches whose CRC is to be checked) through.
const fetchScratch = 16 << 10

// takeScratch returns a Fetch read buffer.
func (b *Broker) takeScratch() []byte {
	if bp, ok := b.scratchBufs.Get().(*[]byte); ok {
		return *bp
	}
	return make([]byte, fetchScratch)
}

// recycleScratch gives a Fetch read buffer back.
func (b *Broker) recycleScratch(buf []byte) {
	b.scratchBufs.Put(&buf)
}

// stopReading makes the reader return, so that the connection ends once the
// requests already read are answered (graceful shutdown).
func (c *conn) stopReading() {
	c.nc.SetReadDeadline(time.Now())
}
