package token

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/takumo/aegis/detect"
)

func TestSessionFileRoundTrip(t *testing.T) {
	v := testVault(t, Limits{MaxEntries: 50})
	tokens := map[string]string{
		mustToken(t, v, detect.KEY, awsKey):     awsKey,
		mustToken(t, v, detect.SECRET, tricky):  tricky,
		mustToken(t, v, detect.SECRET, "\xff"):  "\xff", // not UTF-8: kept exactly
		mustToken(t, v, detect.TOKEN, ghToken):  ghToken,
		mustToken(t, v, detect.SECRET, "x y z"): "x y z",
	}
	path := filepath.Join(t.TempDir(), "session.json")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil { // replaced, mode tightened
		t.Fatal(err)
	}
	if err := v.WriteSessionFile(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode = %04o, want 0600", perm)
	}
	w, err := ReadSessionFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if w.Len() != len(tokens) || w.max != 50 {
		t.Errorf("read back %d entries, max %d", w.Len(), w.max)
	}
	for tok, val := range tokens {
		if got, ok := w.Value(tok); !ok || string(got) != val {
			t.Errorf("Value(%s) = %q, %v", tok, got, ok)
		}
	}
	// Same key: a later tokenize gives the same tokens, new values too.
	if got, want := mustToken(t, w, detect.KEY, awsKey2), mustToken(t, v, detect.KEY, awsKey2); got != want {
		t.Errorf("new value after reload: %s, want %s", got, want)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestSessionFileRefusesOpenModes(t *testing.T) {
	v := testVault(t, Limits{})
	mustToken(t, v, detect.KEY, awsKey)
	path := filepath.Join(t.TempDir(), "session.json")
	if err := v.WriteSessionFile(path); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o666} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := ReadSessionFile(path)
		if !errors.Is(err, ErrSessionFileMode) || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: err = %v", mode, err)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSessionFile(path); err != nil {
		t.Errorf("mode 0400: %v", err)
	}
}

func TestSessionFileRejects(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	key := b64(testKeyBytes())
	v := testVault(t, Limits{})
	tok := mustToken(t, v, detect.SECRET, password)
	val := b64([]byte(password))
	entry := `{"token":"` + tok + `","category":"SECRET","value":"` + val + `"}`
	head := `{"format":"takumo-aegis-session","version":1,"max_entries":10,"key":"` + key + `",`
	tests := []struct {
		name, body, want string
	}{
		{"valid", head + `"entries":[` + entry + `]}`, ""},
		{"version", strings.Replace(head, `"version":1`, `"version":2`, 1) + `"entries":[]}`, "version 2"},
		{"format", strings.Replace(head, "takumo-aegis-session", "other", 1) + `"entries":[]}`, "format"},
		{"unknown field", head + `"entries":[],"extra":1}`, "unknown field"},
		{"trailing data", head + `"entries":[]} {}`, "trailing"},
		{"zero key", strings.Replace(head, key, b64(make([]byte, 32)), 1) + `"entries":[]}`, "zero key"},
		{"short key", strings.Replace(head, key, b64([]byte("short")), 1) + `"entries":[]}`, "32 bytes"},
		{"tampered value", head + `"entries":[` + strings.Replace(entry, val, b64([]byte(password+"!")), 1) + `]}`, "does not match"},
		{"wrong category", head + `"entries":[` + strings.Replace(entry, `"SECRET"`, `"KEY"`, 1) + `]}`, "category"},
		{"bad token", head + `"entries":[` + strings.Replace(entry, tok, "__TAKUMO_v1_SECRET_XYZ__", 1) + `]}`, "not a canonical token"},
		{"duplicate", head + `"entries":[` + entry + `,` + entry + `]}`, "twice"},
		{"too many", strings.Replace(head, `"max_entries":10`, `"max_entries":1`, 1) + `"entries":[` + entry + `,` + entry + `]}`, "max_entries"},
		{"malformed", head + `"entries":[{"token":"` + tok + `","value":"` + password + `"x}]}`, "malformed JSON at byte"},
		{"bad base64", head + `"entries":[` + strings.Replace(entry, val, password, 1) + `]}`, "base64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.json")
			if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			w, err := ReadSessionFile(path)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got, _ := w.Value(tok); string(got) != password {
					t.Errorf("value = %q", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), val) {
				t.Errorf("error carries the value: %v", err)
			}
		})
	}
}

func TestSessionFileMissing(t *testing.T) {
	_, err := ReadSessionFile(filepath.Join(t.TempDir(), "none"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want ErrNotExist", err)
	}
	v := testVault(t, Limits{})
	dir := t.TempDir()
	if err := v.WriteSessionFile(filepath.Join(dir, "no", "such", "dir")); err == nil {
		t.Error("write into a missing directory succeeded")
	}
	// Never replace what is not a session file (a rename would).
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, link} {
		if err := v.WriteSessionFile(p); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("WriteSessionFile(%s) = %v", p, err)
		}
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Error("symlink was replaced")
	}
}
