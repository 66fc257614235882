package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/samsa-io/samsa/cli"
)

func newCompletionCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Long: `Print a script that makes the shell complete samsa's commands, flags and,
where a broker answers, topic names.

  bash:  source <(samsa completion bash)
         or save it as /etc/bash_completion.d/samsa (needs bash-completion)
  zsh:   samsa completion zsh > "${fpath[1]}/_samsa"   (then restart zsh)
  fish:  samsa completion fish > ~/.config/fish/completions/samsa.fish`,
		ValidArgs:             []string{"bash", "zsh", "fish"},
		DisableFlagsInUseLine: true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return cli.Usagef("want one shell: bash, zsh or fish")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(stdout, true)
			case "zsh":
				return root.GenZshCompletion(stdout)
			case "fish":
				return root.GenFishCompletion(stdout, true)
			}
			return cli.Usagef("unknown shell %q: use bash, zsh or fish", args[0])
		},
	}
}
