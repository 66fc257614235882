// Package cli holds the logic of samsa's client commands (topic, produce,
// consume, group, cluster); cmd/samsa only declares their cobra commands and
// flags and calls in here.
//
// The shared pieces every command uses:
//
//   - Connecting (connect.go): [Conn] carries -b/--brokers (env
//     SAMSA_BROKERS, default localhost:9092). [Conn.Client] and [Conn.Admin]
//     make a kgo or kadm client and check at once that a broker answers, so a
//     command fails with one line naming the address and suggesting
//     `samsa serve` rather than hanging in retries.
//   - Output (output.go): [Printer] writes a value as an aligned table
//     (text, via text/tabwriter) or as the same data in JSON or YAML
//     (--format json|yaml). Values carry json and yaml tags; the text form is
//     a function that builds a [Table]. [IsTerminal] says whether progress
//     lines should be shown: only on a terminal, never when piped.
//   - Errors (errors.go): an error is one line that says what went wrong and
//     what to do. [Usagef] and [UsageError] mark errors in how a command was
//     invoked; [ExitCode] maps errors to exit codes: 0 ok, 1 failure,
//     2 usage.
//   - Suggestions (suggest.go): [Suggest] returns close names by edit
//     distance; [UnknownTopicError] and [CheckTopics] use it so that a
//     missing topic lists the names the user may have meant.
//
// Records are framed as text by one template language shared by produce
// (input) and consume (output), in recordformat.go; where consuming starts
// (-o start, end-10, an RFC 3339 time, -5m …) is [ParseStartOffset], also
// used by `group seek`. progress.go knows when `consume --exit-at-end` is
// done and draws progress on a terminal.
//
// The command families live one per file: topic.go (delete-records in
// delete_records.go), produce.go, consume.go, cluster.go, group*.go.
// Functions take a context, a [Conn] and an options struct, and write to
// the writers they are given: no package state, no os.Stdout.
package cli
