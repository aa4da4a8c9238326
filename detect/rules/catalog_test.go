package rules

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

var kebab = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

func TestCatalogShape(t *testing.T) {
	rs := Builtin()
	if len(rs) < 80 {
		t.Errorf("catalog has %d rules, want at least 80", len(rs))
	}
	seen := map[string]bool{}
	for _, r := range rs {
		t.Run(r.ID, func(t *testing.T) {
			if !kebab.MatchString(r.ID) {
				t.Errorf("id %q is not kebab-case", r.ID)
			}
			if seen[r.ID] {
				t.Errorf("duplicate id %q", r.ID)
			}
			seen[r.ID] = true
			if r.Description == "" {
				t.Error("no description")
			}
			if !r.Category.Valid() {
				t.Errorf("invalid category %q", r.Category)
			}
			if r.Action != "" && !r.Action.Valid() {
				t.Errorf("invalid action %q", r.Action)
			}
			if r.Category == HOST && r.Action != Monitor {
				t.Errorf("HOST rule has action %q, want monitor", r.Action)
			}
			if len(r.Keywords) == 0 {
				t.Error("no keywords")
			}
			for _, k := range r.Keywords {
				if len(k) < 3 {
					t.Errorf("keyword %q is shorter than 3 bytes", k)
				}
			}
			if r.Find != nil {
				if len(r.Positives) < 2 || len(r.Negatives) < 2 {
					t.Errorf("%d positives and %d negatives, want at least 2 of each", len(r.Positives), len(r.Negatives))
				}
				return // a Go finder (the generic rules) has no pattern
			}
			if r.Pattern == "" {
				t.Fatal("no pattern")
			}
			re, err := regexp.Compile(r.Pattern)
			if err != nil {
				t.Fatalf("pattern does not compile: %v", err)
			}
			if r.SecretGroup < 0 || r.SecretGroup > re.NumSubexp() {
				t.Errorf("SecretGroup %d, pattern has %d groups", r.SecretGroup, re.NumSubexp())
			}
			if r.Before < 0 || r.MaxLen < 0 {
				t.Errorf("Before %d, MaxLen %d", r.Before, r.MaxLen)
			}
			if len(r.Positives) < 2 {
				t.Errorf("%d positives, want at least 2", len(r.Positives))
			}
			if len(r.Negatives) < 2 {
				t.Errorf("%d negatives, want at least 2", len(r.Negatives))
			}
			for i, p := range r.Positives {
				if p.Secret == "" {
					t.Errorf("positive %d has no Secret", i)
				} else if !strings.Contains(p.Text, p.Secret) {
					t.Errorf("positive %d: Secret is not in Text", i)
				}
			}
		})
	}
}

// TestBuiltinIsFresh checks that callers cannot change the catalog through
// a returned slice.
func TestBuiltinIsFresh(t *testing.T) {
	a := Builtin()
	id := a[0].ID
	a[0].ID = "changed"
	if b := Builtin(); b[0].ID != id {
		t.Fatalf("Builtin()[0].ID = %q after changing an earlier result, want %q", b[0].ID, id)
	}
}

// windowFind runs r the way the keyword engine does (see the package
// documentation): for every keyword hit, the pattern runs on the window
// [hit-Before, hit+MaxLen), its start moved back to the previous non-word
// byte; then Validate and MinEntropy filter. It returns the secrets found.
// This keeps each rule honest about its keywords, Before and MaxLen, which a
// whole-input matcher would not notice.
func windowFind(r Rule, re *regexp.Regexp, text []byte) map[[2]int]bool {
	hay := text
	if !r.CaseSensitive {
		hay = bytes.ToLower(text)
	}
	maxLen := r.MaxLen
	if maxLen == 0 {
		maxLen = 256
	}
	out := map[[2]int]bool{}
	for _, kw := range r.Keywords {
		k := []byte(kw)
		if !r.CaseSensitive {
			k = bytes.ToLower(k)
		}
		for off := 0; ; {
			i := bytes.Index(hay[off:], k)
			if i < 0 {
				break
			}
			hit := off + i
			off = hit + 1
			start := max(hit-r.Before, 0)
			for start > 0 && isWordByte(text[start-1]) {
				start--
			}
			if r.Find != nil {
				for _, sp := range r.Find(text, hit, hit+len(k)) {
					if keep(r, text[sp.Start:sp.End]) {
						out[[2]int{sp.Start, sp.End}] = true
					}
				}
				continue
			}
			end := min(hit+maxLen, len(text))
			win := text[start:end]
			for _, m := range re.FindAllSubmatchIndex(win, -1) {
				g := r.SecretGroup
				if m[2*g] < 0 {
					continue
				}
				s, e := start+m[2*g], start+m[2*g+1]
				if keep(r, text[s:e]) {
					out[[2]int{s, e}] = true
				}
			}
		}
	}
	return out
}

// keep applies a rule's validator and entropy floor to a candidate.
func keep(r Rule, v []byte) bool {
	if len(v) == 0 {
		return false
	}
	if r.MinEntropy > 0 && Entropy(v) < r.MinEntropy {
		return false
	}
	return r.Validate == nil || r.Validate(v)
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func TestSamplesWindowed(t *testing.T) {
	for _, r := range Builtin() {
		t.Run(r.ID, func(t *testing.T) {
			var re *regexp.Regexp
			if r.Find == nil {
				re = regexp.MustCompile(r.Pattern)
			}
			for i, p := range r.Positives {
				found := windowFind(r, re, []byte(p.Text))
				ok := false
				var got []string
				for sp := range found {
					v := p.Text[sp[0]:sp[1]]
					if v == p.Secret {
						ok = true
					}
					got = append(got, redact(v))
				}
				if !ok {
					t.Errorf("positive %d: secret %s not found; found %v in %q", i, redact(p.Secret), got, redact(p.Text))
				}
			}
			for i, n := range r.Negatives {
				if found := windowFind(r, re, []byte(n)); len(found) > 0 {
					for sp := range found {
						t.Errorf("negative %d %q: found %q", i, n, n[sp[0]:sp[1]])
					}
				}
			}
		})
	}
}

// redact shortens a fabricated sample for a failure message.
func redact(s string) string {
	if len(s) > 60 {
		return s[:28] + "…" + s[len(s)-28:]
	}
	return s
}
