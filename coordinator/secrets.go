package coordinator

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Prefixes of the secrets the coordinator issues. Each is followed by 64
// lowercase hex digits (32 bytes from the CSPRNG); the coordinator stores
// their SHA-256 only.
const (
	JoinKeyPrefix    = "jk_"
	CredentialPrefix = "gwc_"
	gatewayIDPrefix  = "gw_"
)

// ErrMalformedSecret means a presented join key or credential does not
// have the shape of one.
var ErrMalformedSecret = errors.New("malformed")

func newSecret(r io.Reader, prefix string) (string, error) {
	var b [32]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return prefix + hex.EncodeToString(b[:]), nil
}

func newID(r io.Reader, prefix string) (string, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return prefix + hex.EncodeToString(b[:]), nil
}

// parseSecret checks that s is prefix + 64 lowercase hex and returns its
// hash. The error names the problem, never the value.
func parseSecret(s, prefix, what string) ([32]byte, error) {
	switch {
	case s == "":
		return [32]byte{}, fmt.Errorf("no %s: %w", what, ErrMalformedSecret)
	case !strings.HasPrefix(s, prefix):
		return [32]byte{}, fmt.Errorf("%s does not start with %q: %w", what, prefix, ErrMalformedSecret)
	case len(s) != len(prefix)+64:
		return [32]byte{}, fmt.Errorf("%s has %d characters, want %d: %w", what, len(s), len(prefix)+64, ErrMalformedSecret)
	}
	for _, c := range s[len(prefix):] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return [32]byte{}, fmt.Errorf("%s is not lowercase hex after %q: %w", what, prefix, ErrMalformedSecret)
		}
	}
	return sha256.Sum256([]byte(s)), nil
}
