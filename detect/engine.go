package detect

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"

	"github.com/takumo/aegis/detect/rules"
)

// Options configures an Engine.
type Options struct {
	// Rules is the catalog; nil means rules.Builtin().
	Rules []Rule
	// Custom rules come from a policy file or a gitleaks import. They keep
	// gitleaks semantics: a custom rule with keywords runs its pattern over
	// the whole input when one of its keywords occurs; one without keywords
	// always runs over the whole input. Keep them few: each costs a full
	// regular-expression pass.
	Custom []Rule
	// RuleActions and CategoryActions override default actions; a rule id
	// wins over its category. Findings whose action is Off are not reported.
	RuleActions     map[string]Action
	CategoryActions map[Category]Action
	// Allow drops findings whose secret value matches any of these.
	Allow []*regexp.Regexp
}

// Engine detects secrets. It is immutable after New and safe for
// concurrent use.
type Engine struct {
	rules    []compiledRule
	kw       *keywordMatcher // nil when no rule has keywords
	kwRules  [][]int32       // keyword id → rule indexes
	kwExact  []string        // keyword id → exact bytes for case-sensitive rules
	always   []int32         // custom rules without keywords
	allow    []*regexp.Regexp
	scratchP sync.Pool // *scratch
}

type compiledRule struct {
	Rule
	re     *regexp.Regexp
	anch   *regexp.Regexp // Anchored rules: the pattern anchored with ^
	bound  boundary       // checked on the byte before each match (see prefix.go)
	group  int
	before int
	maxLen int
	action Action
	custom bool
}

// scratch holds per-call buffers so Detect allocates little.
type scratch struct {
	hits   []hit
	byRule [][]hit // rule index → its hits (reused)
	seen   []int32 // rule indexes with hits
	cands  []Finding
	prio   []candPrio
}

type candPrio struct {
	generic bool
	order   int
}

const (
	defaultMaxLen   = 256
	boundaryLookups = 64      // how far a window may grow back to reach a word start
	maxWindow       = 1 << 20 // how far a window may grow forward to finish a match
)

