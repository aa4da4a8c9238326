package benchkit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// orgSecret is the fabricated token secret of the bench organisation.
const orgSecret = "bench-org-token-secret-fabricated-0123456789" //nolint:gosec // G101: fabricated for the bench

// Gateway is an in-process gateway wired as `takumo-aegis gateway` wires it
// by default: the real ext_proc server with the built-in catalog, reached
// over gRPC on an in-memory listener with the gateway's and the server's
// own options.
type Gateway struct {
	URL  string
	stop func() error
}

// Close stops the gateway, the gRPC server and the ext_proc server.
func (g *Gateway) Close() error { return g.stop() }

// StartGateway starts a gateway on addr ("" means a free loopback port)
// that routes anthropic to providerURL. Logs go to log (nil: discarded).
func StartGateway(addr, providerURL string, log *slog.Logger) (*Gateway, error) {
	return StartGatewayWith(addr, providerURL, GatewayOptions{Logger: log})
}

// Result is one request's outcome as the client saw it.
type Result struct {
	Status  int
	Body    []byte
	Elapsed time.Duration
}

// Post sends body to base+/v1/messages as an Anthropic tool would (x-api-key
// with the Takumo key, a session header when session is not empty) and
// reads the whole answer. via is sent in X-Bench-Path.
func Post(ctx context.Context, c *http.Client, base string, body []byte, via, session string, extra http.Header) (Result, error) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/messages", bytes.NewReader(body))
	if err != nil {
		return Result{}, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	req.Header.Set("X-Api-Key", TakumoKey)
	req.Header.Set(HeaderPath, via)
	if session != "" {
		req.Header.Set("X-Claude-Code-Session-Id", session)
	}
	for k, vs := range extra {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("post: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return Result{}, fmt.Errorf("read answer: %w", err)
	}
	return Result{Status: resp.StatusCode, Body: out, Elapsed: time.Since(start)}, nil
}

// CheckAnswer reports an error unless r is a 200 whose body holds every
// planted value (rehydrated, when it came through the gateway).
func CheckAnswer(r Result) error {
	if r.Status != http.StatusOK {
		return fmt.Errorf("status %d: %.200s", r.Status, r.Body)
	}
	for _, s := range Secrets() {
		if !bytes.Contains(r.Body, []byte(s)) {
			return fmt.Errorf("answer lacks a planted value (%d bytes of answer)", len(r.Body))
		}
	}
	return nil
}

// NewClient is a keep-alive HTTP/1.1 client with conns connections per
// host.
func NewClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns:        conns * 4,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}}
}
