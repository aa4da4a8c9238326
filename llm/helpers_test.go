package llm

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/takumo/aegis/detect"
	"github.com/takumo/aegis/token"
)

var (
	engineOnce sync.Once
	engine     *detect.Engine
	engineErr  error
)

// testEngine returns the built-in engine, compiled once for the package.
func testEngine(t testing.TB) *detect.Engine {
	t.Helper()
	engineOnce.Do(func() { engine, engineErr = detect.New(detect.Options{}) })
	if engineErr != nil {
		t.Fatalf("detect.New: %v", engineErr)
	}
	return engine
}

func testVault(t testing.TB) *token.Vault {
	t.Helper()
	k, err := token.KeyFromBytes(bytes.Repeat([]byte{0x5a}, token.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVault(k, token.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Fabricated secrets, realistic in shape, generated from a fixed seed.
const (
	alnum   = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	keyset  = alnum + "_-"
	base32u = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
)

func randString(r *rand.Rand, set string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = set[r.IntN(len(set))]
	}
	return string(b)
}

// fakeAnthropicKey is an Anthropic-shaped API key (108 characters).
func fakeAnthropicKey(r *rand.Rand) string {
	return "sk-ant-api03-" + randString(r, keyset, 93) + "AA"
}

// fakeAWSKeyID is an AWS access key id shape (AKIA + 16 base32).
func fakeAWSKeyID(r *rand.Rand) string { return "AKIA" + randString(r, base32u, 16) }

// secrets are the values the request fixtures plant, by placeholder.
type secrets map[string]string

func plantedSecrets() secrets {
	r := rand.New(rand.NewPCG(7, 11))
	return secrets{
		"{{ANTHROPIC_KEY}}":  fakeAnthropicKey(r),
		"{{ANTHROPIC_KEY2}}": fakeAnthropicKey(r),
		"{{AWS_KEY_ID}}":     fakeAWSKeyID(r),
		"{{DB_PASSWORD}}":    "Xq7" + randString(r, alnum, 17),
	}
}

// fill replaces the placeholders of a fixture with the planted values.
func (s secrets) fill(b []byte) []byte {
	for k, v := range s {
		b = bytes.ReplaceAll(b, []byte(k), []byte(v))
	}
	return b
}

// assertNoSecret fails if body holds any planted value, raw or
// JSON-escaped (the form it takes inside a string, and inside a string in
// a string).
func (s secrets) assertNoSecret(t *testing.T, body []byte) {
	t.Helper()
	for k, v := range s {
		forms := []string{v, jsonEsc(v), jsonEsc(jsonEsc(v))}
		for _, f := range forms {
			if bytes.Contains(body, []byte(f)) {
				t.Errorf("output still holds the value planted as %s", k)
				break
			}
		}
	}
}

func jsonEsc(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mapHeader is a Header for tests.
type mapHeader map[string]string

func (h mapHeader) Get(name string) string { return h[strings.ToLower(name)] }
