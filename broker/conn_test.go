package broker_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/samsatest"
)

// rawConn is a bare connection to the broker, for what a client library
// would not send: pipelined requests in a chosen version, broken frames.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawConn{t: t, nc: nc, r: bufio.NewReader(nc)}
}

// requestFrame encodes req, in the version it is set to, as a size-prefixed
// frame with a v1 or v2 request header.
func requestFrame(req kmsg.Request, correlationID int32) []byte {
	frame := make([]byte, 4, 64)
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.Key()))
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.GetVersion()))
	frame = binary.BigEndian.AppendUint32(frame, uint32(correlationID))
	frame = binary.BigEndian.AppendUint16(frame, 4)
	frame = append(frame, "test"...)
	if req.IsFlexible() {
		frame = append(frame, 0)
	}
	frame = req.AppendTo(frame)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	return frame
}

func (c *rawConn) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// readFrame reads one response frame: its correlation id and the rest.
func (c *rawConn) readFrame() (int32, []byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c.r, size[:]); err != nil {
		return 0, nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.r, body); err != nil {
		return 0, nil, err
	}
	if len(body) < 4 {
		return 0, nil, fmt.Errorf("response of %d bytes", len(body))
	}
	return int32(binary.BigEndian.Uint32(body)), body[4:], nil
}

// readResponse reads the response to req sent with correlationID.
func (c *rawConn) readResponse(req kmsg.Request, correlationID int32) kmsg.Response {
	c.t.Helper()
	id, body, err := c.readFrame()
	if err != nil {
		c.t.Fatalf("reading the response to %s v%d: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	if id != correlationID {
		c.t.Fatalf("response with correlation id %d, want %d", id, correlationID)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != int16(kmsg.ApiVersions) {
		body = body[1:] // the response header's tagged fields: none
	}
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("decoding %s v%d response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

// expectClosed checks that the broker closes the connection without
// answering further.
func (c *rawConn) expectClosed() {
	c.t.Helper()
	if id, _, err := c.readFrame(); err == nil {
		c.t.Fatalf("got a response (correlation id %d), want the connection closed", id)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		c.t.Fatalf("the connection is still open: %v", err)
	}
}

// An idempotent producer pipelines its batches on one connection and needs
// them appended in the order it sent them: had the broker handled them out
// of order, a batch would overtake its predecessor and be refused with
// OUT_OF_ORDER_SEQUENCE_NUMBER.
func TestPipelinedIdempotentProducesAppendInOrder(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb)
	makeTopic(t, cl, "pipelined", 2, nil)
	pid, epoch := initProducerID(t, cl)

	const requests, perBatch = 100, 3
	c := dialRaw(t, sb.Addr())
	var frames []byte
	var reqs []*kmsg.ProduceRequest
	for i := range requests {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(9)
		req.Acks, req.TimeoutMillis = -1, 30000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "pipelined"
		for p := range int32(2) {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition = p
			rp.Records = buildBatch(t, record.CodecNone, fmt.Sprint(i), perBatch, 1, pid, epoch, int32(i*perBatch))
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		frames = append(frames, requestFrame(req, int32(i))...)
		reqs = append(reqs, req)
	}
	c.write(frames) // all at once: the broker reads them while earlier ones are handled
	for i := range requests {
		resp := c.readResponse(reqs[i], int32(i)).(*kmsg.ProduceResponse)
		for _, rp := range resp.Topics[0].Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil || rp.BaseOffset != int64(i*perBatch) {
				msg := ""
				if rp.ErrorMessage != nil {
					msg = *rp.ErrorMessage
				}
				t.Fatalf("request %d partition %d: offset %d, %v %s", i, rp.Partition, rp.BaseOffset, err, msg)
			}
		}
	}
}
