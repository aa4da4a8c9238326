package gateway

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestClientDisconnectMidStreamLeaksNothing(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })

	upstreamCancelled := make(chan struct{})
	up := newRecordingUpstream(t, "")
	up.handler = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(upstreamCancelled)
	}
	extprocEnded := make(chan struct{})
	fake := &fakeExtProc{}
	inner := &fakeExtProc{
		onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
			return routeTo("anthropic", nil), nil
		},
		onResponseHeaders: func(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) { return streamingOverride(), nil },
	}
	fake.process = func(s extprocv3.ExternalProcessor_ProcessServer) error {
		defer close(extprocEnded)
		return inner.Process(s)
	}
	h := newHarness(t, fake, up.srv.URL, nil)

	handlerDone := make(chan struct{})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(handlerDone)
		h.gw.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, front.URL+"/v1/messages", strings.NewReader(`{}`))
	resp, err := front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first line %q %v", line, err)
	}
	cancel() // the client goes away mid-stream
	_ = resp.Body.Close()

	waitFor(t, upstreamCancelled, "the upstream request to be cancelled")
	waitFor(t, extprocEnded, "the ext_proc stream to end")
	waitFor(t, handlerDone, "the gateway handler to return")
}

func TestServeShutsDownGracefully(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{})
	up := newRecordingUpstream(t, "")
	up.handler = func(w http.ResponseWriter, _ *http.Request) {
		close(arrived)
		<-release
		_, _ = io.WriteString(w, `{"ok":true}`)
	}
	fake := &fakeExtProc{onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
		return routeTo("anthropic", nil), nil
	}}
	h := newHarness(t, fake, up.srv.URL, nil)

	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- h.gw.Serve(ctx, ln) }()

	type result struct {
		status int
		body   string
		err    error
	}
	inflight := make(chan result, 1)
	go func() {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+ln.Addr().String()+"/v1/messages", strings.NewReader(`{}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			inflight <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		inflight <- result{resp.StatusCode, string(b), err}
	}()
	waitFor(t, arrived, "the in-flight request to reach the upstream")
	stop()

	// Once draining, new requests get 503 SERVICE_UNAVAILABLE.
	deadline := time.Now().Add(10 * time.Second)
	for !h.gw.draining.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the gateway never started draining")
		}
		time.Sleep(time.Millisecond)
	}
	rec := httptest.NewRecorder()
	h.gw.Handler().ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/v1/messages", strings.NewReader(`{}`)))
	if rec.Code != http.StatusServiceUnavailable || decodeError(t, rec.Body.String()).Code != codeUnavailable {
		t.Errorf("new request while draining: %d %s", rec.Code, rec.Body.String())
	}
	if rec.Header().Get(canonicalRequestID) == "" {
		t.Error("503 without X-Aegis-Request-Id")
	}

	close(release)
	r := waitFor(t, inflight, "the in-flight request to finish")
	if r.err != nil || r.status != http.StatusOK || r.body != `{"ok":true}` {
		t.Errorf("in-flight request: %+v", r)
	}
	if err := waitFor(t, served, "Serve to return"); err != nil {
		t.Errorf("Serve: %v", err)
	}
	if c, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", ln.Addr().String()); err == nil {
		_ = c.Close()
		t.Error("the listener is still open")
	}
}

// TestHTTP2ClientSeesStreamReset runs the gateway with Serve (cleartext
// HTTP/2 enabled) and breaks ext_proc mid-stream: an HTTP/2 client must see
// the stream reset, not a clean end.
func TestHTTP2ClientSeesStreamReset(t *testing.T) {
	up := sseUpstream(t, "data: a\n\n")
	fake := &fakeExtProc{
		onRequestBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
			return routeTo("anthropic", nil), nil
		},
		onResponseHeaders: func(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) { return streamingOverride(), nil },
		onResponseBody: func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
			return nil, status.Error(codes.Internal, "rehydrator crashed")
		},
	}
	h := newHarness(t, fake, up.srv.URL, nil)
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- h.gw.Serve(ctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+ln.Addr().String()+"/v1/messages", strings.NewReader(`{}`))
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
	}
	if b, err := io.ReadAll(resp.Body); err == nil {
		t.Fatalf("clean end after %q", b)
	}
}
