package detect

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

	"github.com/takumo/aegis/detect/rules"
)

// ImportGitleaks converts a gitleaks TOML configuration into custom rules.
// name is the file's path: errors and warnings refer to it, and an
// [extend] path is resolved against its directory. Warnings list what was
// skipped or approximated; the error joins every problem found.
//
// Importing turns the rules of a gitleaks configuration into custom rules. The file is decoded strictly: a key gitleaks does not define
// is an error, as are broken regular expressions, duplicate ids and rules
// without an id. What gitleaks uses but a request has no counterpart for is
// skipped and reported as a warning, never silently dropped.
//
// How each part maps:
//
//   - id becomes "gitleaks-" + the id in kebab-case, so that imported rules
//     cannot collide with built-in ones; description, regex and keywords
//     (lower-cased) are kept; the action is tokenize.
//   - secretGroup is kept. When it is 0 and the regex has capture groups,
//     group 1 holds the secret (gitleaks takes the first non-empty group;
//     the two differ only for regexes with several groups, which get a
//     warning).
//   - entropy: a secret whose Shannon entropy (over its characters) is not
//     above the threshold is dropped, as in gitleaks.
//   - The category comes from the first tag naming one (KEY, SECRET, CONN,
//     HOST, TOKEN, USER, PKEY, any case); else PKEY when the id contains
//     "private-key", TOKEN when it contains "token", KEY when it contains
//     "key", SECRET otherwise.
//   - Keywords are kept even when short (gitleaks has "sk", "ey"): the
//     engine runs a custom rule over the whole input when one of its
//     keywords occurs, as gitleaks does. An empty keyword occurs in every
//     input, so a rule with one runs without keywords.
//   - Allowlists, per rule ([rules.allowlist], [[rules.allowlists]]) and
//     global ([allowlist], [[allowlists]] with optional targetRules), become
//     part of the rule's validator. Supported: regexes with regexTarget
//     "secret" (the default) and stopwords (matched case-insensitively
//     inside the secret), combined with condition OR or AND. Not supported,
//     with a warning: regexTarget "match" and "line" (those regexes are not
//     applied; the engine hands a validator the secret only), paths and
//     commits (requests have neither). An AND allowlist that needs one of
//     those can never match here and is skipped.
//   - Rules without a regex are skipped with a warning: path-only rules
//     (they match file names), and, under [extend] useDefault, rules that
//     only adjust a gitleaks default rule. skipReport rules (parts of
//     composite rules) are skipped; [[rules.required]] is ignored, so a
//     composite rule reports on its own. A path on a rule with a regex is
//     ignored.
//   - [extend] useDefault = true is accepted and ignored with a note: the
//     built-in rules cover the gitleaks defaults. [extend] path is followed
//     (relative to the file that names it, up to 2 levels, as gitleaks
//     allows) with disabledRules applied; rules of the extending file
//     override the fields they set and add their allowlists.
func ImportGitleaks(data []byte, name string) ([]Rule, []string, error) {
	g := &glImporter{}
	c := g.load(data, name, 0)
	var out []Rule
	if c != nil {
		out = g.compile(c)
	}
	if len(g.errs) > 0 {
		return nil, g.warns, joinConfigErrors(g.errs)
	}
	return out, g.warns, nil
}

// ImportGitleaksFile reads and imports the gitleaks configuration at path.
func ImportGitleaksFile(path string) ([]Rule, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("gitleaks config: %w", err)
	}
	return ImportGitleaks(data, path)
}

// The on-disk form of a gitleaks configuration.
type (
	glConfig struct {
		Title       string        `toml:"title"`
		Description string        `toml:"description"`
		MinVersion  string        `toml:"minVersion"`
		Extend      glExtend      `toml:"extend"`
		Rules       []glRule      `toml:"rules"`
		Allowlist   *glAllowlist  `toml:"allowlist"`
		Allowlists  []glAllowlist `toml:"allowlists"`
	}
	glExtend struct {
		UseDefault    bool     `toml:"useDefault"`
		Path          string   `toml:"path"`
		DisabledRules []string `toml:"disabledRules"`
	}
	glRule struct {
		ID          string        `toml:"id"`
		Description string        `toml:"description"`
		Regex       string        `toml:"regex"`
		SecretGroup int           `toml:"secretGroup"`
		Entropy     float64       `toml:"entropy"`
		Path        string        `toml:"path"`
		Keywords    []string      `toml:"keywords"`
		Tags        []string      `toml:"tags"`
		SkipReport  bool          `toml:"skipReport"`
		Allowlist   *glAllowlist  `toml:"allowlist"`
		Allowlists  []glAllowlist `toml:"allowlists"`
		Required    []glRequired  `toml:"required"`

		// Where the rule and its regex were written, for messages.
		file      string
		line      int
		regexFile string
		regexLine int
	}
	glAllowlist struct {
		Description string   `toml:"description"`
		Condition   string   `toml:"condition"`
		Commits     []string `toml:"commits"`
		Paths       []string `toml:"paths"`
		RegexTarget string   `toml:"regexTarget"`
		Regexes     []string `toml:"regexes"`
		Stopwords   []string `toml:"stopwords"`
		TargetRules []string `toml:"targetRules"`

		file string
		line int
	}
	glRequired struct {
		ID            string `toml:"id"`
		WithinLines   *int   `toml:"withinLines"`
		WithinColumns *int   `toml:"withinColumns"`
	}
)

