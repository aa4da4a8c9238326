package extproc

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/takumo/aegis/keys"
)

// presentedKey finds the Takumo key in the request headers (keys.FromHeaders
// for Authorization and x-api-key) and checks its shape (keys.Parse) and
// mode. Every error is a *keys.AuthError whose message names the mistake
// (the commonest support questions: a missing "Bearer ", trailing
// whitespace, a test key on a live gateway), never the key.
//
// Besides Authorization and x-api-key, the places Gemini tools put their
// key are accepted when neither is sent: x-goog-api-key, and the key= query
// parameter (which upstreamPath removes so that it never travels upstream).
func presentedKey(h headers, queryKey string, gatewayMode Mode) (string, error) {
	auth := strings.Join(h.values("authorization"), ", ")
	apiKey := strings.Join(h.values("x-api-key"), ", ")
	if auth == "" && apiKey == "" {
		apiKey = strings.Join(h.values("x-goog-api-key"), ", ")
		if apiKey == "" {
			apiKey = queryKey
		}
	}
	raw, err := keys.FromHeaders(auth, apiKey)
	if err != nil {
		return "", err
	}
	k, err := keys.Parse(raw)
	if err != nil {
		return "", err
	}
	if m := k.Mode(); m != gatewayMode {
		return "", wrongMode(fmt.Sprintf("a %s key (tk_%s_) cannot be used on a %s gateway: use a tk_%s_ key",
			m, m, gatewayMode, gatewayMode))
	}
	return raw, nil
}

// authenticate runs presentedKey and the key store. The scope, plan and
// everything else are the policy's to decide.
func (s *Server) authenticate(ctx context.Context, h headers, queryKey string) (keys.Record, error) {
	raw, err := presentedKey(h, queryKey, s.cfg.Mode)
	if err != nil {
		return keys.Record{}, err
	}
	rec, err := s.cfg.KeyStore.Authenticate(ctx, raw)
	if err != nil {
		if errors.Is(err, keys.ErrUnauthorized) {
			return keys.Record{}, err
		}
		return keys.Record{}, fmt.Errorf("%w: %w", ErrKeyStore, err)
	}
	if rec.Mode != s.cfg.Mode {
		return keys.Record{}, wrongMode(fmt.Sprintf("a %s key cannot be used on a %s gateway", rec.Mode, s.cfg.Mode))
	}
	return rec, nil
}

// wrongMode is a key of the other mode: keys.ErrWrongMode (so
// keys.ErrUnauthorized, 401) with msg for the client.
func wrongMode(msg string) error {
	return fmt.Errorf("%w: %w", keys.ErrWrongMode, &keys.AuthError{Msg: msg})
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
