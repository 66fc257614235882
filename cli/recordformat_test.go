package cli

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestRecordTemplateAppend(t *testing.T) {
	r := &kgo.Record{
		Topic: "orders", Partition: 2, Offset: 41, Key: []byte("k"), Value: []byte("v 1"),
		Headers:   []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}},
		Timestamp: time.UnixMilli(1714564800123),
	}
	for _, tc := range []struct{ tmpl, want string }{
		{`%v\n`, "v 1\n"},
		{`%t/%p@%o %k=%v\t[%h] %d %T 100%%\n`, "orders/2@41 k=v 1\t[a=1,b=2] 1714564800123 2024-05-01T12:00:00.123Z 100%\n"},
		{`\\%k\0`, "\\k\x00"},
	} {
		tm, err := ParseRecordTemplate(tc.tmpl)
		if err != nil {
			t.Fatalf("%q: %v", tc.tmpl, err)
		}
		if got := string(tm.Append(nil, r)); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.tmpl, got, tc.want)
		}
	}
}

func TestParseRecordTemplateRejects(t *testing.T) {
	for _, tmpl := range []string{`%x`, `abc%`, `abc\`, `\q`} {
		_, err := ParseRecordTemplate(tmpl)
		if ExitCode(err) != ExitUsage {
			t.Errorf("%q: got %v, want a usage error", tmpl, err)
		}
	}
}

type readRecord struct {
	Key, Value string
	NilKey     bool
	Partition  int32
	Headers    string
	Millis     int64
}

func readAll(t *testing.T, tmpl, input string) ([]readRecord, error) {
	t.Helper()
	tm, err := ParseRecordTemplate(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := tm.newReader(strings.NewReader(input))
	if err != nil {
		return nil, err
	}
	var out []readRecord
	for {
		r, err := rd.next()
		if err != nil {
			if err.Error() == "EOF" {
				return out, nil
			}
			return out, err
		}
		rr := readRecord{Key: string(r.Key), Value: string(r.Value), NilKey: r.Key == nil, Partition: r.Partition}
		var hs []string
		for _, h := range r.Headers {
			hs = append(hs, h.Key+"="+string(h.Value))
		}
		rr.Headers = strings.Join(hs, ",")
		if !r.Timestamp.IsZero() {
			rr.Millis = r.Timestamp.UnixMilli()
		}
		out = append(out, rr)
	}
}

func TestTemplateReader(t *testing.T) {
	for _, tc := range []struct {
		name, tmpl, input string
		want              []readRecord
	}{
		{"lines", `%v\n`, "a\nb b\n\nc", []readRecord{
			{Value: "a", NilKey: true, Partition: -1}, {Value: "b b", NilKey: true, Partition: -1},
			{Value: "", NilKey: true, Partition: -1}, {Value: "c", NilKey: true, Partition: -1}}},
		{"empty input", `%v\n`, "", nil},
		{"key and value", `%k:%v\n`, "k1:v1\nk2:v:2\n", []readRecord{
			{Key: "k1", Value: "v1", Partition: -1}, {Key: "k2", Value: "v:2", Partition: -1}}},
		{"all input fields", `%p|%h|%d|%k|%v;`, "1|a=1,b=2|1714564800000|k|v;0||5|k2|v2;", []readRecord{
			{Key: "k", Value: "v", Partition: 1, Headers: "a=1,b=2", Millis: 1714564800000},
			{Key: "k2", Value: "v2", Partition: 0, Millis: 5}}},
		{"rfc3339 time", `%T %v\n`, "2024-05-01T12:00:00.5Z x\n", []readRecord{
			{Value: "x", NilKey: true, Partition: -1, Millis: 1714564800500}}},
		{"multi-byte delimiter", `%k::%v\r\n`, "a::b\r\nc::d:e\r\n", []readRecord{
			{Key: "a", Value: "b", Partition: -1}, {Key: "c", Value: "d:e", Partition: -1}}},
		{"whole input", `%v`, "one\ntwo\n", []readRecord{{Value: "one\ntwo\n", NilKey: true, Partition: -1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(t, tc.tmpl, tc.input)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestTemplateReaderErrors(t *testing.T) {
	for _, tc := range []struct{ name, tmpl, input, want string }{
		{"no separator", `%k:%v\n`, "k1:v1\nnokey\n", `input record 2 does not match --format "%k:%v\\n": no ":" after %k`},
		{"bad partition", `%p %v\n`, "x v\n", `partition "x" is not a number`},
		{"bad header", `%h %v\n`, "novalue v\n", `header "novalue" is not name=value`},
		{"bad millis", `%d %v\n`, "soon v\n", `timestamp "soon" is not Unix milliseconds`},
		{"leading literal", `>%v\n`, ">a\nb\n", `want ">" at byte 0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readAll(t, tc.tmpl, tc.input)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	for _, tmpl := range []string{`%k%v\n`, `%o %v\n`, `%t %v\n`, ``} {
		tm, _ := ParseRecordTemplate(tmpl)
		if _, err := tm.newReader(strings.NewReader("")); ExitCode(err) != ExitUsage {
			t.Errorf("%q: got %v, want a usage error", tmpl, err)
		}
	}
}

func TestParseStartOffset(t *testing.T) {
	now := time.UnixMilli(1_000_000_000)
	for _, tc := range []struct {
		in                      string
		start, end, at, resolve int64 // log start, log end, listed offset for a time; expected
		kgo                     string
	}{
		{"start", 5, 20, -1, 5, ""},
		{"oldest", 5, 20, -1, 5, ""},
		{"end", 5, 20, -1, 20, ""},
		{"end-3", 5, 20, -1, 17, ""},
		{"end-100", 5, 20, -1, 5, ""},
		{"start+3", 5, 20, -1, 8, ""},
		{"start+100", 5, 20, -1, 20, ""},
		{"12", 5, 20, -1, 12, ""},
		{"2", 5, 20, -1, 5, ""},
		{"99", 5, 20, -1, 20, ""},
		{"2024-05-01T12:00:00Z", 5, 20, 9, 9, ""},
		{"2024-05-01T12:00:00Z", 5, 20, -1, 20, ""},
		{"@1714564800000", 5, 20, 7, 7, ""},
		{"-5m", 5, 20, 11, 11, ""},
		{"-2d", 5, 20, -1, 20, ""},
	} {
		so, err := ParseStartOffset(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := so.resolve(tc.start, tc.end, tc.at); got != tc.resolve {
			t.Errorf("%q with log [%d, %d), time offset %d: got %d, want %d", tc.in, tc.start, tc.end, tc.at, got, tc.resolve)
		}
		_ = so.kgoOffset(now)
	}
	so, _ := ParseStartOffset("-90s")
	if so.ago != 90*time.Second {
		t.Errorf("-90s: ago = %v", so.ago)
	}
	so, _ = ParseStartOffset("2024-05-01T12:00:00+02:00")
	if so.at.UnixMilli() != 1714557600000 {
		t.Errorf("RFC 3339 with zone: %v", so.at)
	}
	for _, bad := range []string{"", "soon", "end-x", "start+-1", "-5", "-5x", "2024-13-01T00:00:00Z", "2024-05-01", "@abc"} {
		if _, err := ParseStartOffset(bad); ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "bad --offset") {
			t.Errorf("%q: got %v, want a usage error about --offset", bad, err)
		}
	}
}
