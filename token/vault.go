package token

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"

	"github.com/takumo/aegis/detect"
)

// DefaultMaxEntries is the default bound on the values one vault holds
// (TAKUMO_MAX_VAULT_ENTRIES).
const DefaultMaxEntries = 10000

// ErrVaultFull is returned when a new value would exceed the vault's
// MaxEntries. The caller must fail the request: a value that cannot be
// tokenized must never be forwarded.
var ErrVaultFull = errors.New("token: vault full")

// Limits bounds a vault.
type Limits struct {
	// MaxEntries bounds the distinct values held; 0 or less means
	// DefaultMaxEntries.
	MaxEntries int
}

func (l Limits) maxEntries() int {
	if l.MaxEntries <= 0 {
		return DefaultMaxEntries
	}
	return l.MaxEntries
}

// Vault maps tokens to the values they stand for and values to their
// tokens, for one session (or one request). It owns copies of the values,
// zeroes them on Clear, and formats itself as a count only. It is safe for
// concurrent use: the requests of one session share its vault.
type Vault struct {
	// Immutable after NewVault.
	key Key
	max int

	mu      sync.RWMutex
	byToken map[string]*entry   // guarded by mu; canonical token → entry
	byMAC   map[[32]byte]*entry // guarded by mu; full HMAC of (category, value) → entry
}

// entry is one value and its token. value is owned by the vault.
type entry struct {
	token string
	cat   detect.Category
	value []byte
}

// NewVault returns an empty vault that hashes with key. The zero Key is
// refused (ErrZeroKey).
func NewVault(key Key, lim Limits) (*Vault, error) {
	if key.IsZero() {
		return nil, ErrZeroKey
	}
	return &Vault{
		key:     key,
		max:     lim.maxEntries(),
		byToken: make(map[string]*entry),
		byMAC:   make(map[[32]byte]*entry),
	}, nil
}

// mac returns HMAC-SHA256(key, category ‖ 0x00 ‖ value).
func (v *Vault) mac(cat detect.Category, value []byte) [32]byte {
	h := v.key.newMAC()
	h.Write([]byte(cat))
	h.Write([]byte{0})
	h.Write(value)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// Token returns the token for value in category cat, adding the value to
// the vault (as a copy) when it is new. The same (cat, value) always gets
// the same token from one vault; with the same key, from any vault that saw
// the same values in the same order. The hash has 8 hex characters unless
// another value of the vault already holds that token, in which case it
// grows to 16, 32 or 64.
func (v *Vault) Token(cat detect.Category, value []byte) (string, error) {
	if !cat.Valid() {
		return "", fmt.Errorf("token: unknown category %q", cat)
	}
	if len(value) == 0 {
		return "", errors.New("token: empty value")
	}
	sum := v.mac(cat, value)
	v.mu.Lock()
	defer v.mu.Unlock()
	if e := v.byMAC[sum]; e != nil {
		return e.token, nil
	}
	if len(v.byToken) >= v.max {
		return "", fmt.Errorf("%w (%d entries)", ErrVaultFull, v.max)
	}
	var hx [64]byte
	hex.Encode(hx[:], sum[:])
	for _, n := range hashLens {
		tok := prefix + string(cat) + "_" + string(hx[:n]) + suffix
		if _, taken := v.byToken[tok]; taken {
			continue
		}
		e := &entry{token: tok, cat: cat, value: append([]byte(nil), value...)}
		v.byToken[tok] = e
		v.byMAC[sum] = e
		return tok, nil
	}
	// Unreachable: a full 64-hex collision means equal MACs, found above.
	return "", errors.New("token: hash collision")
}

// Value returns a copy of the value token stands for. token must be
// canonical (see Parse).
func (v *Vault) Value(token string) ([]byte, bool) {
	if v == nil {
		return nil, false
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	e := v.byToken[token]
	if e == nil {
		return nil, false
	}
	return append([]byte(nil), e.value...), true
}

// Len returns the number of values held.
func (v *Vault) Len() int {
	if v == nil {
		return 0
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.byToken)
}

// Clear zeroes every value byte (best effort: copies the caller made, or
// that the runtime made of what it was given, are out of reach) and empties
// the vault. The vault stays usable with the same key.
func (v *Vault) Clear() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, e := range v.byToken {
		clear(e.value)
		e.value = nil
	}
	clear(v.byToken)
	clear(v.byMAC)
}

// String reports the number of entries only.
func (v *Vault) String() string {
	return "token.Vault(" + strconv.Itoa(v.Len()) + " entries)"
}

// GoString reports the number of entries only.
func (v *Vault) GoString() string { return v.String() }

// Format prints String for every verb.
func (v *Vault) Format(f fmt.State, _ rune) {
	// Format has no way to return an error; see Key.Format.
	_, _ = io.WriteString(f, v.String())
}

// LogValue logs the number of entries only.
func (v *Vault) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("entries", v.Len()))
}

// MarshalJSON marshals the number of entries only; the session file has its
// own explicit format (WriteSessionFile).
func (v *Vault) MarshalJSON() ([]byte, error) {
	return []byte(`{"entries":` + strconv.Itoa(v.Len()) + `}`), nil
}
