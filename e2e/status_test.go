package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	oaioption "github.com/openai/openai-go/v3/option"

	"github.com/takumo/aegis/cli"
	"github.com/takumo/aegis/e2e/fakeprovider"
)

// Fabricated Takumo keys for the status table: the right prefix and 64
// lowercase hex characters, known to no gateway unless a row configures them.
const (
	statusLiveKey = "tk_live_3f9a0c7e51d24b86a9e0f4c3b7d21e58c6a4f0b9d3e7a1c5f82b64d09e3a7c1f"
	statusTestKey = "tk_test_8b1e4d7a0c3f6e9b2d5a8c1f4e7b0a3d6c9f2e5b8a1d4c7f0e3b6a9d2c5f8e1b"
)

// statusHaiku is a model every plan allows.
const statusHaiku = "claude-haiku-4-5"

// statusCall is what one row does through an SDK: the error the SDK
// returned and, on success, the headers of the response it read (the SDK
// has read and closed its body).
type statusCall func(ctx context.Context, t *testing.T, g *gateway) (http.Header, error)

// anthropicCall sends a Messages request with the official Anthropic SDK.
func anthropicCall(model, key string, opts ...option.RequestOption) statusCall {
	return func(ctx context.Context, t *testing.T, g *gateway) (http.Header, error) {
		t.Helper()
		params := anthropicParams(prompt)
		params.Model = anthropic.Model(model)
		var resp *http.Response
		c := anthropicClient(g, append([]option.RequestOption{option.WithResponseInto(&resp)}, opts...)...)
		if key != "" {
			c = anthropicClient(g, append([]option.RequestOption{option.WithAPIKey(key), option.WithResponseInto(&resp)}, opts...)...)
		}
		_, err := c.Messages.New(ctx, params)
		return headerOf(resp), err
	}
}

// openAICall sends a Chat Completions request with the official OpenAI SDK.
func openAICall(opts ...oaioption.RequestOption) statusCall {
	return func(ctx context.Context, t *testing.T, g *gateway) (http.Header, error) {
		t.Helper()
		var resp *http.Response
		c := openAIClient(g, append([]oaioption.RequestOption{oaioption.WithResponseInto(&resp)}, opts...)...)
		_, err := c.Chat.Completions.New(ctx, chatParams(prompt))
		return headerOf(resp), err
	}
}

// sdkErrorReply turns the error an SDK returned into the reply it holds.
func sdkErrorReply(t *testing.T, err error) reply {
	t.Helper()
	var ae *anthropic.Error
	if errors.As(err, &ae) {
		return reply{status: ae.StatusCode, header: ae.Response.Header, body: []byte(ae.RawJSON())}
	}
	var oe *openai.Error
	if errors.As(err, &oe) {
		// The OpenAI SDK keeps only what is inside "error" (its own API's
		// envelope): put the envelope back to check the whole body.
		return reply{status: oe.StatusCode, header: oe.Response.Header, body: []byte(`{"error":` + oe.RawJSON() + `}`)}
	}
	t.Fatalf("got %v, want an API error from the SDK", err)
	return reply{}
}

// wantRateLimitHeaders checks the X-RateLimit-* headers of DESIGN §6.
func wantRateLimitHeaders(t *testing.T, h http.Header) {
	t.Helper()
	for _, k := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
		v := h.Get(k)
		if _, err := strconv.Atoi(v); err != nil {
			t.Errorf("%s: %q, want a number", k, v)
		}
	}
	if !strings.HasPrefix(h.Get("X-Aegis-Request-Id"), "req_") {
		t.Errorf("X-Aegis-Request-Id %q, want req_…", h.Get("X-Aegis-Request-Id"))
	}
}

