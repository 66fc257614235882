package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/samsa-io/samsa/samsatest"
)

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{errors.New("boom"), ExitFailure},
		{Usagef("bad flag"), ExitUsage},
		{fmt.Errorf("wrapped: %w", Usagef("bad flag")), ExitUsage},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"orders", "orders-dlq", "payments", "users", "__consumer_offsets"}
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"order", []string{"orders", "orders-dlq"}},
		{"ordres", []string{"orders"}},
		{"paymnts", []string{"payments"}},
		{"zzz", []string{}},
		{"orders", []string{"orders-dlq"}},
	} {
		got := Suggest(tc.name, names)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Suggest(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestLevenshtein(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"flaw", "lawn", 2}, {"héllo", "hello", 1},
	} {
		if got := levenshtein(tc.a, tc.b); got != tc.want {
			t.Errorf("levenshtein(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestUnknownTopicError(t *testing.T) {
	err := UnknownTopicError("ordres", []string{"orders", "users"})
	if want := `topic "ordres" does not exist; did you mean "orders"?`; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	err = UnknownTopicError("xyz", []string{"orders"})
	if want := `topic "xyz" does not exist (see 'samsa topic list')`; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
}

func TestPrinterFormats(t *testing.T) {
	type row struct {
		Name  string `json:"name" yaml:"name"`
		Count int    `json:"count" yaml:"count"`
	}
	data := []row{{"a", 1}, {"long-name", 22}}
	text := func() Text {
		tb := NewTable("name", "count")
		for _, r := range data {
			tb.Add(r.Name, r.Count)
		}
		return Text{tb}
	}
	var buf bytes.Buffer
	if err := (Printer{Out: &buf}).Print(data, text); err != nil {
		t.Fatal(err)
	}
	if want := "NAME       COUNT\na          1\nlong-name  22\n"; buf.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", buf.String(), want)
	}
	buf.Reset()
	if err := (Printer{Out: &buf, Format: FormatJSON}).Print(data, text); err != nil {
		t.Fatal(err)
	}
	var back []row
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || !reflect.DeepEqual(back, data) {
		t.Errorf("json round trip: %v %v", back, err)
	}
	buf.Reset()
	if err := (Printer{Out: &buf, Format: FormatYAML}).Print(data, text); err != nil {
		t.Fatal(err)
	}
	if want := "- name: a\n  count: 1\n- name: long-name\n  count: 22\n"; buf.String() != want {
		t.Errorf("yaml:\n%s\nwant:\n%s", buf.String(), want)
	}
	if _, err := ParseFormat("xml"); ExitCode(err) != ExitUsage {
		t.Errorf("ParseFormat(xml) = %v, want a usage error", err)
	}
}

func TestConnSeeds(t *testing.T) {
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	for _, tc := range []struct {
		flag []string
		env  map[string]string
		want []string
	}{
		{nil, nil, []string{"localhost:9092"}},
		{nil, map[string]string{"SAMSA_BROKERS": "a:1, b:2"}, []string{"a:1", "b:2"}},
		{[]string{"c:3"}, map[string]string{"SAMSA_BROKERS": "a:1"}, []string{"c:3"}},
	} {
		c := Conn{Brokers: tc.flag, LookupEnv: env(tc.env)}
		if got := c.Seeds(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Seeds(flag %v, env %v) = %v, want %v", tc.flag, tc.env, got, tc.want)
		}
	}
}

func TestConnUnreachableNamesAddressAndServe(t *testing.T) {
	addr := samsatest.FreeAddr(t)
	c := Conn{Brokers: []string{addr}}
	_, err := c.Client(context.Background())
	if err == nil {
		t.Fatal("connected to a closed port")
	}
	msg := err.Error()
	for _, want := range []string{addr, "connection refused", "samsa serve"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") || ExitCode(err) != ExitFailure {
		t.Errorf("error %q: want one line and exit code 1", msg)
	}
}

func TestConnReachesBroker(t *testing.T) {
	b := samsatest.Start(t)
	c := Conn{Brokers: []string{b.Addr()}}
	adm, err := c.Admin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if _, err := adm.ListBrokers(context.Background()); err != nil {
		t.Fatal(err)
	}
}
