package extproc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/takumo/aegis/llm"
)

// Mode is the kind of traffic a gateway serves: a gateway serves one mode,
// and a key of the other mode is refused (DESIGN §7).
type Mode string

// The two modes.
const (
	ModeTest Mode = "test"
	ModeLive Mode = "live"
)

// ScopeShieldWrite is the scope that proxying, tokenizing and detecting need.
const ScopeShieldWrite = "shield:write"

// Key prefixes and the length of the random part.
const (
	livePrefix = "tk_live_"
	testPrefix = "tk_test_"
	keyHexLen  = 64
)

// Identity is who a key belongs to. It never holds the key.
type Identity struct {
	KeyID  string
	Org    string
	Plan   string
	Mode   Mode
	Scopes []string
}

// HasScope reports whether the identity holds scope.
func (id Identity) HasScope(scope string) bool {
	for _, s := range id.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// KeyStore authenticates a presented Takumo key. The key has already been
// checked for shape and mode. Implementations return an error wrapping
// ErrUnknownKey for a key they do not know (or that is revoked or disabled;
// an *AuthError says which when the store knows), any other error when they
// cannot decide (the request then fails closed with 503).
type KeyStore interface {
	Authenticate(ctx context.Context, presented string) (Identity, error)
}

// ProviderKeys hands out the provider API key an organisation has configured
// for a provider. A missing key is an error wrapping ErrNoProviderKey.
type ProviderKeys interface {
	ProviderKey(ctx context.Context, org string, p llm.Provider) (string, error)
}

// ErrUnknownKey means the key store does not know the presented key.
var ErrUnknownKey = errors.New("extproc: unknown API key")

// ErrNoProviderKey means the organisation has no key for the provider.
var ErrNoProviderKey = errors.New("extproc: no provider key configured")

// AuthError is a refused key (401). Msg is shown to the client and names the
// mistake; it never contains the key.
type AuthError struct {
	Msg string
}

func (e *AuthError) Error() string { return "extproc: unauthorized: " + e.Msg }

// MemKeys is an in-memory KeyStore for the standalone and development modes:
// it stores the SHA-256 of each key only, looks keys up by hash and compares
// hashes in constant time. It is safe for concurrent use. The policy work
// replaces it with the coordinator's key store.
type MemKeys struct {
	mu   sync.RWMutex
	byID map[[sha256.Size]byte]memKey // guarded by mu
}

type memKey struct {
	hash [sha256.Size]byte
	id   Identity
}

var _ KeyStore = (*MemKeys)(nil)

// NewMemKeys returns an empty store.
func NewMemKeys() *MemKeys {
	return &MemKeys{byID: make(map[[sha256.Size]byte]memKey)}
}

// Add registers key for id. The key must be well formed (tk_live_ or
// tk_test_ and 64 lowercase hex) and of id's mode; only its hash is kept.
func (m *MemKeys) Add(key string, id Identity) error {
	mode, err := parseKeyShape(key)
	if err != nil {
		return fmt.Errorf("extproc: add key %s: %w", id.KeyID, err)
	}
	if id.Mode == "" {
		id.Mode = mode
	}
	if id.Mode != mode {
		return fmt.Errorf("extproc: add key %s: a %s key cannot serve %s mode", id.KeyID, mode, id.Mode)
	}
	if id.Org == "" || strings.Contains(id.Org, "/") {
		return fmt.Errorf("extproc: add key %s: org must be non-empty and must not contain '/'", id.KeyID)
	}
	id.Scopes = append([]string(nil), id.Scopes...)
	h := sha256.Sum256([]byte(key))
	m.mu.Lock()
	m.byID[h] = memKey{hash: h, id: id}
	m.mu.Unlock()
	return nil
}

// Remove forgets key (revocation); it reports whether the key was known.
func (m *MemKeys) Remove(key string) bool {
	h := sha256.Sum256([]byte(key))
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.byID[h]
	delete(m.byID, h)
	return ok
}

// Authenticate looks the key up by its hash.
func (m *MemKeys) Authenticate(_ context.Context, presented string) (Identity, error) {
	h := sha256.Sum256([]byte(presented))
	m.mu.RLock()
	defer m.mu.RUnlock()
	e, ok := m.byID[h]
	// The lookup by hash finds the candidate (its timing tells nothing
	// about the key); the constant-time comparison is the check.
	if !ok || subtle.ConstantTimeCompare(e.hash[:], h[:]) != 1 {
		return Identity{}, ErrUnknownKey
	}
	id := e.id
	id.Scopes = append([]string(nil), id.Scopes...)
	return id, nil
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

// parseKeyShape checks the shape of a Takumo key and returns its mode. The
// error message is safe for the client.
func parseKeyShape(key string) (Mode, error) {
	var mode Mode
	var rest string
	switch {
	case strings.HasPrefix(key, livePrefix):
		mode, rest = ModeLive, key[len(livePrefix):]
	case strings.HasPrefix(key, testPrefix):
		mode, rest = ModeTest, key[len(testPrefix):]
	default:
		return "", &AuthError{Msg: "this is not a Takumo API key: Takumo keys start with tk_live_ or tk_test_ " +
			"(put the Takumo key, not the provider key, where the tool asks for an API key)"}
	}
	if len(rest) != keyHexLen {
		return "", &AuthError{Msg: fmt.Sprintf("malformed Takumo API key: expected %d lowercase hex characters after the prefix, got %d characters", keyHexLen, len(rest))}
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", &AuthError{Msg: "malformed Takumo API key: only lowercase hex characters may follow the prefix"}
		}
	}
	return mode, nil
}
