package detect

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testBuiltins stands in for the built-in catalog so that these tests do
// not depend on which rules it holds.
var testBuiltins = map[string]bool{"generic-password": true, "aws-access-key-id": true}

// found is a finding with its value, for comparisons in tests.
type found struct {
	rule   string
	cat    Category
	action Action
	value  string
}

func findAll(t *testing.T, opts Options, text string) []found {
	t.Helper()
	e, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	var out []found
	for _, f := range e.Detect([]byte(text)) {
		out = append(out, found{f.RuleID, f.Category, f.Action, text[f.Start:f.End]})
	}
	return out
}

func TestParsePolicyExample(t *testing.T) {
	pol, err := LoadPolicyFile(filepath.Join("testdata", "policy", "example.yaml"))
	if err != nil {
		t.Fatalf("LoadPolicyFile: %v", err)
	}
	var ids []string
	for _, r := range pol.Custom {
		ids = append(ids, r.ID)
	}
	wantIDs := "acme-internal-token acme-build-host gitleaks-acme-api-key gitleaks-internal-service-token gitleaks-db-password"
	if got := strings.Join(ids, " "); got != wantIDs {
		t.Errorf("custom rule ids = %q, want %q", got, wantIDs)
	}
	tok := pol.Custom[0]
	if tok.Category != TOKEN || tok.Action != Tokenize || tok.MinEntropy != 3.0 || tok.Pattern != `acme_[0-9a-f]{32}` ||
		len(tok.Keywords) != 1 || tok.Keywords[0] != "acme_" || tok.Description != "ACME internal service token" {
		t.Errorf("acme-internal-token compiled to %+v", tok)
	}
	host := pol.Custom[1]
	if host.Category != HOST || host.Action != Monitor || host.SecretGroup != 1 || len(host.Keywords) != 0 {
		t.Errorf("acme-build-host compiled to %+v", host)
	}
	if pol.RuleActions["generic-password"] != Monitor || len(pol.RuleActions) != 1 {
		t.Errorf("RuleActions = %v", pol.RuleActions)
	}
	if pol.CategoryActions[HOST] != Tokenize || len(pol.CategoryActions) != 1 {
		t.Errorf("CategoryActions = %v", pol.CategoryActions)
	}
	if len(pol.Allow) != 1 || !pol.Allowed([]byte("acme_0123456789abcdef0123456789abcdef")) || pol.Allowed([]byte("acme_884add37047e3817037d67625cf47746")) {
		t.Errorf("allow list does not behave: %v", pol.Allow)
	}
	// The gitleaks file's warnings come through, naming that file.
	if len(pol.Warnings) == 0 || !strings.Contains(strings.Join(pol.Warnings, "\n"), "basic.toml") {
		t.Errorf("warnings = %q, want the gitleaks import's", pol.Warnings)
	}
}

func TestPolicyFindings(t *testing.T) {
	pol, err := LoadPolicyFile(filepath.Join("testdata", "policy", "example.yaml"))
	if err != nil {
		t.Fatalf("LoadPolicyFile: %v", err)
	}
	opts := pol.Options()
	opts.Rules = []Rule{} // custom rules only: the catalog is tested elsewhere
	text := strings.Join([]string{
		`ACME_TOKEN=acme_884add37047e3817037d67625cf47746`,
		`SAMPLE_TOKEN=acme_0123456789abcdef0123456789abcdef`,
		`ssh deploy@build-07.corp.acme.internal`,
		`acme_api_key = "vta18hak90i4oiooiqaxwgw197w7r282"`,
	}, "\n")
	got := findAll(t, opts, text)
	want := []found{
		{"acme-internal-token", TOKEN, Tokenize, "acme_884add37047e3817037d67625cf47746"},
		// Monitor by rule default, but the HOST category override applies
		// (the engine lets a category override a rule's default).
		{"acme-build-host", HOST, Tokenize, "build-07.corp.acme.internal"},
		{"gitleaks-acme-api-key", KEY, Tokenize, "vta18hak90i4oiooiqaxwgw197w7r282"},
	}
	if !equalFound(got, want) {
		t.Errorf("findings:\n got %+v\nwant %+v", got, want)
	}
}

