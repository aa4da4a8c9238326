package policy

import (
	"context"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestRegoSuite runs `opa test` on policy/rego (the embedded policy and its
// *_test.rego files) against the embedded data, through OPA's Go tester.
func TestRegoSuite(t *testing.T) {
	ctx := context.Background()
	src, data, err := embeddedPolicy(true)
	if err != nil {
		t.Fatal(err)
	}
	mods := map[string]*ast.Module{}
	for name, s := range src {
		m, err := ast.ParseModuleWithOpts(name, s, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		mods[name] = m
	}
	store := inmem.NewFromObject(data)
	ch, err := tester.NewRunner().
		SetStore(store).
		SetModules(mods).
		RaiseBuiltinErrors(true).
		CapturePrintOutput(true).
		RunTests(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for r := range ch {
		n++
		if r.Error != nil {
			t.Errorf("%s.%s: error: %v", r.Package, r.Name, r.Error)
			continue
		}
		if r.Skip {
			t.Errorf("%s.%s: skipped (a skipped Rego test does not count)", r.Package, r.Name)
			continue
		}
		if !r.Pass() {
			t.Errorf("%s.%s: FAIL %s", r.Package, r.Name, strings.TrimSpace(string(r.Output)))
		}
	}
	if n < 20 {
		t.Fatalf("ran %d Rego tests; expected the whole suite", n)
	}
	t.Logf("%d Rego tests", n)
}
