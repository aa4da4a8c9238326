package policy

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// markedPolicy is a policy whose decision names both its Rego ("x-rego")
// and its data ("x-data"): a decision from a half-loaded policy would show
// two different names.
func markedPolicy(name string) Policy {
	src := `package aegis.authz

decision := {
	"allow": true, "status": 200, "code": "", "message": "",
	"headers": {"x-rego": "` + name + `", "x-data": data.rev},
	"detections": [{"rule": d.rule, "category": d.category, "line": d.line, "action": "tokenize"} | some d in input.detections],
	"blocked": [], "credits": 1, "overage": false, "plan": "x",
	"rate_limit": {"per_minute": 1, "per_hour": 1},
}
`
	return Policy{Modules: map[string]string{"marked.rego": src}, Data: map[string]any{"rev": name}, Source: "test", Revision: name}
}

func TestSwapUnderConcurrentDecide(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	e.Engine.sink = DiscardSink{} // keep the fake sink from growing
	if err := e.Load(ctx, markedPolicy("A")); err != nil {
		t.Fatal(err)
	}
	var (
		wg        sync.WaitGroup
		stop      atomic.Bool
		decisions atomic.Int64
		seen      sync.Map
	)
	for range 8 {
		wg.Go(func() {
			in := input("x", "")
			in.Detections = []Detection{{Rule: "r", Category: "KEY", Line: 1}}
			for !stop.Load() {
				d, err := e.Decide(ctx, in)
				if err != nil {
					t.Errorf("Decide during swaps: %v", err)
					return
				}
				if d.Headers["x-rego"] != d.Headers["x-data"] {
					t.Errorf("decision from a half-loaded policy: rego %s, data %s", d.Headers["x-rego"], d.Headers["x-data"])
					return
				}
				seen.Store(d.Headers["x-rego"], true)
				decisions.Add(1)
			}
		})
	}
	for i := range 200 {
		name := []string{"A", "B", "C"}[i%3]
		if err := e.Load(ctx, markedPolicy(name)); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			// Broken loads in between change nothing.
			bad := markedPolicy("broken")
			bad.Modules["marked.rego"] = "package aegis.authz\n\ndecision := {"
			if err := e.Load(ctx, bad); !errors.Is(err, ErrPolicy) {
				t.Fatalf("broken load: %v", err)
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	n := 0
	seen.Range(func(any, any) bool { n++; return true })
	if decisions.Load() == 0 || n < 2 {
		t.Fatalf("%d decisions saw %d policies; the test did not overlap decisions and swaps", decisions.Load(), n)
	}
}

func TestSetDataUnderConcurrentDecide(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	e.Engine.sink = DiscardSink{}
	var wg sync.WaitGroup
	var stop atomic.Bool
	for range 4 {
		wg.Go(func() {
			in := input("free", "claude-opus-4-1")
			for !stop.Load() {
				d, err := e.Decide(ctx, in)
				if err != nil {
					t.Errorf("Decide: %v", err)
					return
				}
				// Either the org is on free (opus denied) or on enterprise
				// (allowed); the plan and the verdict always agree.
				if d.Allow != (d.Plan == "enterprise") {
					t.Errorf("plan %s with allow %v", d.Plan, d.Allow)
					return
				}
			}
		})
	}
	for i := range 100 {
		plan := "free"
		if i%2 == 0 {
			plan = "enterprise"
		}
		if err := e.SetOrgs(ctx, map[string]Org{"org_a": {Plan: plan}, "org_b": {Plan: "pro", Seats: 3}}); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	// The orgs section survives a later policy load.
	mods, data, err := embeddedPolicy(false)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Load(ctx, Policy{Modules: mods, Data: data, Source: "test", Revision: "again"}); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.Decide(ctx, input("free", "claude-opus-4-1")); d.Plan != "free" {
		// i = 99 set free last.
		t.Fatalf("plan after reload = %s", d.Plan)
	}
	if err := e.SetOrgs(ctx, map[string]Org{"org_a": {Plan: "enterprise"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.Load(ctx, Policy{Modules: mods, Data: data, Source: "test", Revision: "again2"}); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.Decide(ctx, input("free", "claude-opus-4-1")); d.Plan != "enterprise" || !d.Allow {
		t.Fatalf("orgs overlay lost on reload: %+v", d)
	}
}

func TestReadDecisionTypedGetters(t *testing.T) {
	good := `{"allow": true, "status": 200, "code": "", "message": "", "headers": {"x-aegis-plan": "pro"},
		"detections": [{"rule": "r", "category": "KEY", "line": 3, "action": "monitor"}], "blocked": [],
		"credits": 1, "overage": false, "plan": "pro", "rate_limit": {"per_minute": 1, "per_hour": 2}}`
	tests := []struct {
		name    string
		replace [2]string
		nDets   int
		errHas  string
	}{
		{"good", [2]string{}, 1, ""},
		{"not an object", [2]string{good, `true`}, 1, "decision: want object, got boolean"},
		{"allow a string", [2]string{`"allow": true`, `"allow": "yes"`}, 1, "decision.allow: want boolean, got string"},
		{"status missing", [2]string{`"status": 200,`, ``}, 1, "decision.status: want integer, got nothing"},
		{"status fractional", [2]string{`"status": 200`, `"status": 200.5`}, 1, "decision.status: want integer"},
		{"header not a string", [2]string{`"x-aegis-plan": "pro"`, `"x-aegis-plan": 1`}, 1, "decision.headers.x-aegis-plan: want string, got number"},
		{"rate limit missing field", [2]string{`"per_hour": 2`, `"per_day": 2`}, 1, "decision.rate_limit.per_hour"},
		{"detections count", [2]string{}, 2, "1 entries for 2 input detections"},
		{"detection action unknown", [2]string{`"monitor"`, `"warn"`}, 1, `unknown action "warn"`},
		{"detection line negative", [2]string{`"line": 3`, `"line": -3`}, 1, "a line number"},
		{"allow with status 403", [2]string{`"status": 200`, `"status": 403`}, 1, "allows with status 403"},
		{"deny without code", [2]string{`"allow": true, "status": 200`, `"allow": false, "status": 403`}, 1, "a denial needs"},
		{"allow with blocked", [2]string{`"blocked": []`, `"blocked": [{"rule": "r", "category": "KEY", "line": 3}]`}, 1, "blocking detections"},
		{"negative credits", [2]string{`"credits": 1`, `"credits": -1`}, 1, "negative credits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := good
			if tc.replace[0] != "" {
				if !strings.Contains(src, tc.replace[0]) {
					t.Fatalf("test case does not apply: %q", tc.replace[0])
				}
				src = strings.Replace(src, tc.replace[0], tc.replace[1], 1)
			}
			d, err := readDecision(ast.MustParseTerm(src).Value, tc.nDets)
			if tc.errHas == "" {
				if err != nil || !d.Allow || d.Detections[0].Action != "monitor" || d.RateLimit.PerHour != 2 || d.Headers["x-aegis-plan"] != "pro" {
					t.Fatalf("readDecision = %+v, %v", d, err)
				}
				return
			}
			if !errors.Is(err, ErrDecisionShape) || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("error = %v, want %q", err, tc.errHas)
			}
		})
	}
}

func TestDecideWithAPolicyThatBreaksAtRunTime(t *testing.T) {
	// A policy that passes the load check but yields a bad decision for some
	// inputs: Decide fails closed with ErrNoDecision and logs the error.
	ctx := context.Background()
	e := newTestEngine(t)
	p := markedPolicy("A")
	p.Modules["marked.rego"] = strings.Replace(p.Modules["marked.rego"], `"credits": 1`,
		`"credits": credits`, 1) + "\ncredits := 1 if input.org.plan != \"weird\"\n\ncredits := \"many\" if input.org.plan == \"weird\"\n"
	if err := e.Load(ctx, p); err != nil {
		t.Fatal(err)
	}
	_, err := e.Decide(ctx, input("weird", ""))
	if !errors.Is(err, ErrNoDecision) || !strings.Contains(err.Error(), "decision.credits: want integer, got string") {
		t.Fatalf("Decide = %v", err)
	}
	recs := e.sink.all()
	if last := recs[len(recs)-1]; last.Error == "" || last.Result != nil {
		t.Fatalf("decision log for a failed decision = %+v", last)
	}
	// And a conflict (two values for one rule) is an evaluation error.
	p.Modules["marked.rego"] += "\ncredits := 2 if input.org.plan == \"clash\"\n"
	if err := e.Load(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Decide(ctx, input("clash", "")); !errors.Is(err, ErrNoDecision) {
		t.Fatalf("Decide with a rule conflict = %v", err)
	}
}
