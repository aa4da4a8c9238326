package coordinator

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/takumo/aegis/coordinator/store"
	"github.com/takumo/aegis/keys"
)

// The admin HTTP API (default :8081): API keys, join keys, orgs, the
// policy, the fleet, audit events and usage, as JSON, behind a bearer
// admin token. The CLI's admin commands are its client. Errors use the
// gateway's shape: {"error": {"code", "message", "request_id"}}.
//
//	POST /v1/keys                      {org, name, scopes, mode} → 201 key with "key" (shown once)
//	GET  /v1/keys[?org=]
//	POST /v1/keys/{id}/disable|enable|revoke
//	POST /v1/join-keys                 {name, environment, org} → 201 with "join_key" (shown once)
//	GET  /v1/join-keys
//	POST /v1/join-keys/{id}/revoke
//	GET  /v1/orgs; PUT /v1/orgs/{id} {plan, seats}; DELETE /v1/orgs/{id}
//	GET  /v1/policies; PUT /v1/policies {revision, data, bundle (base64)}
//	GET  /v1/fleet
//	GET  /v1/audit[?after=&org=&limit=]
//	GET  /v1/usage[?org=&month=YYYY-MM]
//	GET  /healthz, /readyz (no token)

// AdminTokenFile is the file in the data directory that holds the admin
// token generated at first start (mode 0600).
const AdminTokenFile = "admin.token"

// AdminToken returns the admin token: env when set (TAKUMO_ADMIN_TOKEN),
// else the one in dataDir/admin.token, generated with mode 0600 at first
// use (r is the random source; nil means crypto/rand). created says
// whether it was just generated.
func AdminToken(env, dataDir string, r io.Reader) (token string, created bool, err error) {
	if env != "" {
		if len(env) < 16 {
			return "", false, errors.New("coordinator: TAKUMO_ADMIN_TOKEN is shorter than 16 characters")
		}
		return env, false, nil
	}
	path := filepath.Join(dataDir, AdminTokenFile)
	if b, err := os.ReadFile(path); err == nil {
		fi, err := os.Stat(path)
		if err != nil {
			return "", false, fmt.Errorf("coordinator: admin token: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return "", false, fmt.Errorf("coordinator: admin token file %s has mode %v; want 0600 (chmod 600 it)", path, fi.Mode().Perm())
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", false, fmt.Errorf("coordinator: admin token file %s is empty", path)
		}
		return t, false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("coordinator: admin token: %w", err)
	}
	if r == nil {
		r = rand.Reader
	}
	t, err := newSecret(r, "tka_")
	if err != nil {
		return "", false, fmt.Errorf("coordinator: admin token: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", false, fmt.Errorf("coordinator: admin token: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("coordinator: admin token: %w", err)
	}
	if _, err := f.WriteString(t + "\n"); err != nil {
		_ = f.Close()
		return "", false, fmt.Errorf("coordinator: admin token: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", false, fmt.Errorf("coordinator: admin token: %w", err)
	}
	return t, true, nil
}

// Admin is the admin HTTP API of a Server.
type Admin struct {
	srv   *Server
	token [32]byte // SHA-256 of the admin token
	log   *slog.Logger
	// StaleAfter and DisconnectedAfter classify gateways in /v1/fleet
	// (defaults 120 s and 10 min without a health report).
	StaleAfter, DisconnectedAfter time.Duration
}

// NewAdmin returns the admin API of srv guarded by token.
func NewAdmin(srv *Server, token string) *Admin {
	return &Admin{srv: srv, token: sha256.Sum256([]byte(token)), log: srv.log,
		StaleAfter: 120 * time.Second, DisconnectedAfter: 10 * time.Minute}
}

// maxAdminBody bounds request bodies (a policy bundle is the largest).
const maxAdminBody = 32 << 20

// Handler returns the API's routes.
func (a *Admin) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	api := http.NewServeMux()
	api.HandleFunc("POST /v1/keys", a.createKey)
	api.HandleFunc("GET /v1/keys", a.listKeys)
	api.HandleFunc("POST /v1/keys/{id}/{action}", a.keyAction)
	api.HandleFunc("POST /v1/join-keys", a.createJoinKey)
	api.HandleFunc("GET /v1/join-keys", a.listJoinKeys)
	api.HandleFunc("POST /v1/join-keys/{id}/revoke", a.revokeJoinKey)
	api.HandleFunc("GET /v1/orgs", a.listOrgs)
	api.HandleFunc("PUT /v1/orgs/{id}", a.putOrg)
	api.HandleFunc("DELETE /v1/orgs/{id}", a.deleteOrg)
	api.HandleFunc("GET /v1/policies", a.getPolicy)
	api.HandleFunc("PUT /v1/policies", a.setPolicy)
	api.HandleFunc("GET /v1/fleet", a.fleet)
	api.HandleFunc("GET /v1/audit", a.audit)
	api.HandleFunc("GET /v1/usage", a.usage)
	mux.Handle("/v1/", a.auth(api))
	return mux
}

func (a *Admin) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		got := sha256.Sum256([]byte(raw))
		if !ok || subtle.ConstantTimeCompare(got[:], a.token[:]) != 1 {
			apiError(w, http.StatusUnauthorized, "UNAUTHORIZED", "missing or wrong admin token (Authorization: Bearer <token>; see "+AdminTokenFile+" in the coordinator's data directory)")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxAdminBody)
		next.ServeHTTP(w, r)
	})
}

