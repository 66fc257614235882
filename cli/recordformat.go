package cli

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Record templates frame records as text, for `samsa consume --format`
// (output) and `samsa produce --format` (input). A template is literal text
// with these verbs:
//
//	%t  topic             (consume only)
//	%p  partition
//	%o  offset            (consume only)
//	%k  key
//	%v  value
//	%h  headers, as name=value pairs separated by commas
//	%d  timestamp, Unix milliseconds
//	%T  timestamp, RFC 3339 in UTC with milliseconds
//	%%  a percent sign
//
// and the escapes \n, \t, \r, \0 and \\. The default is "%v\n": one value
// per line.
//
// On input, each verb reads up to the literal text that follows it, so two
// verbs must be separated by text ("%k %v\n" reads a key up to the first
// space, then a value up to the end of the line). A verb that ends the
// template reads to the end of the input. The last record may lack its
// final delimiter.
const DefaultRecordTemplate = `%v\n`

// templateToken is a literal or a verb.
type templateToken struct {
	literal string
	verb    byte // 0 for a literal
}

// RecordTemplate is a parsed record template.
type RecordTemplate struct {
	tokens []templateToken
	source string
}

// ParseRecordTemplate parses a template (see [DefaultRecordTemplate]).
func ParseRecordTemplate(s string) (*RecordTemplate, error) {
	t := &RecordTemplate{source: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.tokens = append(t.tokens, templateToken{literal: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 == len(s) {
				return nil, Usagef("--format %q ends with a lone backslash", s)
			}
			i++
			switch s[i] {
			case 'n':
				lit.WriteByte('\n')
			case 't':
				lit.WriteByte('\t')
			case 'r':
				lit.WriteByte('\r')
			case '0':
				lit.WriteByte(0)
			case '\\':
				lit.WriteByte('\\')
			default:
				return nil, Usagef("--format %q: unknown escape \\%c (use \\n, \\t, \\r, \\0 or \\\\)", s, s[i])
			}
		case '%':
			if i+1 == len(s) {
				return nil, Usagef("--format %q ends with a lone %%", s)
			}
			i++
			switch v := s[i]; v {
			case '%':
				lit.WriteByte('%')
			case 't', 'p', 'o', 'k', 'v', 'h', 'd', 'T':
				flush()
				t.tokens = append(t.tokens, templateToken{verb: v})
			default:
				return nil, Usagef("--format %q: unknown verb %%%c (use %%t %%p %%o %%k %%v %%h %%d %%T or %%%%)", s, v)
			}
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return t, nil
}

func (t *RecordTemplate) String() string { return t.source }

// has reports whether the template uses verb.
func (t *RecordTemplate) has(verb byte) bool {
	for _, tok := range t.tokens {
		if tok.verb == verb {
			return true
		}
	}
	return false
}

// Append formats r after dst.
func (t *RecordTemplate) Append(dst []byte, r *kgo.Record) []byte {
	for _, tok := range t.tokens {
		switch tok.verb {
		case 0:
			dst = append(dst, tok.literal...)
		case 't':
			dst = append(dst, r.Topic...)
		case 'p':
			dst = strconv.AppendInt(dst, int64(r.Partition), 10)
		case 'o':
			dst = strconv.AppendInt(dst, r.Offset, 10)
		case 'k':
			dst = append(dst, r.Key...)
		case 'v':
			dst = append(dst, r.Value...)
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, h.Key...)
				dst = append(dst, '=')
				dst = append(dst, h.Value...)
			}
		case 'd':
			dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
		case 'T':
			dst = r.Timestamp.UTC().AppendFormat(dst, timestampLayout)
		}
	}
	return dst
}

// timestampLayout is RFC 3339 with milliseconds.
const timestampLayout = "2006-01-02T15:04:05.000Z07:00"

// templateReader reads records framed by a template: the template's final
// literal ends a record; inside a record, each verb runs up to the first
// occurrence of the literal after it.
type templateReader struct {
	body []templateToken // the template without its final literal
	end  string          // the final literal; "" when the template ends with a verb
	src  string
	r    *bufio.Reader
	n    int  // records read
	done bool // with no final literal, the one record has been read
	buf  []byte
}

// newReader returns a reader of records framed by t from r. Verbs %t and
// %o are not allowed on input.
func (t *RecordTemplate) newReader(r io.Reader) (*templateReader, error) {
	if len(t.tokens) == 0 {
		return nil, Usagef("--format is empty")
	}
	for i, tok := range t.tokens {
		switch tok.verb {
		case 't', 'o':
			return nil, Usagef("--format %q: %%%c cannot be read from input", t.source, tok.verb)
		}
		if tok.verb != 0 && i+1 < len(t.tokens) && t.tokens[i+1].verb != 0 {
			return nil, Usagef("--format %q: verbs %%%c and %%%c need text between them to be read apart", t.source, tok.verb, t.tokens[i+1].verb)
		}
	}
	tr := &templateReader{body: t.tokens, src: t.source, r: bufio.NewReaderSize(r, 64<<10)}
	if last := t.tokens[len(t.tokens)-1]; last.verb == 0 {
		tr.end = last.literal
		tr.body = t.tokens[:len(t.tokens)-1]
	}
	return tr, nil
}

// next reads one record. It returns io.EOF at the end of input.
func (tr *templateReader) next() (*kgo.Record, error) {
	var data []byte
	if tr.end != "" {
		var atEOF bool
		var err error
		data, atEOF, err = tr.readUntil(tr.end)
		if err != nil {
			return nil, err
		}
		if atEOF && len(data) == 0 {
			return nil, io.EOF
		}
	} else {
		if tr.done {
			return nil, io.EOF
		}
		tr.done = true
		var err error
		if data, err = io.ReadAll(tr.r); err != nil {
			return nil, err
		}
		if len(data) == 0 {
			return nil, io.EOF
		}
	}
	tr.n++
	rec := &kgo.Record{Partition: -1}
	pos := 0
	for i, tok := range tr.body {
		if tok.verb == 0 {
			if !bytes.HasPrefix(data[pos:], []byte(tok.literal)) {
				return nil, tr.errorf("want %q at byte %d", tok.literal, pos)
			}
			pos += len(tok.literal)
			continue
		}
		end := len(data)
		if i+1 < len(tr.body) {
			lit := tr.body[i+1].literal
			idx := bytes.Index(data[pos:], []byte(lit))
			if idx < 0 {
				return nil, tr.errorf("no %q after %%%c", lit, tok.verb)
			}
			end = pos + idx
		}
		if err := setField(rec, tok.verb, bytes.Clone(data[pos:end])); err != nil {
			return nil, tr.errorf("%v", err)
		}
		pos = end
	}
	if pos != len(data) {
		return nil, tr.errorf("unexpected %q at the end", data[pos:])
	}
	return rec, nil
}

func (tr *templateReader) errorf(format string, args ...any) error {
	return fmt.Errorf("input record %d does not match --format %q: %s", tr.n, tr.src, fmt.Sprintf(format, args...))
}

// readUntil reads up to and past delim and returns what came before it, or
// everything left with atEOF set if the input ends first.
func (tr *templateReader) readUntil(delim string) (field []byte, atEOF bool, err error) {
	last := delim[len(delim)-1]
	tr.buf = tr.buf[:0]
	for {
		chunk, err := tr.r.ReadSlice(last)
		tr.buf = append(tr.buf, chunk...)
		switch {
		case err == nil:
			if bytes.HasSuffix(tr.buf, []byte(delim)) {
				return bytes.Clone(tr.buf[:len(tr.buf)-len(delim)]), false, nil
			}
		case errors.Is(err, bufio.ErrBufferFull):
		case err == io.EOF:
			return bytes.Clone(tr.buf), true, nil
		default:
			return nil, false, err
		}
	}
}

func setField(rec *kgo.Record, verb byte, field []byte) error {
	switch verb {
	case 'k':
		rec.Key = field
	case 'v':
		rec.Value = field
	case 'p':
		p, err := strconv.ParseInt(string(field), 10, 32)
		if err != nil || p < 0 {
			return fmt.Errorf("partition %q is not a number", field)
		}
		rec.Partition = int32(p)
	case 'h':
		if len(field) == 0 {
			return nil
		}
		for _, kv := range strings.Split(string(field), ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("header %q is not name=value", kv)
			}
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
	case 'd':
		ms, err := strconv.ParseInt(string(field), 10, 64)
		if err != nil {
			return fmt.Errorf("timestamp %q is not Unix milliseconds", field)
		}
		rec.Timestamp = time.UnixMilli(ms)
	case 'T':
		ts, err := time.Parse(time.RFC3339Nano, string(field))
		if err != nil {
			return fmt.Errorf("timestamp %q is not RFC 3339", field)
		}
		rec.Timestamp = ts
	}
	return nil
}

// JSONRecord is a record as `samsa consume --format json` prints it, one
// object per line. Key and value are strings when they are valid UTF-8;
// otherwise they are base64 in key_base64 / value_base64. A null key or
// value is left out.
type JSONRecord struct {
	Topic       string       `json:"topic"`
	Partition   int32        `json:"partition"`
	Offset      int64        `json:"offset"`
	Timestamp   string       `json:"timestamp"`
	Key         *string      `json:"key,omitempty"`
	KeyBase64   string       `json:"key_base64,omitempty"`
	Value       *string      `json:"value,omitempty"`
	ValueBase64 string       `json:"value_base64,omitempty"`
	Headers     []JSONHeader `json:"headers,omitempty"`
}

// JSONHeader is a record header in a [JSONRecord].
type JSONHeader struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func newJSONRecord(r *kgo.Record) JSONRecord {
	j := JSONRecord{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Timestamp: r.Timestamp.UTC().Format(timestampLayout),
	}
	j.Key, j.KeyBase64 = jsonBytes(r.Key)
	j.Value, j.ValueBase64 = jsonBytes(r.Value)
	for _, h := range r.Headers {
		j.Headers = append(j.Headers, JSONHeader{Key: h.Key, Value: string(h.Value)})
	}
	return j
}

func jsonBytes(b []byte) (*string, string) {
	if b == nil {
		return nil, ""
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, ""
	}
	return nil, base64.StdEncoding.EncodeToString(b)
}

// appendJSON appends r as one line of JSON.
func appendJSON(dst []byte, r *kgo.Record) []byte {
	b, _ := json.Marshal(newJSONRecord(r)) // plain strings and numbers: cannot fail
	dst = append(dst, b...)
	return append(dst, '\n')
}
