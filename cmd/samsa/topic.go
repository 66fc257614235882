package main

import (
	"context"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/samsa-io/samsa/cli"
)

// argsAtLeast is cobra.MinimumNArgs, naming what is missing and reporting a
// usage error.
func argsAtLeast(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return cli.Usagef("missing %s", what)
		}
		return nil
	}
}

// argsExactly is cobra.ExactArgs, reporting a usage error.
func argsExactly(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return cli.Usagef("missing %s", what)
		}
		if len(args) > n {
			return cli.Usagef("too many arguments: want %s, got %q", what, args)
		}
		return nil
	}
}

// completeTopics completes topic names from the broker, giving up quietly
// after a second when none answers.
func completeTopics(conn *cli.Conn) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		ctx, cancel := context.WithTimeout(cmd.Context(), time.Second)
		defer cancel()
		c := *conn
		c.DialTimeout = time.Second
		names, err := cli.TopicNames(ctx, &c)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// parseKeyValues turns name=value strings into a map.
func parseKeyValues(flag string, kvs []string) (map[string]string, error) {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, cli.Usagef("--%s %q: want name=value", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

func newTopicCommand(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe, alter and delete topics",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.Usagef("missing subcommand: one of create, list, describe, delete, alter-config, add-partitions, delete-records")
		},
	}
	var conn cli.Conn
	conn.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(
		newTopicCreateCommand(stdout, &conn),
		newTopicListCommand(stdout, &conn),
		newTopicDescribeCommand(stdout, &conn),
		newTopicDeleteCommand(stdout, &conn),
		newTopicAlterConfigCommand(stdout, &conn),
		newTopicAddPartitionsCommand(stdout, &conn),
		newTopicDeleteRecordsCommand(stdout, &conn),
	)
	return cmd
}

func newTopicCreateCommand(stdout io.Writer, conn *cli.Conn) *cobra.Command {
	var (
		o       cli.TopicCreateOptions
		configs []string
		format  cli.Format
	)
	cmd := &cobra.Command{
		Use:   "create TOPIC...",
		Short: "Create topics",
		Example: `  samsa topic create orders
  samsa topic create orders -p 6 -c retention.ms=86400000 -c cleanup.policy=compact`,
		Args: argsAtLeast(1, "topic name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if o.Configs, err = parseKeyValues("config", configs); err != nil {
				return err
			}
			o.Topics = args
			return cli.TopicCreate(cmd.Context(), conn, cli.Printer{Out: stdout, Format: format}, o)
		},
	}
	f := cmd.Flags()
	f.Int32VarP(&o.Partitions, "partitions", "p", -1, "number of partitions (-1: the broker's num.partitions)")
	f.Int16VarP(&o.Replicas, "replicas", "r", -1, "replication factor (-1: the broker's default.replication.factor)")
	f.StringArrayVarP(&configs, "config", "c", nil, "topic config name=value, repeatable (Kafka's names: retention.ms, cleanup.policy, ...)")
	f.BoolVar(&o.IfNotExists, "if-not-exists", false, "succeed when the topic already exists")
	f.BoolVar(&o.DryRun, "dry-run", false, "only check that the topics could be created")
	cli.AddFormatFlag(f, &format)
	return cmd
}

func newTopicListCommand(stdout io.Writer, conn *cli.Conn) *cobra.Command {
	var (
		internal bool
		format   cli.Format
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List topics",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.TopicList(cmd.Context(), conn, cli.Printer{Out: stdout, Format: format}, internal)
		},
	}
	cmd.Flags().BoolVarP(&internal, "internal", "i", false, "include internal topics such as __consumer_offsets")
	cli.AddFormatFlag(cmd.Flags(), &format)
	return cmd
}

func newTopicDescribeCommand(stdout io.Writer, conn *cli.Conn) *cobra.Command {
	var (
		o      cli.TopicDescribeOptions
		format cli.Format
	)
	cmd := &cobra.Command{
		Use:   "describe TOPIC...",
		Short: "Show topics' partitions, offsets, sizes and configs",
		Long: `Show a summary of each topic, then its partitions (leader, leader epoch,
replicas, in-sync replicas, log start and end offsets, size on disk), then its
configs with where each value comes from:

  topic    set on the topic (samsa topic alter-config)
  broker   set on the broker
  cluster  a cluster-wide broker default
  static   the broker's own configuration
  default  Kafka's default (shown only with --all-configs)`,
		Args:              argsAtLeast(1, "topic name"),
		ValidArgsFunction: completeTopics(conn),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Topics = args
			return cli.TopicDescribe(cmd.Context(), conn, cli.Printer{Out: stdout, Format: format}, o)
		},
	}
	cmd.Flags().BoolVarP(&o.AllConfigs, "all-configs", "a", false, "also show configs left at their default")
	cli.AddFormatFlag(cmd.Flags(), &format)
	return cmd
}

func newTopicDeleteCommand(stdout io.Writer, conn *cli.Conn) *cobra.Command {
	var (
		ifExists bool
		format   cli.Format
	)
	cmd := &cobra.Command{
		Use:               "delete TOPIC...",
		Aliases:           []string{"rm"},
		Short:             "Delete topics and all their records",
		Args:              argsAtLeast(1, "topic name"),
		ValidArgsFunction: completeTopics(conn),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.TopicDelete(cmd.Context(), conn, cli.Printer{Out: stdout, Format: format}, args, ifExists)
		},
	}
	cmd.Flags().BoolVar(&ifExists, "if-exists", false, "succeed when a topic does not exist")
	cli.AddFormatFlag(cmd.Flags(), &format)
	return cmd
}

