package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/structpb"
)

// fakeExtProc is a real ext_proc gRPC server whose behaviour each test
// scripts. By default it passes everything through.
type fakeExtProc struct {
	extprocv3.UnimplementedExternalProcessorServer

	// process, when set, replaces the scripted loop entirely.
	process func(extprocv3.ExternalProcessor_ProcessServer) error

	// Scripted replies per phase; nil means a plain CONTINUE. Returning
	// errClose ends the stream with OK, any other error with that status.
	onRequestHeaders  func(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error)
	onRequestBody     func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error)
	onResponseHeaders func(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error)
	onResponseBody    func(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error)

	mu   sync.Mutex
	msgs []*extprocv3.ProcessingRequest // guarded by mu
}

// errClose makes the scripted loop return nil: an OK close.
var errClose = errors.New("close with OK")

func (f *fakeExtProc) received() []*extprocv3.ProcessingRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*extprocv3.ProcessingRequest(nil), f.msgs...)
}

func (f *fakeExtProc) Process(s extprocv3.ExternalProcessor_ProcessServer) error {
	if f.process != nil {
		return f.process(s)
	}
	for {
		req, err := s.Recv()
		if err != nil {
			return nil //nolint:nilerr // EOF or cancel: the client is done
		}
		f.mu.Lock()
		f.msgs = append(f.msgs, req)
		f.mu.Unlock()
		var resp *extprocv3.ProcessingResponse
		switch m := req.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			resp, err = callOr(f.onRequestHeaders, m.RequestHeaders, continueRequestHeaders())
		case *extprocv3.ProcessingRequest_RequestBody:
			resp, err = callOr(f.onRequestBody, m.RequestBody, continueRequestBody(nil))
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			resp, err = callOr(f.onResponseHeaders, m.ResponseHeaders, continueResponseHeaders(nil))
		case *extprocv3.ProcessingRequest_ResponseBody:
			resp, err = callOr(f.onResponseBody, m.ResponseBody, continueResponseBody(nil))
		}
		if errors.Is(err, errClose) {
			return nil
		}
		if err != nil {
			return err
		}
		if resp != nil {
			if err := s.Send(resp); err != nil {
				return nil //nolint:nilerr // client gone
			}
		}
	}
}

func callOr[T any](fn func(T) (*extprocv3.ProcessingResponse, error), arg T, def *extprocv3.ProcessingResponse) (*extprocv3.ProcessingResponse, error) {
	if fn == nil {
		return def, nil
	}
	return fn(arg)
}

func continueRequestHeaders() *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}}
}

func continueRequestBody(cr *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: cr}}}
}

func continueResponseHeaders(cr *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{Response: cr}}}
}

func continueResponseBody(cr *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{Response: cr}}}
}

func setHeader(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, RawValue: []byte(value)}}
}

func immediate(code int, body string, hdrs ...*corev3.HeaderValueOption) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
		Status:  &typev3.HttpStatus{Code: typev3.StatusCode(code)},
		Body:    []byte(body),
		Headers: &extprocv3.HeaderMutation{SetHeaders: hdrs},
	}}}
}

// identityMetadata is what the ext_proc server puts in takumo.aegis.
func identityMetadata(org, keyID, requestID string) *structpb.Struct {
	return &structpb.Struct{Fields: map[string]*structpb.Value{
		MetadataNamespace: structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
			"org":        structpb.NewStringValue(org),
			"key_id":     structpb.NewStringValue(keyID),
			"request_id": structpb.NewStringValue(requestID),
		}}),
	}}
}

// routeTo is a request-body reply that routes to provider and fixes the
// body, the way the ext_proc server does.
func routeTo(provider string, body []byte) *extprocv3.ProcessingResponse {
	set := []*corev3.HeaderValueOption{setHeader(routingHeader, provider), setHeader(identityHeaderOrg, "org_1"), setHeader(identityHeaderKeyID, "key_1")}
	cr := &extprocv3.CommonResponse{ClearRouteCache: true, HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: set}}
	if body != nil {
		cr.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: body}}
		cr.HeaderMutation.SetHeaders = append(cr.HeaderMutation.SetHeaders, setHeader("content-length", itoa(len(body))))
	}
	return continueRequestBody(cr)
}

// routeHeaders is a request-headers reply that routes (for bodiless
// requests).
func routeHeaders(provider string) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{
		Response: &extprocv3.CommonResponse{ClearRouteCache: true, HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader(routingHeader, provider)}}},
	}}}
}

// harness is a gateway wired to a fake ext_proc over bufconn and to
// httptest upstreams.
type harness struct {
	t       *testing.T
	fake    *fakeExtProc
	gw      *Gateway
	front   *httptest.Server
	conn    *grpc.ClientConn
	logs    *lockedBuffer
	metrics http.Handler
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newHarness(t testing.TB, fake *fakeExtProc, upstream string, mod func(*Config)) *harness {
	t.Helper()
	return newHarnessWith(t, fake, upstream, mod,
		[]grpc.ServerOption{grpc.MaxRecvMsgSize(64 << 20), grpc.MaxSendMsgSize(64 << 20)},
		ExtProcDialOptions(64<<20))
}

func newHarnessWith(t testing.TB, fake *fakeExtProc, upstream string, mod func(*Config), srvOpts []grpc.ServerOption, dialOpts []grpc.DialOption) *harness {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(srvOpts...)
	extprocv3.RegisterExternalProcessorServer(srv, fake)
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufnet", append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, dialOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	cfg := Config{
		ExtProc: conn,
		Logger:  slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if upstream != "" {
		u, err := url.Parse(upstream)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Upstreams = map[string]*url.URL{"anthropic": u, "openai": u}
	}
	if mod != nil {
		mod(&cfg)
	}
	gw, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(gw.Handler())
	h := &harness{fake: fake, gw: gw, front: front, conn: conn, logs: logs, metrics: gw.metricsH}
	if tt, ok := t.(*testing.T); ok {
		h.t = tt
	}
	t.Cleanup(func() {
		front.CloseClientConnections()
		front.Close()
		_ = conn.Close()
		srv.Stop()
	})
	return h
}

func itoa(n int) string { return strconv.Itoa(n) }

// reply is what a test looks at in a response whose body was read whole.
type reply struct {
	StatusCode    int
	Header        http.Header
	ContentLength int64
}

// do sends a request through the gateway and reads the whole response.
func (h *harness) do(t *testing.T, method, path, body string, hdr map[string]string) (*reply, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, h.front.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := h.front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	return &reply{resp.StatusCode, resp.Header, resp.ContentLength}, string(b)
}

// recordingUpstream records what it received and answers with a fixed
// JSON body.
type recordingUpstream struct {
	mu      sync.Mutex
	reqs    []*http.Request
	bodies  []string
	answer  string
	handler http.HandlerFunc
	srv     *httptest.Server
}

func newRecordingUpstream(t testing.TB, answer string) *recordingUpstream {
	u := &recordingUpstream{answer: answer}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, r)
		u.bodies = append(u.bodies, string(b))
		hf := u.handler
		u.mu.Unlock()
		if hf != nil {
			hf(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, u.answer)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *recordingUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

func (u *recordingUpstream) last() (*http.Request, string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		return nil, ""
	}
	return u.reqs[len(u.reqs)-1], u.bodies[len(u.bodies)-1]
}

// waitFor guards a step that must happen; it fails the test instead of
// hanging when the gateway deadlocks.
func waitFor[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}
