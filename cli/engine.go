package cli

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/takumo/aegis/detect"
	"github.com/takumo/aegis/detect/rules"
)

// engineSources names the files that add rules to the built-in catalog.
type engineSources struct {
	policyFile   string // --policy
	gitleaksFile string // --gitleaks-config
}

// builtEngine is an engine with the rule descriptions reports need.
type builtEngine struct {
	*detect.Engine
	rules map[string]detect.Rule // by id: catalog and custom rules
	opts  detect.Options         // what Engine was built from (extproc rebuilds it under the OPA policy)
}

// newEngine builds the detection engine: the catalog (or a.rules), plus
// custom rules, action overrides and allow-list patterns from the files in
// src. What those files contain but the engine does not honour is printed
// as a warning.
func (a *app) newEngine(src engineSources) (*builtEngine, error) {
	opts := detect.Options{Rules: a.rules}
	if src.policyFile != "" {
		pol, err := detect.LoadPolicyFile(src.policyFile)
		if err != nil {
			return nil, fmt.Errorf("--policy: %w%s", err, pathHint(err))
		}
		pol.Apply(&opts)
		a.warnAll(pol.Warnings)
	}
	if src.gitleaksFile != "" {
		custom, warnings, err := detect.ImportGitleaksFile(src.gitleaksFile)
		if err != nil {
			return nil, fmt.Errorf("--gitleaks-config: %w%s", err, pathHint(err))
		}
		opts.Custom = append(opts.Custom, custom...)
		a.warnAll(warnings)
	}
	e, err := detect.New(opts)
	if err != nil {
		return nil, fmt.Errorf("building the detector: %w", err)
	}
	base := opts.Rules
	if base == nil {
		base = rules.Builtin()
	}
	byID := make(map[string]detect.Rule, len(base)+len(opts.Custom))
	for _, r := range append(append([]detect.Rule(nil), base...), opts.Custom...) {
		byID[r.ID] = r
	}
	return &builtEngine{Engine: e, rules: byID, opts: opts}, nil
}

func (a *app) warnAll(warnings []string) {
	for _, w := range warnings {
		fmt.Fprintf(a.stderr, "warning: %s\n", w)
	}
}

// pathHint adds the fix to a file-not-found error.
func pathHint(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return " (check the path)"
	}
	return ""
}
