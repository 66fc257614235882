package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/samsa-io/samsa/cli"
)

func newGroupCommand(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "group",
		Aliases: []string{"groups"},
		Short:   "List, describe, seek and delete consumer groups",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.Usagef("missing subcommand: one of list, describe, seek, delete, offset-delete")
		},
	}
	var conn cli.Conn
	conn.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(
		newGroupListCommand(stdout, &conn),
		newGroupDescribeCommand(stdout, &conn),
		newGroupSeekCommand(stdout, &conn),
		newGroupDeleteCommand(stdout, &conn),
		newGroupOffsetDeleteCommand(stdout, &conn),
	)
	return cmd
}

func newGroupListCommand(stdout io.Writer, conn *cli.Conn) *cobra.Command {
	var (
		o      cli.GroupListOptions
		format cli.Format
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List consumer groups with their type and state",
		Example: `  samsa group list
  samsa group list --state Stable --type consumer`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.GroupList(cmd.Context(), conn, cli.Printer{Out: stdout, Format: format}, o)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.States, "state", nil, "only groups in these states (Stable, Empty, PreparingRebalance, …)")
	f.StringSliceVar(&o.Types, "type", nil, "only groups of these types: classic, consumer (KIP-848)")
	cli.AddFormatFlag(f, &format)
	return cmd
}

func newGroupDescribeCommand(stdout io.Writer, conn *cli.Conn) *cobra.Command {
	var format cli.Format
	cmd := &cobra.Command{
		Use:   "describe GROUP...",
		Short: "Show a group's state, members, and per partition its offset, the log end and the lag",
		Example: `  samsa group describe orders-service
  samsa group describe orders-service --format json`,
		Args: argsAtLeast(1, "group name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.GroupDescribe(cmd.Context(), conn, cli.Printer{Out: stdout, Format: format}, cli.GroupDescribeOptions{Groups: args})
		},
	}
	cli.AddFormatFlag(cmd.Flags(), &format)
	return cmd
}

func newGroupSeekCommand(stdout io.Writer, conn *cli.Conn) *cobra.Command {
	var (
		o      cli.GroupSeekOptions
		format cli.Format
	)
	cmd := &cobra.Command{
		Use:   "seek GROUP (--to WHERE | --to-group OTHER)",
		Short: "Move a group's committed offsets (the group must have no members)",
		Long: `Move a group's committed offsets to the start or end of the log, an offset,
a time, or another group's offsets. As in Kafka, the group must be empty:
stop its consumers first. Without --topic, every partition the group (or,
with --to-group, the other group) has an offset for is moved.

--to takes the values of consume's --offset:
  start, end          the first record still in the log, or the end
  start+N, end-N      N records after the start, before the end
  N                   offset N (clamped to the log)
  2024-05-01T12:00:00Z, @1714564800000
                      the first record at or after this time
  -15m, -2h, -7d      the first record at or after this long ago`,
		Example: `  samsa group seek orders-service --to start --dry-run
  samsa group seek orders-service --to -1h --topic orders
  samsa group seek orders-service --to 42 --topic orders:0,1
  samsa group seek orders-service-copy --to-group orders-service`,
		Args: argsExactly(1, "group name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Group = args[0]
			return cli.GroupSeek(cmd.Context(), conn, cli.Printer{Out: stdout, Format: format}, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.To, "to", "", "where to move: start, end, start+N, end-N, an offset, a time, or a duration ago")
	f.StringVar(&o.ToGroup, "to-group", "", "copy this group's committed offsets")
	f.StringArrayVarP(&o.Topics, "topic", "t", nil, "only this topic, or TOPIC:PARTITION,… (repeatable)")
	f.BoolVar(&o.DryRun, "dry-run", false, "print the plan and change nothing")
	cli.AddFormatFlag(f, &format)
	return cmd
}

func newGroupDeleteCommand(stdout io.Writer, conn *cli.Conn) *cobra.Command {
	var format cli.Format
	cmd := &cobra.Command{
		Use:     "delete GROUP...",
		Short:   "Delete groups and their committed offsets (groups must have no members)",
		Example: `  samsa group delete old-service`,
		Args:    argsAtLeast(1, "group name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.GroupDelete(cmd.Context(), conn, cli.Printer{Out: stdout, Format: format}, args)
		},
	}
	cli.AddFormatFlag(cmd.Flags(), &format)
	return cmd
}

func newGroupOffsetDeleteCommand(stdout io.Writer, conn *cli.Conn) *cobra.Command {
	var (
		o      cli.GroupOffsetDeleteOptions
		format cli.Format
	)
	cmd := &cobra.Command{
		Use:   "offset-delete GROUP --topic TOPIC[:PARTITION,…]...",
		Short: "Delete a group's committed offsets for topics it no longer consumes",
		Example: `  samsa group offset-delete orders-service --topic old-orders
  samsa group offset-delete orders-service --topic orders:3,4`,
		Args: argsExactly(1, "group name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Group = args[0]
			return cli.GroupOffsetDelete(cmd.Context(), conn, cli.Printer{Out: stdout, Format: format}, o)
		},
	}
	cmd.Flags().StringArrayVarP(&o.Topics, "topic", "t", nil, "TOPIC (all its offsets) or TOPIC:PARTITION,… (repeatable)")
	cli.AddFormatFlag(cmd.Flags(), &format)
	return cmd
}