func equalFound(a, b []found) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPolicyApplyMerges(t *testing.T) {
	pol, err := parsePolicy([]byte(`version: 1
rules:
  - id: acme-internal-token
    regex: 'acme_[0-9a-f]{32}'
    category: TOKEN
actions:
  rules: {generic-password: block}
  categories: {HOST: off}
allow: ['^acme_0{32}$']
`), "policy.yaml", testBuiltins)
	if err != nil {
		t.Fatal(err)
	}
	existing := Rule{ID: "other", Category: KEY, Pattern: "other_[0-9]{8}"}
	o := Options{
		Custom:          []Rule{existing},
		RuleActions:     map[string]Action{"generic-password": Monitor, "generic-token": Off},
		CategoryActions: map[Category]Action{USER: Monitor},
	}
	pol.Apply(&o)
	if len(o.Custom) != 2 || o.Custom[0].ID != "other" || o.Custom[1].ID != "acme-internal-token" {
		t.Errorf("Custom = %v", o.Custom)
	}
	if o.RuleActions["generic-password"] != Block || o.RuleActions["generic-token"] != Off {
		t.Errorf("RuleActions = %v", o.RuleActions)
	}
	if o.CategoryActions[HOST] != Off || o.CategoryActions[USER] != Monitor {
		t.Errorf("CategoryActions = %v", o.CategoryActions)
	}
	if len(o.Allow) != 1 {
		t.Errorf("Allow = %v", o.Allow)
	}
	// Options starts from nothing.
	if fresh := pol.Options(); len(fresh.Custom) != 1 || fresh.RuleActions["generic-password"] != Block || fresh.Rules != nil {
		t.Errorf("Options() = %+v", fresh)
	}
}

func TestParsePolicyMinimal(t *testing.T) {
	for _, src := range []string{"version: 1\n", "version: 1\nrules:\nactions:\nallow:\n", "---\nversion: 1\n...\n"} {
		pol, err := parsePolicy([]byte(src), "policy.yaml", testBuiltins)
		if err != nil {
			t.Errorf("%q: %v", src, err)
			continue
		}
		if len(pol.Custom) != 0 || len(pol.Allow) != 0 || pol.RuleActions != nil || pol.CategoryActions != nil {
			t.Errorf("%q: got %+v, want an empty policy", src, pol)
		}
	}
}

func TestParsePolicyErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // each must appear in the error
	}{
		{"empty file", "", []string{`policy.yaml: empty policy file`}},
		{"only comments", "# nothing yet\n", []string{`policy.yaml: empty policy file`}},
		{"null document", "---\n", []string{`policy.yaml:2: empty policy (it needs at least "version: 1")`}},
		{"invalid yaml", "version: 1\nrules: [\n  - id: x\n", []string{`policy.yaml:`, `invalid YAML`}},
		{"invalid yaml indentation", "version: 1\nrules:\n  - id: a\n   regex: b\n", []string{`policy.yaml:2: invalid YAML: did not find expected '-' indicator`}},
		{"not a mapping", "- version: 1\n", []string{`policy.yaml:1: policy: want a mapping, got a list`}},
		{"version 2", "version: 2\n", []string{`policy.yaml:1: version 2 is not supported (want 1)`}},
		{"version missing", "rules: []\n", []string{`policy.yaml:1: missing "version"`}},
		{"version as string", "version: \"1\"\n", []string{`policy.yaml:1: version: want an integer, got a string`}},
		{"trailing document", "version: 1\n---\nversion: 1\n", []string{`policy.yaml:2: a second YAML document`}},
		{"broken trailing document", "version: 1\n---\n[\n", []string{`policy.yaml:`, `invalid YAML`}},
		{"unknown top-level key", "version: 1\nrule: []\n", []string{`policy.yaml:2: unknown key "rule" in policy (did you mean "rules"?)`}},
		{"repeated key", "version: 1\nversion: 1\n", []string{`policy.yaml:2: policy: key "version" repeated (first at line 1)`}},
		{"unknown key in rule", `version: 1
rules:
  - id: acme-token
    regexp: 'acme_[0-9a-f]{32}'
    category: TOKEN
`, []string{
			`policy.yaml:4: unknown key "regexp" in rule "acme-token" (did you mean "regex"?)`,
			`policy.yaml:3: rule "acme-token": missing "regex"`,
		}},
		{"camelCase key", `version: 1
rules:
  - id: acme-token
    regex: 'acme_([0-9a-f]{32})'
    secretGroup: 1
    category: TOKEN
`, []string{`policy.yaml:5: unknown key "secretGroup" in rule "acme-token" (did you mean "secret_group"?)`}},
		{"regex does not compile", `version: 1
rules:
  - id: acme-token
    regex: 'acme_[0-9a-f{32}'
    category: TOKEN
`, []string{`policy.yaml:4: rule "acme-token": regex: missing closing ]`}},
		{"regex matches empty", `version: 1
rules:
  - id: acme-token
    regex: '(acme_[0-9a-f]{32})?'
    category: TOKEN
`, []string{`policy.yaml:4: rule "acme-token": regex: matches the empty string`}},
		{"regex only an assertion", `version: 1
rules:
  - id: boundary
    regex: '\b'
    category: TOKEN
`, []string{`policy.yaml:4: rule "boundary": regex: matches the empty string`}},
		{"empty regex", "version: 1\nrules:\n  - id: x\n    regex: ''\n    category: KEY\n", []string{`policy.yaml:4: rule "x": regex is empty`}},
		{"secret group out of range", `version: 1
rules:
  - id: acme-token
    regex: 'acme_([0-9a-f]{32})'
    secret_group: 2
    category: TOKEN
`, []string{`policy.yaml:4: rule "acme-token": secret group 2: the regex has 1 capture group(s)`}},
		{"secret group captures empty", `version: 1
rules:
  - id: acme-token
    regex: 'acme_([0-9a-f]*)x'
    secret_group: 1
    category: TOKEN
`, []string{`rule "acme-token": secret group 1 can capture the empty string`}},
		{"secret group wrong type", "version: 1\nrules:\n  - id: x\n    regex: 'x_[0-9]+'\n    secret_group: one\n    category: KEY\n",
			[]string{`policy.yaml:5: rule "x": secret_group: want an integer, got a string`}},
		{"duplicate id", `version: 1
rules:
  - id: acme-token
    regex: 'acme_[0-9a-f]{32}'
    category: TOKEN
  - id: acme-token
    regex: 'acme_[0-9a-f]{40}'
    category: TOKEN
`, []string{`policy.yaml:6: rule "acme-token": duplicate rule id (first defined at line 3)`}},
		{"built-in id", "version: 1\nrules:\n  - id: generic-password\n    regex: 'pw_[a-z]{8}'\n    category: SECRET\n",
			[]string{`policy.yaml:3: rule "generic-password": id collides with a built-in rule`}},
		{"id not kebab-case", "version: 1\nrules:\n  - id: Acme_Token\n    regex: 'acme_[a-z]{8}'\n    category: TOKEN\n",
			[]string{`policy.yaml:3: rule "Acme_Token": id must be kebab-case`}},
		{"missing id", "version: 1\nrules:\n  - regex: 'acme_[a-z]{8}'\n    category: TOKEN\n", []string{`policy.yaml:3: rules[0]: missing "id"`}},
		{"rule not a mapping", "version: 1\nrules:\n  - acme-token\n", []string{`policy.yaml:3: rules[0]: want a mapping, got a string`}},
		{"rules not a list", "version: 1\nrules: {id: x}\n", []string{`policy.yaml:2: rules: want a list, got a mapping`}},
		{"unknown category", "version: 1\nrules:\n  - id: x\n    regex: 'x_[0-9]+'\n    category: PASSWORD\n",
			[]string{`policy.yaml:5: rule "x": category: unknown category "PASSWORD" (want one of KEY, SECRET, CONN, HOST, TOKEN, USER, PKEY)`}},
		{"missing category", "version: 1\nrules:\n  - id: x\n    regex: 'x_[0-9]+'\n", []string{`policy.yaml:3: rule "x": missing "category"`}},
		{"unknown action", "version: 1\nrules:\n  - id: x\n    regex: 'x_[0-9]+'\n    category: KEY\n    action: redact\n",
			[]string{`policy.yaml:6: rule "x": action: unknown action "redact" (want tokenize, block, monitor or off)`}},
		{"keywords not a list", "version: 1\nrules:\n  - id: x\n    regex: 'x_[0-9]+'\n    category: KEY\n    keywords: foo\n",
			[]string{`policy.yaml:6: rule "x": keywords: want a list, got a string`}},
		{"keyword too short", "version: 1\nrules:\n  - id: x\n    regex: 'x_[0-9]+'\n    category: KEY\n    keywords: [x_]\n",
			[]string{`policy.yaml:6: rule "x": keyword "x_" is shorter than 3 bytes`}},
		{"keyword a mapping", "version: 1\nrules:\n  - id: x\n    regex: 'x_[0-9]+'\n    category: KEY\n    keywords: [{a: b}]\n",
			[]string{`policy.yaml:6: rule "x": keywords: want a string, got a mapping`}},
		{"entropy wrong type", "version: 1\nrules:\n  - id: x\n    regex: 'x_[0-9]+'\n    category: KEY\n    entropy: high\n",
			[]string{`policy.yaml:6: rule "x": entropy: want a number, got a string`}},
		{"entropy out of range", "version: 1\nrules:\n  - id: x\n    regex: 'x_[0-9]+'\n    category: KEY\n    entropy: 9\n",
			[]string{`policy.yaml:6: rule "x": entropy must be between 0 and 8`}},
		{"actions unknown key", "version: 1\nactions:\n  rule: {generic-password: monitor}\n",
			[]string{`policy.yaml:3: unknown key "rule" in actions (did you mean "rules"?)`}},
		{"actions unknown rule", "version: 1\nactions:\n  rules: {generic-pasword: monitor}\n",
			[]string{`policy.yaml:3: actions.rules: unknown rule "generic-pasword" (did you mean "generic-password"?)`}},
		{"actions bad action", "version: 1\nactions:\n  rules:\n    generic-password: ignore\n",
			[]string{`policy.yaml:4: actions.rules.generic-password: unknown action "ignore"`}},
		{"actions unknown category", "version: 1\nactions:\n  categories:\n    HOSTS: tokenize\n",
			[]string{`policy.yaml:4: actions.categories: unknown category "HOSTS"`}},
		{"actions rules not a mapping", "version: 1\nactions:\n  rules: [generic-password]\n",
			[]string{`policy.yaml:3: actions.rules: want a mapping of rule id to action, got a list`}},
		{"allow does not compile", "version: 1\nallow:\n  - '^acme_(0{32}$'\n", []string{`policy.yaml:3: allow[0]: regex: missing closing )`}},
		{"allow matches everything", "version: 1\nallow:\n  - '.*'\n", []string{`policy.yaml:3: allow[0]: regex: matches the empty string`}},
		{"allow not a list", "version: 1\nallow: '^x$'\n", []string{`policy.yaml:2: allow: want a list, got a string`}},
		{"gitleaks file missing", "version: 1\ngitleaks: no-such-file.toml\n", []string{`policy.yaml:2: gitleaks: gitleaks config: open`}},
		{"gitleaks not a string", "version: 1\ngitleaks: [a.toml]\n", []string{`policy.yaml:2: gitleaks: want a string, got a list`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parsePolicy([]byte(tt.src), "policy.yaml", testBuiltins)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("error %v is not a *ConfigError", err)
			}
		})
	}
}

