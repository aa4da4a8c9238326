package extproc

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/takumo/aegis/detect"
	"github.com/takumo/aegis/llm"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Fabricated credentials: right prefix, length and charset, never issued.
const (
	testKey      = "tk_test_3f9a1c7e5b2d4f608a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e1f"
	testKey2     = "tk_test_0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c"
	liveKey      = "tk_live_9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d"
	readOnlyKey  = "tk_test_aaaa1111bbbb2222cccc3333dddd4444eeee5555ffff6666aaaa7777bbbb8888"
	anthropicPK  = "sk-ant-api03-Fq2ZbX9vK3mN7pL1rT5wY8aC4dE6gH0jQ2sU4xW6zB8nM1kP3oR5tV7yA9cF2hJ4lN6qS8uX0aD3gK5mP7rT9vY1bE4hK6nQ8tW0zC2fI4lO6rU8xA-Zq7Yw3AA"
	openAIPK     = "sk-proj-Lm4Np6Qr8St0Uv2Wx4Yz6Ab8Cd0Ef2Gh4Ij6Kl8Mn0Op2Qr4St6Uv8Wx0Yz2Ab4Cd6Ef8Gh0Ij2Kl4Mn6Op8Qr0St2Uv4Wx6Yz8AbT3BlbkFJq1Rs3Tu5Vw7Xy9Za1Bc3De"
	mistralPK    = "Zq8Wm3Rt6Yp1Lk4Hs7Dv0Nb2Xc5Gf9Ja"
	geminiPK     = "AIzaSyD4k8Pq2Wx6Zr0Tv3Ym7Bn1Lc5Hf9Js2Ke"
	awsKeyID     = "AKIA4HJX7QWERT2UVMNP"
	ghToken      = "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"
	pgURL        = "postgres://app:Xk9mQ2vL7pR4wz@db.example.com:5432/app"
	trickyPasswd = "p\"a\\ss\nwörd-Zq8"
)

var orgSecret = []byte("fabricated-org-token-secret-0123456789")

// plantedSecrets are every value that must never reach a provider, a log
// line or a metric.
var plantedSecrets = []string{awsKeyID, ghToken, pgURL, "Xk9mQ2vL7pR4wz", testKey, testKey2, liveKey, anthropicPK, openAIPK, geminiPK, mistralPK}

type harness struct {
	srv    *Server
	client extprocv3.ExternalProcessorClient
	keys   *MemKeys
}

type harnessOpt func(*Config)

