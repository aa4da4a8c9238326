package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	coordv1 "github.com/takumo/aegis/api/takumo/coordinator/v1"
	"github.com/takumo/aegis/keys"
)

const adminTok = "tka_test_admin_token_0123456789"

type adminRig struct {
	*rig
	http *httptest.Server
}

func newAdminRig(t *testing.T, mod func(*Options)) *adminRig {
	r := newRig(t, mod)
	h := httptest.NewServer(NewAdmin(r.srv, adminTok).Handler())
	t.Cleanup(h.Close)
	return &adminRig{rig: r, http: h}
}

// do sends a request with the admin token and decodes the JSON answer
// into out (when not nil).
func (a *adminRig) do(t *testing.T, method, path, body string, wantStatus int, out any) string {
	t.Helper()
	return a.doTok(t, adminTok, method, path, body, wantStatus, out)
}

func (a *adminRig) doTok(t *testing.T, tok, method, path, body string, wantStatus int, out any) string {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, a.http.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, wantStatus, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return string(b)
}

func TestAdminAuth(t *testing.T) {
	a := newAdminRig(t, nil)
	for _, tok := range []string{"", "wrong", adminTok + "x"} {
		body := a.doTok(t, tok, "GET", "/v1/keys", "", http.StatusUnauthorized, nil)
		if !strings.Contains(body, `"UNAUTHORIZED"`) {
			t.Fatalf("body %s", body)
		}
	}
	a.doTok(t, "", "GET", "/healthz", "", http.StatusOK, nil)
	a.doTok(t, "", "GET", "/readyz", "", http.StatusOK, nil)
}

func TestAdminKeys(t *testing.T) {
	a := newAdminRig(t, nil)
	for _, tc := range []struct{ body, msg string }{
		{`{"org":"","name":"x","scopes":["shield:write"],"mode":"live"}`, "org is required"},
		{`{"org":"o","name":"x","scopes":["shield:write"],"mode":"prod"}`, `mode \"prod\"`},
		{`{"org":"o","name":"x","scopes":["shield:wrte"],"mode":"live"}`, `unknown scope \"shield:wrte\"`},
		{`{"org":"o","name":"x","scopes":[],"mode":"live"}`, "at least one scope"},
		{`{"org":"o","nam":"x"}`, "unknown field"},
		{`{"org":`, "malformed JSON"},
		{`{"org":"o","name":"x","scopes":["shield:write"],"mode":"live"} {}`, "more than one value"},
	} {
		body := a.do(t, "POST", "/v1/keys", tc.body, http.StatusBadRequest, nil)
		if !strings.Contains(body, tc.msg) {
			t.Errorf("%s: %s, want %q", tc.body, body, tc.msg)
		}
	}
	var k KeyJSON
	a.do(t, "POST", "/v1/keys", `{"org":"org_a","name":"ci","scopes":["shield:write"],"mode":"test"}`, http.StatusCreated, &k)
	if _, err := keys.Parse(k.Key); err != nil || !strings.HasPrefix(k.Key, "tk_test_") || k.State != "active" {
		t.Fatalf("created: %+v %v", k, err)
	}
	// The raw key is shown once: never in a listing, never stored.
	list := a.do(t, "GET", "/v1/keys?org=org_a", "", http.StatusOK, nil)
	if strings.Contains(list, k.Key) || !strings.Contains(list, k.ID) {
		t.Fatalf("listing: %s", list)
	}
	var got KeyJSON
	a.do(t, "POST", "/v1/keys/"+k.ID+"/disable", "", http.StatusOK, &got)
	if got.State != "disabled" {
		t.Fatalf("disable: %+v", got)
	}
	a.do(t, "POST", "/v1/keys/"+k.ID+"/enable", "", http.StatusOK, &got)
	a.do(t, "POST", "/v1/keys/"+k.ID+"/revoke", "", http.StatusOK, &got)
	if got.State != "revoked" {
		t.Fatalf("revoke: %+v", got)
	}
	if body := a.do(t, "POST", "/v1/keys/"+k.ID+"/enable", "", http.StatusConflict, nil); !strings.Contains(body, "revocation is final") {
		t.Fatalf("re-enable: %s", body)
	}
	a.do(t, "POST", "/v1/keys/key_nope/disable", "", http.StatusNotFound, nil)
	a.do(t, "POST", "/v1/keys/"+k.ID+"/pause", "", http.StatusNotFound, nil)
}