// Known keys per table, for "did you mean" hints.
var glKeys = map[string][]string{
	"":                 {"title", "description", "minVersion", "extend", "rules", "allowlist", "allowlists"},
	"extend":           {"useDefault", "path", "disabledRules"},
	"rules":            {"id", "description", "regex", "secretGroup", "entropy", "path", "keywords", "tags", "skipReport", "allowlist", "allowlists", "required"},
	"rules.allowlist":  {"description", "condition", "commits", "paths", "regexTarget", "regexes", "stopwords"},
	"rules.allowlists": {"description", "condition", "commits", "paths", "regexTarget", "regexes", "stopwords"},
	"rules.required":   {"id", "withinLines", "withinColumns"},
	"allowlist":        {"description", "condition", "commits", "paths", "regexTarget", "regexes", "stopwords", "targetRules"},
	"allowlists":       {"description", "condition", "commits", "paths", "regexTarget", "regexes", "stopwords", "targetRules"},
}

var tomlErrRE = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// maxExtendDepth is how many [extend] path levels gitleaks follows.
const maxExtendDepth = 2

// glImporter collects the errors and warnings of one import.
type glImporter struct {
	errs       []*ConfigError
	warns      []string
	useDefault bool
}

func (g *glImporter) errorf(file string, line int, format string, args ...any) {
	g.errs = append(g.errs, &ConfigError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (g *glImporter) warnf(file string, line int, format string, args ...any) {
	w := &ConfigError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
	g.warns = append(g.warns, w.Error())
}

// load decodes one file and the files it extends into one raw config.
func (g *glImporter) load(data []byte, name string, depth int) *glConfig {
	var c glConfig
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		var pe toml.ParseError
		var ppe *toml.ParseError
		switch {
		case errors.As(err, &pe):
			g.errorf(name, pe.Position.Line, "invalid TOML: %s", pe.Message)
		case errors.As(err, &ppe):
			g.errorf(name, ppe.Position.Line, "invalid TOML: %s", ppe.Message)
		default:
			// Type mismatches come as "toml: line N (last key "k"): msg".
			if m := tomlErrRE.FindStringSubmatch(err.Error()); m != nil {
				line, _ := strconv.Atoi(m[1])
				g.errorf(name, line, "invalid TOML: %s: %s", m[2], m[3])
			} else {
				g.errorf(name, 0, "invalid TOML: %s", strings.TrimPrefix(err.Error(), "toml: "))
			}
		}
		return nil
	}
	idx := indexTOML(data)
	g.undecoded(md, idx, name)
	idx.place(&c, name)

	if c.Extend.UseDefault && c.Extend.Path != "" {
		g.errorf(name, idx.headerLine("extend", false, 0), "extend: useDefault and path cannot be used together")
	}
	if c.Extend.UseDefault {
		g.useDefault = true
		g.warnf(name, idx.headerLine("extend", false, 0),
			"extend.useDefault: the gitleaks default rules are not imported; the built-in rules cover them")
		if len(c.Extend.DisabledRules) > 0 {
			g.warnf(name, idx.headerLine("extend", false, 0),
				"extend.disabledRules: ignored with useDefault (use actions.rules in the policy to turn built-in rules off)")
		}
	}
	if c.Extend.Path != "" && !c.Extend.UseDefault {
		line := idx.headerLine("extend", false, 0)
		if depth >= maxExtendDepth {
			g.errorf(name, line, "extend.path: more than %d levels of extension", maxExtendDepth)
			return &c
		}
		path := c.Extend.Path
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(name), path)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			g.errs = append(g.errs, &ConfigError{File: name, Line: line, Msg: "extend.path", Err: err})
			return &c
		}
		if base := g.load(data, path, depth+1); base != nil {
			return mergeGitleaks(base, &c)
		}
	}
	return &c
}

