package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var tokenRE = regexp.MustCompile(`__TAKUMO_v1_(KEY|TOKEN|HOST)_[0-9a-f]{8}__`)

const source = "package config\n\n" +
	"const awsKey = \"" + awsKey1 + "\"\n" +
	"const gh = \"" + ghToken1 + "\" // same key again: " + awsKey1 + "\n" +
	"const db = \"" + host1 + "\"\n"

func TestTokenizeRehydrateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "config.go")
	session := filepath.Join(dir, ".takumo-session")
	writeTree(t, dir, map[string]string{"config.go": source})

	tok := run(t, "", "tokenize", "--session-file", session, src)
	if tok.code != ExitOK {
		t.Fatalf("tokenize exit %d: %s", tok.code, tok.stderr)
	}
	if got := len(tokenRE.FindAllString(tok.stdout, -1)); got != 3 {
		t.Errorf("want 3 tokens in the text (the key twice, the PAT once), got %d:\n%s", got, tok.stdout)
	}
	if !strings.Contains(tok.stdout, host1) {
		t.Errorf("the monitor finding should stay in place:\n%s", tok.stdout)
	}
	for _, want := range []string{"Tokenized 3 secrets:\n", "  line 3  aws-access-key-id → __TAKUMO_v1_KEY_", "  line 4  github-pat → __TAKUMO_v1_TOKEN_", "  line 5  internal-host (monitor, left in place)\n", "---\n"} {
		if !strings.Contains(tok.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, tok.stderr)
		}
	}
	fi, err := os.Stat(session)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("session file mode %04o, want 0600", perm)
	}

	// Same session: the same tokens.
	again := run(t, "", "tokenize", "-q", "--session-file", session, src)
	if again.stdout != tok.stdout {
		t.Errorf("reusing the session file changed the tokens:\n%s\nvs\n%s", again.stdout, tok.stdout)
	}
	if again.stderr != "" {
		t.Errorf("-q printed to stderr: %s", again.stderr)
	}

	// Rehydrate from stdin gives the original back byte for byte.
	back := runUnchecked(tok.stdout, "rehydrate", "--session-file", session, "-")
	if back.code != ExitOK {
		t.Fatalf("rehydrate exit %d: %s", back.code, back.stderr)
	}
	if back.stdout != source {
		t.Errorf("round trip differs:\n got %q\nwant %q", back.stdout, source)
	}
	if back.stderr != "Restored 3 tokens.\n" {
		t.Errorf("rehydrate stderr %q", back.stderr)
	}
}

func TestTokenizeWithoutSessionUsesFreshKeys(t *testing.T) {
	a := run(t, source, "tokenize", "-q", "-")
	b := run(t, source, "tokenize", "-q", "-")
	if a.code != ExitOK || b.code != ExitOK {
		t.Fatalf("exit %d/%d", a.code, b.code)
	}
	if a.stdout == b.stdout {
		t.Error("two runs without a session file gave the same tokens; the key should be random")
	}
}

func TestTokenizeOutputFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "safe.go")
	r := run(t, source, "tokenize", "-q", "-o", out, "-")
	if r.code != ExitOK || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, result{stdout: string(data)})
	if len(tokenRE.FindAll(data, -1)) != 3 {
		t.Errorf("output file:\n%s", data)
	}
	fi, _ := os.Stat(out)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("output mode %04o, want 0600", fi.Mode().Perm())
	}
}

func TestRehydrateUnknownTokens(t *testing.T) {
	dir := t.TempDir()
	session := filepath.Join(dir, "s")
	tok := run(t, "k="+awsKey1+"\n", "tokenize", "-q", "--session-file", session, "-")
	in := tok.stdout + "and __TAKUMO_v1_KEY_0badc0de__ from elsewhere\n"
	r := runUnchecked(in, "rehydrate", "-q", "--session-file", session, "-")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	want := "k=" + awsKey1 + "\nand __TAKUMO_v1_KEY_0badc0de__ from elsewhere\n"
	if r.stdout != want {
		t.Errorf("got %q, want %q", r.stdout, want)
	}
	if r.stderr != "warning: 1 unknown token left as written: __TAKUMO_v1_KEY_0badc0de__\n" {
		t.Errorf("stderr %q", r.stderr)
	}
}

func TestTokenizeRehydrateErrors(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open-session")
	run(t, "k="+awsKey1+"\n", "tokenize", "-q", "--session-file", open, "-")
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	writeTree(t, dir, map[string]string{
		"block.yaml": "version: 1\nactions:\n  categories: {KEY: block}\n",
		"in.txt":     "k=" + awsKey1 + "\n",
	})
	out := filepath.Join(dir, "out.txt")
	for _, tc := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"rehydrate needs a session", []string{"rehydrate", "-"}, `required flag(s) "session-file" not set`},
		{"session file readable by others", []string{"rehydrate", "--session-file", open, "-"}, "chmod 600"},
		{"missing session file", []string{"rehydrate", "--session-file", filepath.Join(dir, "nope"), "-"}, "run tokenize with --session-file first"},
		{"missing input", []string{"tokenize", filepath.Join(dir, "nope.txt")}, "check the path"},
		{"two inputs", []string{"tokenize", "a", "b"}, "expected one file"},
		{"block action", []string{"tokenize", "--policy", filepath.Join(dir, "block.yaml"), "-o", out, filepath.Join(dir, "in.txt")}, "the policy blocks aws-access-key-id on line 1; nothing was written"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, "", tc.args...)
			if r.code != ExitError {
				t.Errorf("exit %d, want 2", r.code)
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr %q lacks %q", r.stderr, tc.stderr)
			}
		})
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a blocked tokenize wrote its output file")
	}
}