// A key change through the admin API reaches a connected gateway's Sync
// stream as a delta.
func TestAdminChangeReachesSync(t *testing.T) {
	a := newAdminRig(t, func(o *Options) { o.Poll = time.Hour }) // only Changed can wake the stream
	var jk JoinKeyJSON
	a.do(t, "POST", "/v1/join-keys", `{"name":"edge","environment":"prod"}`, http.StatusCreated, &jk)
	gctx, _ := a.register(t, jk.JoinKey)
	s, err := a.client.Sync(gctx, &coordv1.SyncRequest{})
	if err != nil {
		t.Fatal(err)
	}
	recvSnapshot(t, s)
	var k KeyJSON
	a.do(t, "POST", "/v1/keys", `{"org":"org_a","name":"ci","scopes":["shield:write"],"mode":"live"}`, http.StatusCreated, &k)
	start := time.Now()
	a.do(t, "POST", "/v1/keys/"+k.ID+"/revoke", "", http.StatusOK, nil)
	for {
		sn := recvSnapshot(t, s)
		if len(sn.GetKeys()) == 1 && sn.GetKeys()[0].GetState() == "revoked" {
			break
		}
	}
	t.Logf("revocation reached the stream in %v", time.Since(start).Round(time.Millisecond))
}

func TestAdminJoinKeysOrgsPolicy(t *testing.T) {
	a := newAdminRig(t, nil)
	var jk JoinKeyJSON
	a.do(t, "POST", "/v1/join-keys", `{"name":"edge","environment":"prod","org":"org_a"}`, http.StatusCreated, &jk)
	if !strings.HasPrefix(jk.JoinKey, JoinKeyPrefix) || jk.RevokedAt != nil {
		t.Fatalf("join key: %+v", jk)
	}
	a.do(t, "POST", "/v1/join-keys", `{"environment":"prod"}`, http.StatusBadRequest, nil)
	if list := a.do(t, "GET", "/v1/join-keys", "", http.StatusOK, nil); strings.Contains(list, jk.JoinKey) {
		t.Fatal("the raw join key is in the listing")
	}
	a.do(t, "POST", "/v1/join-keys/"+jk.ID+"/revoke", "", http.StatusOK, &jk)
	if jk.RevokedAt == nil {
		t.Fatal("not revoked")
	}
	a.do(t, "POST", "/v1/join-keys/nope/revoke", "", http.StatusNotFound, nil)

	a.do(t, "PUT", "/v1/orgs/org_a", `{"plan":"pro","seats":3}`, http.StatusOK, nil)
	a.do(t, "PUT", "/v1/orgs/org_a", `{"seats":3}`, http.StatusBadRequest, nil)
	if body := a.do(t, "GET", "/v1/orgs", "", http.StatusOK, nil); !strings.Contains(body, `"plan": "pro"`) {
		t.Fatalf("orgs: %s", body)
	}
	a.do(t, "DELETE", "/v1/orgs/org_a", "", http.StatusNoContent, nil)
	a.do(t, "DELETE", "/v1/orgs/org_a", "", http.StatusNotFound, nil)

	var p PolicyJSON
	a.do(t, "GET", "/v1/policies", "", http.StatusOK, &p)
	if p.Revision != "embedded" {
		t.Fatalf("no policy yet: %+v", p)
	}
	a.do(t, "PUT", "/v1/policies", `{"revision":"r2","data":[1,2]}`, http.StatusBadRequest, nil)
	a.do(t, "PUT", "/v1/policies", `{"revision":"r2","bundle":"bm90IGd6aXA="}`, http.StatusBadRequest, nil)
	a.do(t, "PUT", "/v1/policies", `{"data":{}}`, http.StatusBadRequest, nil)
	a.do(t, "PUT", "/v1/policies", `{"revision":"r2","data":{"orgs":{"org_a":{"plan":"pro"}}}}`, http.StatusOK, nil)
	a.do(t, "GET", "/v1/policies", "", http.StatusOK, &p)
	if p.Revision != "r2" || !bytes.Contains(p.Data, []byte("org_a")) {
		t.Fatalf("policy: %+v", p)
	}
	// A body over the limit.
	big := `{"revision":"r3","data":{"x":"` + strings.Repeat("a", maxAdminBody) + `"}}`
	a.do(t, "PUT", "/v1/policies", big, http.StatusRequestEntityTooLarge, nil)
}

