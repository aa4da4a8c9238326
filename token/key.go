package token

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math"
)

// KeySize is the length of a session key in bytes.
const KeySize = 32

// MinOrgSecretLen is the shortest organisation token secret DeriveSessionKey
// accepts; a shorter one yields the zero Key, which NewVault refuses.
const MinOrgSecretLen = 16

// redacted is what every formatting of a Key or a value shows.
const redacted = "REDACTED"

// Key is a session key: the HMAC key that turns a value into its token
// hash. It never formats, logs or marshals its bytes; the only ways out are
// the session file and the vault's own hashing. The zero Key is invalid.
type Key struct {
	b [KeySize]byte
}

// NewRandomKey returns a key from crypto/rand.
func NewRandomKey() (Key, error) {
	var k Key
	if _, err := io.ReadFull(rand.Reader, k.b[:]); err != nil {
		return Key{}, fmt.Errorf("token: random key: %w", err)
	}
	return k, nil
}

// KeyFromBytes returns the key held in b, which must be KeySize bytes and
// not all zero. b is copied.
func KeyFromBytes(b []byte) (Key, error) {
	var k Key
	if len(b) != KeySize {
		return Key{}, fmt.Errorf("token: key must be %d bytes, got %d", KeySize, len(b))
	}
	copy(k.b[:], b)
	if k.IsZero() {
		return Key{}, ErrZeroKey
	}
	return k, nil
}

// ErrZeroKey reports an all-zero (unset) key.
var ErrZeroKey = errors.New("token: zero key")

// hkdfSalt separates these keys from any other use of the org secret.
const hkdfSalt = "takumo-aegis token session key v1"

// DeriveSessionKey derives the key of one session of one organisation from
// the organisation's token secret with HKDF-SHA256 (RFC 5869). The salt is
// the constant "takumo-aegis token session key v1"; the info is the 4-byte
// big-endian length of orgID, orgID, the 4-byte big-endian length of
// sessionID and sessionID, so no two (org, session) pairs share an info
// string. Every gateway replica holding the same org secret derives the
// same key, so tokens are the same on all of them.
//
// An orgSecret shorter than MinOrgSecretLen yields the zero Key, which
// NewVault refuses: a weak secret must not quietly produce guessable tokens.
// So does an id of 4 GiB or more, whose length the prefix cannot hold.
func DeriveSessionKey(orgSecret []byte, orgID, sessionID string) Key {
	if len(orgSecret) < MinOrgSecretLen || uint64(len(orgID)) > math.MaxUint32 || uint64(len(sessionID)) > math.MaxUint32 {
		return Key{}
	}
	info := make([]byte, 0, 8+len(orgID)+len(sessionID))
	info = binary.BigEndian.AppendUint32(info, uint32(len(orgID))) //nolint:gosec // G115: lengths over MaxUint32 returned the zero Key above
	info = append(info, orgID...)
	info = binary.BigEndian.AppendUint32(info, uint32(len(sessionID))) //nolint:gosec // G115: lengths over MaxUint32 returned the zero Key above
	info = append(info, sessionID...)
	out, err := hkdf.Key(sha256.New, orgSecret, []byte(hkdfSalt), string(info), KeySize)
	if err != nil {
		// hkdf.Key fails only for lengths over 255 hash sizes.
		panic("token: hkdf: " + err.Error())
	}
	var k Key
	copy(k.b[:], out)
	clear(out)
	return k
}

// IsZero reports whether k is the zero (unset) key.
func (k Key) IsZero() bool {
	var acc byte
	for _, c := range k.b {
		acc |= c
	}
	return acc == 0
}

// newMAC returns an HMAC-SHA256 keyed with k.
func (k Key) newMAC() hash.Hash { return hmac.New(sha256.New, k.b[:]) }

// String returns a redacted placeholder.
func (Key) String() string { return "token.Key(" + redacted + ")" }

// GoString returns a redacted placeholder.
func (k Key) GoString() string { return k.String() }

// Format prints the redacted placeholder for every verb, so %x or %v never
// show the key.
func (k Key) Format(f fmt.State, _ rune) {
	// Format has no way to return an error; fmt's own State never fails a
	// write, and a failing custom State shows up as short output.
	_, _ = io.WriteString(f, k.String())
}

// LogValue logs the key as redacted.
func (Key) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON marshals the key as the string "REDACTED".
func (Key) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText marshals the key as "REDACTED", for encoders that prefer text.
func (Key) MarshalText() ([]byte, error) { return []byte(redacted), nil }
