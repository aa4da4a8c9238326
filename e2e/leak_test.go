package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/takumo/aegis/e2e/fakeprovider"
)

// TestLogsAndMetricsHoldNoSecret runs a gateway at debug level through a
// session full of secrets (JSON and streamed answers, provider errors whose
// bodies echo the tokens, refused requests) and fails if any secret, the
// Takumo key or a provider key appears in its logs or its /metrics output.
func TestLogsAndMetricsHoldNoSecret(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	p := fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
		switch n.Add(1) % 4 {
		case 0:
			w.JSON(http.StatusOK, anthropicEcho(t, r).JSON())
		case 1:
			data, b := fakeprovider.Encode(anthropicEcho(t, r).Events())
			w.Stream(fakeprovider.SplitAt(data, b...))
		case 2:
			// An error that quotes the request back, tokens included.
			w.JSON(http.StatusBadRequest, fakeprovider.AnthropicError("invalid_request_error",
				"messages.0.content: could not use "+anthropicUserText(t, r.Body)))
		default:
			w.Raw(http.StatusBadGateway, "text/html", []byte("<html>"+anthropicUserText(t, r.Body)+"</html>"))
		}
	})
	defer p.Close()
	g := startGateway(t, p, gatewayOpts{})
	c := anthropicClient(g)
	for range 2 {
		_, _ = c.Messages.New(context.Background(), anthropicParams(prompt))
		s := c.Messages.NewStreaming(context.Background(), anthropicParams(prompt))
		for s.Next() {
		}
		_ = s.Close()
		_, _ = c.Messages.New(context.Background(), anthropicParams(prompt))
		_, _ = c.Messages.New(context.Background(), anthropicParams(prompt))
	}
	// Refused requests carry secrets too.
	g.post(t, "/v1/messages", "application/json", []byte(`{"messages": [`+awsKeyID), nil)
	g.post(t, "/v1/messages", "application/json", messagesBody(t, prompt), map[string]string{"x-api-key": ghToken})
	g.post(t, "/v1/messages?key="+ghToken, "application/json", messagesBody(t, prompt), nil)

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, g.base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	// A scrape that fails (say, two instruments exporting one name) is a
	// 500 whose error text also says "aegis_": check the status first.
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(metrics), "aegis_requests_total") ||
		!strings.Contains(string(metrics), "aegis_gateway_requests_total") {
		t.Fatalf("/metrics has no aegis_ series:\n%.500s", metrics)
	}
	g.stop()
	logs := g.stderr.String()
	if !strings.Contains(logs, `"request_id"`) {
		t.Fatalf("no request logs captured:\n%.500s", logs)
	}
	secrets := append(neverUpstream(g), anthropicProviderKey, openAIProviderKey, mistralProviderKey, geminiProviderKey)
	for what, out := range map[string]string{"logs": logs, "/metrics": string(metrics)} {
		for i, s := range secrets {
			for _, f := range forms(s) {
				if strings.Contains(out, f) {
					t.Errorf("%s hold secret #%d (%d bytes)", what, i, len(s))
					break
				}
			}
		}
	}
	assertProviderSawNoSecret(t, p, neverUpstream(g))
}
