package detect

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func importFile(t *testing.T, parts ...string) ([]Rule, []string) {
	t.Helper()
	rs, warns, err := ImportGitleaksFile(filepath.Join(append([]string{"testdata", "gitleaks"}, parts...)...))
	if err != nil {
		t.Fatalf("ImportGitleaksFile: %v", err)
	}
	return rs, warns
}

func ruleByID(rs []Rule, id string) *Rule {
	for i := range rs {
		if rs[i].ID == id {
			return &rs[i]
		}
	}
	return nil
}

func TestImportGitleaksBasic(t *testing.T) {
	rs, warns := importFile(t, "basic.toml")
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	if got, want := strings.Join(ids, " "), "gitleaks-acme-api-key gitleaks-internal-service-token gitleaks-db-password"; got != want {
		t.Fatalf("ids = %q, want %q", got, want)
	}
	tests := []struct {
		id       string
		cat      Category
		group    int
		keywords string
	}{
		{"gitleaks-acme-api-key", KEY, 1, "acme"},             // id says key; keywords lower-cased
		{"gitleaks-internal-service-token", TOKEN, 1, "ist_"}, // tag TOKEN
		{"gitleaks-db-password", SECRET, 1, ""},               // tag "secret", any case
	}
	for _, tt := range tests {
		r := ruleByID(rs, tt.id)
		if r.Category != tt.cat || r.SecretGroup != tt.group || strings.Join(r.Keywords, ",") != tt.keywords ||
			r.Action != Tokenize || r.Validate == nil || r.Description == "" {
			t.Errorf("%s = %+v", tt.id, *r)
		}
	}
	all := strings.Join(warns, "\n")
	for _, w := range []string{
		`basic.toml:37: rule "pkcs12-file": path-only rule skipped`,
		`basic.toml:24: rule "internal-service-token": allowlist: regexes with regexTarget "line" are not applied`,
		`basic.toml:42: allowlist: paths and commits ignored`,
	} {
		if !strings.Contains(all, w) {
			t.Errorf("warnings\n%s\ndo not contain\n%s", all, w)
		}
	}
}

