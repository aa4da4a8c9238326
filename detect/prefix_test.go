package detect

import (
	"regexp"
	"slices"
	"testing"

	"github.com/takumo/aegis/detect/rules"
)

func TestCompilePatternSplitsBoundaries(t *testing.T) {
	tests := []struct {
		pattern    string
		wantPrefix string
		wantKind   uint8
	}{
		{`(?:^|[^A-Za-z0-9])(ghp_[A-Za-z0-9]{36})`, "ghp_", boundaryClass},
		{`\b(AKIA[A-Z2-7]{16})\b`, "AKIA", boundaryWord},
		{`ghp_[a-z]+`, "ghp_", boundaryNone},
		{`(?i)(?:^|[^a-z])(sk_live_[a-z]+)`, "", boundaryNone}, // folded: no literal prefix to gain
		{`(?m)(?:^|[^a-z])(tok_[a-z]+)`, "", boundaryNone},     // ^ is start of line: kept
		{`[a-z]+=(x)`, "", boundaryNone},
	}
	for _, tc := range tests {
		t.Run(tc.pattern, func(t *testing.T) {
			re, b, err := compilePattern(tc.pattern)
			if err != nil {
				t.Fatal(err)
			}
			if p, _ := re.LiteralPrefix(); p != tc.wantPrefix {
				t.Errorf("prefix %q, want %q", p, tc.wantPrefix)
			}
			if b.kind != tc.wantKind {
				t.Errorf("boundary kind %d, want %d", b.kind, tc.wantKind)
			}
		})
	}
}

// TestSplitPatternsAgreeWithOriginals runs every built-in pattern both ways
// over its own samples: the secret spans must be the same.
func TestSplitPatternsAgreeWithOriginals(t *testing.T) {
	for _, r := range rules.Builtin() {
		if r.Pattern == "" {
			continue
		}
		orig := regexp.MustCompile(r.Pattern)
		split, b, err := compilePattern(r.Pattern)
		if err != nil {
			t.Fatal(err)
		}
		if b.kind == boundaryNone {
			continue
		}
		texts := append([]string(nil), r.Negatives...)
		for _, p := range r.Positives {
			texts = append(texts, p.Text, "x"+p.Text, "é"+p.Text, p.Text+p.Text)
		}
		for _, text := range texts {
			in := []byte(text)
			var want, got [][2]int
			for _, m := range orig.FindAllSubmatchIndex(in, -1) {
				if g := r.SecretGroup; m[2*g] >= 0 {
					want = append(want, [2]int{m[2*g], m[2*g+1]})
				}
			}
			for _, m := range split.FindAllSubmatchIndex(in, -1) {
				if g := r.SecretGroup; m[2*g] >= 0 && b.ok(in, m[0]) {
					got = append(got, [2]int{m[2*g], m[2*g+1]})
				}
			}
			if !slices.Equal(want, got) {
				t.Errorf("%s: split pattern finds %v, original %v in %q", r.ID, got, want, text)
			}
		}
	}
}
