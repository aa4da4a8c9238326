// Package keys owns Takumo API keys: their format, the header rules for
// finding one in a request, a key store that holds only SHA-256 hashes, and
// monthly usage metering per organization and key (DESIGN §7).
//
// # Format
//
// A key is "tk_live_" or "tk_test_" followed by 64 lowercase hex characters
// drawn from crypto/rand (72 characters). [Parse] checks that shape and names
// the mistake when it is wrong; its errors never echo the key. The prefix
// says the mode: a gateway serves one mode (TAKUMO_MODE) and refuses a key of
// the other with a message that says test or live.
//
// # Records and states
//
// A [Record] describes a key without holding it: an id ("key_" + random,
// safe to log), the SHA-256 of the key, org, name, scopes, mode, state
// (active, disabled, revoked), created and last-used times. Disabled keys can
// be enabled again; revoked is final. The raw key exists once, in the [Key]
// that [MemStore.Create] returns; Key formats itself redacted.
//
// # How the ext_proc server calls this package
//
// On request headers:
//
//	raw, err := keys.FromHeaders(authorization, xAPIKey) // values joined with ", " when a header repeats
//	if err != nil { /* 401 UNAUTHORIZED, message: keys.ClientMessage(err) */ }
//	rec, err := store.Authenticate(ctx, raw)             // store := keys.NewMemStore(keys.Options{Mode: gatewayMode})
//	switch {
//	case errors.Is(err, keys.ErrUnauthorized): // 401 UNAUTHORIZED, message: keys.ClientMessage(err)
//	case err != nil:                           // 503 SERVICE_UNAVAILABLE (store could not decide: fail closed)
//	}
//	usage, _ := store.Month(rec.Org, time.Now())          // usage.Live goes into policy.Input.Org.Usage
//
// and, once the response is decided, store.Record(ctx, keys.Usage{Org: rec.Org,
// KeyID: rec.ID, Mode: rec.Mode, Requests: 1, Credits: decision.Credits}).
// Every error of [Parse], [FromHeaders] and [MemStore.Authenticate] wraps
// [ErrUnauthorized] and carries a message that is safe to show the client.
package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Mode is live or test traffic.
type Mode string

// The two modes.
const (
	ModeLive Mode = "live"
	ModeTest Mode = "test"
)

// Valid reports whether m is live or test.
func (m Mode) Valid() bool { return m == ModeLive || m == ModeTest }

// Prefix returns the key prefix of the mode ("tk_live_" or "tk_test_").
func (m Mode) Prefix() string { return "tk_" + string(m) + "_" }

// Key prefixes and lengths.
const (
	LivePrefix = "tk_live_"
	TestPrefix = "tk_test_"
	// HexLen is the number of lowercase hex characters after the prefix.
	HexLen = 64
	// Len is the length of a whole key.
	Len = len(LivePrefix) + HexLen
	// displayLen is the length of the display prefix (tk_live_a1b2).
	displayLen = len(LivePrefix) + 4
)

// Key is a raw Takumo API key. It formats itself redacted in every verb and
// in slog; Reveal returns the key, for the one moment it is shown to a user.
type Key struct {
	raw string
}

// Reveal returns the raw key. Call it only to show the key once at creation
// or to send it as a credential.
func (k Key) Reveal() string { return k.raw }

// Mode returns the key's mode, from its prefix.
func (k Key) Mode() Mode {
	if strings.HasPrefix(k.raw, TestPrefix) {
		return ModeTest
	}
	return ModeLive
}

// Hash returns the SHA-256 of the key, the only form a store keeps.
func (k Key) Hash() [sha256.Size]byte { return sha256.Sum256([]byte(k.raw)) }

// IsZero reports whether k holds no key.
func (k Key) IsZero() bool { return k.raw == "" }

// String is redacted: it shows the mode only.
func (k Key) String() string {
	if k.raw == "" {
		return "Key(none)"
	}
	return "Key(" + k.Mode().Prefix() + "…redacted)"
}

// GoString is String.
func (k Key) GoString() string { return k.String() }

// Format makes every fmt verb redacted (%v, %+v, %s, %q, %x …).
func (k Key) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// LogValue is redacted.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalText is redacted, so that encoding/json and friends never write
// the key.
func (k Key) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Generate makes a new key of mode m with 32 bytes from r (crypto/rand when
// r is nil).
func Generate(m Mode, r io.Reader) (Key, error) {
	if !m.Valid() {
		return Key{}, fmt.Errorf("keys: generate: unknown mode %q", m)
	}
	if r == nil {
		r = rand.Reader
	}
	var b [HexLen / 2]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return Key{}, fmt.Errorf("keys: generate: read random: %w", err)
	}
	return Key{raw: m.Prefix() + hex.EncodeToString(b[:])}, nil
}

