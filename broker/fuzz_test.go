package broker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/record"
)

// Fuzz targets for what a client controls: the frames and request headers
// (FuzzReadRequest) and the body of every API and version the broker serves,
// decoded and handled by a running broker (FuzzHandle). Seeds are valid
// requests of every entry of the API table, so that the fuzzer starts from
// bytes that decode; the committed corpus is under testdata/fuzz/.

// headerFrame encodes a request header (v1, or v2 with empty tagged fields
// when the body is flexible) followed by the body, without the size.
func headerFrame(key, version int16, correlationID int32, body kmsg.Request) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(correlationID))
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "fuzz"...)
	if body != nil {
		if body.IsFlexible() {
			b = append(b, 0)
		}
		b = body.AppendTo(b)
	}
	return b
}

func sized(frame []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(frame))), frame...)
}

// seedRequests returns a default request of every API and version of the
// table, and a few with their fields set.
func seedRequests() []kmsg.Request {
	var reqs []kmsg.Request
	for _, a := range newAPITable() {
		for v := a.min; v <= a.max; v++ {
			req := kmsg.RequestForKey(a.key)
			req.SetVersion(v)
			reqs = append(reqs, req)
		}
	}
	topic := "fuzzed"
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = &topic
	meta.Topics = append(meta.Topics, mt)
	meta.AllowAutoTopicCreation = true
	meta.SetVersion(12)

	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = topic, 2, 1
	create.Topics = append(create.Topics, ct)
	create.SetVersion(7)

	produce := kmsg.NewPtrProduceRequest()
	produce.Acks, produce.TimeoutMillis = -1, 1000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = topic
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records, _ = record.Build(record.DefaultBuildOptions(), []record.Record{{Key: []byte("k"), Value: []byte("v")}})
	pt.Partitions = append(pt.Partitions, pp)
	produce.Topics = append(produce.Topics, pt)
	produce.SetVersion(9)

	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = 10, 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	fetch.SetVersion(12)

	describe := kmsg.NewPtrDescribeConfigsRequest()
	dr := kmsg.NewDescribeConfigsRequestResource()
	dr.ResourceType, dr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	describe.Resources = append(describe.Resources, dr)
	describe.SetVersion(4)

	return append(reqs, meta, create, produce, fetch, describe)
}

func FuzzReadRequest(f *testing.F) {
	for i, req := range seedRequests() {
		f.Add(sized(headerFrame(req.Key(), req.GetVersion(), int32(i), req)))
	}
	f.Add(sized(headerFrame(apiVersionsKey, 99, 1, nil)))                    // ApiVersions from the future
	f.Add(sized(headerFrame(1000, 0, 1, nil)))                               // unknown key
	f.Add([]byte{0, 0, 0, 3, 0, 3, 0})                                       // too short for a header
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})                                    // negative size
	f.Add(append(sized(headerFrame(3, 12, 1, nil)), 0xff, 0xff, 0xff, 0xff)) // flexible without tags

	apis := newAPITable()
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := bytes.NewReader(stream)
		for {
			frame, err := readFrame(r, 64<<10)
			if err != nil {
				return
			}
			req, err := parseRequest(apis, frame)
			var unsupported *unsupportedError
			switch {
			case errors.As(err, &unsupported):
				a, ok := apis.lookup(unsupported.key)
				if ok && unsupported.version >= a.min && unsupported.version <= a.max {
					t.Fatalf("%v, but the table serves versions %d–%d", err, a.min, a.max)
				}
			case err != nil:
			case req.body == nil || req.body.Key() != req.key || req.body.GetVersion() != req.version:
				t.Fatalf("request key %d v%d decoded into %T", req.key, req.version, req.body)
			}
		}
	})
}

// fuzzBroker starts a broker for a fuzz target, as samsatest does (which
// this package's own tests cannot import).
func fuzzBroker(f *testing.F) *Broker {
	cfg := DefaultConfig()
	cfg.DataDir = f.TempDir()
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Start(ctx, cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b.Close(ctx)
	})
	return b
}

// FuzzHandle decodes a body for one API and version of the table (chosen by
// api and version, modulo the table) and hands it to that API's handler on a
// running broker, then encodes the response. A panic in the handler or the
// encoder fails the target (in production, the connection's recover would
// only hide it); after every input the broker must still answer ApiVersions.
func FuzzHandle(f *testing.F) {
	apis := newAPITable()
	for _, req := range seedRequests() {
		for i, a := range apis {
			if a.key == req.Key() {
				// Everything after the client id: header tags, then the body.
				frame := headerFrame(req.Key(), req.GetVersion(), 0, req)
				f.Add(uint8(i), uint8(req.GetVersion()-a.min), frame[8+2+4:])
			}
		}
	}

	b := fuzzBroker(f)
	c := &conn{b: b, logger: b.logger}
	alive := dialAlive(f, b.Addr().String())
	f.Fuzz(func(t *testing.T, api, version uint8, rest []byte) {
		a := apis[int(api)%len(apis)]
		v := a.min + int16(version)%(a.max-a.min+1)
		// A hang fails the input too, with every goroutine's stack.
		watchdog := time.AfterFunc(10*time.Second, func() {
			debug.SetTraceback("all")
			panic(fmt.Sprintf("%s v%d has not returned after 10s", kmsg.NameForKey(a.key), v))
		})
		defer watchdog.Stop()
		frame := binary.BigEndian.AppendUint16(nil, uint16(a.key))
		frame = binary.BigEndian.AppendUint16(frame, uint16(v))
		frame = binary.BigEndian.AppendUint32(frame, 7)
		frame = binary.BigEndian.AppendUint16(frame, 4)
		frame = append(append(frame, "fuzz"...), rest...)
		req, err := parseRequest(apis, frame)
		if err != nil {
			return // the connection would be closed
		}
		req.conn = c
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("%s v%d panicked: %v\n%s", kmsg.NameForKey(a.key), v, p, debug.Stack())
				}
			}()
			// Long polls and waits end soon: the fuzzer wants throughput.
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if resp := b.handle(ctx, req); resp != nil {
				encodeResponse(req, resp)
			}
		}()
		if err := alive(); err != nil {
			t.Fatalf("after %s v%d the broker does not answer ApiVersions: %v", kmsg.NameForKey(a.key), v, err)
		}
	})
}

// dialAlive returns a check that the broker at addr answers an ApiVersions
// request over a connection of its own.
func dialAlive(f *testing.F, addr string) func() error {
	var nc net.Conn
	var r *bufio.Reader
	f.Cleanup(func() {
		if nc != nil {
			nc.Close()
		}
	})
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	frame := sized(headerFrame(apiVersionsKey, 3, 1, req))
	return func() error {
		if nc == nil {
			var err error
			if nc, err = net.DialTimeout("tcp", addr, 10*time.Second); err != nil {
				return err
			}
			r = bufio.NewReader(nc)
		}
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		var size [4]byte
		_, err := nc.Write(frame)
		if err == nil {
			_, err = io.ReadFull(r, size[:])
		}
		if err == nil {
			_, err = r.Discard(int(binary.BigEndian.Uint32(size[:])))
		}
		if err != nil {
			nc.Close()
			nc = nil
		}
		return err
	}
}
