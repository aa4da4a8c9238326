package extproc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// lockedBuffer is a bytes.Buffer safe for the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestNoSecretInTelemetry runs exchanges full of secrets and keys (success,
// block, auth failures, provider errors echoing tokens, streaming, the
// tokenize API) and fails if any planted value appears in the logs, the
// metrics or the spans.
func TestNoSecretInTelemetry(t *testing.T) {
	logs := &lockedBuffer{}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() {
		_ = mp.Shutdown(context.Background())
		_ = tp.Shutdown(context.Background())
	})
	h := newHarness(t, func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.MeterProvider = mp
		c.TracerProvider = tp
	})

	// Successful exchanges.
	for _, tc := range providerCases() {
		ex := h.open(t)
		body := []byte(tc.request)
		ex.roundTrip(postHeaders(tc.path, body, "x-api-key", testKey, "x-takumo-session", "leak"))
		r := ex.roundTrip(reqBody(body))
		toks := tokensIn(r.GetRequestBody().GetResponse().GetBodyMutation().GetBody())
		reply := []byte(tc.response(strings.Join(toks, " ")))
		ex.roundTrip(respHeaders(false, ":status", "200", "content-type", "application/json"))
		ex.roundTrip(respBody(reply, true))
		ex.closeOK()
	}
	// Auth failures with keys in every header.
	for _, kv := range [][]string{
		{"x-api-key", testKey + " "},
		{"authorization", liveKey},
		{"x-api-key", "tk_test_" + strings.Repeat("ab", 32)},
		{"x-api-key", anthropicPK},
		{"x-api-key", testKey, "authorization", "Bearer " + testKey2},
	} {
		ex := h.open(t)
		immediateOf(t, ex.roundTrip(postHeaders("/v1/messages", chatBodyAnthropic, kv...)))
		ex.closeOK()
	}
	// A provider error that echoes tokens, and a 502.
	ex, toks := upstreamExchange(t, h)
	ex.roundTrip(respHeaders(false, ":status", "401", "content-type", "application/json"))
	immediateOf(t, ex.roundTrip(respBody([]byte(`{"error":{"message":"`+strings.Join(toks, " ")+`"}}`), true)))
	ex.closeOK()
	// An aborted stream.
	ex, _ = upstreamExchange(t, h)
	_ = ex.end()
	// The tokenize API.
	callAPI(t, h, "/v1/tokenize", []byte(`{"content":`+jsonString(prose)+`}`))
	callAPI(t, h, "/v1/detect", []byte(`{"content":`+jsonString(prose)+`}`))

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	metricsDump, err := json.Marshal(rm)
	if err != nil {
		t.Fatal(err)
	}
	spanDump := fmt.Sprintf("%+v", spans.GetSpans())
	logDump := logs.String()

	// The captures hold what they should, so the scan below means something.
	for _, want := range []string{"aegis_requests_total", "aegis_secrets_detected_total", "aegis_request_duration_seconds",
		"aegis_upstream_errors_total", "aegis_vault_entries", `"KEY"`, `"CONN"`} {
		if !strings.Contains(string(metricsDump), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, want := range []string{`"request_id":"req_`, `"provider":"anthropic"`, `"model":"gemini-2.5-pro"`, `"detections":3`, `"status":"502"`, "exchange aborted"} {
		if !strings.Contains(logDump, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	if !strings.Contains(spanDump, "aegis.request_body") {
		t.Error("no request_body span")
	}

	for name, dump := range map[string]string{"logs": logDump, "metrics": string(metricsDump), "spans": spanDump} {
		assertNoSecret(t, name, []byte(dump))
		if strings.Contains(dump, "tk_test_") || strings.Contains(dump, "tk_live_") {
			t.Errorf("%s contain a key prefix followed by something", name)
		}
	}
}
