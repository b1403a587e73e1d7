package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/collectord/collectord/internal/cmdline"
)

// runCompletion writes the completion script for the shell named by its
// argument.
func runCompletion(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := cmdline.NewFlagSet("completion")
	if err := cmdline.Parse(fs, args); err != nil {
		return flagError(err)
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("name one shell: bash, zsh or fish")}
	}
	var defs []cmdline.Command
	for _, c := range commands() {
		defs = append(defs, c.cli())
	}
	if err := cmdline.WriteCompletion(stdout, fs.Arg(0), "logctl", defs); err != nil {
		return usageError{err}
	}
	return nil
}

func completionCommand() cmdline.Command {
	return cmdline.Command{
		Name:     "completion",
		Synopsis: "bash|zsh|fish",
		Summary:  "print a shell completion script",
		Description: fmt.Sprintf(`Prints a script that completes logctl's commands, flags and flag values in the given shell. To use it at once:

	source <(logctl completion bash)

To install it: %s.`, "logctl completion bash > /etc/bash_completion.d/logctl, logctl completion zsh > /usr/local/share/zsh/site-functions/_logctl, logctl completion fish > /etc/fish/completions/logctl.fish"),
		Flags: cmdline.NewFlagSet("completion"),
		Args:  cmdline.Shells,
	}
}
