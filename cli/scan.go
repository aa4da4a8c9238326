package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"github.com/spf13/cobra"

	"github.com/takumo/aegis/detect"
)

// scanOptions are the flags of scan.
type scanOptions struct {
	format       string
	ignore       []string
	noRecursive  bool
	noGitignore  bool
	policyFile   string
	gitleaksFile string
	maxFileSize  string
	showMonitor  bool
}

func (a *app) scanCommand() *cobra.Command {
	var o scanOptions
	cmd := &cobra.Command{
		Use:   "scan PATH...",
		Short: "Find secrets in files, directories or stdin (-)",
		Long: `Scan files and directories for secrets and report where they are, without
their values. Directories are walked recursively; .git directories, binary
files (a NUL byte in the first 8 KB) and files matched by .gitignore or
--ignore are skipped, and symlinked directories are not followed. "-" reads
standard input.

Exit status: 0 nothing found, 1 secrets found, 2 bad usage or nothing could
be scanned. Findings whose action is "monitor" (such as internal host
names) do not change the exit status and are hidden from text output unless
--show-monitor is given.`,
		Example: `  takumo-aegis scan .
  takumo-aegis scan src config.yaml --ignore '*.min.js' --ignore 'testdata/**'
  git diff | takumo-aegis scan -
  takumo-aegis scan --format sarif . > aegis.sarif`,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.runScan(cmd, args, o)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.format, "format", "text", "output format: text, json or sarif")
	f.StringArrayVar(&o.ignore, "ignore", nil, "skip paths matching this .gitignore-style `GLOB` (repeatable)")
	f.BoolVar(&o.noRecursive, "no-recursive", false, "scan only the files directly inside a directory argument")
	f.BoolVar(&o.noGitignore, "no-gitignore", false, "scan files that .gitignore files exclude")
	f.StringVar(&o.policyFile, "policy", "", "policy `FILE` with custom rules and action overrides")
	f.StringVar(&o.gitleaksFile, "gitleaks-config", "", "import the rules of a gitleaks `FILE` (.gitleaks.toml) as custom rules")
	f.StringVar(&o.maxFileSize, "max-file-size", "64MiB", "read files larger than this `SIZE` in overlapping chunks of this size")
	f.BoolVar(&o.showMonitor, "show-monitor", false, "also list findings whose action is monitor in text output")
	return cmd
}

// scanSummary is what a scan saw, besides findings.
type scanSummary struct {
	filesScanned int
	filesSkipped int // binary
	bytesScanned int64
	warnings     []string
}

func (a *app) runScan(cmd *cobra.Command, args []string, o scanOptions) error {
	ctx := cmd.Context()
	if len(args) == 0 {
		return usagef(cmd, "scan: no path given (name files or directories, or - for standard input)")
	}
	switch o.format {
	case "text", "json", "sarif":
	default:
		return usagef(cmd, "scan: unknown --format %q (use text, json or sarif)", o.format)
	}
	chunk, err := parseSize(o.maxFileSize)
	if err != nil {
		return usagef(cmd, "scan: --max-file-size: %v", err)
	}
	if chunk < minChunk {
		return usagef(cmd, "scan: --max-file-size %s is too small (at least 1KiB)", o.maxFileSize)
	}
	ignore, err := parseIgnores(o.ignore)
	if err != nil {
		return usagef(cmd, "scan: %v", err)
	}
	if err := checkArgs(args); err != nil {
		return err
	}
	engine, err := a.newEngine(engineSources{policyFile: o.policyFile, gitleaksFile: o.gitleaksFile})
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}

	findings, sum, err := a.scanAll(ctx, args, scanPlan{
		engine: engine.Engine,
		chunk:  int(min(chunk, int64(maxInt))),
		walk:   walkOptions{ignore: ignore, noRecursive: o.noRecursive, noGitignore: o.noGitignore},
	})
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	for _, w := range sum.warnings {
		fmt.Fprintf(a.stderr, "warning: %s\n", w)
	}

	out := a.stdout
	switch o.format {
	case "json":
		err = writeJSON(out, findings, sum)
	case "sarif":
		err = writeSARIF(out, findings, engine.rules)
	default:
		err = writeText(out, findings, sum, o.showMonitor)
	}
	if err != nil {
		return fmt.Errorf("scan: writing the report: %w", err)
	}
	if sum.filesScanned == 0 && len(sum.warnings) > 0 {
		return errors.New("scan: nothing could be scanned (see the warnings above)")
	}
	for _, f := range findings {
		if f.Action != detect.Monitor {
			return errFindings
		}
	}
	return nil
}

