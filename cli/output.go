package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// Format is how a command prints its result.
type Format string

// Output formats.
const (
	FormatText Format = "text" // aligned tables for people
	FormatJSON Format = "json" // indented JSON
	FormatYAML Format = "yaml"
)

// Formats are the values --format accepts.
var Formats = []Format{FormatText, FormatJSON, FormatYAML}

// ParseFormat checks a --format value; "" means text.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case "", FormatText:
		return FormatText, nil
	case FormatJSON, FormatYAML:
		return f, nil
	}
	return "", Usagef("unknown --format %q: use text, json or yaml", s)
}

// formatValue is a pflag.Value that accepts only the known formats.
type formatValue struct{ f *Format }

func (v formatValue) String() string { return string(*v.f) }
func (v formatValue) Type() string   { return "format" }
func (v formatValue) Set(s string) error {
	f, err := ParseFormat(s)
	if err != nil {
		return err
	}
	*v.f = f
	return nil
}

// AddFormatFlag defines --format text|json|yaml on fs, filling f (which
// starts as text).
func AddFormatFlag(fs *pflag.FlagSet, f *Format) {
	*f = FormatText
	fs.Var(formatValue{f}, "format", "output format: text, json or yaml")
}

// Printer writes a command's result in the chosen format.
type Printer struct {
	Out    io.Writer
	Format Format // "" means text
}

// Print writes v as JSON or YAML, or, for text, the result of text(). v
// should carry json and yaml tags so that scripts get stable field names.
func (p Printer) Print(v any, text func() Text) error {
	switch p.Format {
	case FormatJSON:
		enc := json.NewEncoder(p.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case FormatYAML:
		enc := yaml.NewEncoder(p.Out)
		enc.SetIndent(2)
		if err := enc.Encode(v); err != nil {
			return err
		}
		return enc.Close()
	case FormatText, "":
		return text().Write(p.Out)
	}
	return Usagef("unknown output format %q", p.Format)
}

// Text is what a command prints for people: sections written one after the
// other with a blank line between them.
type Text []Section

// Section is a piece of text output: a [Table], [Fields] or [Lines].
type Section interface {
	write(w io.Writer) error
}

// Write writes the sections, separated by blank lines.
func (t Text) Write(w io.Writer) error {
	for i, s := range t {
		if i > 0 {
			if _, err := io.WriteString(w, "\n"); err != nil {
				return err
			}
		}
		if err := s.write(w); err != nil {
			return err
		}
	}
	return nil
}

// Table is rows under an upper-case header, columns aligned with
// text/tabwriter.
type Table struct {
	Header []string
	Rows   [][]string
}

// NewTable starts a table with the given column names.
func NewTable(header ...string) *Table { return &Table{Header: header} }

// Add appends a row; cells are formatted with fmt.Sprint, nil as "-".
func (t *Table) Add(cells ...any) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = cell(c)
	}
	t.Rows = append(t.Rows, row)
}

func cell(c any) string {
	switch v := c.(type) {
	case nil:
		return "-"
	case string:
		if v == "" {
			return "-"
		}
		return v
	case []string:
		if len(v) == 0 {
			return "-"
		}
		return strings.Join(v, ",")
	case []int32:
		if len(v) == 0 {
			return "-"
		}
		s := make([]string, len(v))
		for i, n := range v {
			s[i] = fmt.Sprint(n)
		}
		return strings.Join(s, ",")
	}
	return fmt.Sprint(c)
}

func (t *Table) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(t.Header) > 0 {
		h := make([]string, len(t.Header))
		for i, s := range t.Header {
			h[i] = strings.ToUpper(s)
		}
		fmt.Fprintln(tw, strings.Join(h, "\t"))
	}
	for _, r := range t.Rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// Write writes the table alone.
func (t *Table) Write(w io.Writer) error { return t.write(w) }

// Fields are "name: value" lines with the values aligned, for a summary
// of one thing (a topic, a group, the cluster).
type Fields [][2]string

// Add appends a field; the value is formatted as a table cell.
func (f *Fields) Add(name string, value any) { *f = append(*f, [2]string{name, cell(value)}) }

func (f *Fields) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, kv := range *f {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	return tw.Flush()
}

// Lines are written as they are, one per line.
type Lines []string

func (l Lines) write(w io.Writer) error {
	for _, s := range l {
		if _, err := fmt.Fprintln(w, s); err != nil {
			return err
		}
	}
	return nil
}

// IsTerminal reports whether w is a terminal, where progress lines belong.
// Pipes, files and buffers are not.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	if err != nil {
		return false
	}
	return st.Mode()&os.ModeCharDevice != 0
}
