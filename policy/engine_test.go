package policy

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// recordingSink is a hand-written fake Sink that keeps every record.
type recordingSink struct {
	mu   sync.Mutex
	recs []DecisionRecord
	err  error
}

var _ Sink = (*recordingSink)(nil)

func (s *recordingSink) Log(ctx context.Context, r DecisionRecord) error {
	if ctx.Err() != nil {
		panic("decision log context is cancelled")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, r)
	return s.err
}

func (s *recordingSink) all() []DecisionRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]DecisionRecord(nil), s.recs...)
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

type testEngine struct {
	*Engine
	sink *recordingSink
	logs *syncBuffer
}

func newTestEngine(t testing.TB) testEngine {
	t.Helper()
	logs := &syncBuffer{}
	sink := &recordingSink{}
	e, err := New(context.Background(), Options{Logger: slog.New(slog.NewJSONHandler(logs, nil)), Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	return testEngine{Engine: e, sink: sink, logs: logs}
}

func input(plan, model string) Input {
	return Input{
		RequestID: "req_0123456789abcdef",
		Key:       KeyInput{ID: "key_1", Org: "org_a", Mode: "live", Scopes: []string{"shield:write"}, Status: "active"},
		Org:       OrgInput{ID: "org_a", Plan: plan},
		Request:   RequestInfo{Method: "POST", Path: "/v1/messages", Provider: "anthropic", Model: model, Operation: "proxy"},
	}
}

func TestDecide(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	type want struct {
		allow   bool
		status  int
		code    string
		msgHas  []string
		credits int64
		overage bool
		actions []string
		blocked []Blocked
		rate    RateLimit
	}
	dets := []Detection{
		{Rule: "aws-access-key-id", Category: "KEY", Action: "tokenize", Line: 3},
		{Rule: "private-key", Category: "PKEY", Action: "block", Line: 12},
		{Rule: "generic-password", Category: "SECRET", Action: "monitor", Line: 20},
	}
	tests := []struct {
		name string
		in   func() Input
		want want
	}{
		{"free haiku", func() Input { return input("free", "claude-haiku-4-5") },
			want{allow: true, status: 200, credits: 1, rate: RateLimit{30, 500}}},
		{"developer sonnet", func() Input { return input("developer", "claude-sonnet-4-5") },
			want{allow: true, status: 200, credits: 1, rate: RateLimit{60, 2500}}},
		{"pro opus", func() Input { return input("pro", "claude-opus-4-1") },
			want{allow: true, status: 200, credits: 1, rate: RateLimit{120, 5000}}},
		{"enterprise unknown model", func() Input { return input("enterprise", "llama-4-maverick") },
			want{allow: true, status: 200, credits: 1, rate: RateLimit{500, 20000}}},
		{"free sonnet", func() Input { return input("free", "claude-sonnet-4-5") },
			want{status: 403, code: "FORBIDDEN", msgHas: []string{"claude-sonnet-4-5", "free plan"}, rate: RateLimit{30, 500}}},
		{"developer opus", func() Input { return input("developer", "claude-opus-4-1") },
			want{status: 403, code: "FORBIDDEN", msgHas: []string{"claude-opus-4-1", "developer plan", "haiku and sonnet"}, rate: RateLimit{60, 2500}}},
		{"disabled key", func() Input { i := input("pro", ""); i.Key.Status = "disabled"; return i },
			want{status: 401, code: "UNAUTHORIZED", msgHas: []string{"not active"}, rate: RateLimit{120, 5000}}},
		{"missing scope", func() Input { i := input("pro", ""); i.Key.Scopes = []string{"shield:read"}; return i },
			want{status: 403, code: "FORBIDDEN", msgHas: []string{"shield:write", "proxy"}, rate: RateLimit{120, 5000}}},
		{"unknown operation", func() Input { i := input("pro", ""); i.Request.Operation = "mine-bitcoin"; return i },
			want{status: 403, code: "FORBIDDEN", msgHas: []string{"unknown operation"}, rate: RateLimit{120, 5000}}},
		{"unknown plan", func() Input { return input("gold", "") },
			want{status: 403, code: "FORBIDDEN", msgHas: []string{"gold", "not defined"}}},
		{"free over requests", func() Input { i := input("free", ""); i.Org.Usage.Requests = 10000; return i },
			want{status: 403, code: "PLAN_LIMIT_REACHED", msgHas: []string{"10000 requests", "free"}, rate: RateLimit{30, 500}}},
		{"free over credits", func() Input { i := input("free", ""); i.Org.Usage.Credits = 1000; return i },
			want{status: 403, code: "PLAN_LIMIT_REACHED", msgHas: []string{"1000 credits"}, rate: RateLimit{30, 500}}},
		{"free over limits in test mode", func() Input {
			i := input("free", "")
			i.Key.Mode = "test"
			i.Org.Usage = Usage{Requests: 1 << 40, Credits: 1 << 40}
			return i
		}, want{allow: true, status: 200, credits: 1, rate: RateLimit{30, 500}}},
		{"developer overage", func() Input { i := input("developer", ""); i.Org.Usage.Requests = 50000; return i },
			want{allow: true, status: 200, credits: 1, overage: true, rate: RateLimit{60, 2500}}},
		{"detections default actions", func() Input { i := input("pro", ""); i.Detections = dets[:1]; return i },
			want{allow: true, status: 200, credits: 1, actions: []string{"tokenize"}, rate: RateLimit{120, 5000}}},
		{"engine block action", func() Input { i := input("pro", ""); i.Detections = dets; return i },
			want{status: 403, code: "FORBIDDEN", msgHas: []string{"rule private-key, category PKEY, line 12"},
				actions: []string{"tokenize", "block", "monitor"}, blocked: []Blocked{{"private-key", "PKEY", 12}}, rate: RateLimit{120, 5000}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := e.Decide(ctx, tc.in())
			if err != nil {
				t.Fatal(err)
			}
			w := tc.want
			if d.Allow != w.allow || d.Status != w.status || d.Code != w.code || d.Credits != w.credits || d.Overage != w.overage {
				t.Fatalf("decision = %+v", d)
			}
			for _, s := range w.msgHas {
				if !strings.Contains(d.Message, s) {
					t.Errorf("message %q lacks %q", d.Message, s)
				}
			}
			if d.RateLimit != w.rate {
				t.Errorf("rate limit = %+v, want %+v", d.RateLimit, w.rate)
			}
			var actions []string
			for _, x := range d.Detections {
				actions = append(actions, x.Action)
			}
			if strings.Join(actions, ",") != strings.Join(w.actions, ",") {
				t.Errorf("actions = %v, want %v", actions, w.actions)
			}
			if len(d.Blocked) != len(w.blocked) || (len(w.blocked) > 0 && d.Blocked[0] != w.blocked[0]) {
				t.Errorf("blocked = %+v, want %+v", d.Blocked, w.blocked)
			}
			if !strings.HasPrefix(d.ID, "dec_") || len(d.ID) != 20 {
				t.Errorf("decision id = %q", d.ID)
			}
			if d.Overage != (d.Headers["x-aegis-overage"] == "true") {
				t.Errorf("headers = %v", d.Headers)
			}
		})
	}
	recs := e.sink.all()
	if len(recs) != len(tests) {
		t.Fatalf("decision log has %d records for %d decisions", len(recs), len(tests))
	}
	for _, r := range recs {
		if r.Path != DecisionPath || r.Result == nil || r.Result.ID != r.DecisionID || r.RequestID != "req_0123456789abcdef" ||
			r.Revision != "embedded" || r.Timestamp.IsZero() {
			t.Errorf("decision record = %+v", r)
		}
	}
}

func TestDecidePathQueryNeverReachesPolicyOrLog(t *testing.T) {
	e := newTestEngine(t)
	in := input("pro", "gemini-2.5-pro")
	in.Request.Path = "/v1beta/models/gemini-2.5-pro:generateContent?key=AIzaSyD-fabricated0000000000000000000000&alt=sse"
	if _, err := e.Decide(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	r := e.sink.all()[0]
	if r.Input.Request.Path != "/v1beta/models/gemini-2.5-pro:generateContent" {
		t.Errorf("logged path = %q", r.Input.Request.Path)
	}
}

func TestDecideLogsAfterCancel(t *testing.T) {
	e := newTestEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Evaluation of a cancelled context fails; the record is still written
	// (the fake sink panics on a cancelled context).
	_, err := e.Decide(ctx, input("pro", ""))
	if err != nil && !errors.Is(err, ErrNoDecision) {
		t.Fatalf("error = %v", err)
	}
	if n := len(e.sink.all()); n != 1 {
		t.Fatalf("%d records", n)
	}
}

func TestSinkErrorDoesNotFailDecision(t *testing.T) {
	e := newTestEngine(t)
	e.sink.err = errors.New("disk full")
	if _, err := e.Decide(context.Background(), input("pro", "")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.logs.String(), "disk full") {
		t.Error("a failing sink is not logged")
	}
}

func TestSlogSink(t *testing.T) {
	var buf bytes.Buffer
	e, err := New(context.Background(), Options{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	in := input("free", "claude-sonnet-4-5")
	in.Detections = []Detection{{Rule: "aws-access-key-id", Category: "KEY", Line: 4}}
	d, err := e.Decide(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, s := range []string{`"msg":"policy decision"`, `"decision_id":"` + d.ID, `"path":"aegis/authz/decision"`,
		`"request_id":"req_0123456789abcdef"`, `"code":"FORBIDDEN"`, `"model":"claude-sonnet-4-5"`, `"rule":"aws-access-key-id","category":"KEY","line":4,"action":"tokenize"`} {
		if !strings.Contains(out, s) {
			t.Errorf("log lacks %s:\n%s", s, out)
		}
	}
}

func TestSetOrgs(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	in := input("free", "claude-opus-4-1")
	if d, _ := e.Decide(ctx, in); d.Allow {
		t.Fatal("free plan allowed opus")
	}
	if err := e.SetOrgs(ctx, map[string]Org{"org_a": {Plan: "enterprise"}}); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.Decide(ctx, in); !d.Allow || d.Plan != "enterprise" {
		t.Fatalf("after SetOrgs: %+v", d)
	}
	// An org on a plan that does not exist is refused and changes nothing.
	err := e.SetOrgs(ctx, map[string]Org{"org_a": {Plan: "platinum"}})
	if !errors.Is(err, ErrData) || !strings.Contains(err.Error(), `plan "platinum" is not defined`) {
		t.Fatalf("SetOrgs with an undefined plan = %v", err)
	}
	if d, _ := e.Decide(ctx, in); !d.Allow {
		t.Fatal("a refused SetOrgs changed the data")
	}
	// Deleting the plan an org is on is refused too.
	plans := map[string]any{"free": map[string]any{"requests_per_month": 1, "credits_per_month": 1, "hard_cap": true,
		"rate_limits": map[string]any{"per_minute": 1, "per_hour": 1}, "models": []string{"haiku"}}}
	if err := e.SetData(ctx, "plans", plans); !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "enterprise") {
		t.Fatalf("SetData(plans) dropping a plan in use = %v", err)
	}
	if err := e.SetData(ctx, "custom_rules", []any{}); err == nil {
		t.Error("SetData(custom_rules) accepted")
	}
}

func TestOrgWhosePlanWasDeletedIsASafeDeny(t *testing.T) {
	// The key store still says "gold" though no policy defines it.
	e := newTestEngine(t)
	d, err := e.Decide(context.Background(), input("gold", ""))
	if err != nil {
		t.Fatal(err)
	}
	if d.Allow || d.Status != 403 || !strings.Contains(d.Message, "gold") {
		t.Fatalf("decision = %+v", d)
	}
}

func TestCustomRules(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	if n := len(e.CustomRules()); n != 0 {
		t.Fatalf("embedded policy has %d custom rules", n)
	}
	mods, data, err := embeddedPolicy(false)
	if err != nil {
		t.Fatal(err)
	}
	data["custom_rules"] = []any{map[string]any{"id": "acme-internal-token", "regex": "acme_[0-9a-f]{32}", "category": "TOKEN",
		"keywords": []string{"acme_"}, "action": "block", "description": "ACME internal service token"}}
	if err := e.Load(ctx, Policy{Modules: mods, Data: data, Source: "test", Revision: "r2"}); err != nil {
		t.Fatal(err)
	}
	rules := e.CustomRules()
	if len(rules) != 1 || rules[0].ID != "acme-internal-token" || rules[0].Keywords[0] != "acme_" || rules[0].Action != "block" {
		t.Fatalf("CustomRules = %+v", rules)
	}
	rules[0].Keywords[0] = "changed"
	if e.CustomRules()[0].Keywords[0] != "acme_" {
		t.Error("a caller changed the engine's custom rules")
	}
	in := input("pro", "")
	in.Detections = []Detection{{Rule: "acme-internal-token", Category: "TOKEN", Line: 2}}
	d, err := e.Decide(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allow || len(d.Blocked) != 1 {
		t.Fatalf("custom rule action not applied: %+v", d)
	}
}

func TestDetections(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	d0 := e.Detections()
	if d0.Revision != "embedded" || d0.Generation != e.Generation() || len(d0.Custom) != 0 {
		t.Fatalf("embedded Detections = %+v (generation %d)", d0, e.Generation())
	}
	if err := e.SetData(ctx, "detections", map[string]any{
		"rules": map[string]any{"generic-password": "block"}, "categories": map[string]any{"HOST": "monitor"},
	}); err != nil {
		t.Fatal(err)
	}
	d1 := e.Detections()
	if d1.Generation == d0.Generation || d1.Generation != e.Generation() {
		t.Errorf("SetData did not move the generation: %d → %d", d0.Generation, d1.Generation)
	}
	if d1.Revision != d0.Revision {
		t.Errorf("SetData changed the revision: %q → %q", d0.Revision, d1.Revision)
	}
	if d1.RuleActions["generic-password"] != "block" || d1.CategoryActions["HOST"] != "monitor" {
		t.Errorf("Detections after SetData = %+v", d1)
	}
	d1.RuleActions["generic-password"] = "off"
	if e.Detections().RuleActions["generic-password"] != "block" {
		t.Error("a caller changed the engine's overrides")
	}

	// A rejected update changes nothing, the generation included.
	if err := e.SetData(ctx, "detections", map[string]any{"rules": map[string]any{"x": "explode"}}); err == nil {
		t.Fatal("SetData with an unknown action accepted")
	}
	if g := e.Generation(); g != d1.Generation {
		t.Errorf("a rejected SetData moved the generation: %d → %d", d1.Generation, g)
	}

	mods, data, err := embeddedPolicy(false)
	if err != nil {
		t.Fatal(err)
	}
	data["custom_rules"] = []any{map[string]any{"id": "acme-internal-token", "regex": "acme_[0-9a-f]{32}", "category": "TOKEN"}}
	if err := e.Load(ctx, Policy{Modules: mods, Data: data, Source: "test", Revision: "r2"}); err != nil {
		t.Fatal(err)
	}
	d2 := e.Detections()
	if d2.Revision != "r2" || d2.Generation == d1.Generation || len(d2.Custom) != 1 || d2.Custom[0].ID != "acme-internal-token" {
		t.Fatalf("Detections after a load = %+v", d2)
	}
	// The SetData section is laid over the loaded policy's data.
	if d2.RuleActions["generic-password"] != "block" {
		t.Errorf("overlaid detections lost on load: %+v", d2.RuleActions)
	}
}