// mergeGitleaks returns top extending base: base rules not disabled, with
// top's rules overriding the fields they set, then top's new rules; global
// allowlists of both.
func mergeGitleaks(base, top *glConfig) *glConfig {
	disabled := map[string]bool{}
	for _, id := range top.Extend.DisabledRules {
		disabled[id] = true
	}
	out := *top
	out.Rules = nil
	at := map[string]int{}
	for _, r := range base.Rules {
		if disabled[r.ID] {
			continue
		}
		at[r.ID] = len(out.Rules)
		out.Rules = append(out.Rules, r)
	}
	for _, r := range top.Rules {
		i, ok := at[r.ID]
		if !ok || r.ID == "" {
			out.Rules = append(out.Rules, r)
			continue
		}
		out.Rules[i] = overlayRule(out.Rules[i], r)
	}
	out.Allowlist = nil
	out.Allowlists = append(globalAllowlists(top), globalAllowlists(base)...)
	return &out
}

func overlayRule(base, top glRule) glRule {
	r := base
	if top.Description != "" {
		r.Description = top.Description
	}
	if top.Regex != "" {
		r.Regex, r.regexFile, r.regexLine = top.Regex, top.regexFile, top.regexLine
	}
	if top.SecretGroup != 0 {
		r.SecretGroup = top.SecretGroup
	}
	if top.Entropy != 0 {
		r.Entropy = top.Entropy
	}
	if top.Path != "" {
		r.Path = top.Path
	}
	if top.Keywords != nil {
		r.Keywords = top.Keywords
	}
	if top.Tags != nil {
		r.Tags = top.Tags
	}
	r.SkipReport = r.SkipReport || top.SkipReport
	r.Allowlist = nil
	r.Allowlists = append(ruleAllowlists(base), ruleAllowlists(top)...)
	r.Required = append(append([]glRequired(nil), base.Required...), top.Required...)
	return r
}

func globalAllowlists(c *glConfig) []glAllowlist {
	out := append([]glAllowlist(nil), c.Allowlists...)
	if c.Allowlist != nil {
		out = append(out, *c.Allowlist)
	}
	return out
}

func ruleAllowlists(r glRule) []glAllowlist {
	out := append([]glAllowlist(nil), r.Allowlists...)
	if r.Allowlist != nil {
		out = append(out, *r.Allowlist)
	}
	return out
}

// undecoded reports keys gitleaks does not define.
func (g *glImporter) undecoded(md toml.MetaData, idx *tomlIndex, name string) {
	und := md.Undecoded()
	set := make(map[string]bool, len(und))
	for _, k := range und {
		set[k.String()] = true
	}
	seen := map[string]int{}
	for _, k := range und {
		parent := toml.Key(k[:len(k)-1]).String()
		if len(k) > 1 && set[parent] {
			continue // reported with its table
		}
		last := k[len(k)-1]
		seen[k.String()]++
		line := idx.keyLine(last, seen[k.String()])
		where := "at the top level"
		if parent != "" {
			where = "in [" + parent + "]"
		}
		msg := fmt.Sprintf("unknown key %q %s", last, where)
		if s := suggest(last, glKeys[parent]); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		g.errorf(name, line, "%s", msg)
	}
}

