package detect

import (
	"strings"
	"testing"

	"github.com/takumo/aegis/detect/rules"
)

func testRules() []rules.Rule {
	return []rules.Rule{
		{ID: "gh", Category: rules.TOKEN, Keywords: []string{"ghp_"}, Pattern: `ghp_[A-Za-z0-9]{36}\b`},
		{ID: "akia", Category: rules.KEY, Keywords: []string{"AKIA"}, CaseSensitive: true, Pattern: `\b(AKIA[A-Z2-7]{16})\b`, SecretGroup: 1},
		{ID: "named", Category: rules.SECRET, Keywords: []string{"secret_key"}, Before: 16, Pattern: `[a-z_]*secret_key\s*=\s*"([^"]{8,})"`, SecretGroup: 1},
		{ID: "wide", Category: rules.SECRET, Generic: true, Keywords: []string{"secret"}, Pattern: `secret[a-z_]*\s*=\s*"([^"]+)"`, SecretGroup: 1},
	}
}

func TestEngineWindows(t *testing.T) {
	e, err := New(Options{Rules: testRules()})
	if err != nil {
		t.Fatal(err)
	}
	tok := "ghp_" + strings.Repeat("aB3", 12)
	tests := []struct {
		name string
		in   string
		want []string // "rule=value"
	}{
		{"prefix", "x := \"" + tok + "\"", []string{"gh=" + tok}},
		{"twice", tok + " and " + tok, []string{"gh=" + tok, "gh=" + tok}},
		{"too long", tok + "X", nil},
		{"case sensitive keyword", "akiaABCDEFGHIJKLMNOP", nil},
		{"aws", "id=AKIAABCDEFGHIJKLMNOP;", []string{"akia=AKIAABCDEFGHIJKLMNOP"}},
		{"inside word", "xAKIAABCDEFGHIJKLMNOP", nil},
		{"specific beats generic", `aws_secret_key = "abcdefgh12"`, []string{"named=abcdefgh12"}},
		{"generic alone", `secret = "abc"`, []string{"wide=abc"}},
		{"upper keyword", `MY_SECRET = "abc"`, nil}, // pattern itself is lower-case
		{"empty", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, f := range e.Detect([]byte(tc.in)) {
				got = append(got, f.RuleID+"="+tc.in[f.Start:f.End])
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestKeywordMatcher(t *testing.T) {
	m, err := newKeywordMatcher([]string{"he", "she", "his", "hers", "HERS"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := m.scan([]byte("uSHErs"), nil)
	// she@4, he@4, hers@6 twice (two ids with the same folded bytes)
	want := map[hit]bool{{1, 4}: true, {0, 4}: true, {3, 6}: true, {4, 6}: true}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for _, h := range got {
		if !want[h] {
			t.Errorf("unexpected hit %v", h)
		}
	}
}

func TestNewReportsEveryBadRule(t *testing.T) {
	_, err := New(Options{Rules: []rules.Rule{
		{ID: "a", Category: rules.KEY, Keywords: []string{"abc"}, Pattern: `(`},
		{ID: "b", Category: "NOPE", Keywords: []string{"abc"}, Pattern: `abc`},
		{ID: "b", Category: rules.KEY, Keywords: []string{"abc"}, Pattern: `abc`},
		{ID: "c", Category: rules.KEY, Pattern: `abc`},
	}})
	if err == nil {
		t.Fatal("want error")
	}
	for _, s := range []string{`rule "a"`, `unknown category "NOPE"`, `rule "b": duplicate id`, `rule "c": built-in rules need keywords`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
}

// naiveHits finds keyword occurrences the slow, obvious way.
func naiveHits(keywords []string, in []byte) map[hit]bool {
	out := map[hit]bool{}
	for id, kw := range keywords {
		for s := 0; s+len(kw) <= len(in); s++ {
			if asciiEqualFold(in[s:s+len(kw)], kw) {
				out[hit{int32(id), s + len(kw)}] = true
			}
		}
	}
	return out
}

func FuzzKeywordMatcher(f *testing.F) {
	f.Add("ghp_,AKIA,pass,x", "my ghp_ and AkIa pass\x00PASSx")
	f.Add("a,ab,abc,abcd", "abcdabcab")
	f.Add("\xff\xfe,é,_key", "\xff\xfe\xffé_KEY_key")
	f.Fuzz(func(t *testing.T, kwList, in string) {
		var kws []string
		for _, k := range strings.Split(kwList, ",") {
			if k != "" && len(kws) < 40 {
				kws = append(kws, k)
			}
		}
		if len(kws) == 0 {
			return
		}
		// Every other keyword is case-sensitive: the matcher must report at
		// least its exact-case occurrences, and exactly the case-insensitive
		// occurrences of the others.
		cs := make([]bool, len(kws))
		for i := range cs {
			cs[i] = i%2 == 1
		}
		for _, flags := range [][]bool{nil, cs} {
			m, err := newKeywordMatcher(kws, flags)
			if err != nil {
				t.Skip(err) // more than 255 distinct bytes cannot happen with 40 short keywords
			}
			got := m.scan([]byte(in), nil)
			want := naiveHits(kws, []byte(in))
			gotSet := map[hit]bool{}
			prev := -1
			for _, h := range got {
				if !want[h] {
					t.Fatalf("unexpected hit %v", h)
				}
				gotSet[h] = true
				if s := h.end - len(kws[h.kw]); s < prev {
					t.Fatalf("hits not ordered by start")
				} else {
					prev = s
				}
			}
			for h := range want {
				kw := kws[h.kw]
				exact := string([]byte(in)[h.end-len(kw):h.end]) == kw
				if !gotSet[h] && (flags == nil || !flags[h.kw] || exact) {
					t.Fatalf("missed hit %v of %q (flags %v)", h, kw, flags != nil)
				}
			}
		}
	})
}

func asciiEqualFold(a []byte, b string) bool {
	for i := range a {
		if foldByte(a[i]) != foldByte(b[i]) {
			return false
		}
	}
	return true
}

func TestMatchAtWindowEdgeGrows(t *testing.T) {
	// MaxLen 16 would cut this token; the window grows until the match ends
	// before its edge.
	e, err := New(Options{Rules: []rules.Rule{{ID: "long", Category: rules.TOKEN, Keywords: []string{"tok_"}, Pattern: `tok_[a-z]+`, MaxLen: 16}}})
	if err != nil {
		t.Fatal(err)
	}
	tok := "tok_" + strings.Repeat("abcdefgh", 40)
	in := "x = " + tok + " ;"
	fs := e.Detect([]byte(in))
	if len(fs) != 1 || in[fs[0].Start:fs[0].End] != tok {
		t.Fatalf("got %v, want the whole %d-byte token", fs, len(tok))
	}
}

func TestAnchoredRule(t *testing.T) {
	r := rules.Rule{
		ID: "anch", Category: rules.TOKEN, Keywords: []string{"MTA", "NTA"}, CaseSensitive: true, Anchored: true,
		Pattern: `(?:^|[^A-Za-z0-9])([MN][A-Za-z0-9]{10})(?:[^A-Za-z0-9]|$)`, SecretGroup: 1, MaxLen: 16,
	}
	e, err := New(Options{Rules: []rules.Rule{r}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want string }{
		{"t=MTAbcdefghi;", "MTAbcdefghi"},
		{"xMTAbcdefghi ", ""}, // mid-word: the boundary before the hit fails
		{"MTAbcdefgh ", ""},   // too short
		{"MTAbcdefghij ", ""}, // too long: no boundary after the match
		{"mtabcdefghi ", ""},  // case-sensitive keyword
		{"a NTA12345678 b", "NTA12345678"},
	}
	for _, tc := range tests {
		fs := e.Detect([]byte(tc.in))
		got := ""
		if len(fs) > 0 {
			got = tc.in[fs[0].Start:fs[0].End]
		}
		if got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}
