// Package cli is the takumo-aegis command line: it parses arguments, wires
// the library packages together and turns their results into output and an
// exit code. It holds no detection or tokenization logic of its own; what it
// owns is the file-system side of scanning (walking trees, .gitignore,
// binary files, reading large files in overlapping chunks) and the report
// formats (text, JSON, SARIF).
//
// Main is the whole program behind cmd/takumo-aegis: it takes the arguments
// and the three standard streams as values and returns the exit code, so
// tests run the CLI in-process. Nothing here calls os.Exit or keeps global
// mutable state; Version is set once at link time.
//
// Exit codes are part of the interface (CI jobs depend on them):
//
//	0  success; for scan: no secrets found
//	1  scan found secrets (findings whose action is monitor do not count)
//	2  bad usage, or an error that stopped the command (nothing scanned,
//	   unreadable session file, ...)
//
// The command tree uses cobra rather than the standard flag package: flags
// may follow positional arguments (`scan src --format json`), every command
// gets --help and a help topic, repeatable flags (--ignore) come for free,
// and the tree will grow server and admin subcommands.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/takumo/aegis/detect"
)

// Version is the program version, set at link time with
// -ldflags "-X github.com/takumo/aegis/cli.Version=v1.2.3".
var Version = "dev"

// Exit codes.
const (
	ExitOK       = 0
	ExitFindings = 1
	ExitError    = 2
)

const progName = "takumo-aegis"

// Main runs the command line args (without the program name) and returns
// the process exit code. It reads stdin only for commands given "-".
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	return a.run(ctx, args)
}

// app is one run of the command line. Its fields are set before run and
// never changed after.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	// rules replaces the built-in catalog when non-nil. Production leaves
	// it nil; tests set it so that golden output does not change every
	// time the catalog grows.
	rules []detect.Rule
}

// errFindings is returned by scan when it found secrets that count.
var errFindings = errors.New("secrets found")

// usageError marks a mistake in the command line: exit 2 and a pointer to
// the command's help.
type usageError struct {
	cmd string // command path, e.g. "takumo-aegis scan"
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf(format, args...)}
}

func (a *app) run(ctx context.Context, args []string) int {
	if args == nil {
		// cobra falls back to os.Args when given nil.
		args = []string{}
	}
	root := a.rootCommand()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, errFindings):
		return ExitFindings
	}
	fmt.Fprintf(a.stderr, "%s: %v\n", progName, err)
	var (
		ue *usageError
		re *runError
	)
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", ue.cmd)
	case errors.As(err, &re):
		// The command line was fine; the error says what went wrong.
	case cmd != nil:
		// An error from cobra itself: unknown command, wrong number of
		// arguments. All of them are usage errors.
		fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return ExitError
}

// runError marks an error that happened while a command ran, after its
// command line was accepted.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// runE adapts a command body: its errors are run errors unless they are
// usage errors or errFindings already.
func runE(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := fn(cmd, args)
		var ue *usageError
		if err == nil || errors.Is(err, errFindings) || errors.As(err, &ue) {
			return err
		}
		return &runError{err: err}
	}
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   progName,
		Short: "Find and tokenize secrets before code reaches an AI provider",
		Long: progName + ` finds secrets (cloud keys, tokens, passwords, connection
strings, private keys) in files and replaces them with deterministic tokens
such as __TAKUMO_v1_KEY_8f3a2b1c__, and puts the values back afterwards.`,
		Version:       Version,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetVersionTemplate(progName + " {{.Version}}\n")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{cmd: cmd.CommandPath(), err: err}
	})
	root.AddCommand(
		a.scanCommand(),
		a.tokenizeCommand(),
		a.rehydrateCommand(),
		a.gatewayCommand(),
		a.extprocCommand(),
		a.coordinatorCommand(),
		a.keysCommand(),
		a.joinKeysCommand(),
		a.orgsCommand(),
		a.fleetCommand(),
		a.auditCommand(),
		a.usageCommand(),
		a.policiesCommand(),
		a.versionCommand(),
	)
	return root
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", progName, Version)
			return err
		},
	}
}

// exactArgs is cobra.ExactArgs with a usage error that names the argument.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef(cmd, "%s: expected %s, got %d arguments", cmd.Name(), what, len(args))
		}
		return nil
	}
}
