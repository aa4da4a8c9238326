package detect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/takumo/aegis/detect/rules"
)

// Policy is a compiled policy file. Apply or Options turn it into engine
// options.
//
// A policy file is YAML and tells the engine which custom rules to run,
// which actions to take, and which values are known not to be secrets.
// It is parsed strictly: unknown keys, wrong types, a version other than 1,
// duplicate rule ids, bad categories or actions, regular expressions that do
// not compile or that can match the empty string, and trailing documents are
// all errors, reported together, each with the file name and line.
//
//	version: 1                     # required; only 1 exists
//	rules:                         # custom rules (optional)
//	  - id: acme-internal-token    # required; kebab-case, unique, not a built-in id
//	    description: ACME internal service token
//	    regex: 'acme_[0-9a-f]{32}' # required; RE2 syntax; must not match ""
//	    secret_group: 0            # optional; capture group holding the secret (0 = whole match)
//	    category: TOKEN            # required; KEY SECRET CONN HOST TOKEN USER PKEY
//	    keywords: [acme_]          # optional; each 3 bytes or longer, matched case-insensitively.
//	                               # Without keywords the rule runs over every input; with them
//	                               # it runs over inputs where one occurs.
//	    action: tokenize           # optional; tokenize (default) | block | monitor | off
//	    entropy: 3.0               # optional; minimum Shannon entropy (bits per byte, 0–8)
//	actions:                       # optional; overrides of default actions
//	  rules: {generic-password: monitor}   # by rule id (built-in, custom or imported)
//	  categories: {HOST: tokenize}         # by category; a rule id wins over its category
//	allow:                         # optional; a value matching any of these is not reported
//	  - '^AKIAIOSFODNN7EXAMPLE$'   # (each must not match ""; anchor it to the whole value)
//	gitleaks: .gitleaks.toml       # optional; relative to the policy file; imported as custom rules
//
// An id in actions.rules must name a known rule, so a typo cannot silently
// leave a rule at its default. A sample file is
// detect/testdata/policy/example.yaml.
type Policy struct {
	// Name is the file name that errors and warnings refer to.
	Name string
	// Custom holds the policy's own rules followed by those imported from
	// a gitleaks configuration.
	Custom []Rule
	// RuleActions and CategoryActions override default actions.
	RuleActions     map[string]Action
	CategoryActions map[Category]Action
	// Allow lists patterns of values that are not secrets: a finding whose
	// value matches one of them is not reported, whatever the rule.
	Allow []*regexp.Regexp
	// Warnings lists what was accepted but not (fully) honoured, such as the
	// parts of a gitleaks configuration this engine has no use for.
	Warnings []string
}

// Apply adds the policy to o: its custom rules and allow-list patterns are
// appended, its action overrides replace those already in o for the same
// rule or category.
func (p *Policy) Apply(o *Options) {
	o.Custom = append(o.Custom, p.Custom...)
	o.Allow = append(o.Allow, p.Allow...)
	if len(p.RuleActions) > 0 && o.RuleActions == nil {
		o.RuleActions = make(map[string]Action, len(p.RuleActions))
	}
	for id, a := range p.RuleActions {
		o.RuleActions[id] = a
	}
	if len(p.CategoryActions) > 0 && o.CategoryActions == nil {
		o.CategoryActions = make(map[Category]Action, len(p.CategoryActions))
	}
	for c, a := range p.CategoryActions {
		o.CategoryActions[c] = a
	}
}

// Options returns engine options holding the policy, with the built-in
// catalog.
func (p *Policy) Options() Options {
	var o Options
	p.Apply(&o)
	return o
}

// Allowed reports whether secret matches the policy's allow list.
func (p *Policy) Allowed(secret []byte) bool {
	for _, re := range p.Allow {
		if re.Match(secret) {
			return true
		}
	}
	return false
}

