package keys

import (
	"errors"
	"fmt"
)

// ErrUnauthorized is wrapped by every refusal of a presented key (401).
var ErrUnauthorized = errors.New("keys: unauthorized")

// Reasons a presented key is refused. Each wraps ErrUnauthorized.
var (
	ErrMissing   = fmt.Errorf("%w: missing key", ErrUnauthorized)
	ErrMalformed = fmt.Errorf("%w: malformed key", ErrUnauthorized)
	ErrUnknown   = fmt.Errorf("%w: unknown key", ErrUnauthorized)
	ErrDisabled  = fmt.Errorf("%w: disabled key", ErrUnauthorized)
	ErrRevoked   = fmt.Errorf("%w: revoked key", ErrUnauthorized)
	ErrWrongMode = fmt.Errorf("%w: key of the other mode", ErrUnauthorized)
)

// Errors of the management operations (not of Authenticate).
var (
	// ErrNotFound: no key with that id.
	ErrNotFound = errors.New("keys: no such key")
	// ErrRevokedFinal: a revoked key cannot be enabled or disabled again.
	ErrRevokedFinal = errors.New("keys: the key is revoked; revocation is final")
	// ErrInvalid: a request to create or put a key is invalid.
	ErrInvalid = errors.New("keys: invalid key request")
)

// AuthError is a refused key. Msg is safe to show the client: it names the
// mistake and never contains the key.
type AuthError struct {
	Msg    string
	reason error
}

func authErr(reason error, msg string) *AuthError { return &AuthError{Msg: msg, reason: reason} }

func (e *AuthError) Error() string { return "keys: unauthorized: " + e.Msg }

// Unwrap returns the reason (ErrMissing, ErrMalformed, ErrUnknown,
// ErrDisabled, ErrRevoked or ErrWrongMode), each of which wraps
// ErrUnauthorized.
func (e *AuthError) Unwrap() error { return e.reason }

// ClientMessage returns the client-safe message of a refusal, or a generic
// one for any other error.
func ClientMessage(err error) string {
	var ae *AuthError
	if errors.As(err, &ae) {
		return ae.Msg
	}
	return "invalid API key"
}