func (a *Admin) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.srv.store.Ping(ctx); err != nil {
		a.log.Warn("coordinator: not ready", "err", err)
		apiError(w, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "database unreachable")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// ---------------------------------------------------------------- keys

// KeyJSON is an API key as the admin API shows it (Key only at creation).
type KeyJSON struct {
	ID        string    `json:"id"`
	Key       string    `json:"key,omitempty"`
	Org       string    `json:"org"`
	Name      string    `json:"name"`
	Mode      string    `json:"mode"`
	Scopes    []string  `json:"scopes"`
	State     string    `json:"state"`
	CreatedAt time.Time `json:"created_at"`
}

func keyJSON(k store.APIKey) KeyJSON {
	return KeyJSON{ID: k.ID, Org: k.Org, Name: k.Name, Mode: k.Mode, Scopes: k.Scopes, State: k.State, CreatedAt: k.CreatedAt}
}

func (a *Admin) createKey(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Org    string   `json:"org"`
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
		Mode   string   `json:"mode"`
	}
	if !decode(w, r, &req) {
		return
	}
	switch {
	case req.Org == "":
		apiError(w, http.StatusBadRequest, "BAD_REQUEST", "org is required")
		return
	case !keys.Mode(req.Mode).Valid():
		apiError(w, http.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf("mode %q: want live or test", req.Mode))
		return
	case len(req.Scopes) == 0:
		apiError(w, http.StatusBadRequest, "BAD_REQUEST", "at least one scope is required (e.g. shield:write)")
		return
	}
	for _, s := range req.Scopes {
		if !keys.KnownScope(s) {
			apiError(w, http.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf("unknown scope %q (known: %s)", s, strings.Join(keys.Scopes(), ", ")))
			return
		}
	}
	k, err := keys.Generate(keys.Mode(req.Mode), a.srv.opt.Rand)
	if err != nil {
		a.internal(w, "create key", err)
		return
	}
	id, err := newID(a.srv.opt.Rand, "key_")
	if err != nil {
		a.internal(w, "create key", err)
		return
	}
	rec := store.APIKey{ID: id, Hash: k.Hash(), Org: req.Org, Name: req.Name, Mode: req.Mode, Scopes: req.Scopes,
		State: store.StateActive, CreatedAt: a.srv.opt.Now().UTC()}
	v, err := a.srv.store.CreateKey(r.Context(), rec)
	if err != nil {
		a.internal(w, "create key", err)
		return
	}
	a.srv.Changed(v)
	out := keyJSON(rec)
	out.Key = k.Reveal()
	a.log.Info("coordinator: key created", "key_id", id, "org", req.Org, "mode", req.Mode)
	writeJSON(w, http.StatusCreated, out)
}

func (a *Admin) listKeys(w http.ResponseWriter, r *http.Request) {
	ks, err := a.srv.store.ListKeys(r.Context(), r.URL.Query().Get("org"))
	if err != nil {
		a.internal(w, "list keys", err)
		return
	}
	out := make([]KeyJSON, 0, len(ks))
	for _, k := range ks {
		out = append(out, keyJSON(k))
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": out})
}

func (a *Admin) keyAction(w http.ResponseWriter, r *http.Request) {
	state, ok := map[string]string{"disable": store.StateDisabled, "enable": store.StateActive, "revoke": store.StateRevoked}[r.PathValue("action")]
	if !ok {
		apiError(w, http.StatusNotFound, "NOT_FOUND", "no such action; want disable, enable or revoke")
		return
	}
	id := r.PathValue("id")
	v, err := a.srv.store.SetKeyState(r.Context(), id, state)
	switch {
	case errors.Is(err, store.ErrNotFound):
		apiError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("no key %q", id))
		return
	case errors.Is(err, store.ErrRevoked):
		apiError(w, http.StatusConflict, "CONFLICT", fmt.Sprintf("key %q is revoked; revocation is final", id))
		return
	case err != nil:
		a.internal(w, "key "+r.PathValue("action"), err)
		return
	}
	a.srv.Changed(v)
	k, err := a.srv.store.Key(r.Context(), id)
	if err != nil {
		a.internal(w, "key "+r.PathValue("action"), err)
		return
	}
	a.log.Info("coordinator: key state", "key_id", id, "state", state)
	writeJSON(w, http.StatusOK, keyJSON(k))
}