// Parse checks the shape of a presented key: the tk_live_/tk_test_ prefix
// and exactly 64 lowercase hex characters. The error wraps ErrMalformed and
// its message names the mistake (whitespace, a provider key, wrong length,
// upper case, non-hex); it never contains the key.
func Parse(presented string) (Key, error) {
	if presented == "" {
		return Key{}, authErr(ErrMissing, "missing API key: send Authorization: Bearer tk_… or x-api-key: tk_…")
	}
	if t := strings.TrimRight(presented, " \t\r\n"); t != presented {
		return Key{}, authErr(ErrMalformed, "the API key has trailing whitespace: remove it (often a newline copied with the key)")
	}
	if t := strings.TrimLeft(presented, " \t\r\n"); t != presented {
		return Key{}, authErr(ErrMalformed, "the API key has leading whitespace: remove it")
	}
	var rest string
	switch {
	case strings.HasPrefix(presented, LivePrefix):
		rest = presented[len(LivePrefix):]
	case strings.HasPrefix(presented, TestPrefix):
		rest = presented[len(TestPrefix):]
	case strings.HasPrefix(strings.ToLower(presented), "tk_live_") || strings.HasPrefix(strings.ToLower(presented), "tk_test_"):
		return Key{}, authErr(ErrMalformed, "malformed Takumo API key: the prefix must be lower case (tk_live_ or tk_test_)")
	case strings.HasPrefix(presented, "tk_"):
		return Key{}, authErr(ErrMalformed, "malformed Takumo API key: the prefix must be tk_live_ or tk_test_")
	default:
		return Key{}, authErr(ErrMalformed, "this is not a Takumo API key: Takumo keys start with tk_live_ or tk_test_ "+
			"(put the Takumo key, not the provider key, where the tool asks for an API key)")
	}
	if strings.ContainsAny(rest, " \t,") {
		return Key{}, authErr(ErrMalformed, "more than one value in the API key: send exactly one key")
	}
	if len(rest) != HexLen {
		return Key{}, authErr(ErrMalformed, fmt.Sprintf(
			"malformed Takumo API key: expected %d lowercase hex characters after the prefix, got %d characters", HexLen, len(rest)))
	}
	upper := false
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			upper = true
		default:
			return Key{}, authErr(ErrMalformed, "malformed Takumo API key: only lowercase hex characters (0-9, a-f) may follow the prefix")
		}
	}
	if upper {
		return Key{}, authErr(ErrMalformed, "malformed Takumo API key: the hex characters must be lower case (was the key upper-cased?)")
	}
	return Key{raw: presented}, nil
}

// DisplayPrefix returns the part of a key a dashboard shows (tk_live_a1b2).
func DisplayPrefix(k Key) string {
	if len(k.raw) < displayLen {
		return ""
	}
	return k.raw[:displayLen]
}

// FromHeaders finds the presented key in the Authorization and x-api-key
// header values ("" when a header is absent). A header that was sent more
// than once must be passed joined with ", " (as Envoy and net/http join
// repeated headers); that is refused as two keys. The same key in both
// headers is accepted (some SDKs send both); two different keys are not.
//
// Errors wrap ErrUnauthorized (ErrMissing or ErrMalformed) and carry a
// message naming the mistake (a missing "Bearer ", trailing whitespace, two
// keys) that never echoes the key. FromHeaders only finds the key; Parse (or
// Authenticate, which parses) checks its shape.
func FromHeaders(authorization, xAPIKey string) (string, error) {
	var fromAuth, fromAPIKey string
	if authorization != "" {
		k, err := bearer(authorization)
		if err != nil {
			return "", err
		}
		fromAuth = k
	}
	if xAPIKey != "" {
		if twoValues(xAPIKey) {
			return "", authErr(ErrMalformed, "two API keys in the x-api-key header: send exactly one key")
		}
		fromAPIKey = xAPIKey
	}
	switch {
	case fromAuth != "" && fromAPIKey != "":
		if strings.TrimSpace(fromAuth) != strings.TrimSpace(fromAPIKey) {
			return "", authErr(ErrMalformed, "two different API keys in Authorization and x-api-key: send one")
		}
		return fromAuth, nil
	case fromAuth != "":
		return fromAuth, nil
	case fromAPIKey != "":
		return fromAPIKey, nil
	default:
		return "", authErr(ErrMissing, "missing API key: send Authorization: Bearer tk_… or x-api-key: tk_…")
	}
}

// bearer extracts the credential of an Authorization header value.
func bearer(v string) (string, error) {
	const scheme = "bearer "
	if len(v) >= len(scheme) && strings.EqualFold(v[:len(scheme)], scheme) {
		cred := strings.TrimLeft(v[len(scheme):], " ")
		if cred == "" {
			return "", authErr(ErrMissing, `the Authorization header has "Bearer " but no key after it`)
		}
		if twoValues(cred) || strings.Contains(strings.ToLower(cred), "bearer ") {
			return "", authErr(ErrMalformed, "two API keys in the Authorization header: send exactly one key")
		}
		return cred, nil
	}
	trimmed := strings.TrimSpace(v)
	if strings.HasPrefix(trimmed, "tk_") {
		return "", authErr(ErrMalformed, `the Authorization header is missing "Bearer ": send Authorization: Bearer tk_…`)
	}
	if i := strings.IndexByte(trimmed, ' '); i > 0 {
		return "", authErr(ErrMalformed, "unsupported Authorization scheme "+quoteScheme(trimmed[:i])+": send Authorization: Bearer tk_…")
	}
	return "", authErr(ErrMalformed, `the Authorization header is missing "Bearer ": send Authorization: Bearer tk_…`)
}

// twoValues reports whether a credential holds more than one value: a comma
// (a repeated header joined) or inner whitespace followed by more text.
// Trailing whitespace alone is left for Parse, which names it.
func twoValues(cred string) bool {
	t := strings.TrimRight(cred, " \t\r\n")
	return strings.ContainsAny(t, ", \t")
}

// quoteScheme quotes an Authorization scheme name for a message, only when
// it is a short token (never a credential).
func quoteScheme(s string) string {
	if len(s) > 16 || strings.HasPrefix(s, "tk_") {
		return "(unknown)"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
			return "(unknown)"
		}
	}
	return `"` + s + `"`
}