// ConfigError is one problem found in a policy or gitleaks file. Line is
// 1-based, 0 when unknown. The message never repeats a value from the file
// that could be a secret (regular-expression errors name the problem, not
// the pattern).
type ConfigError struct {
	File string
	Line int
	Msg  string
	Err  error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Err != nil {
		if e.Msg != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// regexError says why a pattern does not compile without repeating the
// pattern: an allow-list entry may hold a literal value.
type regexError struct{ err *syntax.Error }

func (e regexError) Error() string { return string(e.err.Code) }
func (e regexError) Unwrap() error { return e.err }

// compileRegex compiles expr and checks that it cannot match the empty
// string. secretGroup, when positive, must exist and must not be able to
// capture the empty string either. The returned error is a message fit for
// a ConfigError.
func compileRegex(expr string, secretGroup int) (*regexp.Regexp, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		var se *syntax.Error
		if errors.As(err, &se) {
			return nil, fmt.Errorf("regex: %w", regexError{se})
		}
		return nil, fmt.Errorf("regex: %w", err)
	}
	tree, err := syntax.Parse(expr, syntax.Perl)
	if err != nil { // cannot happen after a successful Compile
		return nil, fmt.Errorf("regex: %w", err)
	}
	if minLen(tree) == 0 {
		return nil, errors.New("regex: matches the empty string")
	}
	if secretGroup < 0 || secretGroup > re.NumSubexp() {
		return nil, fmt.Errorf("secret group %d: the regex has %d capture group(s)", secretGroup, re.NumSubexp())
	}
	if secretGroup > 0 {
		if g := findCapture(tree, secretGroup); g != nil && minLen(g) == 0 {
			return nil, fmt.Errorf("secret group %d can capture the empty string", secretGroup)
		}
	}
	return re, nil
}

// minLen returns the length, in characters, of the shortest string re can
// match (a large number for a regex that matches nothing).
func minLen(re *syntax.Regexp) int {
	const never = math.MaxInt32
	switch re.Op {
	case syntax.OpNoMatch:
		return never
	case syntax.OpLiteral:
		return len(re.Rune)
	case syntax.OpCharClass:
		if len(re.Rune) == 0 {
			return never
		}
		return 1
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 1
	case syntax.OpCapture, syntax.OpPlus:
		return minLen(re.Sub[0])
	case syntax.OpStar, syntax.OpQuest:
		return 0
	case syntax.OpRepeat:
		if re.Min == 0 {
			return 0
		}
		n := minLen(re.Sub[0])
		if n >= never {
			return never
		}
		return min(n*re.Min, never)
	case syntax.OpConcat:
		total := 0
		for _, s := range re.Sub {
			total += minLen(s)
			if total >= never {
				return never
			}
		}
		return total
	case syntax.OpAlternate:
		best := never
		for _, s := range re.Sub {
			best = min(best, minLen(s))
		}
		return best
	}
	// Empty-width assertions: ^ $ \A \z \b \B and the empty match.
	return 0
}

// findCapture returns the body of capture group n in re, or nil.
func findCapture(re *syntax.Regexp, n int) *syntax.Regexp {
	if re.Op == syntax.OpCapture && re.Cap == n {
		return re.Sub[0]
	}
	for _, s := range re.Sub {
		if g := findCapture(s, n); g != nil {
			return g
		}
	}
	return nil
}

// kebabID is the shape of a rule id.
var kebabID = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

// minKeywordLen is the shortest keyword the engine's prefilter accepts
// (see package rules).
const minKeywordLen = 3

// LoadPolicyFile reads and parses the policy file at path.
func LoadPolicyFile(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return ParsePolicy(data, path)
}

// ParsePolicy parses a policy file. name is the file's path: errors and
// warnings are reported against it, and a relative `gitleaks:` path is
// resolved against its directory (and read from disk).
func ParsePolicy(data []byte, name string) (*Policy, error) {
	return parsePolicy(data, name, builtinIDs())
}

func builtinIDs() map[string]bool {
	ids := make(map[string]bool)
	for _, r := range rules.Builtin() {
		ids[r.ID] = true
	}
	return ids
}

// policyParser walks the YAML node tree of one policy file and collects
// every problem it finds.
type policyParser struct {
	name    string
	builtin map[string]bool
	errs    []*ConfigError
	// ruleLine maps each custom rule id to the line defining it.
	ruleLine map[string]int
}

func (p *policyParser) errorf(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &ConfigError{File: p.name, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (p *policyParser) wrap(n *yaml.Node, msg string, err error) {
	p.errs = append(p.errs, &ConfigError{File: p.name, Line: n.Line, Msg: msg, Err: err})
}

func parsePolicy(data []byte, name string, builtin map[string]bool) (*Policy, error) {
	p := &policyParser{name: name, builtin: builtin, ruleLine: map[string]int{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ConfigError{File: name, Msg: `empty policy file (it needs at least "version: 1")`}
		}
		return nil, yamlError(name, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		p.errorf(&extra, "a second YAML document; a policy file holds exactly one")
	case !errors.Is(err, io.EOF):
		p.errs = append(p.errs, yamlError(name, err))
	}

	pol := &Policy{Name: name}
	p.document(&doc, pol)
	if len(p.errs) == 0 {
		return pol, nil
	}
	return nil, joinConfigErrors(p.errs)
}

// joinConfigErrors sorts errs by line within each file (files stay in the
// order met) and joins them.
func joinConfigErrors(errs []*ConfigError) error {
	order := map[string]int{}
	for _, e := range errs {
		if _, ok := order[e.File]; !ok {
			order[e.File] = len(order)
		}
	}
	sort.SliceStable(errs, func(i, j int) bool {
		if fi, fj := order[errs[i].File], order[errs[j].File]; fi != fj {
			return fi < fj
		}
		return errs[i].Line < errs[j].Line
	})
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns a yaml syntax error into a ConfigError with a line.
func yamlError(name string, err error) *ConfigError {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &ConfigError{File: name, Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return &ConfigError{File: name, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// entry is one key and its value in a YAML mapping.
type entry struct{ key, val *yaml.Node }

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// kindName describes what a node is, for "want X, got Y" messages. It
// never includes the node's value.
func kindName(n *yaml.Node) string {
	n = resolve(n)
	switch {
	case n == nil || isNull(n):
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	}
	switch n.Tag {
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	}
	return "a string"
}

// fields checks that m is a mapping whose keys are all in known and
// unique, and returns its entries by key. what names m in messages.
func (p *policyParser) fields(m *yaml.Node, what string, known ...string) map[string]entry {
	m = resolve(m)
	if m.Kind != yaml.MappingNode {
		p.errorf(m, "%s: want a mapping, got %s", what, kindName(m))
		return nil
	}
	out := make(map[string]entry, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := resolve(m.Content[i]), m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, "%s: keys must be strings, got %s", what, kindName(k))
			continue
		}
		if !contains(known, k.Value) {
			msg := fmt.Sprintf("unknown key %q in %s", k.Value, what)
			if s := suggest(k.Value, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			p.errorf(k, "%s", msg)
			continue
		}
		if prev, dup := out[k.Value]; dup {
			p.errorf(k, "%s: key %q repeated (first at line %d)", what, k.Value, prev.key.Line)
			continue
		}
		out[k.Value] = entry{k, v}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// str returns the value of a scalar node as a string. Numbers and booleans
// are accepted as their text.
func (p *policyParser) str(n *yaml.Node, what string) (string, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.errorf(n, "%s: want a string, got %s", what, kindName(n))
		return "", false
	}
	return n.Value, true
}

func (p *policyParser) integer(n *yaml.Node, what string) (int, bool) {
	n = resolve(n)
	var v int
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil {
		p.errorf(n, "%s: want an integer, got %s", what, kindName(n))
		return 0, false
	}
	return v, true
}

func (p *policyParser) number(n *yaml.Node, what string) (float64, bool) {
	n = resolve(n)
	var v float64
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&v) != nil ||
		math.IsNaN(v) || math.IsInf(v, 0) {
		p.errorf(n, "%s: want a number, got %s", what, kindName(n))
		return 0, false
	}
	return v, true
}

// list returns the items of a sequence node; null is an empty list.
func (p *policyParser) list(n *yaml.Node, what string) ([]*yaml.Node, bool) {
	n = resolve(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s: want a list, got %s", what, kindName(n))
		return nil, false
	}
	return n.Content, true
}

func (p *policyParser) action(n *yaml.Node, what string) (Action, bool) {
	s, ok := p.str(n, what)
	if !ok {
		return "", false
	}
	a := Action(s)
	if !a.Valid() {
		p.errorf(n, "%s: unknown action %q (want tokenize, block, monitor or off)", what, s)
		return "", false
	}
	return a, true
}

func (p *policyParser) category(n *yaml.Node, what string) (Category, bool) {
	s, ok := p.str(n, what)
	if !ok {
		return "", false
	}
	c := Category(s)
	if !c.Valid() {
		p.errorf(n, "%s: unknown category %q (want one of %s)", what, s, categoryList())
		return "", false
	}
	return c, true
}

func categoryList() string {
	names := make([]string, len(rules.Categories))
	for i, c := range rules.Categories {
		names[i] = string(c)
	}
	return strings.Join(names, ", ")
}

var (
	policyKeys  = []string{"version", "rules", "actions", "allow", "gitleaks"}
	ruleKeys    = []string{"id", "description", "regex", "secret_group", "category", "keywords", "action", "entropy"}
	actionsKeys = []string{"rules", "categories"}
)

// pendingAction is an actions.rules entry, checked once every rule id is
// known.
type pendingAction struct {
	key *yaml.Node
	id  string
}

func (p *policyParser) document(doc *yaml.Node, pol *Policy) {
	root := doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root = doc.Content[0]
	}
	if isNull(root) {
		p.errs = append(p.errs, &ConfigError{File: p.name, Line: root.Line, Msg: `empty policy (it needs at least "version: 1")`})
		return
	}
	f := p.fields(root, "policy", policyKeys...)
	if f == nil {
		return
	}

	if e, ok := f["version"]; !ok {
		p.errorf(root, `missing "version" (want version: 1)`)
	} else if v, ok := p.integer(e.val, "version"); ok && v != 1 {
		p.errorf(e.val, "version %d is not supported (want 1)", v)
	}

	if e, ok := f["rules"]; ok {
		items, _ := p.list(e.val, "rules")
		for i, it := range items {
			if r, ok := p.rule(it, i); ok {
				pol.Custom = append(pol.Custom, r)
			}
		}
	}

	var pending []pendingAction
	if e, ok := f["actions"]; ok && !isNull(e.val) {
		pending = p.actions(e.val, pol)
	}

	if e, ok := f["allow"]; ok {
		items, _ := p.list(e.val, "allow")
		for i, it := range items {
			what := fmt.Sprintf("allow[%d]", i)
			s, ok := p.str(it, what)
			if !ok {
				continue
			}
			re, err := compileRegex(s, 0)
			if err != nil {
				p.wrap(resolve(it), what, err)
				continue
			}
			pol.Allow = append(pol.Allow, re)
		}
	}

	if e, ok := f["gitleaks"]; ok {
		p.gitleaks(e.val, pol)
	}

	for _, a := range pending {
		if !p.builtin[a.id] && p.ruleLine[a.id] == 0 {
			msg := fmt.Sprintf("actions.rules: unknown rule %q", a.id)
			if s := suggest(a.id, p.knownIDs()); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			p.errorf(a.key, "%s", msg)
		}
	}
}

func (p *policyParser) knownIDs() []string {
	var ids []string
	for id := range p.builtin {
		ids = append(ids, id)
	}
	for id := range p.ruleLine {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// ruleName peeks at a rule mapping's id for messages.
func ruleName(m *yaml.Node, index int) string {
	m = resolve(m)
	if m.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if k, v := resolve(m.Content[i]), resolve(m.Content[i+1]); k.Value == "id" && v.Kind == yaml.ScalarNode && v.Value != "" {
				return fmt.Sprintf("rule %q", v.Value)
			}
		}
	}
	return fmt.Sprintf("rules[%d]", index)
}

func (p *policyParser) rule(m *yaml.Node, index int) (Rule, bool) {
	what := ruleName(m, index)
	f := p.fields(m, what, ruleKeys...)
	if f == nil {
		return Rule{}, false
	}
	m = resolve(m)
	ok := true
	fail := func() { ok = false }
	var r Rule

	if e, has := f["id"]; !has {
		p.errorf(m, `%s: missing "id"`, what)
		fail()
	} else if id, good := p.str(e.val, what+": id"); !good {
		fail()
	} else {
		switch {
		case !kebabID.MatchString(id):
			p.errorf(e.val, "%s: id must be kebab-case (lower-case letters, digits and single dashes)", what)
			fail()
		case p.builtin[id]:
			p.errorf(e.val, "%s: id collides with a built-in rule; choose another id (actions.rules changes a built-in's action)", what)
			fail()
		case p.ruleLine[id] != 0:
			p.errorf(e.val, "%s: duplicate rule id (first defined at line %d)", what, p.ruleLine[id])
			fail()
		default:
			p.ruleLine[id] = e.val.Line
		}
		r.ID = id
	}

	if e, has := f["description"]; has && !isNull(e.val) {
		if s, good := p.str(e.val, what+": description"); good {
			r.Description = s
		} else {
			fail()
		}
	}

	if e, has := f["secret_group"]; has && !isNull(e.val) {
		if g, good := p.integer(e.val, what+": secret_group"); good {
			r.SecretGroup = g
		} else {
			fail()
		}
	}

	if e, has := f["regex"]; !has {
		p.errorf(m, `%s: missing "regex"`, what)
		fail()
	} else if s, good := p.str(e.val, what+": regex"); !good {
		fail()
	} else if s == "" {
		p.errorf(e.val, "%s: regex is empty", what)
		fail()
	} else if _, err := compileRegex(s, r.SecretGroup); err != nil {
		p.wrap(resolve(e.val), what, err)
		fail()
	} else {
		r.Pattern = s
	}

	if e, has := f["category"]; !has {
		p.errorf(m, `%s: missing "category" (want one of %s)`, what, categoryList())
		fail()
	} else if c, good := p.category(e.val, what+": category"); good {
		r.Category = c
	} else {
		fail()
	}

	if e, has := f["keywords"]; has {
		items, good := p.list(e.val, what+": keywords")
		if !good {
			fail()
		}
		for _, it := range items {
			k, good := p.str(it, what+": keywords")
			switch {
			case !good:
				fail()
			case len(k) < minKeywordLen:
				p.errorf(resolve(it), "%s: keyword %q is shorter than %d bytes", what, k, minKeywordLen)
				fail()
			default:
				r.Keywords = append(r.Keywords, k)
			}
		}
	}

	r.Action = Tokenize
	if e, has := f["action"]; has && !isNull(e.val) {
		if a, good := p.action(e.val, what+": action"); good {
			r.Action = a
		} else {
			fail()
		}
	}

	if e, has := f["entropy"]; has && !isNull(e.val) {
		v, good := p.number(e.val, what+": entropy")
		switch {
		case !good:
			fail()
		case v < 0 || v > 8:
			p.errorf(e.val, "%s: entropy must be between 0 and 8 bits per byte", what)
			fail()
		default:
			r.MinEntropy = v
		}
	}
	return r, ok
}

func (p *policyParser) actions(n *yaml.Node, pol *Policy) []pendingAction {
	f := p.fields(n, "actions", actionsKeys...)
	var pending []pendingAction
	if e, ok := f["rules"]; ok && !isNull(e.val) {
		m := resolve(e.val)
		if m.Kind != yaml.MappingNode {
			p.errorf(m, "actions.rules: want a mapping of rule id to action, got %s", kindName(m))
		} else {
			seen := map[string]int{}
			for i := 0; i+1 < len(m.Content); i += 2 {
				k := resolve(m.Content[i])
				id, ok := p.str(k, "actions.rules")
				if !ok {
					continue
				}
				if first, dup := seen[id]; dup {
					p.errorf(k, "actions.rules: rule %q repeated (first at line %d)", id, first)
					continue
				}
				seen[id] = k.Line
				a, ok := p.action(m.Content[i+1], fmt.Sprintf("actions.rules.%s", id))
				if !ok {
					continue
				}
				if pol.RuleActions == nil {
					pol.RuleActions = map[string]Action{}
				}
				pol.RuleActions[id] = a
				pending = append(pending, pendingAction{key: k, id: id})
			}
		}
	}
	if e, ok := f["categories"]; ok && !isNull(e.val) {
		m := resolve(e.val)
		if m.Kind != yaml.MappingNode {
			p.errorf(m, "actions.categories: want a mapping of category to action, got %s", kindName(m))
		} else {
			for i := 0; i+1 < len(m.Content); i += 2 {
				k := resolve(m.Content[i])
				c, ok := p.category(k, "actions.categories")
				if !ok {
					continue
				}
				if _, dup := pol.CategoryActions[c]; dup {
					p.errorf(k, "actions.categories: category %s repeated", c)
					continue
				}
				a, ok := p.action(m.Content[i+1], "actions.categories."+string(c))
				if !ok {
					continue
				}
				if pol.CategoryActions == nil {
					pol.CategoryActions = map[Category]Action{}
				}
				pol.CategoryActions[c] = a
			}
		}
	}
	return pending
}

// gitleaks imports the gitleaks configuration the policy names.
func (p *policyParser) gitleaks(n *yaml.Node, pol *Policy) {
	path, ok := p.str(n, "gitleaks")
	if !ok {
		return
	}
	n = resolve(n)
	if path == "" {
		p.errorf(n, "gitleaks: empty path")
		return
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(p.name), path)
	}
	imported, warnings, err := ImportGitleaksFile(path)
	pol.Warnings = append(pol.Warnings, warnings...)
	if err != nil {
		var multi interface{ Unwrap() []error }
		errs := []error{err}
		if errors.As(err, &multi) {
			errs = multi.Unwrap()
		}
		for _, e := range errs {
			var ce *ConfigError
			if errors.As(e, &ce) {
				p.errs = append(p.errs, ce)
			} else {
				p.wrap(n, "gitleaks", e)
			}
		}
		return
	}
	for _, r := range imported {
		switch {
		case p.builtin[r.ID]:
			p.errorf(n, "gitleaks: imported rule %q collides with a built-in rule", r.ID)
		case p.ruleLine[r.ID] != 0:
			p.errorf(n, "gitleaks: imported rule %q collides with the rule defined at line %d", r.ID, p.ruleLine[r.ID])
		default:
			p.ruleLine[r.ID] = n.Line
			pol.Custom = append(pol.Custom, r)
		}
	}
}

// suggest returns the candidate s was most likely meant to be, or "".
func suggest(s string, candidates []string) string {
	if a := aliases[s]; a != "" && contains(candidates, a) {
		return a
	}
	norm := func(x string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(x))
	}
	best, bestD := "", 3
	for _, c := range candidates {
		if norm(c) == norm(s) {
			return c
		}
		if d := editDistance(s, c); d < bestD && d < len(c)/2+1 {
			best, bestD = c, d
		}
	}
	return best
}

// aliases maps names other tools use to ours.
var aliases = map[string]string{
	"pattern":     "regex",
	"regexp":      "regex",
	"secretGroup": "secret_group",
	"group":       "secret_group",
	"tags":        "category",
	"min_entropy": "entropy",
	"allowlist":   "allow",
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