func TestGitleaksFindings(t *testing.T) {
	rs, _ := importFile(t, "basic.toml")
	opts := Options{Rules: []Rule{}, Custom: rs} // imported rules only
	tests := []struct {
		name string
		text string
		want []string // rule:value
	}{
		{"api key", `acme_api_key = "vta18hak90i4oiooiqaxwgw197w7r282"`,
			[]string{"gitleaks-acme-api-key:vta18hak90i4oiooiqaxwgw197w7r282"}},
		{"api key, keyword in upper case", `ACME-API-KEY: vta18hak90i4oiooiqaxwgw197w7r282`,
			[]string{"gitleaks-acme-api-key:vta18hak90i4oiooiqaxwgw197w7r282"}},
		{"api key below entropy", `acme_api_key = "aaaabbbbaaaabbbbccccddddccccdddd"`, nil},
		{"api key allowed by targeted global allowlist", `acme_api_key = "ci0000k3j5h7g9f1d2s4a6p8o0i9u7y5"`, nil},
		{"token", "curl -H 'X-Service-Token: ist_eNDsL39QpKfnyVAoRsoMnU0uToTWF1HJCcJc0yiw' https://svc.internal/",
			[]string{"gitleaks-internal-service-token:ist_eNDsL39QpKfnyVAoRsoMnU0uToTWF1HJCcJc0yiw"}},
		{"token allowed by rule regex", `token: ist_0123456789fnyVAoRsoMnU0uToTWF1HJCcJc0yiw`, nil},
		{"token allowed by stopword, any case", `token: ist_EXAMPLEQpKfnyVAoRsoMnU0uToTWF1HJCcJc0yiw`, nil},
		{"line-target allowlist not applied", `token: ist_eNDsL39QpKfnyVAoRsoMnU0uToTWF1HJCcJc0yiw # fixture`,
			[]string{"gitleaks-internal-service-token:ist_eNDsL39QpKfnyVAoRsoMnU0uToTWF1HJCcJc0yiw"}},
		{"password", `DB_PASSWORD = "PYyuIWv07JSze9J99OU0"`, []string{"gitleaks-db-password:PYyuIWv07JSze9J99OU0"}},
		{"password below entropy", `db_pass = "abababab"`, nil},
		{"password allowed by global stopword", `db_password = "Dummy-Passw0rd-2024"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, f := range findAll(t, opts, tt.text) {
				got = append(got, f.rule+":"+f.value)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("findings = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestImportGitleaksErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"broken regex", "title = \"t\"\n[[rules]]\nid = \"acme\"\nregex = '''acme_[a-z'''\n",
			[]string{`gitleaks.toml:4: rule "acme": regex: missing closing ]`}},
		{"regex matches empty", "[[rules]]\nid = \"acme\"\nregex = '''(acme_[a-z]{8})?'''\n",
			[]string{`gitleaks.toml:3: rule "acme": regex: matches the empty string`}},
		{"unknown rule key", "[[rules]]\nid = \"acme\"\nregexp = '''acme_[a-z]{8}'''\n",
			[]string{`gitleaks.toml:3: unknown key "regexp" in [rules] (did you mean "regex"?)`, `gitleaks.toml:1: rule "acme": has neither regex nor path`}},
		{"unknown top-level key", "titel = \"t\"\n", []string{`gitleaks.toml:1: unknown key "titel" at the top level (did you mean "title"?)`}},
		{"unknown table reported once", "[detect]\nmode = \"fast\"\nlevel = 2\n",
			[]string{`gitleaks.toml:1: unknown key "detect" at the top level`}},
		{"unknown allowlist key", "[[rules]]\nid = \"a\"\nregex = '''a_[0-9]{8}'''\n[[rules.allowlists]]\nregexs = ['''x''']\n",
			[]string{`gitleaks.toml:5: unknown key "regexs" in [rules.allowlists] (did you mean "regexes"?)`}},
		{"invalid TOML", "[[rules]]\nid = \"acme\nregex = 'x'\n", []string{`gitleaks.toml:2: invalid TOML`}},
		{"wrong type", "[[rules]]\nid = \"acme\"\nregex = '''acme_[a-z]{8}'''\nentropy = \"high\"\n", []string{`gitleaks.toml:4: invalid TOML: rules.entropy: incompatible types`}},
		{"duplicate id", "[[rules]]\nid = \"acme\"\nregex = '''a_[0-9]{8}'''\n[[rules]]\nid = \"acme\"\nregex = '''b_[0-9]{8}'''\n",
			[]string{`gitleaks.toml:4: rule "acme": duplicate rule id (same as "acme" at line 1`}},
		{"duplicate once kebab-case", "[[rules]]\nid = \"acme-key\"\nregex = '''a_[0-9]{8}'''\n[[rules]]\nid = \"Acme_Key\"\nregex = '''b_[0-9]{8}'''\n",
			[]string{`gitleaks.toml:4: rule "Acme_Key": duplicate rule id (same as "acme-key" at line 1 once made kebab-case)`}},
		{"missing id", "[[rules]]\nregex = '''a_[0-9]{8}'''\n", []string{`gitleaks.toml:1: rule without an id`}},
		{"neither regex nor path", "[[rules]]\nid = \"acme\"\ndescription = \"d\"\n", []string{`gitleaks.toml:1: rule "acme": has neither regex nor path`}},
		{"secret group out of range", "[[rules]]\nid = \"acme\"\nregex = '''acme_([a-z]{8})'''\nsecretGroup = 3\n",
			[]string{`gitleaks.toml:3: rule "acme": secret group 3: the regex has 1 capture group(s)`}},
		{"negative entropy", "[[rules]]\nid = \"acme\"\nregex = '''acme_[a-z]{8}'''\nentropy = -1.0\n",
			[]string{`gitleaks.toml:1: rule "acme": entropy must not be negative`}},
		{"bad condition", "[[rules]]\nid = \"a\"\nregex = '''a_[0-9]{8}'''\n[[rules.allowlists]]\ncondition = \"XOR\"\nstopwords = [\"x\"]\n",
			[]string{`gitleaks.toml:4: rule "a": allowlist: condition "XOR" is not OR or AND`}},
		{"bad regexTarget", "[[allowlists]]\nregexTarget = \"file\"\nregexes = ['''x''']\n",
			[]string{`gitleaks.toml:1: allowlist: regexTarget "file" is not secret, match or line`}},
		{"broken allowlist regex", "[[rules]]\nid = \"a\"\nregex = '''a_[0-9]{8}'''\n\n  [[rules.allowlists]]\n  regexes = ['''ok''', '''(x''']\n",
			[]string{`gitleaks.toml:5: rule "a": allowlist: regexes[1]: regex: missing closing )`}},
		{"empty stopword", "[allowlist]\nstopwords = [\"\"]\n", []string{`gitleaks.toml:1: allowlist: stopwords[0] is empty`}},
		{"useDefault with path", "[extend]\nuseDefault = true\npath = \"base.toml\"\n",
			[]string{`gitleaks.toml:1: extend: useDefault and path cannot be used together`}},
		{"extend path missing", "[extend]\npath = \"no-such-base.toml\"\n", []string{`gitleaks.toml:1: extend.path: open`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, _, err := ImportGitleaks([]byte(tt.src), "gitleaks.toml")
			if err == nil {
				t.Fatalf("no error (rules %v), want %q", rs, tt.want)
			}
			if rs != nil {
				t.Errorf("rules returned with an error: %v", rs)
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

func TestImportGitleaksErrorsDoNotEchoPatterns(t *testing.T) {
	const literal = "ghp_R4nd0mF4br1c4t3dT0k3nV4lu3Xy9Zq2Ab"
	src := "[[rules]]\nid = \"a\"\nregex = '''(" + literal + "'''\n[allowlist]\nregexes = ['''" + literal + "[''']\n"
	_, _, err := ImportGitleaks([]byte(src), "gitleaks.toml")
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), literal) {
		t.Errorf("error repeats a pattern: %v", err)
	}
}

func TestImportGitleaksWarnings(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		rules int
		want  string
	}{
		{"useDefault", "[extend]\nuseDefault = true\n", 0,
			`gitleaks.toml:1: extend.useDefault: the gitleaks default rules are not imported`},
		{"useDefault disabledRules", "[extend]\nuseDefault = true\ndisabledRules = [\"generic-api-key\"]\n", 0,
			`extend.disabledRules: ignored with useDefault`},
		{"adjusting a default rule", "[extend]\nuseDefault = true\n\n[[rules]]\nid = \"gitlab-pat\"\n  [[rules.allowlists]]\n  regexes = ['''^glpat-example''']\n", 0,
			`gitleaks.toml:4: rule "gitlab-pat": skipped; it only adjusts a gitleaks default rule`},
		{"skipReport", "[[rules]]\nid = \"aux\"\nregex = '''aux_[0-9]{8}'''\nskipReport = true\n", 0,
			`gitleaks.toml:1: rule "aux": skipReport rule skipped`},
		{"required", "[[rules]]\nid = \"main\"\nregex = '''main_[0-9]{8}'''\n[[rules.required]]\nid = \"aux\"\nwithinLines = 2\n", 1,
			`gitleaks.toml:1: rule "main": required rules ignored`},
		{"path with regex", "[[rules]]\nid = \"env\"\nregex = '''env_[0-9]{8}'''\npath = '''\\.env$'''\n", 1,
			`gitleaks.toml:1: rule "env": path ignored`},
		{"several groups", "[[rules]]\nid = \"two\"\nregex = '''(a|b)_([0-9]{8})'''\n", 1,
			`gitleaks.toml:3: rule "two": secretGroup not set and the regex has 2 groups`},
		{"AND allowlist with paths", "[[rules]]\nid = \"a\"\nregex = '''a_[0-9]{8}'''\n[[rules.allowlists]]\ncondition = \"AND\"\npaths = ['''x''']\nstopwords = [\"y\"]\n", 1,
			`gitleaks.toml:4: rule "a": allowlist: skipped; with condition AND it needs paths or commits`},
		{"match target", "[allowlist]\nregexTarget = \"match\"\nregexes = ['''x''']\n", 0,
			`gitleaks.toml:1: allowlist: regexes with regexTarget "match" are not applied`},
		{"unknown target rule", "[[allowlists]]\ntargetRules = [\"nope\"]\nstopwords = [\"x\"]\n", 0,
			`gitleaks.toml:1: allowlist targetRules: no rule "nope"`},
		{"empty-matching allowlist regex", "[allowlist]\nregexes = ['''.*''']\n", 0,
			`allowlist: regexes[0] matches the empty string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, warns, err := ImportGitleaks([]byte(tt.src), "gitleaks.toml")
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if len(rs) != tt.rules {
				t.Errorf("%d rules, want %d", len(rs), tt.rules)
			}
			if all := strings.Join(warns, "\n"); !strings.Contains(all, tt.want) {
				t.Errorf("warnings\n%s\ndo not contain\n%s", all, tt.want)
			}
		})
	}
}

