package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// mainResult runs Main itself, with the real catalog.
func mainResult(t *testing.T, ctx context.Context, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(ctx, args, strings.NewReader(stdin), &out, &errb)
	r := result{code: code, stdout: out.String(), stderr: errb.String()}
	assertNoSecrets(t, r)
	return r
}

func TestMainVersionAndHelp(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // substring of stdout
	}{
		{"version", []string{"version"}, "takumo-aegis " + Version + "\n"},
		{"--version", []string{"--version"}, "takumo-aegis " + Version + "\n"},
		{"no args is help", nil, "Available Commands:"},
		{"help", []string{"help"}, "Available Commands:"},
		{"--help", []string{"--help"}, "scan"},
		{"help scan", []string{"help", "scan"}, "--ignore GLOB"},
		{"scan --help", []string{"scan", "--help"}, "--format string"},
		{"tokenize --help", []string{"tokenize", "--help"}, "--session-file FILE"},
		{"rehydrate -h", []string{"rehydrate", "-h"}, "--session-file FILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mainResult(t, context.Background(), "", tc.args...)
			if r.code != ExitOK {
				t.Errorf("exit %d; stderr %s", r.code, r.stderr)
			}
			if !strings.Contains(r.stdout, tc.want) {
				t.Errorf("stdout lacks %q:\n%s", tc.want, r.stdout)
			}
		})
	}
}

// TestMainBuiltinCatalog runs the real catalog end to end: a password
// assigned in a config file is found, and a plain file is clean.
func TestMainBuiltinCatalog(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"clean.txt":  "nothing to see here\n",
		"config.env": "DB_PASSWORD=kR7vQ2mZ9pL4xWt8\n",
	})
	if r := mainResult(t, context.Background(), "", "scan", filepath.Join(dir, "clean.txt")); r.code != ExitOK {
		t.Errorf("clean file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := mainResult(t, context.Background(), "", "scan", filepath.Join(dir, "config.env"))
	if r.code != ExitFindings {
		t.Errorf("config with a password: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "Q2mZ9pL4") {
		t.Errorf("output shows the password:\n%s%s", r.stdout, r.stderr)
	}
}

// TestMainBuiltinCatalogJSON checks the JSON shape against the real
// catalog's AWS rule, and a tokenize/rehydrate round trip through Main.
func TestMainBuiltinCatalogJSON(t *testing.T) {
	dir := t.TempDir()
	src := "aws_key = \"" + awsKey1 + "\"\n"
	writeTree(t, dir, map[string]string{"k.txt": src})
	path := filepath.Join(dir, "k.txt")
	r := mainResult(t, context.Background(), "", "scan", "--format", "json", path)
	want := `{
  "findings": [
    {
      "path": "` + path + `",
      "line": 1,
      "column": 12,
      "start": 11,
      "end": 31,
      "rule": "aws-access-key-id",
      "category": "KEY",
      "action": "tokenize"
    }
  ],
  "files_scanned": 1,
  "files_skipped": 0,
  "bytes_scanned": 33
}
`
	if r.code != ExitFindings || r.stdout != want {
		t.Errorf("exit %d, stdout:\n%s\nwant:\n%s", r.code, r.stdout, want)
	}

	session := filepath.Join(dir, "session")
	tok := mainResult(t, context.Background(), "", "tokenize", "-q", "--session-file", session, path)
	if tok.code != ExitOK || !strings.Contains(tok.stdout, "__TAKUMO_v1_KEY_") {
		t.Fatalf("tokenize: exit %d\n%s%s", tok.code, tok.stdout, tok.stderr)
	}
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"rehydrate", "-q", "--session-file", session, "-"},
		strings.NewReader(tok.stdout), &out, &errb); code != ExitOK || out.String() != src {
		t.Errorf("rehydrate: exit %d, got %q, want %q; stderr %s", code, out.String(), src, errb.String())
	}
}

func TestMainCancelled(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a.txt": "x\n"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := mainResult(t, ctx, "", "scan", dir)
	if r.code != ExitError || !strings.Contains(r.stderr, "interrupted") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestMainNeverReadsStdinUnasked(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a.txt": "x\n"})
	in := strings.NewReader("k=" + awsKey1)
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"scan", dir}, in, &out, &errb); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if in.Len() == 0 {
		t.Error("scan of a directory consumed stdin")
	}
}

func TestTuneServerGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)

	restore := tuneServerGC(func(string) (string, bool) { return "", false })
	if got := debug.SetGCPercent(serverGCPercent); got != serverGCPercent {
		t.Errorf("GOGC unset: GC percent %d, want %d", got, serverGCPercent)
	}
	restore()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("after restore: GC percent %d, want 100", got)
	}

	restore = tuneServerGC(func(k string) (string, bool) { return "150", k == "GOGC" })
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC set: GC percent changed to %d, want it left alone", got)
	}
	restore()
}

func TestSoftMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		err  error
		want int64
		ok   bool
	}{
		{in: "536870912\n", want: 483183819, ok: true},
		{in: "max\n"},
		{in: ""},
		{in: "0"},
		{in: "-5"},
		{err: os.ErrNotExist},
	} {
		got, ok := softMemoryLimit(func() ([]byte, error) { return []byte(tc.in), tc.err })
		if got != tc.want || ok != tc.ok {
			t.Errorf("memory.max %q (%v): %d %v, want %d %v", tc.in, tc.err, got, ok, tc.want, tc.ok)
		}
	}

	prevLimit := debug.SetMemoryLimit(-1)
	restore := tuneGC(func(string) (string, bool) { return "", false }, func() ([]byte, error) { return []byte("1073741824"), nil })
	if got := debug.SetMemoryLimit(-1); got != 966367638 {
		t.Errorf("memory limit %d, want 90%% of 1 GiB", got)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != prevLimit {
		t.Errorf("after restore: memory limit %d, want %d", got, prevLimit)
	}
	restore = tuneGC(func(k string) (string, bool) { return "1GiB", k == "GOMEMLIMIT" }, func() ([]byte, error) { return []byte("1073741824"), nil })
	if got := debug.SetMemoryLimit(-1); got != prevLimit {
		t.Errorf("GOMEMLIMIT set: memory limit changed to %d", got)
	}
	restore()
}
