package extproc

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/takumo/aegis/detect"
	"github.com/takumo/aegis/keys"
	"github.com/takumo/aegis/policy"
)

// Fabricated live keys for the plan tests: right prefix, length, charset.
const (
	freeLiveKey = "tk_live_1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809"
	devLiveKey  = "tk_live_f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f"
)

// planHarness is a live gateway with one key on the free plan (org_free) and
// one on the developer plan (org_dev), whose usage this month is set first.
func planHarness(t *testing.T, pol *policy.Engine, usage map[string]int64) (*harness, *MemKeys) {
	t.Helper()
	ks := NewMemKeys()
	for _, k := range []struct{ key, id, org string }{
		{freeLiveKey, "key_free", "org_free"},
		{devLiveKey, "key_dev", "org_developer"},
	} {
		if err := ks.Add(k.key, Identity{KeyID: k.id, Org: k.org, Scopes: []string{keys.ScopeShieldWrite}}); err != nil {
			t.Fatal(err)
		}
	}
	for org, n := range usage {
		if err := ks.Record(context.Background(), keys.Usage{Org: org, KeyID: "key_seed", Mode: keys.ModeLive, Requests: n, Credits: n}); err != nil {
			t.Fatal(err)
		}
	}
	h := newHarness(t, func(c *Config) {
		c.Mode = ModeLive
		c.KeyStore = ks
		c.Policy = pol
		c.OrgPlan = func(org string) string { return strings.TrimPrefix(org, "org_") }
	})
	return h, ks
}

