package token

import (
	"testing"

	"github.com/takumo/aegis/detect"
	"github.com/takumo/aegis/detect/rules"
)

// Fabricated secrets: the right shape (AWS key ids are AKIA + 16 base32
// characters; GitHub classic tokens end in a base62 CRC32 of their body),
// never issued by anyone.
const (
	awsKey    = "AKIA4HJX7QWERT2UVMNP"
	awsKey2   = "AKIAFT7V4SEH2KVJ72CE"
	ghToken   = "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"
	password  = "Xk9#mQ2$vL7pR4wz"
	pemHeader = "-----BEGIN RSA PRIVATE KEY-----"
)

// testKeyBytes is the key of the golden vectors (bytes 1..32).
func testKeyBytes() []byte {
	b := make([]byte, KeySize)
	for i := range b {
		b[i] = byte(i + 1)
	}
	return b
}

func testKey(t testing.TB) Key {
	t.Helper()
	k, err := KeyFromBytes(testKeyBytes())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testVault(t testing.TB, lim Limits) *Vault {
	t.Helper()
	v, err := NewVault(testKey(t), lim)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// testRules are hand-written so these tests do not depend on the catalog.
func testRules() []rules.Rule {
	return []rules.Rule{
		{ID: "aws", Category: rules.KEY, Keywords: []string{"AKIA"}, CaseSensitive: true, Pattern: `\b(AKIA[A-Z2-7]{16})\b`, SecretGroup: 1},
		{ID: "github", Category: rules.TOKEN, Keywords: []string{"ghp_"}, Pattern: `ghp_[A-Za-z0-9]{36}\b`},
		{ID: "quoted", Category: rules.SECRET, Keywords: []string{`secret="`}, Pattern: `secret="([^"]+)"`, SecretGroup: 1},
		{ID: "password", Category: rules.SECRET, Keywords: []string{"password="}, Pattern: `password=([^\s"']+)`, SecretGroup: 1},
		{ID: "pem", Category: rules.PKEY, Action: rules.Block, Keywords: []string{"PRIVATE KEY-----"}, Before: 32, Pattern: `-----BEGIN [A-Z ]*PRIVATE KEY-----`},
		{ID: "host", Category: rules.HOST, Action: rules.Monitor, Keywords: []string{".internal.example.com"}, Before: 64, Pattern: `[a-z0-9-]+\.internal\.example\.com`},
	}
}

func testEngine(t testing.TB) *detect.Engine {
	t.Helper()
	e, err := detect.New(detect.Options{Rules: testRules()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// mustToken adds value to v and returns its token.
func mustToken(t testing.TB, v *Vault, cat detect.Category, value string) string {
	t.Helper()
	tok, err := v.Token(cat, []byte(value))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
