package detect

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/takumo/aegis/detect/rules"
)

func TestDetectJSONStringMapsOffsets(t *testing.T) {
	e, err := New(Options{Rules: testRules()})
	if err != nil {
		t.Fatal(err)
	}
	tok := "ghp_" + strings.Repeat("aB3", 12)
	tests := []struct {
		name, raw, want string
	}{
		{"plain", `token ` + tok, tok},
		{"after escapes", `line1\nline2\t\"q\" ` + tok + `\n`, tok},
		{"after unicode", `caf\u00e9 \ud83d\ude00 ` + tok, tok},
		{"escaped inside", `aws_secret_key = \"abc\\def\/ghij\"`, `abc\\def\/ghij`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs, err := e.DetectJSONString([]byte(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			if len(fs) != 1 {
				t.Fatalf("got %d findings", len(fs))
			}
			if got := tc.raw[fs[0].Start:fs[0].End]; got != tc.want {
				t.Errorf("raw span %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDetectJSONStringBadEscapes(t *testing.T) {
	e, err := New(Options{Rules: []rules.Rule{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{`\`, `\x`, `\u12`, `\u12G4`, "a\x01b"} {
		if _, err := e.DetectJSONString([]byte(raw)); !errors.Is(err, ErrBadJSONString) {
			t.Errorf("%q: err = %v, want ErrBadJSONString", raw, err)
		}
	}
}

func FuzzDecodeJSONString(f *testing.F) {
	for _, s := range []string{``, `abc`, `\n\t\"\\\/`, `\u00e9\ud83d\ude00`, `\ud800`, `\ud800\u0041`, `x\u0000y`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		dec, idx, err := decodeJSONString([]byte(raw))
		var want string
		jerr := json.Unmarshal([]byte(`"`+raw+`"`), &want)
		if err != nil {
			if jerr == nil && utf8.ValidString(raw) && !strings.Contains(raw, `"`) {
				t.Fatalf("we reject %q, encoding/json accepts it", raw)
			}
			return
		}
		if len(idx) != len(dec)+1 || idx[len(dec)] != len(raw) {
			t.Fatalf("index length %d for %d decoded bytes", len(idx), len(dec))
		}
		for i := 1; i < len(idx); i++ {
			if idx[i] < idx[i-1] {
				t.Fatalf("index not monotonic at %d", i)
			}
		}
		if jerr == nil && utf8.ValidString(raw) && string(dec) != want {
			t.Fatalf("decoded %q, encoding/json %q", dec, want)
		}
	})
}
