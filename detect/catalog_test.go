package detect

import (
	"strings"
	"testing"

	"github.com/takumo/aegis/detect/rules"
)

// TestCatalogSamples runs every built-in rule alone through the engine: each
// positive sample must yield a finding of that rule whose span is exactly
// the sample's secret, and no negative sample may yield one.
func TestCatalogSamples(t *testing.T) {
	for _, fam := range rules.Families() {
		for _, r := range fam.Rules {
			t.Run(fam.Name+"/"+r.ID, func(t *testing.T) {
				e, err := New(Options{Rules: []rules.Rule{r}})
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				for i, p := range r.Positives {
					found := false
					for _, f := range e.Detect([]byte(p.Text)) {
						if f.RuleID == r.ID && p.Text[f.Start:f.End] == p.Secret {
							found = true
							if f.Category != r.Category {
								t.Errorf("positive %d: category %s, want %s", i, f.Category, r.Category)
							}
						}
					}
					if !found {
						t.Errorf("positive %d: secret not reported (len %d) in %q", i, len(p.Secret), shorten(p.Text))
					}
				}
				for i, n := range r.Negatives {
					for _, f := range e.Detect([]byte(n)) {
						if f.RuleID == r.ID {
							t.Errorf("negative %d %q: reported %q", i, shorten(n), n[f.Start:f.End])
						}
					}
				}
			})
		}
	}
}

// TestCatalogFindsEveryPositive runs the whole catalog: every positive
// sample's secret must be reported by some rule (overlapping rules may win),
// which checks that overlap resolution never hides a secret behind a
// shorter or unrelated finding.
func TestCatalogFindsEveryPositive(t *testing.T) {
	e, err := New(Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, fam := range rules.Families() {
		for _, r := range fam.Rules {
			t.Run(fam.Name+"/"+r.ID, func(t *testing.T) {
				for i, p := range r.Positives {
					at := strings.Index(p.Text, p.Secret)
					covered := false
					for _, f := range e.Detect([]byte(p.Text)) {
						if f.Start <= at && at+len(p.Secret) <= f.End {
							covered = true
						}
					}
					if !covered {
						t.Errorf("positive %d: secret (len %d) not covered by any finding in %q", i, len(p.Secret), shorten(p.Text))
					}
				}
			})
		}
	}
}

func TestCatalogCompiles(t *testing.T) {
	rs := rules.Builtin()
	if len(rs) < 80 {
		t.Errorf("catalog has %d rules, want at least 80", len(rs))
	}
	if _, err := New(Options{Rules: rs}); err != nil {
		t.Fatal(err)
	}
}

func shorten(s string) string {
	if len(s) > 120 {
		return s[:58] + "…" + s[len(s)-58:]
	}
	return s
}