const maxInt = int(^uint(0) >> 1)

// checkArgs reports every argument that does not exist, and a repeated "-".
func checkArgs(args []string) error {
	var errs []error
	stdin := 0
	for _, p := range args {
		if p == "-" {
			stdin++
			continue
		}
		if _, err := os.Stat(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("scan: no such file or directory %q (check the path)", p))
			} else {
				errs = append(errs, fmt.Errorf("scan: cannot read %q: %s", p, describeErr(err)))
			}
		}
	}
	if stdin > 1 {
		errs = append(errs, errors.New(`scan: "-" (standard input) given more than once`))
	}
	return errors.Join(errs...)
}

// parseIgnores compiles --ignore globs, rejecting malformed ones.
func parseIgnores(globs []string) ([]gitignore.Pattern, error) {
	var ps []gitignore.Pattern
	for _, g := range globs {
		if strings.TrimSpace(g) == "" {
			return nil, errors.New("--ignore: empty pattern")
		}
		for _, seg := range strings.Split(strings.TrimPrefix(g, "!"), "/") {
			if _, err := path.Match(seg, ""); err != nil {
				return nil, fmt.Errorf("--ignore %q: malformed pattern (check brackets and escapes)", g)
			}
		}
		ps = append(ps, gitignore.ParsePattern(g, nil))
	}
	return ps, nil
}

// parseSize parses a byte count: a number with an optional unit K, M or G
// (powers of 1024; KB, KiB and so on are accepted too).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') {
		i--
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (use bytes, or a number with K, M or G, such as 64MiB)", s)
	}
	mult := map[string]int64{
		"": 1, "b": 1,
		"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
		"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
		"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("%q: unknown unit %q (use K, M or G)", s, unit)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

// scanPlan is everything scanAll needs besides the arguments.
type scanPlan struct {
	engine *detect.Engine
	chunk  int
	walk   walkOptions
}

// scanAll walks args and scans the files with a bounded pool of workers,
// one file per worker at a time. Findings come back sorted by path, then
// offset, whatever order the workers finished in.
func (a *app) scanAll(ctx context.Context, args []string, plan scanPlan) ([]finding, scanSummary, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		mu  sync.Mutex
		sum scanSummary
	)
	warn := func(format string, args ...any) {
		mu.Lock()
		sum.warnings = append(sum.warnings, fmt.Sprintf(format, args...))
		mu.Unlock()
	}

	jobs := make(chan fileJob)
	var walkErr error
	go func() {
		defer close(jobs)
		w := &walker{
			opts: plan.walk,
			warn: warn,
			seen: map[string]bool{},
			emit: func(j fileJob) bool {
				select {
				case jobs <- j:
					return true
				case <-ctx.Done():
					return false
				}
			},
		}
		for _, arg := range args {
			if err := w.walkArg(ctx, arg); err != nil {
				walkErr = err
				return
			}
		}
	}()

	var (
		wg       sync.WaitGroup
		results  []fileResult
		firstErr error
	)
	fsc := &fileScanner{engine: plan.engine, chunk: plan.chunk}
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range jobs {
				res, err := a.scanJob(ctx, fsc, j)
				mu.Lock()
				switch {
				case err == nil:
					results = append(results, res)
				case ctx.Err() != nil:
					if firstErr == nil {
						firstErr = ctx.Err()
					}
				default:
					sum.warnings = append(sum.warnings, fmt.Sprintf("%s: %s, skipped", j.display, describeErr(err)))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, sum, fmt.Errorf("interrupted: %w", err)
	}
	if firstErr != nil {
		return nil, sum, firstErr
	}
	if walkErr != nil && !errors.Is(walkErr, errStopped) {
		return nil, sum, walkErr
	}

	slices.SortFunc(results, func(x, y fileResult) int { return strings.Compare(x.path, y.path) })
	slices.Sort(sum.warnings)
	var all []finding
	for _, r := range results {
		if r.binary {
			sum.filesSkipped++
			continue
		}
		sum.filesScanned++
		sum.bytesScanned += r.bytes
		all = append(all, r.findings...)
	}
	return all, sum, nil
}

func (a *app) scanJob(ctx context.Context, fsc *fileScanner, j fileJob) (fileResult, error) {
	if j.osPath == "" {
		return fsc.scan(ctx, a.stdin, -1, j.display)
	}
	f, err := os.Open(j.osPath)
	if err != nil {
		return fileResult{}, err
	}
	defer f.Close()
	return fsc.scan(ctx, f, j.size, j.display)
}