func TestAdminFleetAuditUsage(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	clock := now
	a := newAdminRig(t, func(o *Options) { o.Now = func() time.Time { return clock } })
	var jk JoinKeyJSON
	a.do(t, "POST", "/v1/join-keys", `{"name":"edge"}`, http.StatusCreated, &jk)
	gctx, reg := a.register(t, jk.JoinKey)
	if _, err := a.client.ReportHealth(gctx, &coordv1.ReportHealthRequest{Version: "v9"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		after time.Duration
		want  string
	}{{time.Minute, "healthy"}, {3 * time.Minute, "stale"}, {time.Hour, "disconnected"}} {
		clock = now.Add(tc.after)
		var fleet struct {
			Gateways []GatewayJSON `json:"gateways"`
		}
		a.do(t, "GET", "/v1/fleet", "", http.StatusOK, &fleet)
		if len(fleet.Gateways) != 1 || fleet.Gateways[0].Status != tc.want || fleet.Gateways[0].ID != reg.GetGatewayId() {
			t.Fatalf("after %v: %+v, want %s", tc.after, fleet, tc.want)
		}
	}
	s, err := a.client.ShipAudit(gctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(auditBatch(1, 5)); err != nil {
		t.Fatal(err)
	}
	_ = s.CloseSend()
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	var page struct {
		Events    []AuditJSON `json:"events"`
		NextAfter int64       `json:"next_after"`
	}
	a.do(t, "GET", "/v1/audit?limit=3", "", http.StatusOK, &page)
	if len(page.Events) != 3 || page.Events[0].Detections[0].Rule != "github-pat" || page.Events[0].DurationUS != 900 {
		t.Fatalf("audit page: %+v", page)
	}
	a.do(t, "GET", "/v1/audit?after="+itoa(page.NextAfter), "", http.StatusOK, &page)
	if len(page.Events) != 2 {
		t.Fatalf("second page: %+v", page)
	}
	a.do(t, "GET", "/v1/audit?after=x", "", http.StatusBadRequest, nil)
	a.do(t, "GET", "/v1/usage?month=2026-13", "", http.StatusBadRequest, nil)
	if body := a.do(t, "GET", "/v1/usage?month=2026-11", "", http.StatusOK, nil); !strings.Contains(body, `"usage": []`) {
		t.Fatalf("usage: %s", body)
	}
}

func itoa(n int64) string { return strings.TrimSpace(string(must(json.Marshal(n)))) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestAdminToken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	tok, created, err := AdminToken("", dir, strings.NewReader(strings.Repeat("k", 64)))
	if err != nil || !created || !strings.HasPrefix(tok, "tka_") {
		t.Fatalf("generate: %q %v %v", tok, created, err)
	}
	again, created, err := AdminToken("", dir, nil)
	if err != nil || created || again != tok {
		t.Fatalf("reuse: %q %v %v", again, created, err)
	}
	if err := os.Chmod(filepath.Join(dir, AdminTokenFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := AdminToken("", dir, nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("lax mode: %v", err)
	}
	if env, _, err := AdminToken("an-operator-token-value", dir, nil); err != nil || env != "an-operator-token-value" {
		t.Fatalf("env: %v", err)
	}
	if _, _, err := AdminToken("short", dir, nil); err == nil {
		t.Fatal("short env token accepted")
	}
}
