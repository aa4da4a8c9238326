package e2e

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/takumo/aegis/e2e/fakeprovider"
)

// TestModelOutsideThePlan: a standalone gateway on the free plan (plan:
// free) refuses a Sonnet model with 403 FORBIDDEN naming the model and the
// plan, through the real SDK, and the provider gets nothing; a Haiku model
// goes through.
func TestModelOutsideThePlan(t *testing.T) {
	t.Parallel()
	p := fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
		w.JSON(http.StatusOK, anthropicEcho(t, r).JSON())
	})
	defer p.Close()
	g := startGateway(t, p, gatewayOpts{yaml: "plan: free\n"})
	c := anthropicClient(g)

	params := anthropicParams(prompt)
	params.Model = "claude-sonnet-4-5"
	_, err := c.Messages.New(context.Background(), params)
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("sonnet on the free plan: got %v, want an API error", err)
	}
	body := []byte(apiErr.RawJSON())
	e := wantError(t, reply{status: apiErr.StatusCode, header: apiErr.Response.Header, body: body}, http.StatusForbidden, "FORBIDDEN")
	if !strings.Contains(e.Error.Message, "claude-sonnet-4-5") || !strings.Contains(e.Error.Message, "free") {
		t.Errorf("message %q should name the model and the plan", e.Error.Message)
	}
	if n := len(p.Requests()); n != 0 {
		t.Fatalf("a refused request reached the provider (%d requests)", n)
	}

	params.Model = "claude-haiku-4-5"
	msg, err := c.Messages.New(context.Background(), params)
	if err != nil {
		t.Fatalf("haiku on the free plan: %v", err)
	}
	checkAnthropicMessage(t, msg)
	checkAnthropicUpstream(t, p, g)
}

// TestPolicyBundleReplacesTheEmbeddedPolicy: an operator's bundle (the
// embedded Rego with data in which the free plan also allows Sonnet),
// given with policy_bundle, is what the gateway decides with.
func TestPolicyBundleReplacesTheEmbeddedPolicy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rego, err := os.ReadFile(filepath.Join("..", "policy", "rego", "aegis.rego"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("..", "policy", "data", "plans.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const freeModels = "    models: [haiku]\n"
	if !strings.Contains(string(data), freeModels) {
		t.Fatal("plans.yaml changed shape: the free plan's model line is gone")
	}
	data = []byte(strings.Replace(string(data), freeModels, "    models: [haiku, sonnet]\n", 1))
	if err := os.WriteFile(filepath.Join(dir, "aegis.rego"), rego, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data.yaml"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	p := fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
		w.JSON(http.StatusOK, anthropicEcho(t, r).JSON())
	})
	defer p.Close()
	g := startGateway(t, p, gatewayOpts{yaml: "plan: free\npolicy_bundle: " + dir + "\n"})
	params := anthropicParams(prompt)
	params.Model = "claude-sonnet-4-5"
	msg, err := anthropicClient(g).Messages.New(context.Background(), params)
	if err != nil {
		t.Fatalf("sonnet on a free plan that the bundle opens to it: %v", err)
	}
	checkAnthropicMessage(t, msg)
	checkAnthropicUpstream(t, p, g)
}

// TestPolicyBundleBlocksARule: a bundle whose data sets one rule to block
// makes the gateway refuse a prompt holding an AWS key id with 403 naming
// the rule (never the value), and the provider gets nothing: the detection
// engine follows the running policy, not only its own defaults.
func TestPolicyBundleBlocksARule(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rego, err := os.ReadFile(filepath.Join("..", "policy", "rego", "aegis.rego"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("..", "policy", "data", "plans.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const rulesLine = "detections:\n  rules: {}\n"
	if !strings.Contains(string(data), rulesLine) {
		t.Fatal("plans.yaml changed shape: the detections section is gone")
	}
	data = []byte(strings.Replace(string(data), rulesLine, "detections:\n  rules: {aws-access-key-id: block}\n", 1))
	if err := os.WriteFile(filepath.Join(dir, "aegis.rego"), rego, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data.yaml"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	p := fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
		w.JSON(http.StatusOK, anthropicEcho(t, r).JSON())
	})
	defer p.Close()
	g := startGateway(t, p, gatewayOpts{yaml: "policy_bundle: " + dir + "\n"})
	_, err = anthropicClient(g).Messages.New(context.Background(), anthropicParams(prompt))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("got %v, want an API error", err)
	}
	e := wantError(t, reply{status: apiErr.StatusCode, header: apiErr.Response.Header, body: []byte(apiErr.RawJSON())}, http.StatusForbidden, "FORBIDDEN")
	if !strings.Contains(e.Error.Message, "aws-access-key-id") {
		t.Errorf("message %q should name the blocking rule", e.Error.Message)
	}
	for _, s := range neverUpstream(g) {
		if s != "" && strings.Contains(apiErr.RawJSON(), s) {
			t.Errorf("the error body holds a planted value")
		}
	}
	if n := len(p.Requests()); n != 0 {
		t.Fatalf("a blocked request reached the provider (%d requests)", n)
	}
}