func newTopicAlterConfigCommand(stdout io.Writer, conn *cli.Conn) *cobra.Command {
	var (
		o      cli.TopicAlterConfigOptions
		set    []string
		format cli.Format
	)
	cmd := &cobra.Command{
		Use:   "alter-config TOPIC...",
		Short: "Set or reset topic configs",
		Long: `Set or reset topic configs. Only the configs named change (an incremental
alter, like kafka-configs --alter --add-config / --delete-config); --delete
returns a config to the broker's default.`,
		Example: `  samsa topic alter-config orders --set retention.ms=3600000
  samsa topic alter-config orders --delete retention.ms`,
		Args:              argsAtLeast(1, "topic name"),
		ValidArgsFunction: completeTopics(conn),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if o.Set, err = parseKeyValues("set", set); err != nil {
				return err
			}
			o.Topics = args
			return cli.TopicAlterConfig(cmd.Context(), conn, cli.Printer{Out: stdout, Format: format}, o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&set, "set", "s", nil, "config name=value to set, repeatable")
	f.StringArrayVarP(&o.Delete, "delete", "d", nil, "config name to reset to its default, repeatable")
	f.BoolVar(&o.DryRun, "dry-run", false, "only check that the change is valid")
	cli.AddFormatFlag(f, &format)
	return cmd
}

func newTopicAddPartitionsCommand(stdout io.Writer, conn *cli.Conn) *cobra.Command {
	var (
		o      cli.TopicAddPartitionsOptions
		format cli.Format
	)
	cmd := &cobra.Command{
		Use:   "add-partitions TOPIC...",
		Short: "Add partitions to topics",
		Long: `Add partitions to topics, either a number more (--num) or up to a total
(--total). Partitions can only be added: records keyed to a partition may map
to another one afterwards.`,
		Example: `  samsa topic add-partitions orders --num 2
  samsa topic add-partitions orders --total 12`,
		Args:              argsAtLeast(1, "topic name"),
		ValidArgsFunction: completeTopics(conn),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Topics = args
			return cli.TopicAddPartitions(cmd.Context(), conn, cli.Printer{Out: stdout, Format: format}, o)
		},
	}
	f := cmd.Flags()
	f.IntVarP(&o.Add, "num", "n", 0, "partitions to add")
	f.IntVar(&o.Total, "total", 0, "partitions the topic should have in all")
	f.BoolVar(&o.DryRun, "dry-run", false, "only check that the partitions could be added")
	cli.AddFormatFlag(f, &format)
	return cmd
}

func newTopicDeleteRecordsCommand(stdout io.Writer, conn *cli.Conn) *cobra.Command {
	var (
		o      cli.TopicDeleteRecordsOptions
		file   string
		format cli.Format
	)
	cmd := &cobra.Command{
		Use:   "delete-records (TOPIC... --before WHERE | --offset-json-file FILE)",
		Short: "Delete the records of partitions below an offset (Kafka's DeleteRecords)",
		Long: `Delete the records of partitions below an offset, as kafka-delete-records.sh
does: each partition's log start offset moves up to the offset, records below
it can no longer be read, and segments wholly below it are removed. Consumers
and groups positioned below the new start reset by their auto.offset.reset.
A topic compacted without the delete policy refuses.

--before says where deletion stops in each partition of the topics (or of
--partitions only); the record at that offset is kept:
  N                   offset N (past the end of the log, the broker refuses)
  end (or -1)         the end of the log: delete every record
  end-N               keep the last N records
  start+N             delete the first N records
  2024-05-01T12:00:00Z, @1714564800000
                      delete the records before the first one at or after
                      this time (every record, if none is that late)
  -15m, -2h, -7d      the same, for this long ago

--offset-json-file takes kafka-delete-records.sh's file instead, with an
offset per partition (-1: the end):
  {"version": 1, "partitions": [{"topic": "orders", "partition": 0, "offset": 42}]}

A missing topic or partition deletes nothing. Otherwise each partition
succeeds or fails on its own; the table shows its new log start or its error,
and the command fails when any partition did. --dry-run shows what would be
deleted.`,
		Example: `  samsa topic delete-records orders --before 1200 --partitions 0
  samsa topic delete-records orders --before end-1000 --dry-run
  samsa topic delete-records orders payments --before -7d
  samsa topic delete-records orders --before end
  samsa topic delete-records --offset-json-file offsets.json`,
		ValidArgsFunction: completeTopics(conn),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Topics = args
			if file != "" {
				in := cmd.InOrStdin()
				if file != "-" {
					f, err := os.Open(file)
					if err != nil {
						return cli.Usagef("--offset-json-file: %v", err)
					}
					defer f.Close()
					in = f
				}
				o.OffsetJSON, o.OffsetJSONName = in, file
			}
			return cli.TopicDeleteRecords(cmd.Context(), conn, cli.Printer{Out: stdout, Format: format}, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Before, "before", "", "delete up to this offset: N, end, end-N, start+N, a time, or a duration ago")
	f.Int32SliceVarP(&o.Partitions, "partitions", "p", nil, "only these partitions of each topic, comma-separated or repeated")
	f.StringVar(&file, "offset-json-file", "", "kafka-delete-records.sh's JSON file of offsets per partition (-: standard input)")
	f.BoolVar(&o.DryRun, "dry-run", false, "print what would be deleted and change nothing")
	cli.AddFormatFlag(f, &format)
	return cmd
}
