package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/samsa-io/samsa/cli"
)

func newProduceCommand(stdout, stderr io.Writer) *cobra.Command {
	var (
		conn    cli.Conn
		o       cli.ProduceOptions
		key     string
		headers []string
	)
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Write records from standard input to a topic",
		Long: `Write records read from standard input to a topic: by default one record
per line, the line being the value.

--key-separator splits each line into a key and a value at the first
separator. --format frames records any other way, with these verbs:

  %k  key          %v  value          %p  partition
  %h  headers, as name=value pairs separated by commas
  %d  timestamp in Unix milliseconds   %T  timestamp in RFC 3339
  %%  a percent sign;  escapes \n \t \r \0 \\

The text after the last verb ends a record; each verb reads up to the text
that follows it. The default is "%v\n".

--print-offsets writes TOPIC/PARTITION@OFFSET for each record as the broker
acknowledges it (in order within a partition).`,
		Example: `  echo hello | samsa produce greetings
  printf 'k1:v1\nk2:v2\n' | samsa produce orders --key-separator :
  samsa produce orders --format '%k\t%h\t%v\n' < records.tsv
  samsa produce orders -H source=import -z zstd --print-offsets < lines.txt`,
		Args:              argsExactly(1, "one topic"),
		ValidArgsFunction: completeTopics(&conn),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Topic = args[0]
			if cmd.Flags().Changed("key") {
				o.Key = &key
			}
			var err error
			if o.Headers, err = parseKeyValues("header", headers); err != nil {
				return err
			}
			return cli.Produce(cmd.Context(), &conn, cmd.InOrStdin(), stdout, stderr, o)
		},
	}
	f := cmd.Flags()
	conn.AddFlags(f)
	f.StringVarP(&o.KeySeparator, "key-separator", "K", "", "split each line into key and value at the first `SEP`")
	f.StringVarP(&key, "key", "k", "", "key of every record that the input gives none")
	f.StringArrayVarP(&headers, "header", "H", nil, "header name=value added to every record, repeatable")
	f.Int32VarP(&o.Partition, "partition", "p", -1, "partition to write to (-1: by key hash, records without a key spread in batches)")
	f.StringVarP(&o.Compression, "compression", "z", "none", "compression: none, gzip, snappy, lz4 or zstd")
	f.StringVar(&o.Acks, "acks", "all", "acknowledgements: all (durable, idempotent), 1 (leader only) or 0 (none)")
	f.StringVarP(&o.Template, "format", "f", "", "input framing (see above; default \"%v\\n\")")
	f.BoolVar(&o.PrintOffsets, "print-offsets", false, "print TOPIC/PARTITION@OFFSET of each record written")
	return cmd
}
