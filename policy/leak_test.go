package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/takumo/aegis/keys"
)

// TestInputHoldsNoValues walks the Input type: every string it can hold is
// on this list of fields that name things (ids, rules, categories, models)
// and never carry a secret. A new string field fails the test until it is
// reviewed and added here.
func TestInputHoldsNoValues(t *testing.T) {
	allowed := []string{
		"RequestID", "Key.ID", "Key.Org", "Key.Mode", "Key.Scopes[]", "Key.Status", "Org.ID", "Org.Plan",
		"Request.Method", "Request.Path", "Request.Provider", "Request.Model", "Request.Operation",
		"Detections[].Rule", "Detections[].Category", "Detections[].Action",
	}
	var found []string
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		switch typ.Kind() {
		case reflect.String:
			found = append(found, prefix)
		case reflect.Struct:
			for i := range typ.NumField() {
				f := typ.Field(i)
				name := f.Name
				if prefix != "" {
					name = prefix + "." + f.Name
				}
				walk(name, f.Type)
			}
		case reflect.Slice, reflect.Array:
			walk(prefix+"[]", typ.Elem())
		case reflect.Map, reflect.Interface, reflect.Pointer:
			t.Errorf("%s: a %s could hold anything; Input must stay flat and typed", prefix, typ.Kind())
		}
	}
	walk("", reflect.TypeFor[Input]())
	slices.Sort(found)
	slices.Sort(allowed)
	if !slices.Equal(found, allowed) {
		t.Errorf("string fields of Input = %v\nreviewed list     = %v", found, allowed)
	}
}

// TestNoSecretInOutput plants raw keys and detection values, runs
// decisions of every outcome (allow, each deny, blocked detections, a
// failing policy, refused bundles), captures the decision log, the engine's
// logs and every error, and searches them for the planted values.
func TestNoSecretInOutput(t *testing.T) {
	ctx := context.Background()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e, err := New(ctx, Options{Logger: logger}) // default sink: the decision log goes to logs
	if err != nil {
		t.Fatal(err)
	}
	store := keys.NewMemStore(keys.Options{Mode: keys.ModeLive})

	// Fabricated detection values, of the shapes the detectors find.
	values := []string{
		"AKIAZ7Q4M2XJ5N3KD8WP",                     // AWS access key id shape
		"wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ9v3u8ExA", // AWS secret key shape
		"postgres://app:S3cr3t-Pa55w0rd@db.internal:5432/app",
		"ghp_R8wq2ZkX4v7LmN1pT6yB3cD9eF0gH5jK2aQs",
	}
	var planted []string
	var errs []string
	for i := range 12 {
		mode := keys.ModeLive
		_, k, err := store.Create(ctx, keys.NewKey{Org: fmt.Sprint("org_", i%3), Scopes: []string{keys.ScopeShieldWrite}, Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		raw := k.Reveal()
		planted = append(planted, raw)
		// A Gemini tool puts the key in the query string.
		presented, err := keys.FromHeaders("", raw)
		if err != nil {
			t.Fatal(err)
		}
		got, err := store.Authenticate(ctx, presented)
		if err != nil {
			t.Fatal(err)
		}
		plans := []string{"free", "developer", "pro", "gold"}
		in := Input{
			RequestID: fmt.Sprintf("req_%016x", i),
			Key:       KeyInput{ID: got.ID, Org: got.Org, Mode: string(got.Mode), Scopes: got.Scopes, Status: string(got.State)},
			Org:       OrgInput{ID: got.Org, Plan: plans[i%len(plans)], Usage: Usage{Requests: int64(i * 3000), Credits: int64(i * 300)}},
			Request: RequestInfo{Method: "POST", Path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=" + raw,
				Provider: "gemini", Model: []string{"gemini-2.5-flash", "claude-opus-4-1"}[i%2], Operation: "proxy"},
		}
		for j := range values {
			// The caller turns each finding of values[j] into rule,
			// category and line; Input has no place for the value itself
			// (TestInputHoldsNoValues), and the scan below would catch one
			// that found its way into a log or an error.
			in.Detections = append(in.Detections, Detection{Rule: []string{"aws-access-key-id", "aws-secret-access-key", "postgres-url", "github-pat"}[j],
				Category: []string{"KEY", "SECRET", "CONN", "TOKEN"}[j], Action: []string{"tokenize", "block", "monitor", "off"}[(i+j)%4], Line: j + 1})
		}
		if _, err := e.Decide(ctx, in); err != nil {
			errs = append(errs, err.Error())
		}
		if i%4 == 0 {
			_ = store.Revoke(ctx, got.ID)
			if _, err := store.Authenticate(ctx, raw); err != nil {
				errs = append(errs, err.Error(), keys.ClientMessage(err))
			}
		}
	}
	// A policy failing at run time and refused loads also log.
	p := markedPolicy("A")
	p.Modules["marked.rego"] = strings.Replace(p.Modules["marked.rego"], `"plan": "x"`, `"plan": plan`, 1) +
		"\nplan := \"x\" if input.org.plan != \"weird\"\n\nplan := 1 if input.org.plan == \"weird\"\n"
	if err := e.Load(ctx, p); err != nil {
		t.Fatal(err)
	}
	in := input("weird", "")
	in.Request.Path = "/v1/messages?key=" + planted[0]
	if _, err := e.Decide(ctx, in); err == nil {
		t.Fatal("the weird policy decided")
	} else {
		errs = append(errs, err.Error())
	}
	bad := markedPolicy("B")
	bad.Data["custom_rules"] = []any{map[string]any{"id": "x", "regex": "(", "category": "KEY"}}
	if err := e.Load(ctx, bad); err != nil {
		errs = append(errs, err.Error())
	}

	out := logs.String() + strings.Join(errs, "\n")
	if !strings.Contains(out, `"msg":"policy decision"`) || strings.Count(out, `"msg":"policy decision"`) < 13 {
		t.Fatalf("captured too little to find a leak:\n%s", out)
	}
	for _, raw := range planted {
		for _, needle := range []string{raw, raw[8:], raw[8:40], raw[40:]} {
			if strings.Contains(out, needle) {
				t.Fatalf("output contains a planted key")
			}
		}
	}
	for _, v := range values {
		js, _ := json.Marshal(v)
		if strings.Contains(out, v) || strings.Contains(out, strings.Trim(string(js), `"`)) {
			t.Fatalf("output contains a planted detection value")
		}
	}
}
