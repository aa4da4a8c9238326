package policy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestMemoAgreesWithEvaluation asks the embedded policy many random
// requests, with the usage near every plan limit and the detections on
// random lines, and compares each answer (memoized or not) with a fresh
// evaluation that bypasses the memo. It also checks the line-free memo
// (detection_lines: "copied"): hits for requests whose lines were never
// seen before must carry the request's own lines.
func TestMemoAgreesWithEvaluation(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	orgs := map[string]Org{}
	plans := []string{"free", "developer", "pro", "enterprise"}
	for i := range 8 {
		orgs[fmt.Sprintf("org_%d", i)] = Org{Plan: plans[i%len(plans)], Seats: 1 + i%3}
	}
	if err := e.SetOrgs(ctx, orgs); err != nil {
		t.Fatal(err)
	}
	if err := e.SetData(ctx, "detections", map[string]any{
		"rules": map[string]any{"private-key": "block"}, "categories": map[string]any{"USER": "off"}}); err != nil {
		t.Fatal(err)
	}
	g := e.cur.Load()
	if g.memo.Load() == nil {
		t.Fatal("the embedded policy is not memoized")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	// Values around each limit: requests 10000/50000/100000, credits
	// 1000/5000 and 5000 per seat (up to 3 seats).
	near := func(limits ...int64) int64 {
		l := limits[rng.IntN(len(limits))]
		return l + int64(rng.IntN(5)) - 3
	}
	dets := []Detection{
		{Rule: "aws-access-key-id", Category: "KEY", Action: "tokenize", Line: 3},
		{Rule: "private-key", Category: "PKEY", Action: "tokenize", Line: 9},
		{Rule: "user-email", Category: "USER", Action: "", Line: 4},
	}
	hits := 0
	for i := range 4000 {
		in := Input{
			Key: KeyInput{ID: fmt.Sprintf("key_%d", rng.IntN(50)), Org: "x", Mode: pick("live", "live", "test"),
				Scopes: []string{pick("shield:write", "shield:write", "shield:read")}, Status: pick("active", "active", "active", "disabled")},
			Org: OrgInput{ID: fmt.Sprintf("org_%d", rng.IntN(10)), Plan: pick("free", "pro", "", "gold"),
				Usage: Usage{Requests: near(0, 10000, 50000, 100000), Credits: near(0, 1000, 5000, 10000, 15000)}},
			Request: RequestInfo{Method: "POST", Path: "/v1/messages", Provider: "anthropic",
				Model:     pick("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-1", "gpt-4o-mini", "llama-4", ""),
				Operation: pick("proxy", "proxy", "shield.read", "nope")},
		}
		if rng.IntN(3) == 0 {
			in.Detections = append([]Detection(nil), dets[:1+rng.IntN(len(dets))]...)
			for j := range in.Detections {
				in.Detections[j].Line = 1 + rng.IntN(5000)
			}
		}
		_, hit := g.memo.Load().lookup(&in)
		if hit {
			hits++
		}
		got, err := e.Decide(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := g.eval(ctx, &in)
		if err != nil {
			t.Fatal(err)
		}
		got.ID = ""
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("request %d (memo hit %v): %+v\nmemo gave %+v\npolicy says %+v", i, hit, in, got, want)
		}
	}
	if hits < 400 {
		t.Fatalf("only %d of 4000 decisions came from the memo", hits)
	}
	// Hits with detections on fresh lines come from the line-free space.
	in := input("pro", "claude-sonnet-4-5")
	in.Detections = []Detection{{Rule: "aws-access-key-id", Category: "KEY", Action: "tokenize", Line: 7}}
	if _, err := e.Decide(ctx, in); err != nil {
		t.Fatal(err)
	}
	in.Detections[0].Line = 4242
	d, hit := g.memo.Load().lookup(&in)
	if !hit || d.Detections[0].Line != 4242 {
		t.Fatalf("line-free memo: hit %v, decision %+v", hit, d)
	}
	// A decision with a block quotes lines in its message: never line-free.
	in.Detections = []Detection{{Rule: "private-key", Category: "PKEY", Action: "tokenize", Line: 7}}
	if d, err := e.Decide(ctx, in); err != nil || d.Allow {
		t.Fatalf("block: %+v %v", d, err)
	}
	in.Detections[0].Line = 8
	if d, hit := g.memo.Load().lookup(&in); hit {
		t.Fatalf("a blocking decision was reused for other lines: %+v", d)
	}
}

func TestMemoUsageWindow(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	tests := []struct {
		name      string
		requests  int64
		credits   int64
		wantAllow bool
	}{
		{"well under", 10, 10, true},
		{"last request", 9999, 10, true},
		{"requests used up", 10000, 10, false},
		{"back under (new month)", 0, 0, true},
		{"last credit", 10, 999, true},
		{"credits used up", 10, 1000, false},
		{"both used up", 10000, 1000, false},
		{"under again", 5, 5, true},
	}
	for _, tt := range tests {
		in := input("free", "claude-haiku-4-5")
		in.Org.Usage = Usage{Requests: tt.requests, Credits: tt.credits}
		// Twice: the second answer comes from the memo.
		for range 2 {
			d, err := e.Decide(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != tt.wantAllow || (!d.Allow && d.Code != "PLAN_LIMIT_REACHED") {
				t.Fatalf("%s: decision %+v", tt.name, d)
			}
		}
	}
}

func TestMemoForgetsOnSetData(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	in := input("free", "claude-opus-4-1")
	if err := e.SetOrgs(ctx, map[string]Org{"org_a": {Plan: "enterprise"}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if d, _ := e.Decide(ctx, in); !d.Allow {
			t.Fatalf("enterprise denied opus: %+v", d)
		}
	}
	if err := e.SetOrgs(ctx, map[string]Org{"org_a": {Plan: "free"}}); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.Decide(ctx, in); d.Allow {
		t.Fatal("a memoized allow outlived the data that allowed it")
	}
}

func TestMemoCallerCannotChangeIt(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	in := input("free", "claude-haiku-4-5")
	in.Detections = []Detection{{Rule: "r", Category: "KEY", Action: "tokenize", Line: 1}}
	d, _ := e.Decide(ctx, in)
	d.Headers["x-aegis-plan"] = "changed"
	d.Detections[0].Action = "off"
	again, _ := e.Decide(ctx, in)
	if again.Headers["x-aegis-plan"] != "free" || again.Detections[0].Action != "tokenize" {
		t.Fatalf("a caller's change reached the memo: %+v", again)
	}
	if again.ID == d.ID {
		t.Fatal("two decisions share an id")
	}
}

// TestMemoKeysOnWhatThePolicyReads loads a policy that reads fields the
// embedded one does not (key id, path) and checks they tell decisions apart.
func TestMemoKeysOnWhatThePolicyReads(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	p := markedPolicy("A")
	p.Modules["marked.rego"] = strings.Replace(p.Modules["marked.rego"], `"allow": true, "status": 200, "code": "", "message": ""`,
		`"allow": allow, "status": status, "code": code, "message": code`, 1) + `
default allow := true
allow := false if input.key.id == "key_bad"
allow := false if startswith(input.request.path, "/admin")
allow := false if input.org.usage.requests > 5
status := 200 if allow
else := 403
code := "" if allow
else := "FORBIDDEN"
`
	if err := e.Load(ctx, p); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		edit  func(*Input)
		allow bool
	}{
		{"plain", func(*Input) {}, true},
		{"bad key", func(in *Input) { in.Key.ID = "key_bad" }, false},
		{"admin path", func(in *Input) { in.Request.Path = "/admin/x" }, false},
		{"usage without a window", func(in *Input) { in.Org.Usage.Requests = 6 }, false},
		{"plain again", func(*Input) {}, true},
	}
	for _, tt := range tests {
		in := input("free", "")
		tt.edit(&in)
		for range 2 {
			d, err := e.Decide(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != tt.allow {
				t.Fatalf("%s: allow = %v", tt.name, d.Allow)
			}
		}
	}
}

func TestAnalyzePolicy(t *testing.T) {
	tests := []struct {
		name          string
		body          string
		fields        inputFields
		deterministic bool
	}{
		{"one field", `x if input.key.status == "active"`, fKeyStatus, true},
		{"lookup by input", `x := data.orgs[input.org.id].plan`, fOrgID, true},
		{"below a leaf", `x := input.org.usage.requests.n`, fOrgUsageRequests, true},
		{"a whole section", `x := input.org`, fOrgID | fOrgPlan | fOrgUsageRequests | fOrgUsageCredits, true},
		{"dynamic key", "x := input.key[k]", fKeyID | fKeyOrg | fKeyMode | fKeyScopes | fKeyStatus, true},
		{"dynamic top level", "x := input[k]", fAll, true},
		{"the whole input", "x := input", fAll, true},
		{"input as an argument", "f(y) := y\nx := f(input)", fAll, true},
		{"unknown field", `x := input.extra`, fAll, true},
		{"iteration", "x := [d.line | some d in input.detections]", fDetections, true},
		{"clock", "x if time.now_ns() > 0", 0, false},
		{"http", `x := http.send({"method": "GET", "url": "http://localhost"})`, 0, false},
		{"pure builtins", `x := lower(input.request.model)`, fReqModel, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ast.ParseModuleWithOpts("t.rego", "package t\n\n"+tt.body+"\n", ast.ParserOptions{RegoVersion: ast.RegoV1})
			if err != nil {
				t.Fatal(err)
			}
			c := ast.NewCompiler()
			if c.Compile(map[string]*ast.Module{"t.rego": m}); c.Failed() {
				t.Fatal(c.Errors)
			}
			fields, det := analyzePolicy(c.Modules)
			if det != tt.deterministic || (det && fields != tt.fields) {
				t.Fatalf("fields %b deterministic %v, want %b %v", fields, det, tt.fields, tt.deterministic)
			}
		})
	}
}
