package extproc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/takumo/aegis/keys"
	"github.com/takumo/aegis/llm"
)

func TestMemKeys(t *testing.T) {
	m := NewMemKeys()
	id := Identity{KeyID: "key_1", Org: "org_a", Scopes: []string{ScopeShieldWrite}}
	if err := m.Add(testKey, id); err != nil {
		t.Fatal(err)
	}
	got, err := m.Authenticate(context.Background(), testKey)
	if err != nil || got.ID != "key_1" || got.Mode != ModeTest || !got.HasScope(ScopeShieldWrite) {
		t.Fatalf("Authenticate = %+v, %v", got, err)
	}
	got.Scopes[0] = "changed"
	if again, _ := m.Authenticate(context.Background(), testKey); again.Scopes[0] != ScopeShieldWrite {
		t.Error("caller could change the stored scopes")
	}
	if _, err := m.Authenticate(context.Background(), testKey2); !errors.Is(err, keys.ErrUnknown) {
		t.Errorf("unknown key: %v", err)
	}
	if dump := fmt.Sprintf("%v %+v %#v", m, m, m); strings.Contains(dump, testKey) || strings.Contains(dump, testKey[8:]) {
		t.Error("MemKeys formats a key")
	}
	if !m.Remove(testKey) {
		t.Fatal("Remove: key not known")
	}
	if _, err := m.Authenticate(context.Background(), testKey); !errors.Is(err, keys.ErrRevoked) {
		t.Errorf("removed key: %v", err)
	}

	bad := []struct {
		name string
		key  string
		id   Identity
	}{
		{"short", "tk_test_abc", id},
		{"upper hex", "tk_test_" + strings.Repeat("AB", 32), id},
		{"wrong prefix", "sk_test_" + strings.Repeat("ab", 32), id},
		{"mode mismatch", testKey2, Identity{KeyID: "k", Org: "o", Mode: ModeLive}},
		{"no org", testKey2, Identity{KeyID: "k"}},
		{"slash in org", testKey2, Identity{KeyID: "k", Org: "a/b"}},
		{"unknown scope", testKey2, Identity{KeyID: "k", Org: "o", Scopes: []string{"shield:everything"}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := m.Add(tc.key, tc.id)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), tc.key[min(8, len(tc.key)):]) && len(tc.key) > 12 {
				t.Errorf("error repeats the key: %v", err)
			}
		})
	}
}

func TestStaticProviderKeys(t *testing.T) {
	s := StaticProviderKeys{llm.Anthropic: anthropicPK}
	if k, err := s.ProviderKey(context.Background(), "org", llm.Anthropic); err != nil || k != anthropicPK {
		t.Errorf("anthropic: %v", err)
	}
	if _, err := s.ProviderKey(context.Background(), "org", llm.Gemini); !errors.Is(err, ErrNoProviderKey) {
		t.Errorf("gemini: %v", err)
	}
	for _, dump := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s)} {
		if strings.Contains(dump, anthropicPK) {
			t.Errorf("formats the key: %s", dump)
		}
	}
}

// failingKeys is a KeyStore that cannot decide.
type failingKeys struct{}

var _ KeyStore = failingKeys{}

func (failingKeys) Authenticate(context.Context, string) (keys.Record, error) {
	return keys.Record{}, errors.New("connection refused")
}

func (failingKeys) Month(string, time.Time) (keys.MonthUsage, error) {
	return keys.MonthUsage{}, errors.New("connection refused")
}

func (failingKeys) Record(context.Context, keys.Usage) error { return errors.New("connection refused") }

// TestKeyStoreDown: a key store error fails closed with 503, never 401 or a
// pass.
func TestKeyStoreDown(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.KeyStore = failingKeys{} })
	ex := h.open(t)
	checkError(t, ex.roundTrip(postHeaders("/v1/messages", chatBodyAnthropic, "x-api-key", testKey)), 503, CodeServiceUnavailable, "key store")
	ex.closeOK()
}

func TestNewServerConfig(t *testing.T) {
	if _, err := NewServer(Config{}); err == nil {
		t.Fatal("empty config accepted")
	} else {
		for _, want := range []string{"KeyStore", "ProviderKeys", "Engine", "OrgSecret"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
		}
	}
	cfg := Config{KeyStore: NewMemKeys(), ProviderKeys: StaticProviderKeys{}, Engine: sharedEngine(t),
		OrgSecret: func(string) []byte { return orgSecret }, Mode: "staging"}
	if _, err := NewServer(cfg); err == nil || !strings.Contains(err.Error(), "staging") {
		t.Errorf("bad mode: %v", err)
	}
}

// TestLargeBody: a body over gRPC's 4 MiB default goes through.
func TestLargeBody(t *testing.T) {
	h := newHarness(t)
	ex := h.open(t)
	filler := strings.Repeat("lorem ipsum dolor sit amet ", (9<<19)/27)
	body := []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":` + jsonString(filler+prose) + `}]}`)
	ex.roundTrip(postHeaders("/v1/chat/completions", body, "x-api-key", testKey))
	r := ex.roundTrip(reqBody(body))
	out := r.GetRequestBody().GetResponse().GetBodyMutation().GetBody()
	if len(out) < 9<<19 {
		t.Fatalf("got %v", r.GetResponse())
	}
	assertNoSecret(t, "upstream body", out)
}