// ---------------------------------------------------------------- join keys

// JoinKeyJSON is a join key as the admin API shows it (JoinKey only at
// creation).
type JoinKeyJSON struct {
	ID          string     `json:"id"`
	JoinKey     string     `json:"join_key,omitempty"`
	Name        string     `json:"name"`
	Environment string     `json:"environment"`
	Org         string     `json:"org,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

func joinKeyJSON(j store.JoinKey) JoinKeyJSON {
	out := JoinKeyJSON{ID: j.ID, Name: j.Name, Environment: j.Environment, Org: j.Org, CreatedAt: j.CreatedAt}
	if j.Revoked() {
		t := j.RevokedAt
		out.RevokedAt = &t
	}
	return out
}

func (a *Admin) createJoinKey(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name        string `json:"name"`
		Environment string `json:"environment"`
		Org         string `json:"org"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.Name == "" {
		apiError(w, http.StatusBadRequest, "BAD_REQUEST", "name is required")
		return
	}
	raw, jk, err := a.srv.CreateJoinKey(r.Context(), req.Name, req.Environment, req.Org)
	if err != nil {
		a.internal(w, "create join key", err)
		return
	}
	out := joinKeyJSON(jk)
	out.JoinKey = raw
	a.log.Info("coordinator: join key created", "join_key_id", jk.ID, "name", jk.Name)
	writeJSON(w, http.StatusCreated, out)
}

func (a *Admin) listJoinKeys(w http.ResponseWriter, r *http.Request) {
	jks, err := a.srv.store.ListJoinKeys(r.Context())
	if err != nil {
		a.internal(w, "list join keys", err)
		return
	}
	out := make([]JoinKeyJSON, 0, len(jks))
	for _, j := range jks {
		out = append(out, joinKeyJSON(j))
	}
	writeJSON(w, http.StatusOK, map[string]any{"join_keys": out})
}

func (a *Admin) revokeJoinKey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := a.srv.RevokeJoinKey(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		apiError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("no join key %q", id))
		return
	}
	if err != nil {
		a.internal(w, "revoke join key", err)
		return
	}
	jk, err := a.srv.store.JoinKey(r.Context(), id)
	if err != nil {
		a.internal(w, "revoke join key", err)
		return
	}
	a.log.Info("coordinator: join key revoked", "join_key_id", id)
	writeJSON(w, http.StatusOK, joinKeyJSON(jk))
}

// ---------------------------------------------------------------- orgs, policy

func (a *Admin) listOrgs(w http.ResponseWriter, r *http.Request) {
	orgs, err := a.srv.store.ListOrgs(r.Context())
	if err != nil {
		a.internal(w, "list orgs", err)
		return
	}
	type orgJSON struct {
		ID    string `json:"id"`
		Plan  string `json:"plan"`
		Seats int    `json:"seats"`
	}
	out := make([]orgJSON, 0, len(orgs))
	for _, o := range orgs {
		out = append(out, orgJSON{o.ID, o.Plan, o.Seats})
	}
	writeJSON(w, http.StatusOK, map[string]any{"orgs": out})
}

