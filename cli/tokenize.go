package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func (a *app) tokenizeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "tokenize FILE|-",
		Short: "Replace the secrets in a file with tokens",
		Args:  exactArgs(1, "one file (or - for standard input)"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return errors.New("tokenize: not available in this build yet")
		}),
	}
}

func (a *app) rehydrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rehydrate FILE|-",
		Short: "Put the values back in place of tokens",
		Args:  exactArgs(1, "one file (or - for standard input)"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return errors.New("rehydrate: not available in this build yet")
		}),
	}
}