// Every problem of a file is reported at once, in line order.
func TestParsePolicyReportsAllErrors(t *testing.T) {
	src := `version: 2
rules:
  - id: acme-token
    regex: 'acme_[0-9a-f{32}'
    category: TOKEN
  - id: acme-token
    regexp: 'x'
    category: NOPE
actions:
  rules: {no-such-rule: monitor}
`
	_, err := parsePolicy([]byte(src), "policy.yaml", testBuiltins)
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`policy.yaml:1: version 2 is not supported (want 1)`,
		`policy.yaml:4: rule "acme-token": regex: missing closing ]`,
		`policy.yaml:6: rule "acme-token": duplicate rule id (first defined at line 3)`,
		`policy.yaml:6: rule "acme-token": missing "regex"`,
		`policy.yaml:7: unknown key "regexp" in rule "acme-token" (did you mean "regex"?)`,
		`policy.yaml:8: rule "acme-token": category: unknown category "NOPE"`,
		`policy.yaml:10: actions.rules: unknown rule "no-such-rule"`,
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("error %d = %q, want prefix %q", i, lines[i], w)
		}
	}
}

// An allow-list pattern may hold a literal value; it must not come back in
// an error message.
func TestParsePolicyErrorsDoNotEchoPatterns(t *testing.T) {
	const literal = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
	src := "version: 1\nallow:\n  - '^" + literal + "[$'\nrules:\n  - id: x\n    regex: '(" + literal + "'\n    category: KEY\n"
	_, err := parsePolicy([]byte(src), "policy.yaml", testBuiltins)
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), literal) {
		t.Errorf("error repeats the pattern: %v", err)
	}
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Line != 3 {
		t.Errorf("first error = %+v, want a *ConfigError at line 3", ce)
	}
}