// compile turns the merged raw config into rules.
func (g *glImporter) compile(c *glConfig) []Rule {
	globals := globalAllowlists(c)
	known := map[string]bool{}
	for _, r := range c.Rules {
		known[r.ID] = true
	}
	var global []glAllowCheck
	for _, a := range globals {
		for _, t := range a.TargetRules {
			if !known[t] {
				g.warnf(a.file, a.line, "allowlist targetRules: no rule %q in this configuration", t)
			}
		}
		if chk, ok := g.allowlist(a, "allowlist"); ok {
			global = append(global, chk)
		}
	}

	var out []Rule
	firstLine := map[string]glRule{}
	for _, r := range c.Rules {
		if r.ID == "" {
			g.errorf(r.file, r.line, "rule without an id")
			continue
		}
		what := fmt.Sprintf("rule %q", r.ID)
		base := kebab(r.ID)
		if base == "" {
			g.errorf(r.file, r.line, "%s: id has no letters or digits", what)
			continue
		}
		id := "gitleaks-" + base
		if prev, dup := firstLine[id]; dup {
			g.errorf(r.file, r.line, "%s: duplicate rule id (same as %q at line %d once made kebab-case)", what, prev.ID, prev.line)
			continue
		}
		firstLine[id] = r

		if r.SkipReport {
			g.warnf(r.file, r.line, "%s: skipReport rule skipped (it only serves composite rules)", what)
			continue
		}
		if r.Regex == "" {
			switch {
			case r.Path != "":
				g.warnf(r.file, r.line, "%s: path-only rule skipped (it matches file names; requests have none)", what)
			case g.useDefault:
				g.warnf(r.file, r.line, "%s: skipped; it only adjusts a gitleaks default rule, which the built-in rules replace", what)
			default:
				g.errorf(r.file, r.line, "%s: has neither regex nor path", what)
			}
			continue
		}
		regexFile, regexLine := r.regexFile, r.regexLine
		if regexFile == "" {
			regexFile, regexLine = r.file, r.line
		}
		re, err := compileRegex(r.Regex, r.SecretGroup)
		if err != nil {
			g.errs = append(g.errs, &ConfigError{File: regexFile, Line: regexLine, Msg: what, Err: err})
			continue
		}
		if r.Entropy < 0 {
			g.errorf(r.file, r.line, "%s: entropy must not be negative", what)
			continue
		}
		group := r.SecretGroup
		if group == 0 && re.NumSubexp() > 0 {
			group = 1
			if re.NumSubexp() > 1 {
				g.warnf(regexFile, regexLine,
					"%s: secretGroup not set and the regex has %d groups; group 1 is the secret (gitleaks takes the first non-empty one)",
					what, re.NumSubexp())
			}
		}
		if r.Path != "" {
			g.warnf(r.file, r.line, "%s: path ignored; the rule applies to every request", what)
		}
		if len(r.Required) > 0 {
			g.warnf(r.file, r.line, "%s: required rules ignored; the rule reports on its own", what)
		}

		var keywords []string
		for _, k := range r.Keywords {
			if k == "" {
				// gitleaks finds "" in every input: the rule always runs.
				keywords = nil
				break
			}
			keywords = append(keywords, strings.ToLower(k))
		}

		var checks []glAllowCheck
		for _, a := range ruleAllowlists(r) {
			if len(a.TargetRules) > 0 {
				g.warnf(a.file, a.line, "%s: targetRules ignored in a rule's own allowlist", what)
			}
			if chk, ok := g.allowlist(a, what+": allowlist"); ok {
				checks = append(checks, chk)
			}
		}
		for _, chk := range global {
			if chk.targets(r.ID) {
				checks = append(checks, chk)
			}
		}

		out = append(out, Rule{
			ID:          id,
			Description: r.Description,
			Category:    gitleaksCategory(r.ID, r.Tags),
			Action:      Tokenize,
			Keywords:    keywords,
			Pattern:     r.Regex,
			SecretGroup: group,
			Validate:    gitleaksValidator(r.Entropy, checks),
		})
	}
	return out
}

// gitleaksValidator drops empty secrets, secrets not above the entropy
// threshold (when set) and secrets an allowlist accepts.
func gitleaksValidator(minEntropy float64, checks []glAllowCheck) func([]byte) bool {
	return func(secret []byte) bool {
		if len(secret) == 0 {
			return false
		}
		if minEntropy > 0 && charEntropy(secret) <= minEntropy {
			return false
		}
		for _, c := range checks {
			if c.allows(secret) {
				return false
			}
		}
		return true
	}
}

// charEntropy is the Shannon entropy of s over its characters (runes), as
// gitleaks computes it; for ASCII it equals rules.Entropy.
func charEntropy(s []byte) float64 {
	if utf8.Valid(s) {
		ascii := true
		for _, c := range s {
			if c >= utf8.RuneSelf {
				ascii = false
				break
			}
		}
		if !ascii {
			counts := map[rune]int{}
			n := 0
			for _, r := range string(s) {
				counts[r]++
				n++
			}
			h := 0.0
			for _, k := range counts {
				p := float64(k) / float64(n)
				h -= p * math.Log2(p)
			}
			return h
		}
	}
	return rules.Entropy(s)
}

// glAllowCheck is a compiled allowlist: it allows a secret that matches a
// regex or contains a stopword (condition OR), or both when each is given
// (condition AND).
type glAllowCheck struct {
	and         bool
	regexes     []*regexp.Regexp
	stopwords   []string // lower-case
	targetRules []string // global allowlists only; empty means every rule
}

