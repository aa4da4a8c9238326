package cli

import (
	"bytes"
	"context"
	"flag"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/takumo/aegis/detect"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/cli")

// Fabricated secrets. They have the shape of real credentials (prefix,
// length, alphabet, and for GitHub tokens a valid CRC32 checksum) but
// were never issued by anyone.
const (
	awsKey1  = "AKIAT7V4SEH2KVJ72CEU"
	awsKey2  = "AKIAVW75EFR6EDT4SYWB"
	awsKey3  = "AKIA5WKH7DNSIPZZ7FK4"
	ghToken1 = "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"
	ghToken2 = "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"
	ghToken3 = "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"
	host1    = "db01.corp.internal"
)

// allSecrets lists every value that must never appear in any output.
var allSecrets = []string{awsKey1, awsKey2, awsKey3, ghToken1, ghToken2, ghToken3}

// testRules is a small fixed catalog, so that golden output does not move
// whenever the real catalog grows. The real catalog is exercised through
// Main in TestMainBuiltinCatalog.
func testRules() []detect.Rule {
	return []detect.Rule{
		{
			ID:            "aws-access-key-id",
			Description:   "AWS access key ID",
			Category:      detect.KEY,
			Keywords:      []string{"AKIA"},
			CaseSensitive: true,
			Pattern:       `AKIA[A-Z2-7]{16}`,
			MaxLen:        20,
		},
		{
			ID:            "github-pat",
			Description:   "GitHub personal access token (classic)",
			Category:      detect.TOKEN,
			Keywords:      []string{"ghp_"},
			CaseSensitive: true,
			Pattern:       `ghp_[A-Za-z0-9]{36}`,
			MaxLen:        40,
			Validate:      githubChecksumOK,
		},
		{
			ID:          "internal-host",
			Description: "Internal host name",
			Category:    detect.HOST,
			Action:      detect.Monitor,
			Keywords:    []string{".corp.internal"},
			Pattern:     `[a-z0-9-]{1,63}\.corp\.internal`,
			Before:      63,
			MaxLen:      32,
		},
	}
}

// githubChecksumOK checks the base62 CRC32 that ends a GitHub token.
func githubChecksumOK(tok []byte) bool {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	if len(tok) != 40 {
		return false
	}
	body, sum := tok[4:34], string(tok[34:])
	n := crc32.ChecksumIEEE(body)
	var enc [6]byte
	for i := 5; i >= 0; i-- {
		enc[i] = alphabet[n%62]
		n /= 62
	}
	return string(enc[:]) == sum
}

// result is one in-process run of the CLI.
type result struct {
	code           int
	stdout, stderr string
}

// run runs the CLI with the test catalog and fails the test if a secret
// shows up in its output.
func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	r := runUnchecked(stdin, args...)
	assertNoSecrets(t, r)
	return r
}

// runUnchecked runs the CLI with the test catalog; for rehydrate, whose
// output holds secrets by design.
func runUnchecked(stdin string, args ...string) result {
	var out, errb bytes.Buffer
	a := &app{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, rules: testRules()}
	code := a.run(context.Background(), args)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// assertNoSecrets fails if any fabricated secret, or its second half,
// appears in the output.
func assertNoSecrets(t *testing.T, r result) {
	t.Helper()
	for _, s := range allSecrets {
		for _, frag := range []string{s, s[len(s)/2:]} {
			if strings.Contains(r.stdout, frag) || strings.Contains(r.stderr, frag) {
				t.Fatalf("output contains (part of) a secret %q\nstdout:\n%s\nstderr:\n%s", frag[:4]+"…", r.stdout, r.stderr)
			}
		}
	}
}

// writeTree creates files under dir; a path ending in "/" makes a
// directory.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// goldenDir returns the absolute path of testdata/cli; call it before any
// t.Chdir.
func goldenDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs(filepath.Join("..", "testdata", "cli"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// golden compares got with dir/name, or rewrites it with -update.
func golden(t *testing.T, dir, name, got string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./cli -run %s -update to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("output differs from %s (rerun with -update if the change is intended)\ngot:\n%s\nwant:\n%s", p, got, want)
	}
}
