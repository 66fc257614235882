// Command samsa is the Samsa broker and its command-line tool.
//
// Exit status: 0 on success, 1 when the command fails, 2 on a usage error
// (an unknown command or flag, a bad argument, or an invalid configuration
// from flags, SAMSA_* variables or the --config file).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/samsa-io/samsa/cli"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line args and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "samsa: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) || cli.IsUsage(err) {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return 2
	}
	return 1
}

// usageError marks an error in how samsa was invoked or configured.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// noArgs is cobra.NoArgs, reporting a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.NoArgs(cmd, args); err != nil {
		return usageError{err}
	}
	return nil
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "samsa",
		Short: "Samsa is an event streaming broker that speaks the Kafka protocol",
		Long: `Samsa is an event streaming broker that speaks the Apache Kafka wire
protocol: Kafka clients use it unchanged.

Run a single-node broker with data in ./samsa-data, the Kafka API on :9092
and the HTTP API on :9644:

  samsa serve`,
		SilenceErrors: true,
		SilenceUsage:  true,
		// A root that runs makes cobra hand unknown commands to RunE, which
		// reports them as usage errors.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q", args[0])}
			}
			cmd.SetOut(stderr)
			cmd.Help()
			return usageError{errors.New("no command given")}
		},
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServeCommand(stderr), newVersionCommand(stdout))
	root.AddCommand(newBenchCommand(stdout, stderr), newGroupCommand(stdout))
	root.AddCommand(newTopicCommand(stdout), newProduceCommand(stdout, stderr), newConsumeCommand(stdout, stderr), newClusterCommand(stdout))
	root.AddCommand(newCompletionCommand(stdout), newDocsCommand(stdout))
	return root
}

func newVersionCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of samsa",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintf(stdout, "samsa %s %s %s/%s\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}

// buildVersion is the version given at link time, else the module version,
// else the VCS revision, else "devel".
func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		return "devel-" + rev + dirty
	}
	return "devel"
}