func (a glAllowCheck) targets(id string) bool {
	return len(a.targetRules) == 0 || contains(a.targetRules, id)
}

func (a glAllowCheck) allows(secret []byte) bool {
	re := false
	for _, r := range a.regexes {
		if r.Match(secret) {
			re = true
			break
		}
	}
	sw := false
	if len(a.stopwords) > 0 {
		lower := strings.ToLower(string(secret))
		for _, w := range a.stopwords {
			if strings.Contains(lower, w) {
				sw = true
				break
			}
		}
	}
	if a.and {
		return (len(a.regexes) == 0 || re) && (len(a.stopwords) == 0 || sw)
	}
	return re || sw
}

// allowlist compiles one allowlist; ok is false when it cannot apply here
// or is broken (then an error was recorded).
func (g *glImporter) allowlist(a glAllowlist, what string) (glAllowCheck, bool) {
	chk := glAllowCheck{targetRules: a.TargetRules}
	switch strings.ToUpper(a.Condition) {
	case "", "OR":
	case "AND":
		chk.and = true
	default:
		g.errorf(a.file, a.line, "%s: condition %q is not OR or AND", what, a.Condition)
		return chk, false
	}
	secretTarget := true
	switch a.RegexTarget {
	case "", "secret":
	case "match", "line":
		secretTarget = false
	default:
		g.errorf(a.file, a.line, "%s: regexTarget %q is not secret, match or line", what, a.RegexTarget)
		return chk, false
	}
	broken := false
	var regexes []*regexp.Regexp
	for i, s := range a.Regexes {
		re, err := regexp.Compile(s)
		if err != nil {
			var se *syntax.Error
			if errors.As(err, &se) {
				err = regexError{se}
			}
			g.errs = append(g.errs, &ConfigError{File: a.file, Line: a.line, Msg: fmt.Sprintf("%s: regexes[%d]: regex", what, i), Err: err})
			broken = true
			continue
		}
		if re.MatchString("") {
			g.warnf(a.file, a.line, "%s: regexes[%d] matches the empty string and so allows almost every secret", what, i)
		}
		regexes = append(regexes, re)
	}
	for i, w := range a.Stopwords {
		if w == "" {
			g.errorf(a.file, a.line, "%s: stopwords[%d] is empty and would allow every secret", what, i)
			broken = true
			continue
		}
		chk.stopwords = append(chk.stopwords, strings.ToLower(w))
	}
	if broken {
		return chk, false
	}
	if secretTarget {
		chk.regexes = regexes
	} else if len(regexes) > 0 {
		if chk.and {
			g.warnf(a.file, a.line, "%s: skipped; its regexes target the %s, which is not supported", what, a.RegexTarget)
			return chk, false
		}
		g.warnf(a.file, a.line, "%s: regexes with regexTarget %q are not applied (only the secret is checked)", what, a.RegexTarget)
	}
	if len(a.Paths) > 0 || len(a.Commits) > 0 {
		if chk.and {
			g.warnf(a.file, a.line, "%s: skipped; with condition AND it needs paths or commits, which requests do not have", what)
			return chk, false
		}
		g.warnf(a.file, a.line, "%s: paths and commits ignored (requests have neither)", what)
	}
	if len(chk.regexes) == 0 && len(chk.stopwords) == 0 {
		return chk, false
	}
	return chk, true
}

// gitleaksCategory picks the category of an imported rule.
func gitleaksCategory(id string, tags []string) Category {
	for _, t := range tags {
		if c := Category(strings.ToUpper(strings.TrimSpace(t))); c.Valid() {
			return c
		}
	}
	l := strings.ToLower(id)
	switch {
	case strings.Contains(l, "private-key") || strings.Contains(l, "privatekey"):
		return PKEY
	case strings.Contains(l, "token"):
		return TOKEN
	case strings.Contains(l, "key"):
		return KEY
	}
	return SECRET
}

// kebab lower-cases s and turns every run of characters other than ASCII
// letters and digits into one dash, trimming dashes at either end.
func kebab(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	return b.String()
}

// tomlIndex finds lines in a TOML text for messages. The TOML decoder does
// not expose positions, so this scans table headers and "key =" lines; it
// is exact for ordinary files and gives line 0 (unknown) where it cannot
// tell, such as for inline tables.
type tomlIndex struct {
	lines   []string
	headers []tomlHeader
}