func TestImportGitleaksExtend(t *testing.T) {
	rs, _ := importFile(t, "extend", "top.toml")
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	// legacy-token is disabled; acme-api-key comes from the base with the
	// top file's entropy and allowlist; deploy-secret is the top's own.
	if got, want := strings.Join(ids, " "), "gitleaks-acme-api-key gitleaks-deploy-secret"; got != want {
		t.Fatalf("ids = %q, want %q", got, want)
	}
	opts := Options{Rules: []Rule{}, Custom: rs}
	tests := []struct {
		text string
		want int
	}{
		{`acme_api_key = "vta18hak90i4oiooiqaxwgw197w7r282"`, 1},
		{`acme_api_key = "sandboxk3j5h7g9f1d2s4a6p8o0i9u7y"`, 0}, // top's stopword
		{`acme_api_key = "a1b2c3d4a1b2c3d4a1b2c3d4a1b2c3d4"`, 0}, // 3 bits < top's 3.5
		{`legacy_abcdefghij`, 0},
		{`DEPLOY=deploysecret_0a1b2c3d4e5f6a7b`, 1},
	}
	for _, tt := range tests {
		if got := findAll(t, opts, tt.text); len(got) != tt.want {
			t.Errorf("%q: findings %+v, want %d", tt.text, got, tt.want)
		}
	}
}