// New compiles opts into an Engine. Every problem with the rules is
// reported, joined, naming the rule.
func New(opts Options) (*Engine, error) {
	rs := opts.Rules
	if rs == nil {
		rs = rules.Builtin()
	}
	e := &Engine{allow: opts.Allow}
	var errs []error
	ids := make(map[string]bool)
	var keywords []string
	kwIndex := make(map[string]int32)
	add := func(r Rule, custom bool) {
		c := compiledRule{Rule: r, custom: custom, group: r.SecretGroup, before: r.Before, maxLen: r.MaxLen}
		if c.maxLen <= 0 {
			c.maxLen = defaultMaxLen
		}
		if r.ID == "" {
			errs = append(errs, errors.New("a rule has no id"))
			return
		}
		if ids[r.ID] {
			errs = append(errs, fmt.Errorf("rule %q: duplicate id", r.ID))
			return
		}
		ids[r.ID] = true
		if !r.Category.Valid() {
			errs = append(errs, fmt.Errorf("rule %q: unknown category %q", r.ID, r.Category))
		}
		c.action = r.Action
		if c.action == "" {
			c.action = Tokenize
		}
		if a, ok := opts.CategoryActions[r.Category]; ok {
			c.action = a
		}
		if a, ok := opts.RuleActions[r.ID]; ok {
			c.action = a
		}
		if !c.action.Valid() {
			errs = append(errs, fmt.Errorf("rule %q: unknown action %q", r.ID, c.action))
		}
		switch {
		case r.Find != nil:
		case r.Pattern == "":
			errs = append(errs, fmt.Errorf("rule %q: no pattern", r.ID))
			return
		default:
			re, bound, err := compilePattern(r.Pattern)
			if err != nil {
				errs = append(errs, fmt.Errorf("rule %q: %w", r.ID, err))
				return
			}
			if r.SecretGroup < 0 || r.SecretGroup > re.NumSubexp() {
				errs = append(errs, fmt.Errorf("rule %q: secret group %d out of range (pattern has %d groups)", r.ID, r.SecretGroup, re.NumSubexp()))
				return
			}
			c.re, c.bound = re, bound
			if r.Anchored {
				// Anchor the pattern without its leading boundary, which
				// is checked in Go on the byte before the hit.
				src := r.Pattern
				if b := leadingBoundaryOf(src); b.kind != boundaryNone {
					if rest, ok := cutLeadingGroup(src); ok {
						src, c.bound = rest, b
					}
				}
				anch, err := regexp.Compile(`^(?:` + src + `)`)
				if err != nil || anch.NumSubexp() != re.NumSubexp() {
					errs = append(errs, fmt.Errorf("rule %q: cannot anchor the pattern", r.ID))
					return
				}
				c.anch = anch
			}
		}
		if !custom && len(r.Keywords) == 0 {
			errs = append(errs, fmt.Errorf("rule %q: built-in rules need keywords", r.ID))
			return
		}
		if c.action == Off {
			return // compiled to check it, but never run
		}
		idx := int32(len(e.rules)) //nolint:gosec // G115: rules are a catalog and a config file, nowhere near 2^31
		e.rules = append(e.rules, c)
		if len(r.Keywords) == 0 {
			e.always = append(e.always, idx)
			return
		}
		for _, k := range r.Keywords {
			key := k
			if r.CaseSensitive {
				key = "\x00cs:" + k // same bytes, distinct id so the exact check applies
			}
			id, ok := kwIndex[key]
			if !ok {
				id = int32(len(keywords)) //nolint:gosec // G115: each keyword is a distinct config string, nowhere near 2^31
				kwIndex[key] = id
				keywords = append(keywords, k)
				exact := ""
				if r.CaseSensitive {
					exact = k
				}
				e.kwExact = append(e.kwExact, exact)
				e.kwRules = append(e.kwRules, nil)
			}
			if !slices.Contains(e.kwRules[id], idx) {
				e.kwRules[id] = append(e.kwRules[id], idx)
			}
		}
	}
	for _, r := range rs {
		add(r, false)
	}
	for _, r := range opts.Custom {
		add(r, true)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(keywords) > 0 {
		kwCase := make([]bool, len(keywords))
		for i, ex := range e.kwExact {
			kwCase[i] = ex != ""
		}
		m, err := newKeywordMatcher(keywords, kwCase)
		if err != nil {
			return nil, fmt.Errorf("keyword automaton: %w", err)
		}
		e.kw = m
	}
	e.scratchP.New = func() any { return &scratch{byRule: make([][]hit, len(e.rules))} }
	return e, nil
}

// Detect returns the findings in input, sorted by Start and not
// overlapping.
func (e *Engine) Detect(input []byte) []Finding {
	return e.AppendDetect(nil, input)
}

// AppendDetect appends the findings in input to dst, sorted by Start and
// not overlapping, and returns the extended slice.
func (e *Engine) AppendDetect(dst []Finding, input []byte) []Finding {
	sc := e.scratchP.Get().(*scratch)
	defer e.scratchP.Put(sc)
	sc.cands = sc.cands[:0]
	sc.prio = sc.prio[:0]
	sc.seen = sc.seen[:0]

	// 1. One pass of the keyword automaton.
	if e.kw != nil {
		sc.hits = e.kw.scan(input, sc.hits[:0])
		for _, h := range sc.hits {
			if ex := e.kwExact[h.kw]; ex != "" {
				if string(input[h.end-len(ex):h.end]) != ex {
					continue
				}
			}
			for _, ri := range e.kwRules[h.kw] {
				if len(sc.byRule[ri]) == 0 {
					sc.seen = append(sc.seen, ri)
				}
				sc.byRule[ri] = append(sc.byRule[ri], h)
			}
		}
	}
	sc.seen = append(sc.seen, e.always...)

	// 2. Confirm each triggered rule on windows around its hits.
	for _, ri := range sc.seen {
		r := &e.rules[ri]
		hs := sc.byRule[ri]
		sc.byRule[ri] = hs[:0]
		switch {
		case r.custom:
			e.matchRegion(sc, ri, input, 0, len(input))
		case r.anch != nil:
			last := -1
			for _, h := range hs {
				start := h.end - e.kw.lens[h.kw]
				if start <= last || !r.bound.ok(input, start) {
					continue // inside the previous match, or mid-word
				}
				if end := e.matchAnchored(sc, ri, input, start); end > 0 {
					last = end - 1
				}
			}
		case r.anch != nil:
			last := -1
			for _, h := range hs {
				start := h.end - e.kw.lens[h.kw]
				if start <= last || !r.bound.ok(input, start) {
					continue // inside the previous match, or mid-word
				}
				if end := e.matchAnchored(sc, ri, input, start); end > 0 {
					last = end - 1
				}
			}
		case r.Find != nil:
			for _, h := range hs {
				start := h.end - e.kw.lens[h.kw]
				for _, sp := range r.Find(input, start, h.end) {
					e.candidate(sc, ri, input, sp.Start, sp.End)
				}
			}
		default:
			// Windows are sorted by hit order; merge the overlapping ones
			// so a region is matched once.
			lo, hi := -1, -1
			for _, h := range hs {
				start := h.end - e.kw.lens[h.kw]
				wlo := max(0, start-r.before)
				for k := 0; k < boundaryLookups && wlo > 0 && isWordByte(input[wlo-1]); k++ {
					wlo--
				}
				whi := min(len(input), start+r.maxLen)
				if wlo <= hi {
					lo, hi = min(lo, wlo), max(hi, whi)
					continue
				}
				if lo >= 0 {
					e.matchRegion(sc, ri, input, lo, hi)
				}
				lo, hi = wlo, whi
			}
			if lo >= 0 {
				e.matchRegion(sc, ri, input, lo, hi)
			}
		}
	}

	// 3. Resolve overlaps and report.
	return e.resolve(sc, dst)
}

func isWordByte(b byte) bool {
	return b == '_' || '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
}

// matchRegion runs rule ri's pattern over input[lo:hi].
//
// A match that ends exactly at the window's edge (before the end of the
// input) may have been cut short by it: a long JWT, a PEM block longer than
// the rule's MaxLen. The window then grows (doubling, up to maxWindow) and
// the region is matched again, so a secret is never reported truncated.
func (e *Engine) matchRegion(sc *scratch, ri int32, input []byte, lo, hi int) {
	r := &e.rules[ri]
	ms := r.re.FindAllSubmatchIndex(input[lo:hi], -1)
	for len(ms) > 0 && hi < len(input) && hi-lo < maxWindow {
		last := ms[len(ms)-1]
		if lo+last[1] < hi {
			break
		}
		hi = min(len(input), lo+2*(hi-lo))
		ms = r.re.FindAllSubmatchIndex(input[lo:hi], -1)
	}
	for _, m := range ms {
		if !r.bound.ok(input, lo+m[0]) {
			continue
		}
		s, en := m[2*r.group], m[2*r.group+1]
		if s < 0 || s == en {
			continue
		}
		e.candidate(sc, ri, input, lo+s, lo+en)
	}
}

// matchAnchored tries rule ri's anchored pattern at start and returns the
// end of the match (0 if none). The window grows like matchRegion's when the
// match reaches its edge.
func (e *Engine) matchAnchored(sc *scratch, ri int32, input []byte, start int) int {
	r := &e.rules[ri]
	hi := min(len(input), start+r.maxLen)
	m := r.anch.FindSubmatchIndex(input[start:hi])
	for m != nil && start+m[1] == hi && hi < len(input) && hi-start < maxWindow {
		hi = min(len(input), start+2*(hi-start))
		m = r.anch.FindSubmatchIndex(input[start:hi])
	}
	if m == nil {
		return 0
	}
	if s, en := m[2*r.group], m[2*r.group+1]; s >= 0 && s < en {
		e.candidate(sc, ri, input, start+s, start+en)
	}
	return start + m[1]
}

// candidate validates a span and records it.
func (e *Engine) candidate(sc *scratch, ri int32, input []byte, s, en int) {
	r := &e.rules[ri]
	v := input[s:en]
	if allSame(v) {
		return
	}
	if r.MinEntropy > 0 && rules.Entropy(v) < r.MinEntropy {
		return
	}
	if r.Validate != nil && !r.Validate(v) {
		return
	}
	for _, a := range e.allow {
		if a.Match(v) {
			return
		}
	}
	sc.cands = append(sc.cands, Finding{RuleID: r.ID, Category: r.Category, Action: r.action, Start: s, End: en})
	sc.prio = append(sc.prio, candPrio{generic: r.Generic, order: int(ri)})
}

func allSame(v []byte) bool {
	if len(v) < 2 {
		return false
	}
	for _, b := range v[1:] {
		if b != v[0] {
			return false
		}
	}
	return true
}

// resolve keeps a non-overlapping set of candidates: specific rules beat
// generic ones, then the longer span wins, then the earlier start, then the
// rule listed first.
func (e *Engine) resolve(sc *scratch, dst []Finding) []Finding {
	n := len(sc.cands)
	if n == 0 {
		return dst
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		ca, cb := &sc.cands[a], &sc.cands[b]
		pa, pb := sc.prio[a], sc.prio[b]
		if pa.generic != pb.generic {
			if pa.generic {
				return 1
			}
			return -1
		}
		if c := cmp.Compare(cb.Len(), ca.Len()); c != 0 {
			return c
		}
		if c := cmp.Compare(ca.Start, cb.Start); c != 0 {
			return c
		}
		return cmp.Compare(pa.order, pb.order)
	})
	base := len(dst)
	for _, i := range idx {
		c := sc.cands[i]
		kept := dst[base:]
		// kept is sorted by Start: find where c would go and check neighbours.
		j, _ := slices.BinarySearchFunc(kept, c.Start, func(f Finding, s int) int { return cmp.Compare(f.Start, s) })
		if j > 0 && kept[j-1].End > c.Start {
			continue
		}
		if j < len(kept) && kept[j].Start < c.End {
			continue
		}
		dst = slices.Insert(dst, base+j, c)
	}
	return dst
}
