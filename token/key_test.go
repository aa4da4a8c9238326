package token

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/takumo/aegis/detect"
)

// The golden tokens were computed outside Go (Python hmac/hashlib and a
// hand-written RFC 5869 HKDF) from the same inputs.
func TestTokenGolden(t *testing.T) {
	v := testVault(t, Limits{})
	if got, want := mustToken(t, v, detect.KEY, awsKey), "__TAKUMO_v1_KEY_5c940c53__"; got != want {
		t.Errorf("KEY token = %s, want %s", got, want)
	}
	if got, want := mustToken(t, v, detect.SECRET, password), "__TAKUMO_v1_SECRET_89500dca__"; got != want {
		t.Errorf("SECRET token = %s, want %s", got, want)
	}
}

func TestDeriveSessionKey(t *testing.T) {
	secret := make([]byte, 32)
	for i := range secret {
		secret[i] = byte(100 + i)
	}
	tokenWith := func(k Key) string {
		t.Helper()
		v, err := NewVault(k, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return mustToken(t, v, detect.KEY, awsKey)
	}
	if got, want := tokenWith(DeriveSessionKey(secret, "org_7f3a", "sess-42")), "__TAKUMO_v1_KEY_265fe755__"; got != want {
		t.Errorf("derived-key token = %s, want %s", got, want)
	}
	first := DeriveSessionKey(secret, "org_7f3a", "sess-42")
	second := DeriveSessionKey(secret, "org_7f3a", "sess-42")
	if first != second {
		t.Error("derivation is not deterministic")
	}
	// Ids are length-prefixed: moving a byte from one to the other changes the key.
	pairs := [][2]string{{"ab", "c"}, {"a", "bc"}, {"abc", ""}, {"", "abc"}, {"org_7f3a", "sess-43"}}
	seen := map[Key][2]string{}
	for _, p := range pairs {
		k := DeriveSessionKey(secret, p[0], p[1])
		if prev, dup := seen[k]; dup {
			t.Errorf("(%q,%q) and (%q,%q) derive the same key", prev[0], prev[1], p[0], p[1])
		}
		seen[k] = p
	}
	if k := DeriveSessionKey(secret[:MinOrgSecretLen-1], "o", "s"); !k.IsZero() {
		t.Error("a short org secret must give the zero key")
	}
	if _, err := NewVault(DeriveSessionKey(nil, "o", "s"), Limits{}); !errors.Is(err, ErrZeroKey) {
		t.Errorf("NewVault(zero key) error = %v, want ErrZeroKey", err)
	}
}

func TestKeyFromBytes(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"32 bytes", testKeyBytes(), true},
		{"short", testKeyBytes()[:31], false},
		{"long", append(testKeyBytes(), 1), false},
		{"zero", make([]byte, KeySize), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := KeyFromBytes(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && k.IsZero() {
				t.Fatal("key is zero")
			}
		})
	}
}

func TestNewRandomKey(t *testing.T) {
	a, err := NewRandomKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewRandomKey()
	if err != nil {
		t.Fatal(err)
	}
	if a.IsZero() || a == b {
		t.Fatal("random keys are zero or equal")
	}
}

// leaks reports whether out shows the key's bytes in any usual encoding.
func leaks(out string, secret []byte) bool {
	forms := []string{
		string(secret),
		hex.EncodeToString(secret),
		strings.ToUpper(hex.EncodeToString(secret)),
		fmt.Sprintf("%d", secret), // [1 2 3 ...]
		fmt.Sprintf("%#v", secret),
		string(mustJSON(secret)), // base64
	}
	for _, f := range forms {
		if f != "" && strings.Contains(out, strings.Trim(f, `"`)) {
			return true
		}
	}
	return false
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestKeyIsRedacted(t *testing.T) {
	k := testKey(t)
	raw := testKeyBytes()
	type holder struct {
		K Key
		P *Key
	}
	h := holder{K: k, P: &k}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
		outs = append(outs, fmt.Sprintf(verb, k), fmt.Sprintf(verb, h), fmt.Sprintf(verb, &k))
	}
	outs = append(outs, k.String(), k.GoString(), string(mustJSON(k)), string(mustJSON(h)))
	var logs bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&logs, nil))
	l.Info("key", "k", k, "h", h)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("key", "k", k, "p", &k)
	outs = append(outs, logs.String())
	for _, out := range outs {
		if leaks(out, raw) {
			t.Errorf("key leaked in %q", out)
		}
	}
	if !strings.Contains(fmt.Sprint(k), redacted) || !strings.Contains(logs.String(), redacted) {
		t.Errorf("redaction marker missing: %v / %s", k, logs.String())
	}
}