func TestImportGitleaksExtendDepth(t *testing.T) {
	// b → c → d is two levels: allowed.
	rs, _ := importFile(t, "deep", "b.toml")
	if len(rs) != 3 {
		t.Errorf("b.toml: %d rules, want 3", len(rs))
	}
	// a → b → c → d is three.
	_, _, err := ImportGitleaksFile(filepath.Join("testdata", "gitleaks", "deep", "a.toml"))
	if err == nil || !strings.Contains(err.Error(), `c.toml:1: extend.path: more than 2 levels of extension`) {
		t.Errorf("err = %v, want the depth limit at c.toml:1", err)
	}
}

func TestGitleaksEntropyIsStrict(t *testing.T) {
	// "abcdefgh" has exactly 3 bits of entropy: gitleaks drops a secret
	// whose entropy is not above the threshold.
	v := gitleaksValidator(3.0, nil)
	if v([]byte("abcdefgh")) {
		t.Error("entropy equal to the threshold accepted")
	}
	if !v([]byte("abcdefghi")) {
		t.Error("entropy above the threshold rejected")
	}
	if v(nil) {
		t.Error("empty secret accepted")
	}
	// Characters, not bytes: "ééé" is one repeated character.
	if got := charEntropy([]byte("ééé")); got != 0 {
		t.Errorf("charEntropy(ééé) = %v, want 0", got)
	}
}

func TestGitleaksCategory(t *testing.T) {
	tests := []struct {
		id   string
		tags []string
		want Category
	}{
		{"aws-access-token", nil, TOKEN},
		{"stripe-api-key", nil, KEY},
		{"private-key", nil, PKEY},
		{"acme-signing-private-key", []string{"crypto"}, PKEY},
		{"db-password", nil, SECRET},
		{"anything", []string{"internal", "conn"}, CONN},
		{"slack-token", []string{"key"}, KEY}, // a tag wins over the id
	}
	for _, tt := range tests {
		if got := gitleaksCategory(tt.id, tt.tags); got != tt.want {
			t.Errorf("gitleaksCategory(%q, %q) = %s, want %s", tt.id, tt.tags, got, tt.want)
		}
	}
}

func TestKebab(t *testing.T) {
	tests := []struct{ in, want string }{
		{"aws-access-token", "aws-access-token"},
		{"Acme_API key", "acme-api-key"},
		{"--x--y--", "x-y"},
		{"日本", ""},
	}
	for _, tt := range tests {
		if got := kebab(tt.in); got != tt.want {
			t.Errorf("kebab(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Whatever imports must build an engine.
func FuzzImportGitleaks(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "gitleaks", "basic.toml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(seed))
	f.Add("[[rules]]\nid = \"a\"\nregex = '''(a)(b)?'''\nsecretGroup = 2\nkeywords = [\"\"]\n")
	f.Add("[allowlist]\nstopwords = [\"x\"]\n[[rules]]\nid = \"A b\"\nregex = '''x+'''\nentropy = 1.5\n")
	f.Fuzz(func(t *testing.T, src string) {
		if strings.Contains(src, "extend") {
			return // would read files named by the input
		}
		rs, _, err := ImportGitleaks([]byte(src), "gitleaks.toml")
		if err != nil {
			return
		}
		e, err := New(Options{Rules: []Rule{}, Custom: rs})
		if err != nil {
			t.Fatalf("import succeeded but New failed: %v", err)
		}
		e.Detect([]byte("aab xxx abab x_123 ACME_API_KEY=0"))
	})
}
