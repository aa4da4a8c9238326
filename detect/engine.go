package detect

import (
	"fmt"
	"regexp"

	"github.com/takumo/aegis/detect/rules"
)

// Options configures an Engine.
type Options struct {
	// Rules is the catalog; nil means rules.Builtin().
	Rules []Rule
	// Custom rules come from a policy file or a gitleaks import. They may
	// lack keywords; such a rule runs over the whole input.
	Custom []Rule
	// RuleActions and CategoryActions override default actions; a rule id
	// wins over its category. Findings whose action is Off are not reported.
	RuleActions     map[string]Action
	CategoryActions map[Category]Action
}

// Engine detects secrets. Immutable after New; safe for concurrent use.
type Engine struct {
	rules []compiled
}

type compiled struct {
	rule Rule
	re   *regexp.Regexp
}

// New compiles the rules of opts.
// TEMPORARY: a naive implementation (every pattern over the whole input)
// that the keyword-automaton engine replaces; the API stays.
func New(opts Options) (*Engine, error) {
	rs := opts.Rules
	if rs == nil {
		rs = rules.Builtin()
	}
	e := &Engine{}
	for _, r := range append(append([]Rule(nil), rs...), opts.Custom...) {
		c := compiled{rule: r}
		if r.Pattern != "" {
			re, err := regexp.Compile(r.Pattern)
			if err != nil {
				return nil, fmt.Errorf("rule %q: %w", r.ID, err)
			}
			c.re = re
		}
		e.rules = append(e.rules, c)
	}
	return e, nil
}

// Detect returns the findings in input, sorted by Start, not overlapping.
func (e *Engine) Detect(input []byte) []Finding {
	return e.AppendDetect(nil, input)
}

// AppendDetect appends the findings in input to dst.
func (e *Engine) AppendDetect(dst []Finding, input []byte) []Finding {
	for _, c := range e.rules {
		if c.re == nil {
			continue
		}
		for _, m := range c.re.FindAllSubmatchIndex(input, -1) {
			g := c.rule.SecretGroup
			s, en := m[2*g], m[2*g+1]
			if s < 0 {
				continue
			}
			if c.rule.Validate != nil && !c.rule.Validate(input[s:en]) {
				continue
			}
			a := c.rule.Action
			if a == "" {
				a = Tokenize
			}
			dst = append(dst, Finding{RuleID: c.rule.ID, Category: c.rule.Category, Action: a, Start: s, End: en})
		}
	}
	return dst
}
