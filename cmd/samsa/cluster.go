package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/samsa-io/samsa/cli"
)

func newClusterCommand(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Show the cluster's brokers and check its health",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.Usagef("missing subcommand: one of info, health")
		},
	}
	var conn cli.Conn
	conn.AddFlags(cmd.PersistentFlags())

	var (
		infoOpts   cli.ClusterInfoOptions
		infoFormat cli.Format
	)
	info := &cobra.Command{
		Use:   "info",
		Short: "Show the cluster id, controller, brokers and API versions",
		Long: `Show the cluster id, the controller, the number of topics and partitions,
and each broker with its address, rack and the number of Kafka APIs it
serves. --apis lists those APIs with their version ranges (always present in
--format json and yaml).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.ClusterDescribe(cmd.Context(), &conn, cli.Printer{Out: stdout, Format: infoFormat}, infoOpts)
		},
	}
	info.Flags().BoolVar(&infoOpts.APIs, "apis", false, "list the API versions the brokers serve")
	cli.AddFormatFlag(info.Flags(), &infoFormat)

	var healthFormat cli.Format
	health := &cobra.Command{
		Use:   "health",
		Short: "Check the cluster's health; exit 1 when it is not healthy",
		Long: `Check that a broker answers, that there is an active controller, that every
broker answers ApiVersions, that every partition has a leader and that none
is under-replicated. Exit status 0 when all pass, 1 otherwise (also when no
broker can be reached), so that scripts and probes can use it.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.ClusterHealth(cmd.Context(), &conn, cli.Printer{Out: stdout, Format: healthFormat})
		},
	}
	cli.AddFormatFlag(health.Flags(), &healthFormat)
	cmd.AddCommand(info, health)
	return cmd
}