func TestParsePolicyGitleaksErrorsNameTheirFile(t *testing.T) {
	dir := t.TempDir()
	toml := "[[rules]]\nid = \"broken\"\nregex = '''broken_[a-z'''\n"
	if err := os.WriteFile(filepath.Join(dir, "team.toml"), []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("version: 3\ngitleaks: team.toml\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadPolicyFile(policy)
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{
		policy + `:1: version 3 is not supported`,
		filepath.Join(dir, "team.toml") + `:3: rule "broken": regex: missing closing ]`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
		}
	}
}

func TestParsePolicyImportedIDCollision(t *testing.T) {
	dir := t.TempDir()
	toml := "[[rules]]\nid = \"acme\"\nregex = '''acme_[a-z]{8}'''\n"
	if err := os.WriteFile(filepath.Join(dir, "g.toml"), []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	src := "version: 1\nrules:\n  - id: gitleaks-acme\n    regex: 'acme_[a-z]{9}'\n    category: KEY\ngitleaks: g.toml\n"
	_, err := parsePolicy([]byte(src), filepath.Join(dir, "policy.yaml"), testBuiltins)
	if err == nil || !strings.Contains(err.Error(), `:6: gitleaks: imported rule "gitleaks-acme" collides with the rule defined at line 3`) {
		t.Errorf("err = %v, want a collision at line 6", err)
	}
}

func TestLoadPolicyFileMissing(t *testing.T) {
	_, err := LoadPolicyFile(filepath.Join(t.TempDir(), "absent.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want one wrapping os.ErrNotExist", err)
	}
}

func TestPolicyAliasesAndAnchors(t *testing.T) {
	src := `version: 1
rules:
  - id: acme-token
    regex: &tok 'acme_[0-9a-f]{32}'
    category: &cat TOKEN
  - id: acme-token-quoted
    regex: '"acme_[0-9a-f]{32}"'
    category: *cat
allow: [*tok]
`
	pol, err := parsePolicy([]byte(src), "policy.yaml", testBuiltins)
	if err != nil {
		t.Fatal(err)
	}
	if pol.Custom[1].Category != TOKEN || len(pol.Allow) != 1 {
		t.Errorf("aliases not followed: %+v", pol)
	}
}

func TestMinLen(t *testing.T) {
	tests := []struct {
		expr  string
		empty bool
	}{
		{`a`, false},
		{`a*`, true},
		{`a+`, false},
		{`a{0,3}`, true},
		{`a{2,3}`, false},
		{`^$`, true},
		{`\bfoo\b`, false},
		{`foo|`, true},
		{`(?:foo)?bar`, false},
		{`[^\x00-\x{10FFFF}]`, false}, // matches nothing at all
		{`(?i)acme_[0-9a-f]{32}`, false},
	}
	for _, tt := range tests {
		_, err := compileRegex(tt.expr, 0)
		if got := err != nil; got != tt.empty {
			t.Errorf("compileRegex(%q) error = %v, want empty-match error %v", tt.expr, err, tt.empty)
		}
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct{ in, want string }{
		{"regexp", "regex"},
		{"pattern", "regex"},
		{"secretGroup", "secret_group"},
		{"Category", "category"},
		{"keyword", "keywords"},
		{"zzz", ""},
		{"idd", "id"},
	}
	for _, tt := range tests {
		if got := suggest(tt.in, ruleKeys); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Whatever parses must build an engine: the parser, not New, is where a
// policy is rejected.
func FuzzParsePolicy(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "policy", "example.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(seed))
	f.Add("version: 1\nrules:\n  - id: x\n    regex: 'x_[0-9]+'\n    category: KEY\n    keywords: [x_0]\n")
	f.Add("version: 1\nallow: ['^a$']\nactions:\n  categories: {HOST: off}\n")
	f.Add("version: 1\nrules:\n  - id: a\n    regex: '(a)(b)?'\n    secret_group: 2\n    category: KEY\n")
	f.Fuzz(func(t *testing.T, src string) {
		if strings.Contains(src, "gitleaks") {
			return // would read files named by the input
		}
		pol, err := parsePolicy([]byte(src), "policy.yaml", testBuiltins)
		if err != nil {
			return
		}
		opts := pol.Options()
		opts.Rules = []Rule{}
		e, err := New(opts)
		if err != nil {
			t.Fatalf("policy parsed but New failed: %v", err)
		}
		e.Detect([]byte("x_123 acme_0123 build-01.corp password=hunter2"))
	})
}
