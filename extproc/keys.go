package extproc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/takumo/aegis/keys"
	"github.com/takumo/aegis/llm"
)

// Mode is the kind of traffic a gateway serves: a gateway serves one mode,
// and a key of the other mode is refused (DESIGN §7). It is keys.Mode.
type Mode = keys.Mode

// The two modes.
const (
	ModeTest = keys.ModeTest
	ModeLive = keys.ModeLive
)

// ScopeShieldWrite is the scope that proxying, tokenizing and detecting need
// in the embedded policy.
const ScopeShieldWrite = keys.ScopeShieldWrite

// KeyStore authenticates presented Takumo keys and meters usage
// (*keys.MemStore is one). Authenticate returns an error wrapping
// keys.ErrUnauthorized (an *keys.AuthError whose message is shown to the
// client) for a key it refuses, and any other error when it cannot decide
// (the request then fails closed with 503). Month is the organization's
// usage in the calendar month of t; Record adds a request's usage.
type KeyStore interface {
	Authenticate(ctx context.Context, presented string) (keys.Record, error)
	Month(org string, t time.Time) (keys.MonthUsage, error)
	Record(ctx context.Context, u keys.Usage) error
}

var _ KeyStore = (*keys.MemStore)(nil)

// ProviderKeys hands out the provider API key an organisation has configured
// for a provider. A missing key is an error wrapping ErrNoProviderKey.
type ProviderKeys interface {
	ProviderKey(ctx context.Context, org string, p llm.Provider) (string, error)
}

// ErrNoProviderKey means the organisation has no key for the provider.
var ErrNoProviderKey = errors.New("extproc: no provider key configured")

// Identity describes a key added to MemKeys. It never holds the key.
type Identity struct {
	KeyID  string
	Org    string
	Mode   Mode
	Scopes []string
	// Plan is ignored: an organization's plan comes from Config.OrgPlan
	// and the policy data. Kept so that existing callers compile.
	Plan string
}

// MemKeys is a KeyStore for the standalone and development modes and for
// tests: keys whose raw value is known up front (TAKUMO_API_KEYS) go into a
// keys.MemStore as records holding their SHA-256 only. It is safe for
// concurrent use.
type MemKeys struct {
	*keys.MemStore

	mu  sync.Mutex
	ids map[[32]byte]string // key hash → record id, guarded by mu
}

var _ KeyStore = (*MemKeys)(nil)

// NewMemKeys returns an empty store that accepts keys of both modes (the
// server checks the mode itself).
func NewMemKeys() *MemKeys {
	return &MemKeys{MemStore: keys.NewMemStore(keys.Options{}), ids: map[[32]byte]string{}}
}

// Add registers key for id. The key must be well formed (tk_live_ or
// tk_test_ and 64 lowercase hex) and of id's mode; only its hash is kept.
func (m *MemKeys) Add(key string, id Identity) error {
	k, err := keys.Parse(key)
	if err != nil {
		return fmt.Errorf("extproc: add key %s: %w", id.KeyID, err)
	}
	if id.Mode == "" {
		id.Mode = k.Mode()
	}
	if id.Mode != k.Mode() {
		return fmt.Errorf("extproc: add key %s: a %s key cannot serve %s mode", id.KeyID, k.Mode(), id.Mode)
	}
	if id.Org == "" || strings.Contains(id.Org, "/") {
		return fmt.Errorf("extproc: add key %s: org must be non-empty and must not contain '/'", id.KeyID)
	}
	rec := keys.Record{
		ID: id.KeyID, Hash: k.Hash(), Prefix: keys.DisplayPrefix(k), Org: id.Org, Name: id.KeyID,
		Scopes: append([]string(nil), id.Scopes...), Mode: id.Mode, State: keys.StateActive, Created: time.Now(),
	}
	if err := m.Put(context.Background(), rec); err != nil {
		return fmt.Errorf("extproc: add key %s: %w", id.KeyID, err)
	}
	m.mu.Lock()
	m.ids[rec.Hash] = rec.ID
	m.mu.Unlock()
	return nil
}

// Remove revokes key; it reports whether the key was known.
func (m *MemKeys) Remove(key string) bool {
	k, err := keys.Parse(key)
	if err != nil {
		return false
	}
	m.mu.Lock()
	id, ok := m.ids[k.Hash()]
	m.mu.Unlock()
	return ok && m.Revoke(context.Background(), id) == nil
}

// StaticProviderKeys gives every organisation the same provider keys (the
// standalone gateway's TAKUMO_ANTHROPIC_API_KEY and friends). It formats
// itself redacted.
type StaticProviderKeys map[llm.Provider]string

var _ ProviderKeys = StaticProviderKeys(nil)

// ProviderKey returns the key for p.
func (s StaticProviderKeys) ProviderKey(_ context.Context, _ string, p llm.Provider) (string, error) {
	k := s[p]
	if k == "" {
		return "", fmt.Errorf("%w for %s", ErrNoProviderKey, p)
	}
	return k, nil
}

// String lists the providers that have a key, never the keys.
func (s StaticProviderKeys) String() string {
	names := make([]string, 0, len(s))
	for p, k := range s {
		if k != "" {
			names = append(names, string(p))
		}
	}
	return fmt.Sprintf("StaticProviderKeys(%d providers)", len(names))
}

// GoString is String.
func (s StaticProviderKeys) GoString() string { return s.String() }