func (a *Admin) putOrg(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Plan  string `json:"plan"`
		Seats int    `json:"seats"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.Plan == "" || req.Seats < 0 {
		apiError(w, http.StatusBadRequest, "BAD_REQUEST", "plan is required and seats must not be negative")
		return
	}
	if req.Seats == 0 {
		req.Seats = 1
	}
	v, err := a.srv.store.PutOrg(r.Context(), store.Org{ID: r.PathValue("id"), Plan: req.Plan, Seats: req.Seats})
	if err != nil {
		a.internal(w, "put org", err)
		return
	}
	a.srv.Changed(v)
	writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("id"), "plan": req.Plan, "seats": req.Seats})
}

func (a *Admin) deleteOrg(w http.ResponseWriter, r *http.Request) {
	v, err := a.srv.store.DeleteOrg(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		apiError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("no org %q", r.PathValue("id")))
		return
	}
	if err != nil {
		a.internal(w, "delete org", err)
		return
	}
	a.srv.Changed(v)
	w.WriteHeader(http.StatusNoContent)
}

// PolicyJSON is the policy as the admin API carries it.
type PolicyJSON struct {
	Revision     string          `json:"revision"`
	Data         json.RawMessage `json:"data,omitempty"`
	Bundle       []byte          `json:"bundle,omitempty"` // base64 in JSON
	BundleSHA256 string          `json:"bundle_sha256,omitempty"`
	Version      uint64          `json:"version,omitempty"`
}

func (a *Admin) getPolicy(w http.ResponseWriter, r *http.Request) {
	p, ok, err := a.srv.store.Policy(r.Context())
	if err != nil {
		a.internal(w, "get policy", err)
		return
	}
	if !ok {
		writeJSON(w, http.StatusOK, PolicyJSON{Revision: "embedded"})
		return
	}
	out := PolicyJSON{Revision: p.Revision, Version: p.Version}
	if len(p.DataJSON) > 0 {
		out.Data = p.DataJSON
	}
	if len(p.Bundle) > 0 {
		sum := sha256.Sum256(p.Bundle)
		out.BundleSHA256 = hex.EncodeToString(sum[:])
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *Admin) setPolicy(w http.ResponseWriter, r *http.Request) {
	var req PolicyJSON
	if !decode(w, r, &req) {
		return
	}
	if req.Revision == "" {
		apiError(w, http.StatusBadRequest, "BAD_REQUEST", "revision is required")
		return
	}
	if len(req.Data) > 0 {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(req.Data, &obj); err != nil {
			apiError(w, http.StatusBadRequest, "BAD_REQUEST", "data must be a JSON object: "+err.Error())
			return
		}
	}
	if len(req.Bundle) > 0 && !bytes.HasPrefix(req.Bundle, []byte{0x1f, 0x8b}) {
		apiError(w, http.StatusBadRequest, "BAD_REQUEST", "bundle must be an OPA bundle (.tar.gz)")
		return
	}
	v, err := a.srv.store.SetPolicy(r.Context(), store.Policy{Revision: req.Revision, DataJSON: req.Data, Bundle: req.Bundle})
	if err != nil {
		a.internal(w, "set policy", err)
		return
	}
	a.srv.Changed(v)
	a.log.Info("coordinator: policy set", "revision", req.Revision, "version", v)
	writeJSON(w, http.StatusOK, PolicyJSON{Revision: req.Revision, Version: v})
}

// ---------------------------------------------------------------- fleet, audit, usage

// GatewayJSON is a gateway as /v1/fleet shows it. Status is healthy,
// stale (no health report for StaleAfter) or disconnected (none for
// DisconnectedAfter).
type GatewayJSON struct {
	ID              string    `json:"id"`
	Name            string    `json:"name"`
	Version         string    `json:"version"`
	Mode            string    `json:"mode"`
	Org             string    `json:"org,omitempty"`
	JoinKeyID       string    `json:"join_key_id"`
	Status          string    `json:"status"`
	RegisteredAt    time.Time `json:"registered_at"`
	LastSeen        time.Time `json:"last_seen"`
	SnapshotVersion uint64    `json:"snapshot_version"`
	ActiveSessions  int64     `json:"active_sessions"`
	MemoryBytes     int64     `json:"memory_bytes"`
	SkewMS          int64     `json:"clock_skew_ms"`
}

func (a *Admin) fleet(w http.ResponseWriter, r *http.Request) {
	gws, err := a.srv.store.ListGateways(r.Context())
	if err != nil {
		a.internal(w, "fleet", err)
		return
	}
	now := a.srv.opt.Now()
	out := make([]GatewayJSON, 0, len(gws))
	for _, g := range gws {
		st := "healthy"
		switch age := now.Sub(g.LastSeen); {
		case age > a.DisconnectedAfter:
			st = "disconnected"
		case age > a.StaleAfter:
			st = "stale"
		}
		out = append(out, GatewayJSON{ID: g.ID, Name: g.Name, Version: g.Version, Mode: g.Mode, Org: g.Org, JoinKeyID: g.JoinKeyID,
			Status: st, RegisteredAt: g.RegisteredAt, LastSeen: g.LastSeen, SnapshotVersion: g.SnapshotVersion,
			ActiveSessions: g.ActiveSessions, MemoryBytes: g.MemoryBytes, SkewMS: g.Skew.Milliseconds()})
	}
	latest, _ := a.srv.store.Version(r.Context())
	writeJSON(w, http.StatusOK, map[string]any{"latest_version": latest, "gateways": out})
}

func (a *Admin) audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var aq store.AuditQuery
	var err error
	if s := q.Get("after"); s != "" {
		if aq.AfterID, err = strconv.ParseInt(s, 10, 64); err != nil {
			apiError(w, http.StatusBadRequest, "BAD_REQUEST", "after must be an event id")
			return
		}
	}
	if s := q.Get("limit"); s != "" {
		if aq.Limit, err = strconv.Atoi(s); err != nil || aq.Limit < 0 {
			apiError(w, http.StatusBadRequest, "BAD_REQUEST", "limit must be a positive number")
			return
		}
	}
	aq.Org = q.Get("org")
	evs, err := a.srv.store.Audit(r.Context(), aq)
	if err != nil {
		a.internal(w, "audit", err)
		return
	}
	out := make([]AuditJSON, 0, len(evs))
	next := aq.AfterID
	for _, e := range evs {
		dets := make([]DetectionJSON, 0, len(e.Detections))
		for _, d := range e.Detections {
			dets = append(dets, DetectionJSON(d))
		}
		out = append(out, AuditJSON{ID: e.ID, GatewayID: e.GatewayID, Seq: e.Seq, RequestID: e.RequestID, Time: e.Time,
			Org: e.Org, KeyID: e.KeyID, Provider: e.Provider, Model: e.Model, Mode: e.Mode, Status: e.Status, Code: e.Code,
			DurationUS: e.Duration.Microseconds(), Detections: dets})
		next = e.ID
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out, "next_after": next})
}

// AuditJSON is an audit event as /v1/audit shows it: metadata only.
type AuditJSON struct {
	ID         int64           `json:"id"`
	GatewayID  string          `json:"gateway_id"`
	Seq        uint64          `json:"seq"`
	RequestID  string          `json:"request_id"`
	Time       time.Time       `json:"time"`
	Org        string          `json:"org"`
	KeyID      string          `json:"key_id"`
	Provider   string          `json:"provider"`
	Model      string          `json:"model"`
	Mode       string          `json:"mode"`
	Status     int             `json:"status"`
	Code       string          `json:"code,omitempty"`
	DurationUS int64           `json:"duration_us"`
	Detections []DetectionJSON `json:"detections"`
}

// DetectionJSON is one detection of an audit event: never a value.
type DetectionJSON struct {
	Rule     string `json:"rule"`
	Category string `json:"category"`
	Action   string `json:"action"`
	Line     int    `json:"line"`
}

// UsageJSON is one row of /v1/usage.
type UsageJSON struct {
	Org      string `json:"org"`
	KeyID    string `json:"key_id"`
	Month    string `json:"month"`
	Mode     string `json:"mode"`
	Requests int64  `json:"requests"`
	Credits  int64  `json:"credits"`
}

func (a *Admin) usage(w http.ResponseWriter, r *http.Request) {
	at := a.srv.opt.Now()
	if m := r.URL.Query().Get("month"); m != "" {
		t, err := time.Parse("2006-01", m)
		if err != nil {
			apiError(w, http.StatusBadRequest, "BAD_REQUEST", "month must look like 2026-11")
			return
		}
		at = t
	}
	rows, err := a.srv.store.Usage(r.Context(), r.URL.Query().Get("org"), at)
	if err != nil {
		a.internal(w, "usage", err)
		return
	}
	out := make([]UsageJSON, 0, len(rows))
	for _, u := range rows {
		out = append(out, UsageJSON(u))
	}
	writeJSON(w, http.StatusOK, map[string]any{"month": at.UTC().Format("2006-01"), "usage": out})
}

// ---------------------------------------------------------------- plumbing

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			apiError(w, http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", fmt.Sprintf("body over %d bytes", mbe.Limit))
			return false
		}
		apiError(w, http.StatusBadRequest, "BAD_REQUEST", "malformed JSON body: "+err.Error())
		return false
	}
	if dec.More() {
		apiError(w, http.StatusBadRequest, "BAD_REQUEST", "malformed JSON body: more than one value")
		return false
	}
	return true
}

func (a *Admin) internal(w http.ResponseWriter, op string, err error) {
	a.log.Error("coordinator: admin "+op, "err", err)
	apiError(w, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "storage unavailable ("+op+")")
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
