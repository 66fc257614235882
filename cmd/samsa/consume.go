package main

import (
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/samsa-io/samsa/cli"
)

func newConsumeCommand(stdout, stderr io.Writer) *cobra.Command {
	var (
		conn   cli.Conn
		o      cli.ConsumeOptions
		offset string
	)
	cmd := &cobra.Command{
		Use:   "consume TOPIC...",
		Short: "Print records of topics",
		Long: `Print records of topics, one value per line by default, and keep waiting
for new ones like tail -f. --exit-at-end stops instead once every partition
has been read up to the end it had when the command started; -n stops after a
number of records; Ctrl-C stops cleanly.

-o/--offset says where each partition starts:

  start (or oldest)       the first record still in the log (the default)
  end (or newest)         only records written from now on
  start+N                 N records after the start
  end-N                   the last N records of each partition
  N                       offset N (clamped to the log)
  2024-05-01T12:00:00Z    the first record at or after an RFC 3339 time
  @1714564800000          the same in Unix milliseconds
  -5m, -2h, -7d           the first record at or after that long ago

With -g/--group the command joins the group: partitions are shared with the
group's other members, reading resumes from the group's committed offsets
(-o applies only to partitions without one), and the offsets of the records
printed are committed.

--format is a template with these verbs:

  %t  topic      %p  partition      %o  offset
  %k  key        %v  value          %h  headers (name=value,...)
  %d  timestamp in Unix milliseconds   %T  timestamp in RFC 3339 (UTC)
  %%  a percent sign;  escapes \n \t \r \0 \\

or json for one JSON object per record (topic, partition, offset, timestamp,
key, value, headers; key_base64 and value_base64 when not UTF-8).`,
		Example: `  samsa consume orders
  samsa consume orders -o end-10 --exit-at-end
  samsa consume orders -o -15m --format '%T %k %v\n'
  samsa consume orders -g billing -n 100 --format json`,
		Args:              argsAtLeast(1, "topic name"),
		ValidArgsFunction: completeTopics(&conn),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if o.Offset, err = cli.ParseStartOffset(offset); err != nil {
				return err
			}
			o.Topics = args
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return cli.Consume(ctx, &conn, stdout, stderr, o)
		},
	}
	f := cmd.Flags()
	conn.AddFlags(f)
	f.StringVarP(&offset, "offset", "o", "start", "where to start in each partition (see above)")
	f.Int32SliceVarP(&o.Partitions, "partitions", "p", nil, "read only these partitions (not with --group)")
	f.StringVarP(&o.Group, "group", "g", "", "consume as a member of this consumer group")
	f.Int64VarP(&o.Count, "num", "n", 0, "stop after this many records (0: no limit)")
	f.BoolVarP(&o.ExitAtEnd, "exit-at-end", "e", false, "stop at the end offsets seen at start-up instead of waiting")
	f.StringVarP(&o.Format, "format", "f", "", "output template (see above) or json (default \"%v\\n\")")
	return cmd
}