func newPolicy(t *testing.T) *policy.Engine {
	t.Helper()
	e, err := policy.New(context.Background(), policy.Options{Sink: policy.DiscardSink{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func anthropicBody(model, text string) []byte {
	return []byte(`{"model":"` + model + `","max_tokens":64,"messages":[{"role":"user","content":` + jsonString(text) + `}]}`)
}

// TestPolicyDenials: each deny reason of the policy reaches the client as
// its DESIGN §6 error, decided after the body.
func TestPolicyDenials(t *testing.T) {
	free, _ := planHarness(t, nil, map[string]int64{"org_free": 10000})
	cases := []struct {
		name   string
		h      *harness
		key    string
		body   []byte
		status int
		code   string
		msg    []string
	}{
		{"missing scope", newHarness(t), readOnlyKey, chatBody, 403, CodeForbidden,
			[]string{"lacks the shield:write scope"}},
		{"model not in plan", newHarness(t), testKey2, anthropicBody("claude-opus-4-1", "hello"), 403, CodeForbidden,
			[]string{"claude-opus-4-1", "free"}},
		{"plan limit on free", free, freeLiveKey, anthropicBody("claude-haiku-4-5", "hello"), 403, CodePlanLimitReached,
			[]string{"free", "10000 requests"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ex := tc.h.open(t)
			path := "/v1/messages"
			if tc.name == "missing scope" {
				path = "/v1/chat/completions"
			}
			if r := ex.roundTrip(postHeaders(path, tc.body, "x-api-key", tc.key)); r.GetImmediateResponse() != nil {
				t.Fatalf("decided at the headers: %s", r.GetImmediateResponse().GetBody())
			}
			b := checkError(t, ex.roundTrip(reqBody(tc.body)), tc.status, tc.code, tc.msg[0])
			for _, m := range tc.msg[1:] {
				if !strings.Contains(b.Error.Message, m) {
					t.Errorf("message %q does not name %q", b.Error.Message, m)
				}
			}
			ex.closeOK()
		})
	}
}

// TestPolicyOverage: a developer org over its allowance is allowed, told so
// in x-aegis-overage, and counted.
func TestPolicyOverage(t *testing.T) {
	h, ks := planHarness(t, nil, map[string]int64{"org_developer": 50000})
	ex := h.open(t)
	body := anthropicBody("claude-sonnet-4-5", "hello")
	ex.roundTrip(postHeaders("/v1/messages", body, "x-api-key", devLiveKey))
	r := ex.roundTrip(reqBody(body))
	if ir := r.GetImmediateResponse(); ir != nil {
		t.Fatalf("refused: %s", ir.GetBody())
	}
	mut := r.GetRequestBody().GetResponse().GetHeaderMutation()
	if plan, _ := headerOf(mut, headerPlan); plan != "developer" {
		t.Errorf("x-takumo-plan = %q, want developer", plan)
	}
	r = ex.roundTrip(respHeaders(false, ":status", "200", "content-type", "application/json"))
	rh := r.GetResponseHeaders().GetResponse().GetHeaderMutation()
	if v, _ := headerOf(rh, "x-aegis-overage"); v != "true" {
		t.Errorf("x-aegis-overage = %q, want true", v)
	}
	if v, _ := headerOf(rh, "x-aegis-plan"); v != "developer" {
		t.Errorf("x-aegis-plan = %q, want developer", v)
	}
	ex.roundTrip(respBody([]byte(`{"type":"message","content":[]}`), true))
	ex.closeOK()
	u, err := ks.Month("org_developer", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if u.Live.Requests != 50001 || u.Keys["key_dev"].Live.Requests != 1 {
		t.Errorf("usage after the request: org %+v, key %+v; want 50001 and 1", u.Live, u.Keys["key_dev"])
	}
}

// TestPolicyBlock: a policy that turns a category to block gets a 403
// listing rule, category, field and line, never the value, and nothing is
// metered.
func TestPolicyBlock(t *testing.T) {
	pol := newPolicy(t)
	if err := pol.SetData(context.Background(), "detections", map[string]any{
		"rules": map[string]any{}, "categories": map[string]any{"KEY": "block"},
	}); err != nil {
		t.Fatal(err)
	}
	h, ks := planHarness(t, pol, nil)
	ex := h.open(t)
	body := anthropicBody("claude-haiku-4-5", "line one\naws key "+awsKeyID+" here")
	ex.roundTrip(postHeaders("/v1/messages", body, "x-api-key", freeLiveKey))
	b := checkError(t, ex.roundTrip(reqBody(body)), 403, CodeForbidden, "blocked")
	if len(b.Error.Details) != 1 {
		t.Fatalf("details %+v, want one", b.Error.Details)
	}
	d := b.Error.Details[0]
	if d.Category != "KEY" || d.Line != 2 || d.Rule == "" || !strings.HasPrefix(d.Field, "messages[0]") {
		t.Errorf("detail %+v: want a KEY rule on line 2 of messages[0]", d)
	}
	if strings.Contains(b.Error.Message, awsKeyID) || strings.Contains(d.Rule+d.Field, awsKeyID) {
		t.Error("the error carries the value")
	}
	ex.closeOK()
	if u, _ := ks.Month("org_free", time.Now()); u.Live.Requests != 0 {
		t.Errorf("a denied request was metered: %+v", u.Live)
	}
}

// TestPolicyUndecided: a policy that yields no decision fails closed (503).
func TestPolicyUndecided(t *testing.T) {
	pol := newPolicy(t)
	const mod = `package aegis.authz

decision := {
	"allow": true, "status": 200, "code": "", "message": "", "headers": {},
	"detections": [{"rule": d.rule, "category": d.category, "line": d.line, "action": "tokenize"} | some d in input.detections],
	"blocked": [], "credits": 1, "overage": false, "plan": "enterprise",
	"rate_limit": {"per_minute": -1, "per_hour": -1},
} if input.request.model != "undecidable-model"
`
	if err := pol.Load(context.Background(), policy.Policy{Modules: map[string]string{"p.rego": mod}, Source: "test"}); err != nil {
		t.Fatal(err)
	}
	h, _ := planHarness(t, pol, nil)
	ex := h.open(t)
	body := anthropicBody("undecidable-model", "hello")
	ex.roundTrip(postHeaders("/v1/messages", body, "x-api-key", freeLiveKey))
	checkError(t, ex.roundTrip(reqBody(body)), 503, CodeServiceUnavailable, "policy could not decide")
	ex.closeOK()
}

// TestPolicyMismatch: a policy that wants tokenized what the engine only
// monitors fails closed rather than letting the value through.
func TestPolicyMismatch(t *testing.T) {
	pol := newPolicy(t)
	if err := pol.SetData(context.Background(), "detections", map[string]any{
		"rules": map[string]any{}, "categories": map[string]any{"KEY": "tokenize"},
	}); err != nil {
		t.Fatal(err)
	}
	eng := newEngine(t, detect.Options{CategoryActions: map[detect.Category]detect.Action{detect.KEY: detect.Monitor}})
	// Without EngineOptions the server cannot rebuild the engine: the
	// safety net is all that stands between the policy and the value.
	h := newHarness(t, func(c *Config) { c.Policy = pol; c.Engine = eng; c.EngineOptions = nil })
	ex := h.open(t)
	body := anthropicBody("claude-haiku-4-5", "aws key "+awsKeyID)
	ex.roundTrip(postHeaders("/v1/messages", body, "x-api-key", testKey))
	checkError(t, ex.roundTrip(reqBody(body)), 503, CodeServiceUnavailable, "detection engine")
	ex.closeOK()
}