func newEngine(t testing.TB, opts detect.Options) *detect.Engine {
	t.Helper()
	e, err := detect.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// testOrgPlan is the plan of the harness's organizations.
func testOrgPlan(org string) string {
	if org == "org_other" {
		return "free"
	}
	return "pro"
}

// newHarness starts a Server on an in-memory gRPC connection.
func newHarness(t testing.TB, opts ...harnessOpt) *harness {
	t.Helper()
	keys := NewMemKeys()
	for _, k := range []struct {
		key string
		id  Identity
	}{
		{testKey, Identity{KeyID: "key_test1", Org: "org_acme", Plan: "pro", Scopes: []string{ScopeShieldWrite}}},
		{testKey2, Identity{KeyID: "key_test2", Org: "org_other", Plan: "free", Scopes: []string{ScopeShieldWrite}}},
		{liveKey, Identity{KeyID: "key_live1", Org: "org_acme", Plan: "pro", Scopes: []string{ScopeShieldWrite}}},
		{readOnlyKey, Identity{KeyID: "key_ro", Org: "org_acme", Plan: "pro", Scopes: []string{"shield:read"}}},
	} {
		if err := keys.Add(k.key, k.id); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{
		KeyStore: keys,
		ProviderKeys: StaticProviderKeys{
			llm.Anthropic: anthropicPK, llm.OpenAI: openAIPK, llm.Mistral: mistralPK, llm.Gemini: geminiPK,
		},
		Engine:        sharedEngine(t),
		EngineOptions: &detect.Options{},
		OrgSecret:     func(string) []byte { return orgSecret },
		OrgPlan:       testOrgPlan,
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lis := bufconn.Listen(1 << 20)
	g := grpc.NewServer(ServerOptions(cfg.MaxBodyBytes)...)
	srv.Register(g)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = g.Serve(lis)
	}()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30), grpc.MaxCallSendMsgSize(1<<30)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		g.Stop()
		<-served
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	return &harness{srv: srv, client: extprocv3.NewExternalProcessorClient(conn), keys: keys}
}

var (
	engineOnce sync.Once
	engineVal  *detect.Engine
	engineErr  error
)

// sharedEngine builds the built-in catalog once per test binary (an Engine
// is immutable and safe for concurrent use).
func sharedEngine(t testing.TB) *detect.Engine {
	t.Helper()
	engineOnce.Do(func() { engineVal, engineErr = detect.New(detect.Options{}) })
	if engineErr != nil {
		t.Fatal(engineErr)
	}
	return engineVal
}

// exchange is one scripted ext_proc stream, played the way Envoy plays it.
type exchange struct {
	t      testing.TB
	stream extprocv3.ExternalProcessor_ProcessClient
	cancel context.CancelFunc
	first  bool
}

func (h *harness) open(t testing.TB) *exchange {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := h.client.Process(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	e := &exchange{t: t, stream: st, cancel: cancel, first: true}
	t.Cleanup(cancel)
	return e
}

func (e *exchange) send(r *extprocv3.ProcessingRequest) {
	e.t.Helper()
	if e.first {
		r.ProtocolConfig = &extprocv3.ProtocolConfiguration{
			RequestBodyMode:  extprocfilterv3.ProcessingMode_BUFFERED,
			ResponseBodyMode: extprocfilterv3.ProcessingMode_BUFFERED,
		}
		e.first = false
	}
	if err := e.stream.Send(r); err != nil {
		e.t.Fatalf("send: %v", err)
	}
}

func (e *exchange) recv() *extprocv3.ProcessingResponse {
	e.t.Helper()
	r, err := e.stream.Recv()
	if err != nil {
		e.t.Fatalf("recv: %v", err)
	}
	return r
}

func (e *exchange) roundTrip(r *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	e.t.Helper()
	e.send(r)
	return e.recv()
}

// closeOK half-closes and expects the server to have ended the stream with
// OK (the exchange complete).
func (e *exchange) closeOK() {
	e.t.Helper()
	if err := e.end(); err != nil {
		e.t.Fatalf("stream ended with %v, want OK", err)
	}
}

// end half-closes and returns the stream's final status (nil for OK).
func (e *exchange) end() error {
	_ = e.stream.CloseSend()
	for {
		_, err := e.stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		e.t.Fatalf("unexpected extra response")
	}
}

func headerMap(kv ...string) *corev3.HeaderMap {
	m := &corev3.HeaderMap{}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Headers = append(m.Headers, &corev3.HeaderValue{Key: strings.ToLower(kv[i]), RawValue: []byte(kv[i+1])})
	}
	return m
}

func reqHeaders(eos bool, kv ...string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: headerMap(kv...), EndOfStream: eos}}}
}

func reqBody(b []byte) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: b, EndOfStream: true}}}
}

func respHeaders(eos bool, kv ...string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &extprocv3.HttpHeaders{Headers: headerMap(kv...), EndOfStream: eos}}}
}

func respBody(b []byte, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
		ResponseBody: &extprocv3.HttpBody{Body: b, EndOfStream: eos}}}
}

// postHeaders are the headers of a JSON POST with a Takumo key.
func postHeaders(path string, body []byte, extra ...string) *extprocv3.ProcessingRequest {
	kv := append([]string{":method", "POST", ":path", path, ":authority", "gateway.local",
		"content-type", "application/json", "content-length", strconv.Itoa(len(body))}, extra...)
	return reqHeaders(false, kv...)
}

// mutated is a header map after a mutation, as Envoy would hold it.
type mutated map[string]string

func applyMutation(base map[string]string, m *extprocv3.HeaderMutation) mutated {
	out := mutated{}
	for k, v := range base {
		out[k] = v
	}
	for _, k := range m.GetRemoveHeaders() {
		delete(out, k)
	}
	for _, h := range m.GetSetHeaders() {
		out[h.GetHeader().GetKey()] = string(h.GetHeader().GetRawValue())
	}
	return out
}

// immediateOf returns the immediate response of r, failing if there is none.
func immediateOf(t testing.TB, r *extprocv3.ProcessingResponse) *extprocv3.ImmediateResponse {
	t.Helper()
	ir := r.GetImmediateResponse()
	if ir == nil {
		t.Fatalf("want an immediate response, got %T", r.GetResponse())
	}
	return ir
}

func headerOf(m *extprocv3.HeaderMutation, key string) (string, bool) {
	for _, h := range m.GetSetHeaders() {
		if h.GetHeader().GetKey() == key {
			return string(h.GetHeader().GetRawValue()), true
		}
	}
	return "", false
}

func statusCode(err error) string {
	return status.Code(err).String()
}
