package broker_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/broker"
	"github.com/samsa-io/samsa/samsatest"
)

// logCapture keeps a broker's log lines, so that a test can check what it
// logged.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logCapture) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// header is a request header, v1: key, version, correlation id, client id.
func header(key, version int16, correlationID int32, clientID string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(correlationID))
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	return append(b, clientID...)
}

func withSize(b []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// Bad frames and requests close their own connection, with a log line, and
// nothing else: what was pipelined before them is answered, and another
// client is served throughout.
func TestBadFramesCloseOnlyTheirConnection(t *testing.T) {
	logs := &logCapture{}
	sb := samsatest.Start(t, samsatest.WithConfig(func(c *broker.Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}))
	witness := clientFor(t, sb, kgo.DefaultProduceTopic("witness"))
	makeTopic(t, witness, "witness", 1, nil)
	produced := 0
	stillServed := func(after string) {
		t.Helper()
		if err := witness.ProduceSync(deadlineCtx(t), &kgo.Record{Value: []byte(after)}).FirstErr(); err != nil {
			t.Fatalf("after %s, another client's produce failed: %v", after, err)
		}
		produced++
	}

	metadataV12 := kmsg.NewPtrMetadataRequest()
	metadataV12.SetVersion(12)
	cutShort := requestFrame(metadataV12, 1)[4:]
	cutShort = cutShort[:len(cutShort)-2]
	for _, tc := range []struct {
		name  string
		frame []byte
		log   string // in the log line of the close
	}{
		{"frame over socket.request.max.bytes", binary.BigEndian.AppendUint32(nil, 100<<20+1), "exceeds socket.request.max.bytes"},
		{"negative size", []byte{0xff, 0xff, 0xff, 0xfe}, "too small for a header"},
		{"size too small for a header", withSize([]byte{0, 3, 0, 1, 0, 0}), "too small for a header"},
		{"unknown API key", withSize(header(1000, 0, 1, "bad")), "unsupported API"},
		{"Produce v2 (below the table's range)", withSize(header(0, 2, 1, "bad")), "unsupported API Produce (key 0) version 2"},
		{"Fetch v99", withSize(header(1, 99, 1, "bad")), "unsupported API Fetch (key 1) version 99"},
		{"negative version", withSize(header(3, -1, 1, "bad")), "unsupported API Metadata (key 3) version -1"},
		{"client id longer than the frame", withSize(append(header(3, 1, 1, ""), 0)[:9]), "truncated client id"},
		{"truncated client id", withSize(binary.BigEndian.AppendUint16(header(3, 1, 1, "")[:8], 100)), "truncated client id"},
		{"flexible header without tagged fields", withSize(header(3, 12, 1, "bad")), "bad tagged fields"},
		{"body that does not decode", withSize(append(header(3, 12, 1, "bad"), 0, 0xff, 0xff, 0xff, 0xff)), "Metadata v12"},
		{"body cut short", withSize(cutShort), "Metadata v12"},
		// 2^32-1 tagged fields in a few bytes: refused by the layout check
		// (layout.go), not left to spin in kmsg's tag loop for minutes.
		{"tagged-field count past the frame (Metadata v12)",
			withSize(append(header(3, 12, 1, "bad"), 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f)), "tagged fields with"},
		{"tagged-field count past the frame (ApiVersions v3)",
			withSize(append(header(18, 3, 1, "bad"), 0, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f)), "tagged fields with"},
		{"array longer than the frame (Metadata v12)",
			withSize(append(header(3, 12, 1, "bad"), 0, 0xff, 0xff, 0xff, 0xff, 0x07, 0)), "array of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A good request pipelined before the bad one is answered first.
			logged := len(logs.String())
			c := dialRaw(t, sb.Addr())
			good := kmsg.NewPtrApiVersionsRequest()
			good.SetVersion(3)
			c.write(append(requestFrame(good, 41), tc.frame...))
			if resp := c.readResponse(good, 41).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
				t.Fatalf("the good request before: %v", kerr.ErrorForCode(resp.ErrorCode))
			}
			c.expectClosed()
			// The broker logs before it closes.
			if since := logs.String()[logged:]; !strings.Contains(since, tc.log) {
				t.Errorf("no log line with %q:\n%s", tc.log, since)
			}
			stillServed(tc.name)
		})
	}

	// A frame that announces more than it sends, then the client goes.
	c := dialRaw(t, sb.Addr())
	c.write(append(binary.BigEndian.AppendUint32(nil, 1000), header(3, 1, 1, "gone")...))
	c.nc.Close()
	stillServed("a frame cut by the client")

	if strings.Contains(logs.String(), "panicked") {
		t.Errorf("a handler panicked:\n%s", logs.String())
	}
	recs := consumeFrom(t, sb, "witness", 1, produced)
	checkContiguous(t, recs)
}

