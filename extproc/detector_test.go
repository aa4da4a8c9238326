package extproc

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"

	"github.com/takumo/aegis/detect"
	"github.com/takumo/aegis/policy"
)

// acmeToken is a fabricated token for the custom rule of the policy data
// below (acme_ and 32 lowercase hex).
const acmeToken = "acme_5f1c9e2a7b3d4c6e8f0a1b2c3d4e5f60"

// loadPolicyData loads the embedded policy with extra data sections, as a
// bundle would.
func loadPolicyData(t *testing.T, pol *policy.Engine, revision string, extra map[string]any) {
	t.Helper()
	p, err := policy.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		p.Data[k] = v
	}
	p.Source, p.Revision = "test", revision
	if err := pol.Load(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

// proxy sends body to /v1/messages and returns the request-body reply.
func proxy(t *testing.T, h *harness, body []byte) *exchange {
	t.Helper()
	ex := h.open(t)
	ex.roundTrip(postHeaders("/v1/messages", body, "x-api-key", testKey))
	return ex
}

// finish plays the provider's answer to a forwarded request and ends the
// exchange.
func finish(ex *exchange) {
	ex.roundTrip(respHeaders(false, ":status", "200", "content-type", "application/json"))
	ex.roundTrip(respBody([]byte(`{"type":"message","content":[]}`), true))
	ex.closeOK()
}

func TestDetectorFollowsPolicy(t *testing.T) {
	ctx := context.Background()
	t.Run("rule set to block", func(t *testing.T) {
		pol := newPolicy(t)
		if err := pol.SetData(ctx, "detections", map[string]any{"rules": map[string]any{"aws-access-key-id": "block"}}); err != nil {
			t.Fatal(err)
		}
		h := newHarness(t, func(c *Config) { c.Policy = pol })
		body := anthropicBody("claude-haiku-4-5", "first\nkey "+awsKeyID+" and "+ghToken)
		ex := proxy(t, h, body)
		b := checkError(t, ex.roundTrip(reqBody(body)), 403, CodeForbidden, "blocked")
		ex.closeOK()
		if len(b.Error.Details) != 1 || b.Error.Details[0].Rule != "aws-access-key-id" || b.Error.Details[0].Line != 2 {
			t.Errorf("details %+v: want aws-access-key-id on line 2 only", b.Error.Details)
		}
	})
	t.Run("category set to monitor", func(t *testing.T) {
		pol := newPolicy(t)
		if err := pol.SetData(ctx, "detections", map[string]any{"categories": map[string]any{"KEY": "monitor"}}); err != nil {
			t.Fatal(err)
		}
		h := newHarness(t, func(c *Config) { c.Policy = pol })
		body := anthropicBody("claude-haiku-4-5", "key "+awsKeyID+" and "+ghToken)
		ex := proxy(t, h, body)
		r := ex.roundTrip(reqBody(body))
		if ir := r.GetImmediateResponse(); ir != nil {
			t.Fatalf("refused: %s", ir.GetBody())
		}
		out := r.GetRequestBody().GetResponse().GetBodyMutation().GetBody()
		if !bytes.Contains(out, []byte(awsKeyID)) {
			t.Errorf("a monitored value was not forwarded unchanged: %s", out)
		}
		if bytes.Contains(out, []byte(ghToken)) {
			t.Error("a TOKEN value the policy leaves at tokenize was forwarded")
		}
		finish(ex)
		res := callAPI(t, h, "/v1/detect", []byte(`{"content":`+jsonString("key "+awsKeyID)+`}`))
		if len(res.Detections) != 1 || res.Detections[0].Type != "aws-access-key-id" || res.Detections[0].Action != "monitor" {
			t.Errorf("/v1/detect = %+v, want aws-access-key-id reported as monitor", res.Detections)
		}
	})
	t.Run("custom rule from policy data", func(t *testing.T) {
		pol := newPolicy(t)
		loadPolicyData(t, pol, "custom-1", map[string]any{"custom_rules": []any{map[string]any{
			"id": "acme-internal-token", "regex": "acme_[0-9a-f]{32}", "category": "TOKEN", "keywords": []any{"acme_"},
		}}})
		h := newHarness(t, func(c *Config) { c.Policy = pol })
		content := "token = " + acmeToken + "\n"
		res := callAPI(t, h, "/v1/tokenize", []byte(`{"content":`+jsonString(content)+`}`))
		if strings.Contains(res.Content, acmeToken) || len(res.Detections) != 1 ||
			res.Detections[0].Type != "acme-internal-token" || res.Detections[0].Token == "" {
			t.Errorf("/v1/tokenize = %+v: want the custom rule's value tokenized", res)
		}
	})
}

// TestDetectorPolicySwap: a SetData and then a bundle load change what the
// next request gets.
func TestDetectorPolicySwap(t *testing.T) {
	ctx := context.Background()
	pol := newPolicy(t)
	h := newHarness(t, func(c *Config) { c.Policy = pol })
	body := anthropicBody("claude-haiku-4-5", "key "+awsKeyID+" and "+acmeToken)
	send := func() ([]byte, *errBody) {
		t.Helper()
		ex := proxy(t, h, body)
		r := ex.roundTrip(reqBody(body))
		if r.GetImmediateResponse() != nil {
			b := checkError(t, r, 403, CodeForbidden, "blocked")
			ex.closeOK()
			return nil, &b
		}
		out := r.GetRequestBody().GetResponse().GetBodyMutation().GetBody()
		finish(ex)
		return out, nil
	}
	out, _ := send()
	if bytes.Contains(out, []byte(awsKeyID)) || !bytes.Contains(out, []byte(acmeToken)) {
		t.Fatalf("embedded policy: %s", out)
	}
	if err := pol.SetData(ctx, "detections", map[string]any{"categories": map[string]any{"KEY": "block"}}); err != nil {
		t.Fatal(err)
	}
	if _, b := send(); b == nil || len(b.Error.Details) != 1 || b.Error.Details[0].Category != "KEY" {
		t.Fatalf("after SetData KEY block: want a 403 listing the KEY detection, got %+v", b)
	}
	if err := pol.SetData(ctx, "detections", map[string]any{"categories": map[string]any{"KEY": "monitor"}}); err != nil {
		t.Fatal(err)
	}
	loadPolicyData(t, pol, "custom-2", map[string]any{"custom_rules": []any{map[string]any{
		"id": "acme-internal-token", "regex": "acme_[0-9a-f]{32}", "category": "TOKEN", "keywords": []any{"acme_"},
	}}})
	out, b := send()
	if b != nil {
		t.Fatalf("after the bundle: refused %+v", b)
	}
	if !bytes.Contains(out, []byte(awsKeyID)) || bytes.Contains(out, []byte(acmeToken)) {
		t.Errorf("after the bundle: want the KEY monitored and the custom rule tokenized, got %s", out)
	}
}

// TestDetectorRebuildFailureKeepsLastGood: a policy whose custom rule the
// detection engine refuses (the policy package checks less) keeps the last
// good engine, logs it and is not retried per request.
func TestDetectorRebuildFailureKeepsLastGood(t *testing.T) {
	pol := newPolicy(t)
	var logs syncBuf
	d, err := newDetector(pol, &detect.Options{}, nil, slog.New(slog.NewTextHandler(&logs, nil)), metricnoop.NewMeterProvider())
	if err != nil {
		t.Fatal(err)
	}
	first := d.engine(context.Background())
	// A built-in id: policy data accepts it, the detection engine does not.
	loadPolicyData(t, pol, "bad", map[string]any{"custom_rules": []any{map[string]any{
		"id": "aws-access-key-id", "regex": "acme_[0-9a-f]{32}", "category": "TOKEN",
	}}})
	if got := d.engine(context.Background()); got != first {
		t.Error("a failed rebuild replaced the engine")
	}
	if got := d.engine(context.Background()); got != first {
		t.Error("a failed rebuild replaced the engine")
	}
	if n := strings.Count(logs.String(), "not rebuilt"); n != 1 {
		t.Errorf("%d failure logs, want 1 (no retry for the same generation):\n%s", n, logs.String())
	}
	loadPolicyData(t, pol, "good", nil)
	if got := d.engine(context.Background()); got == first || got == nil {
		t.Error("the next good policy did not rebuild the engine")
	}
}

// syncBuf is a log destination safe for concurrent writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuf) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