// statusBundle writes an operator bundle (the embedded Rego and plan data)
// in which the free plan allows one request a month, and returns its
// directory.
func statusBundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	rego, err := os.ReadFile(filepath.Join("..", "policy", "rego", "aegis.rego"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("..", "policy", "data", "plans.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const freeRequests = "  free:\n    requests_per_month: 10000\n"
	if !strings.Contains(string(data), freeRequests) {
		t.Fatal("plans.yaml changed shape: the free plan's requests_per_month line is gone")
	}
	data = []byte(strings.Replace(string(data), freeRequests, "  free:\n    requests_per_month: 1\n", 1))
	if err := os.WriteFile(filepath.Join(dir, "aegis.rego"), rego, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data.yaml"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startLiveGateway runs `gateway --listen 127.0.0.1:0 --config FILE` in
// live mode (no --dev, which forces test mode) with statusLiveKey as its
// one key, and finds its address in the "gateway listening" log line.
func startLiveGateway(t *testing.T, p *fakeprovider.Server, yaml string) *gateway {
	t.Helper()
	cfg := writeConfig(t, p, "mode: live\napi_keys: ["+statusLiveKey+"]\n"+yaml)
	g := &gateway{key: statusLiveKey, stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	stop := runMain(t, []string{"gateway", "--listen", "127.0.0.1:0", "--config", cfg}, g.stdout, g.stderr)
	g.stop = func() {
		if code := stop(); code != cli.ExitOK {
			t.Errorf("gateway exited with %d; stderr:\n%s", code, g.stderr)
		}
	}
	t.Cleanup(g.stop)
	waitFor(t, "the gateway listening line", func() bool {
		sc := bufio.NewScanner(strings.NewReader(g.stderr.String()))
		for sc.Scan() {
			var line struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "gateway listening" && line.Addr != "" {
				g.base = "http://" + line.Addr
				return true
			}
		}
		return false
	}, g.stderr)
	return g
}

// TestStatusTable: every DESIGN §6 status the standalone gateway produces
// itself, as the official SDKs see it: the status, error.code, a message,
// error.request_id equal to X-Aegis-Request-Id, and on the successful
// answers the X-RateLimit-* headers.
//
// 503 SERVICE_UNAVAILABLE is not here: the standalone gateway loads its
// policy before it listens and has no coordinator, so only a shutdown could
// produce it, and the SDK cannot reach a gateway that is closing.
func TestStatusTable(t *testing.T) {
	t.Parallel()
	ok := func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
		if strings.HasSuffix(r.Path, "/chat/completions") {
			w.JSON(http.StatusOK, chatEcho(t, r).JSON())
			return
		}
		w.JSON(http.StatusOK, anthropicEcho(t, r).JSON())
	}
	malformed := []byte(`{"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [`)

	cases := []struct {
		name    string
		yaml    string                  // extra config lines
		live    bool                    // a live-mode gateway (startLiveGateway) instead of --dev
		handler fakeprovider.Handler    // nil: ok
		before  []statusCall            // calls that must succeed first
		call    statusCall              // the call under test
		status  int                     // 200: success, check the rate-limit headers
		code    string                  // error.code
		msgHas  string                  // the message must mention this
		upCalls int                     // requests the provider must have received, -1: any
		extra   func(*testing.T, reply) // more checks on the error reply
	}{
		{
			name: "200 Anthropic with rate-limit headers", yaml: "rate_limit_per_key: 60\n",
			call: anthropicCall("claude-sonnet-4-5", ""), status: 200, upCalls: 1,
		},
		{
			// No rate_limit_* configured: the plan's limits give the headers.
			name: "200 OpenAI with rate-limit headers, default config",
			call: openAICall(), status: 200, upCalls: 1,
		},
		{
			name: "400 malformed JSON", call: anthropicCall("claude-sonnet-4-5", "", option.WithRequestBody("application/json", malformed)),
			status: 400, code: "BAD_REQUEST",
		},
		{
			name: "400 malformed JSON (OpenAI)", call: openAICall(oaioption.WithRequestBody("application/json", []byte(`{"model": "gpt-4o", "messages": [{`))),
			status: 400, code: "BAD_REQUEST",
		},
		{
			name: "401 unknown key", call: anthropicCall("claude-sonnet-4-5", statusTestKey),
			status: 401, code: "UNAUTHORIZED",
		},
		{
			name: "401 unknown key (OpenAI)", call: openAICall(oaioption.WithAPIKey(statusTestKey)),
			status: 401, code: "UNAUTHORIZED",
		},
		{
			// A test-mode server refuses a live key in its configuration,
			// so the live key is one it does not hold.
			name: "401 live key on a test gateway",
			call: anthropicCall("claude-sonnet-4-5", statusLiveKey), status: 401, code: "UNAUTHORIZED", msgHas: "live",
		},
		{
			name: "401 test key on a live gateway", live: true,
			call: anthropicCall(statusHaiku, statusTestKey), status: 401, code: "UNAUTHORIZED", msgHas: "test",
		},
		{
			name: "403 model not in the plan", yaml: "plan: free\n",
			call: anthropicCall("claude-sonnet-4-5", ""), status: 403, code: "FORBIDDEN", msgHas: "claude-sonnet-4-5",
		},
		{
			// Reached with an operator bundle whose free plan allows one
			// request a month, on a live gateway (test-mode usage never
			// counts against a plan): the first request uses the allowance.
			name: "403 monthly allowance used up", live: true, yaml: "plan: free\npolicy_bundle: " + statusBundle(t) + "\n",
			before: []statusCall{anthropicCall(statusHaiku, "")},
			call:   anthropicCall(statusHaiku, ""), status: 403, code: "PLAN_LIMIT_REACHED", msgHas: "free", upCalls: 1,
		},
		{
			name: "404 no such route",
			call: func(ctx context.Context, t *testing.T, g *gateway) (http.Header, error) {
				t.Helper()
				var resp *http.Response
				err := anthropicClient(g, option.WithResponseInto(&resp)).Post(ctx, "api/v2/complete", map[string]any{"prompt": "hi"}, nil)
				return headerOf(resp), err
			},
			status: 404, code: "NOT_FOUND",
		},
		{
			name: "413 body over max_body_bytes", yaml: "max_body_bytes: 64KiB\n",
			call: func(ctx context.Context, t *testing.T, g *gateway) (http.Header, error) {
				t.Helper()
				var resp *http.Response
				params := anthropicParams(prompt + strings.Repeat("lorem ipsum ", 10_000))
				_, err := anthropicClient(g, option.WithResponseInto(&resp)).Messages.New(ctx, params)
				return headerOf(resp), err
			},
			status: 413, code: "PAYLOAD_TOO_LARGE",
		},
		{
			name: "429 second request with rate_limit_per_key 1", yaml: "rate_limit_per_key: 1\nrate_limit_burst: 1\n",
			before: []statusCall{anthropicCall("claude-sonnet-4-5", "")},
			call:   anthropicCall("claude-sonnet-4-5", ""), status: 429, code: "RATE_LIMITED", upCalls: 1,
			extra: func(t *testing.T, r reply) {
				if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
					t.Errorf("Retry-After %q, want whole seconds ≥ 1", r.header.Get("Retry-After"))
				}
				if got := r.header.Get("X-RateLimit-Remaining"); got != "0" {
					t.Errorf("X-RateLimit-Remaining %q, want 0", got)
				}
			},
		},
		{
			name: "502 HTML from the provider",
			handler: func(w *fakeprovider.ResponseWriter, _ *fakeprovider.Request) {
				w.Raw(http.StatusBadGateway, "text/html", []byte("<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>\n"))
			},
			call: anthropicCall("claude-sonnet-4-5", ""), status: 502, code: "BAD_GATEWAY", msgHas: "502", upCalls: 1,
		},
		{
			name: "502 HTML from the provider (OpenAI)",
			handler: func(w *fakeprovider.ResponseWriter, _ *fakeprovider.Request) {
				w.Raw(http.StatusBadGateway, "text/html", []byte("<html><body><h1>502 Bad Gateway</h1></body></html>\n"))
			},
			call: openAICall(), status: 502, code: "BAD_GATEWAY", msgHas: "502", upCalls: 1,
		},
		{
			name: "504 provider hangs", yaml: "upstream_timeout: 300ms\n",
			handler: func(w *fakeprovider.ResponseWriter, _ *fakeprovider.Request) { w.Hang() },
			call:    anthropicCall("claude-sonnet-4-5", ""), status: 504, code: "GATEWAY_TIMEOUT", upCalls: 1,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			handler := c.handler
			if handler == nil {
				handler = ok
			}
			p := fakeprovider.New(handler)
			defer p.Close()
			var g *gateway
			if c.live {
				g = startLiveGateway(t, p, c.yaml)
			} else {
				g = startGateway(t, p, gatewayOpts{yaml: c.yaml})
			}
			for i, b := range c.before {
				h, err := b(t.Context(), t, g)
				if err != nil {
					t.Fatalf("request %d before the one under test: %v", i, err)
				}
				if !strings.HasPrefix(h.Get("X-Aegis-Request-Id"), "req_") {
					t.Errorf("request %d before the one under test: no X-Aegis-Request-Id", i)
				}
			}
			h, err := c.call(t.Context(), t, g)
			if c.status == http.StatusOK {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				wantRateLimitHeaders(t, h)
			} else {
				r := sdkErrorReply(t, err)
				e := wantError(t, r, c.status, c.code)
				if c.msgHas != "" && !strings.Contains(e.Error.Message, c.msgHas) {
					t.Errorf("message %q should mention %q", e.Error.Message, c.msgHas)
				}
				for _, s := range neverUpstream(g) {
					if s != "" && strings.Contains(string(r.body), s) {
						t.Errorf("the error body holds a planted value or the key")
					}
				}
				if c.extra != nil {
					c.extra(t, r)
				}
			}
			if n := len(p.Requests()); n != c.upCalls {
				t.Errorf("the provider received %d requests, want %d", n, c.upCalls)
			}
			assertProviderSawNoSecret(t, p, neverUpstream(g))
		})
	}
}

// headerOf is the header of a response the SDK read, or none.
func headerOf(resp *http.Response) http.Header {
	if resp == nil {
		return http.Header{}
	}
	return resp.Header
}
