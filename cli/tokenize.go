package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/takumo/aegis/detect"
	"github.com/takumo/aegis/token"
)

// tokenize and rehydrate keep stdout for the text alone, so that it can be
// piped; what a person reads (the list of replacements, counts, warnings)
// goes to stderr.

type tokenizeOptions struct {
	output       string
	quiet        bool
	sessionFile  string
	policyFile   string
	gitleaksFile string
}

func (a *app) tokenizeCommand() *cobra.Command {
	var o tokenizeOptions
	cmd := &cobra.Command{
		Use:   "tokenize FILE|-",
		Short: "Replace the secrets in a file with tokens",
		Long: `Print FILE (or standard input for "-") with every secret replaced by a token
such as __TAKUMO_v1_KEY_8f3a2b1c__. The text goes to standard output (or
--output); the list of replacements goes to standard error.

With --session-file the key and the values are kept in that file (created
with mode 0600), so that rehydrate can put the values back later and a
later tokenize gives the same tokens. The session file holds the secrets
in clear: keep it private and out of version control.

Findings whose action is monitor are listed and left in place. A finding
whose action is block stops the command: nothing is written.`,
		Example: `  takumo-aegis tokenize config.ts
  takumo-aegis tokenize -q config.ts | xclip -selection clipboard
  takumo-aegis tokenize --session-file .takumo-session -o safe.ts config.ts`,
		Args: exactArgs(1, "one file (or - for standard input)"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.runTokenize(args[0], o)
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "write the tokenized text to `FILE` (mode 0600) instead of standard output")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print only the tokenized text, no list of replacements")
	f.StringVar(&o.sessionFile, "session-file", "", "keep the session (key and values, in clear) in `FILE`, created 0600")
	f.StringVar(&o.policyFile, "policy", "", "policy `FILE` with custom rules and action overrides")
	f.StringVar(&o.gitleaksFile, "gitleaks-config", "", "import the rules of a gitleaks `FILE` as custom rules")
	return cmd
}

func (a *app) runTokenize(input string, o tokenizeOptions) error {
	text, err := a.readInput(input)
	if err != nil {
		return fmt.Errorf("tokenize: %w", err)
	}
	engine, err := a.newEngine(engineSources{policyFile: o.policyFile, gitleaksFile: o.gitleaksFile})
	if err != nil {
		return fmt.Errorf("tokenize: %w", err)
	}
	vault, err := openOrNewVault(o.sessionFile)
	if err != nil {
		return fmt.Errorf("tokenize: %w", err)
	}
	defer vault.Clear()
	res, err := token.Tokenizer{Engine: engine.Engine}.Tokenize(vault, text)
	if err != nil {
		return fmt.Errorf("tokenize: %w", err)
	}
	lines := lineNumbers(text, res.Detections)
	if res.Blocked() {
		var where []string
		for i, d := range res.Detections {
			if d.Action == detect.Block {
				where = append(where, fmt.Sprintf("%s on line %d", d.RuleID, lines[i]))
			}
		}
		return fmt.Errorf("tokenize: the policy blocks %s; nothing was written", strings.Join(where, ", "))
	}
	if o.sessionFile != "" {
		if err := vault.WriteSessionFile(o.sessionFile); err != nil {
			return fmt.Errorf("tokenize: saving the session: %w", err)
		}
	}
	if !o.quiet {
		if err := writeTokenizeHeader(a.stderr, res.Detections, lines); err != nil {
			return err
		}
	}
	return a.writeOutput(o.output, res.Text)
}

// writeTokenizeHeader lists "line N  rule → token" for each replacement,
// then "---".
func writeTokenizeHeader(w io.Writer, dets []token.Detection, lines []int) error {
	bw := bufio.NewWriter(w)
	n := 0
	for _, d := range dets {
		if d.Token != "" {
			n++
		}
	}
	fmt.Fprintf(bw, "Tokenized %d %s:\n", n, plural(n, "secret", "secrets"))
	for i, d := range dets {
		if d.Token != "" {
			fmt.Fprintf(bw, "  line %d  %s → %s\n", lines[i], d.RuleID, d.Token)
		} else {
			fmt.Fprintf(bw, "  line %d  %s (%s, left in place)\n", lines[i], d.RuleID, d.Action)
		}
	}
	bw.WriteString("---\n")
	return bw.Flush()
}

// lineNumbers returns the 1-based line of each detection (they come in
// input order).
func lineNumbers(text []byte, dets []token.Detection) []int {
	out := make([]int, len(dets))
	var pos position
	for i, d := range dets {
		if off := int64(d.Start); off > pos.off {
			pos.advance(text[pos.off:off])
		}
		out[i] = pos.line + 1
	}
	return out
}

// openOrNewVault reads the session file if there is one, else starts a
// vault with a fresh random key.
func openOrNewVault(sessionFile string) (*token.Vault, error) {
	if sessionFile != "" {
		v, err := token.ReadSessionFile(sessionFile)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	key, err := token.NewRandomKey()
	if err != nil {
		return nil, err
	}
	return token.NewVault(key, token.Limits{})
}

type rehydrateOptions struct {
	output      string
	quiet       bool
	sessionFile string
}

func (a *app) rehydrateCommand() *cobra.Command {
	var o rehydrateOptions
	cmd := &cobra.Command{
		Use:   "rehydrate FILE|-",
		Short: "Put the values back in place of tokens",
		Long: `Print FILE (or standard input for "-") with every token that the session
file knows replaced by its value. Tokens the session does not know are left
as they are and listed on standard error.`,
		Example: `  takumo-aegis rehydrate --session-file .takumo-session reply.ts
  pbpaste | takumo-aegis rehydrate --session-file .takumo-session - > fixed.ts`,
		Args: exactArgs(1, "one file (or - for standard input)"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.runRehydrate(args[0], o)
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "write the text to `FILE` (mode 0600) instead of standard output")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print no summary")
	f.StringVar(&o.sessionFile, "session-file", "", "the session `FILE` written by tokenize (required)")
	_ = cmd.MarkFlagRequired("session-file") // cannot fail: the flag exists
	return cmd
}

func (a *app) runRehydrate(input string, o rehydrateOptions) error {
	text, err := a.readInput(input)
	if err != nil {
		return fmt.Errorf("rehydrate: %w", err)
	}
	vault, err := token.ReadSessionFile(o.sessionFile)
	if err != nil {
		hint := ""
		if errors.Is(err, fs.ErrNotExist) {
			hint = " (check the path, or run tokenize with --session-file first)"
		}
		return fmt.Errorf("rehydrate: %w%s", err, hint)
	}
	defer vault.Clear()
	out, st := token.Rehydrate(vault, text, token.Raw)
	defer clear(out)
	if err := a.writeOutput(o.output, out); err != nil {
		return err
	}
	if st.Unknown > 0 {
		fmt.Fprintf(a.stderr, "warning: %d unknown %s left as written: %s\n", st.Unknown,
			plural(st.Unknown, "token", "tokens"), strings.Join(st.UnknownTokens, ", "))
	}
	if !o.quiet {
		fmt.Fprintf(a.stderr, "Restored %d %s.\n", st.Replaced, plural(st.Replaced, "token", "tokens"))
	}
	return nil
}

// readInput reads a whole file, or stdin for "-".
func (a *app) readInput(name string) ([]byte, error) {
	if name == "-" {
		b, err := io.ReadAll(a.stdin)
		if err != nil {
			return nil, fmt.Errorf("reading standard input: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no such file %q (check the path)", name)
		}
		return nil, fmt.Errorf("cannot read %q: %s", name, describeErr(err))
	}
	return b, nil
}

// writeOutput writes text to the file name (mode 0600: the text may still
// hold what detection missed) or, when name is empty, to stdout.
func (a *app) writeOutput(name string, text []byte) error {
	if name == "" {
		_, err := a.stdout.Write(text)
		return err
	}
	if err := os.WriteFile(name, text, 0o600); err != nil {
		return fmt.Errorf("writing %q: %w", name, err)
	}
	return nil
}