type tomlHeader struct {
	line  int // 1-based
	name  string
	array bool
}

func indexTOML(data []byte) *tomlIndex {
	idx := &tomlIndex{lines: strings.Split(string(data), "\n")}
	for i, l := range idx.lines {
		t := strings.TrimSpace(l)
		if !strings.HasPrefix(t, "[") {
			continue
		}
		h := tomlHeader{line: i + 1}
		open, close := "[", "]"
		if strings.HasPrefix(t, "[[") {
			h.array, open, close = true, "[[", "]]"
		}
		end := strings.Index(t, close)
		if end < len(open) {
			continue
		}
		parts := strings.Split(t[len(open):end], ".")
		for j := range parts {
			parts[j] = strings.Trim(strings.TrimSpace(parts[j]), `"'`)
		}
		h.name = strings.Join(parts, ".")
		idx.headers = append(idx.headers, h)
	}
	return idx
}

// headerLine returns the line of the n-th (0-based) header called name.
func (x *tomlIndex) headerLine(name string, array bool, n int) int {
	for _, h := range x.headers {
		if h.name == name && h.array == array {
			if n == 0 {
				return h.line
			}
			n--
		}
	}
	return 0
}

// keyIn returns the first line in (from, to) that assigns key, or 0.
func (x *tomlIndex) keyIn(key string, from, to int) int {
	for i := from; i < to-1 && i < len(x.lines); i++ {
		if assigns(x.lines[i], key) {
			return i + 1
		}
	}
	return 0
}

func assigns(line, key string) bool {
	t := strings.TrimSpace(line)
	if !strings.HasPrefix(t, key) {
		return false
	}
	rest := strings.TrimLeft(t[len(key):], " \t")
	return strings.HasPrefix(rest, "=")
}

// keyLine returns the line of the n-th (1-based) assignment or table
// header whose last name is key, or 0.
func (x *tomlIndex) keyLine(key string, n int) int {
	for i, l := range x.lines {
		hit := assigns(l, key)
		if !hit {
			t := strings.TrimRight(strings.TrimSpace(l), "]")
			hit = strings.HasPrefix(t, "[") && (strings.HasSuffix(t, "."+key) || strings.TrimLeft(t, "[") == key)
		}
		if hit {
			if n--; n == 0 {
				return i + 1
			}
		}
	}
	return 0
}

// sectionEnd returns the line of the first header after line, or the
// number of lines + 1.
func (x *tomlIndex) sectionEnd(line int) int {
	for _, h := range x.headers {
		if h.line > line {
			return h.line
		}
	}
	return len(x.lines) + 1
}

// place records in c where each rule, regex and allowlist was written.
func (x *tomlIndex) place(c *glConfig, file string) {
	var ruleHeaders []int
	for _, h := range x.headers {
		if h.array && h.name == "rules" {
			ruleHeaders = append(ruleHeaders, h.line)
		}
	}
	for i := range c.Rules {
		r := &c.Rules[i]
		r.file, r.regexFile = file, file
		if i >= len(ruleHeaders) {
			continue
		}
		r.line = ruleHeaders[i]
		next := len(x.lines) + 1
		if i+1 < len(ruleHeaders) {
			next = ruleHeaders[i+1]
		}
		r.regexLine = x.keyIn("regex", r.line, x.sectionEnd(r.line))
		if r.regexLine == 0 {
			r.regexLine = r.line
		}
		// The rule's own allowlists are the sub-table headers before the
		// next rule.
		n := 0
		for _, h := range x.headers {
			if h.line <= r.line || h.line >= next {
				continue
			}
			switch {
			case h.name == "rules.allowlists" && h.array:
				if n < len(r.Allowlists) {
					r.Allowlists[n].file, r.Allowlists[n].line = file, h.line
				}
				n++
			case h.name == "rules.allowlist" && !h.array && r.Allowlist != nil:
				r.Allowlist.file, r.Allowlist.line = file, h.line
			}
		}
		for j := range r.Allowlists {
			r.Allowlists[j].file = file
		}
		if r.Allowlist != nil {
			r.Allowlist.file = file
		}
	}
	for j := range c.Allowlists {
		c.Allowlists[j].file, c.Allowlists[j].line = file, x.headerLine("allowlists", true, j)
	}
	if c.Allowlist != nil {
		c.Allowlist.file, c.Allowlist.line = file, x.headerLine("allowlist", false, 0)
	}
}
