package extproc

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// presentedKey finds the Takumo key in the request headers and checks its
// shape and mode. Every error is an *AuthError whose message names the
// mistake (the commonest support questions: a missing "Bearer ", trailing
// whitespace, a test key on a live gateway), never the key.
//
// Besides Authorization and x-api-key, the places Gemini tools put their
// key are accepted: x-goog-api-key, and the key= query parameter (which
// upstreamPath removes so that it never travels upstream).
func presentedKey(h headers, queryKey string, gatewayMode Mode) (string, error) {
	if h.count("authorization") > 1 || h.count("x-api-key") > 1 || h.count("x-goog-api-key") > 1 {
		return "", &AuthError{Msg: "more than one API key header: send the key once"}
	}
	auth, hasAuth := h.lookup("authorization")
	apiKey, hasAPIKey := h.lookup("x-api-key")
	if !hasAPIKey {
		apiKey, hasAPIKey = h.lookup("x-goog-api-key")
	}
	if !hasAPIKey && queryKey != "" {
		apiKey, hasAPIKey = queryKey, true
	}
	var key string
	switch {
	case hasAuth:
		k, err := bearer(auth)
		if err != nil {
			return "", err
		}
		if hasAPIKey && apiKey != k {
			return "", &AuthError{Msg: "two different API keys in Authorization and x-api-key: send one"}
		}
		key = k
	case hasAPIKey:
		key = apiKey
	default:
		return "", &AuthError{Msg: "missing API key: send Authorization: Bearer tk_… or x-api-key: tk_…"}
	}
	if key == "" {
		return "", &AuthError{Msg: "empty API key"}
	}
	if t := strings.TrimRight(key, " \t\r\n"); t != key {
		return "", &AuthError{Msg: "the API key has trailing whitespace: remove it (often a newline copied with the key)"}
	}
	if t := strings.TrimLeft(key, " \t\r\n"); t != key {
		return "", &AuthError{Msg: "the API key has leading whitespace: remove it"}
	}
	mode, err := parseKeyShape(key)
	if err != nil {
		return "", err
	}
	if mode != gatewayMode {
		return "", &AuthError{Msg: fmt.Sprintf("a %s key (tk_%s_) cannot be used on a %s gateway: use a tk_%s_ key",
			mode, mode, gatewayMode, gatewayMode)}
	}
	return key, nil
}

// bearer extracts the credential of an Authorization header value.
func bearer(v string) (string, error) {
	const prefix = "bearer "
	if len(v) >= len(prefix) && strings.EqualFold(v[:len(prefix)], prefix) {
		return strings.TrimLeft(v[len(prefix):], " "), nil
	}
	trimmed := strings.TrimSpace(v)
	if strings.HasPrefix(trimmed, livePrefix) || strings.HasPrefix(trimmed, testPrefix) {
		return "", &AuthError{Msg: `the Authorization header is missing "Bearer ": send Authorization: Bearer tk_…`}
	}
	if i := strings.IndexByte(trimmed, ' '); i > 0 {
		return "", &AuthError{Msg: "unsupported Authorization scheme: send Authorization: Bearer tk_…"}
	}
	return "", &AuthError{Msg: `the Authorization header is missing "Bearer ": send Authorization: Bearer tk_…`}
}

// authenticate runs presentedKey, the key store and the mode and scope
// checks.
func (s *Server) authenticate(ctx context.Context, h headers, queryKey string) (Identity, error) {
	key, err := presentedKey(h, queryKey, s.cfg.Mode)
	if err != nil {
		return Identity{}, err
	}
	id, err := s.cfg.KeyStore.Authenticate(ctx, key)
	if err != nil {
		var ae *AuthError
		if errors.As(err, &ae) || errors.Is(err, ErrUnknownKey) {
			return Identity{}, err
		}
		return Identity{}, fmt.Errorf("%w: %w", ErrKeyStore, err)
	}
	if id.Mode != "" && id.Mode != s.cfg.Mode {
		return Identity{}, &AuthError{Msg: fmt.Sprintf("a %s key cannot be used on a %s gateway", id.Mode, s.cfg.Mode)}
	}
	if !id.HasScope(ScopeShieldWrite) {
		return Identity{}, ErrForbidden
	}
	return id, nil
}

// queryKey returns the value of the key= query parameter of path, "" if
// none.
func queryKey(path string) string {
	_, q, ok := strings.Cut(path, "?")
	if !ok {
		return ""
	}
	for _, kv := range strings.Split(q, "&") {
		if v, ok := strings.CutPrefix(kv, "key="); ok {
			if u, err := url.QueryUnescape(v); err == nil {
				return u
			}
			return v
		}
	}
	return ""
}

// upstreamPath removes every key= query parameter from path, keeping the
// others as they were.
func upstreamPath(path string) string {
	p, q, ok := strings.Cut(path, "?")
	if !ok {
		return path
	}
	kept := make([]string, 0, 4)
	for _, kv := range strings.Split(q, "&") {
		if kv == "key" || strings.HasPrefix(kv, "key=") {
			continue
		}
		kept = append(kept, kv)
	}
	if len(kept) == 0 {
		return p
	}
	return p + "?" + strings.Join(kept, "&")
}