// A frame over a lowered socket.request.max.bytes is refused before it is
// read, even when the client goes on sending it.
func TestFrameOverMaxRequestBytesIsNotRead(t *testing.T) {
	sb := samsatest.Start(t, samsatest.WithConfig(func(c *broker.Config) { c.MaxRequestBytes = 1 << 10 }))
	witness := clientFor(t, sb)
	c := dialRaw(t, sb.Addr())
	big := withSize(append(header(3, 1, 1, "big"), make([]byte, 2<<10)...))
	c.nc.Write(big) // the broker may close before all of it is written
	c.expectClosed()
	if _, err := kmsg.NewPtrApiVersionsRequest().RequestWith(deadlineCtx(t), witness); err != nil {
		t.Fatalf("another client: %v", err)
	}
}

// ApiVersions in a version the broker does not know is answered in v0 with
// UNSUPPORTED_VERSION and the supported ranges, however its body reads, and
// the connection stays open for the client's retry in a version it found
// there (KIP-511, as Kafka does).
func TestApiVersionsFromTheFutureGetsTheRanges(t *testing.T) {
	sb := samsatest.Start(t)
	c := dialRaw(t, sb.Addr())
	c.write(withSize(append(header(18, 99, 5, "future"), 0xde, 0xad, 0xbe, 0xef)))
	v0 := kmsg.NewPtrApiVersionsRequest()
	v0.SetVersion(0)
	resp := c.readResponse(v0, 5).(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("error %v, want UNSUPPORTED_VERSION", kerr.ErrorForCode(resp.ErrorCode))
	}
	i := slices.IndexFunc(resp.ApiKeys, func(k kmsg.ApiVersionsResponseApiKey) bool { return k.ApiKey == 18 })
	if i < 0 || resp.ApiKeys[i].MinVersion != 0 || resp.ApiKeys[i].MaxVersion != 4 {
		t.Fatalf("ApiVersions range in the answer: %+v", resp.ApiKeys)
	}
	retry := kmsg.NewPtrApiVersionsRequest()
	retry.SetVersion(resp.ApiKeys[i].MaxVersion)
	c.write(requestFrame(retry, 6))
	if resp := c.readResponse(retry, 6).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
		t.Fatalf("the retry: %v, %d keys", kerr.ErrorForCode(resp.ErrorCode), len(resp.ApiKeys))
	}
}

// Invalid topic names are INVALID_TOPIC_EXCEPTION in Metadata, even with
// auto-creation on, and nothing is created; a producer to such a topic fails
// with that error instead of retrying.
func TestInvalidTopicNames(t *testing.T) {
	sb := samsatest.Start(t)
	cl := clientFor(t, sb)
	names := []string{"bad/name", "..", ".", "with space", "ünïcode", strings.Repeat("x", 250)}
	for _, v := range []int16{1, 4, 12} {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(v)
		req.AllowAutoTopicCreation = true
		for _, name := range names {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(name)
			req.Topics = append(req.Topics, rt)
		}
		resp := rawRequest(t, sb.Addr(), req).(*kmsg.MetadataResponse)
		if len(resp.Topics) != len(names) {
			t.Fatalf("v%d: %d topics in the answer, want %d", v, len(resp.Topics), len(names))
		}
		for i, rt := range resp.Topics {
			if rt.ErrorCode != kerr.InvalidTopicException.Code {
				t.Errorf("v%d %q: %v, want INVALID_TOPIC_EXCEPTION", v, names[i], kerr.ErrorForCode(rt.ErrorCode))
			}
		}
	}
	all := rawRequest(t, sb.Addr(), kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse)
	all.Topics = slices.DeleteFunc(all.Topics, func(rt kmsg.MetadataResponseTopic) bool {
		return strings.HasPrefix(*rt.Topic, "__") // internal topics, made at start-up
	})
	if len(all.Topics) != 0 {
		t.Errorf("topics after invalid names: %+v", all.Topics)
	}
	err := cl.ProduceSync(deadlineCtx(t), &kgo.Record{Topic: "bad/name", Value: []byte("v")}).FirstErr()
	if !errors.Is(err, kerr.InvalidTopicException) {
		t.Errorf("produce to an invalid topic: %v, want INVALID_TOPIC_EXCEPTION", err)
	}
}
