package e2e

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/takumo/aegis/detect"
	"github.com/takumo/aegis/e2e/fakeprovider"
	"github.com/takumo/aegis/extproc"
	aegisgateway "github.com/takumo/aegis/gateway"
	"github.com/takumo/aegis/keys"
	"github.com/takumo/aegis/llm"
)

// The lifecycle tests need the key store of a running gateway, which
// cli.Main keeps to itself, so they build the standalone gateway as
// `takumo-aegis gateway` does (cli/gateway.go, cli/extproc.go): the
// ext_proc server over gRPC on an in-memory listener, the gateway package
// on a loopback port, every provider pointed at a fake one.
const (
	lifecycleOrg   = "org_lifecycle"
	lifecycleKeyA  = "key_a" // the key whose life the tests walk
	lifecycleKeyB  = "key_b" // another key of the same org, never touched
	lifecycleToken = "lifecycle-org-token-secret-fabricated-0123456789"
)

// lifecycleGateway is one in-process standalone gateway with two keys of
// one org.
type lifecycleGateway struct {
	a, b *gateway // the gateway as the holders of key A and key B see it
	keys *extproc.MemKeys
	logs *syncBuffer // every log line of the gateway and the ext_proc server
}

// newTestKey makes a fresh tk_test_ key (its raw value: the test presents it).
func newTestKey(t *testing.T) string {
	t.Helper()
	k, err := keys.Generate(keys.ModeTest, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k.Reveal()
}

// startLifecycleGateway starts the gateway; it stops when the test ends, or
// earlier through a.stop (idempotent).
func startLifecycleGateway(t *testing.T, p *fakeprovider.Server) *lifecycleGateway {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	lg := &lifecycleGateway{keys: extproc.NewMemKeys(), logs: logs}
	keyA, keyB := newTestKey(t), newTestKey(t)
	for id, k := range map[string]string{lifecycleKeyA: keyA, lifecycleKeyB: keyB} {
		if err := lg.keys.Add(k, extproc.Identity{KeyID: id, Org: lifecycleOrg, Mode: extproc.ModeTest,
			Scopes: []string{extproc.ScopeShieldWrite}}); err != nil {
			t.Fatal(err)
		}
	}
	detOpts := detect.Options{}
	det, err := detect.New(detOpts)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := extproc.NewServer(extproc.Config{
		KeyStore:      lg.keys,
		ProviderKeys:  extproc.StaticProviderKeys{llm.Anthropic: anthropicProviderKey, llm.OpenAI: openAIProviderKey},
		Engine:        det,
		EngineOptions: &detOpts,
		OrgSecret:     func(string) []byte { return []byte(lifecycleToken) },
		Mode:          extproc.ModeTest,
		Logger:        log,
	})
	if err != nil {
		t.Fatal(err)
	}
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer(extproc.ServerOptions(0)...)
	srv.Register(gs)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	conn, err := grpc.NewClient("passthrough:///in-process", append(aegisgateway.ExtProcDialOptions(0),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))...)
	if err != nil {
		t.Fatal(err)
	}
	up, err := url.Parse(p.URL())
	if err != nil {
		t.Fatal(err)
	}
	gw, err := aegisgateway.New(aegisgateway.Config{
		ExtProc:   conn,
		Upstreams: map[string]*url.URL{"anthropic": up, "openai": up, "mistral": up, "gemini": up},
		// Far above what the tests send: a 429 would hide a 401.
		RateLimits: aegisgateway.RateLimits{
			PerKey: aegisgateway.Limit{RequestsPerMinute: 1_000_000},
			PerOrg: aegisgateway.Limit{RequestsPerMinute: 1_000_000},
		},
		Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := new(net.ListenConfig).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("gateway: %v", err)
			}
			_ = conn.Close()
			gs.Stop()
			<-served
			if err := srv.Close(); err != nil {
				t.Errorf("extproc: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	base := "http://" + ln.Addr().String()
	lg.a = &gateway{base: base, key: keyA, stderr: logs, stop: stop}
	lg.b = &gateway{base: base, key: keyB, stderr: logs, stop: stop}
	return lg
}

// neverUpstream is what the provider must never receive: the planted
// values and both Takumo keys.
func (lg *lifecycleGateway) neverUpstream() []string {
	return append(neverUpstream(lg.a), lg.b.key)
}

// neverLogged is what the logs must never hold: neverUpstream and the
// provider keys.
func (lg *lifecycleGateway) neverLogged() []string {
	return append(lg.neverUpstream(), anthropicProviderKey, openAIProviderKey)
}

// assertLogsHoldNoSecret stops the gateway (so every log line is written)
// and fails if any secret, Takumo key or provider key is in its logs.
func (lg *lifecycleGateway) assertLogsHoldNoSecret(t *testing.T) {
	t.Helper()
	lg.a.stop()
	logs := lg.logs.String()
	if !strings.Contains(logs, `"request_id"`) {
		t.Fatalf("no request logs captured:\n%.500s", logs)
	}
	for i, s := range lg.neverLogged() {
		for _, f := range forms(s) {
			if strings.Contains(logs, f) {
				t.Errorf("the logs hold secret #%d (%d bytes)", i, len(s))
				break
			}
		}
	}
}

// lifecycleProvider answers Chat Completions and Messages requests with the
// echo models of the other e2e tests.
func lifecycleProvider(t *testing.T) *fakeprovider.Server {
	return fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
		if strings.HasSuffix(r.Path, "/chat/completions") {
			w.JSON(http.StatusOK, chatEcho(t, r).JSON())
			return
		}
		w.JSON(http.StatusOK, anthropicEcho(t, r).JSON())
	})
}

// sdk names the official client a step sends its request with.
type sdk string

const (
	sdkAnthropic sdk = "anthropic"
	sdkOpenAI    sdk = "openai"
)

// send sends one request as g's key holder with client c and checks a
// successful answer; a refusal comes back as the SDK's error.
func send(ctx context.Context, t *testing.T, g *gateway, c sdk) error {
	t.Helper()
	if c == sdkOpenAI {
		resp, err := openAIClient(g).Chat.Completions.New(ctx, chatParams(prompt))
		if err == nil {
			checkChatCompletion(t, resp)
		}
		return err
	}
	msg, err := anthropicClient(g).Messages.New(ctx, anthropicParams(prompt))
	if err == nil {
		checkAnthropicMessage(t, msg)
	}
	return err
}

// wantRefused checks that err is client c's typed API error for a 401
// UNAUTHORIZED DESIGN §6 body whose message says which state the key is in
// (word: "disabled" or "revoked", and not the other: the holder of a
// disabled key can have it enabled, the holder of a revoked one needs a new
// key) and does not hold the key.
func wantRefused(t *testing.T, err error, c sdk, g *gateway, word string) {
	t.Helper()
	var ae *anthropic.Error
	var oe *openai.Error
	switch {
	case c == sdkAnthropic && !errors.As(err, &ae), c == sdkOpenAI && !errors.As(err, &oe):
		t.Fatalf("got %v, want the %s SDK's API error", err, c)
	}
	r := sdkErrorReply(t, err)
	e := wantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
	other := map[string]string{"disabled": "revoked", "revoked": "disabled"}[word]
	if !strings.Contains(e.Error.Message, word) || strings.Contains(e.Error.Message, other) {
		t.Errorf("message %q should say the key is %s, and not %s", e.Error.Message, word, other)
	}
	if strings.Contains(string(r.body), g.key) || strings.Contains(string(r.body), g.key[len(g.key)-16:]) {
		t.Error("the error body holds the key")
	}
}

// wantNewUpstream checks that the provider received exactly n requests
// since it had received before, each for c with the configured provider
// key and one token per planted secret, and returns the new count.
func wantNewUpstream(t *testing.T, p *fakeprovider.Server, before, n int, c sdk) int {
	t.Helper()
	reqs := p.Requests()
	if got := len(reqs) - before; got != n {
		t.Fatalf("the provider received %d new requests, want %d", got, n)
	}
	for _, r := range reqs[before:] {
		switch c {
		case sdkOpenAI:
			if r.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer "+openAIProviderKey {
				t.Errorf("provider got %s without the OpenAI provider key", r.Path)
			}
		default:
			if r.Path != "/v1/messages" || r.Header.Get("X-Api-Key") != anthropicProviderKey {
				t.Errorf("provider got %s without the Anthropic provider key", r.Path)
			}
		}
		if toks := fakeprovider.Tokens(r.Body); len(toks) != len(planted) {
			t.Errorf("provider got %d distinct tokens, want %d", len(toks), len(planted))
		}
	}
	return len(reqs)
}

// TestKeyLifecycle walks one key through its life on a running standalone
// gateway, as the official SDKs see it (issue 4): a state change takes
// effect on the very next request, a disabled key can be enabled again, a
// revoked key cannot, and another key of the same org keeps working
// throughout. A refused request reaches no provider.
func TestKeyLifecycle(t *testing.T) {
	t.Parallel()
	p := lifecycleProvider(t)
	defer p.Close()
	lg := startLifecycleGateway(t, p)
	ctx := t.Context()

	steps := []struct {
		name      string
		action    func(context.Context, string) error // on key A; nil: none
		actionErr error                               // what action returns (errors.Is); nil: success
		state     keys.State                          // key A's state afterwards
		client    sdk
		refused   string // the word the 401 message holds; "": the request succeeds
	}{
		{name: "active", state: keys.StateActive, client: sdkAnthropic},
		{name: "active through the OpenAI SDK", state: keys.StateActive, client: sdkOpenAI},
		{name: "disable", action: lg.keys.Disable, state: keys.StateDisabled, client: sdkAnthropic, refused: "disabled"},
		{name: "still disabled through the OpenAI SDK", state: keys.StateDisabled, client: sdkOpenAI, refused: "disabled"},
		{name: "enable", action: lg.keys.Enable, state: keys.StateActive, client: sdkAnthropic},
		{name: "revoke", action: lg.keys.Revoke, state: keys.StateRevoked, client: sdkAnthropic, refused: "revoked"},
		{name: "enable a revoked key", action: lg.keys.Enable, actionErr: keys.ErrRevokedFinal,
			state: keys.StateRevoked, client: sdkOpenAI, refused: "revoked"},
		{name: "disable a revoked key", action: lg.keys.Disable, actionErr: keys.ErrRevokedFinal,
			state: keys.StateRevoked, client: sdkAnthropic, refused: "revoked"},
		{name: "revoked stays refused", state: keys.StateRevoked, client: sdkAnthropic, refused: "revoked"},
	}
	seen := 0
	for _, st := range steps {
		// Steps run in order on one key: sequential subtests, no t.Parallel.
		t.Run(st.name, func(t *testing.T) {
			if st.action != nil {
				err := st.action(ctx, lifecycleKeyA)
				if st.actionErr == nil && err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
				if st.actionErr != nil && !errors.Is(err, st.actionErr) {
					t.Fatalf("%s: got %v, want %v", st.name, err, st.actionErr)
				}
			}
			rec, err := lg.keys.Get(ctx, lifecycleKeyA)
			if err != nil {
				t.Fatal(err)
			}
			if rec.State != st.state {
				t.Fatalf("key A is %s, want %s", rec.State, st.state)
			}

			err = send(ctx, t, lg.a, st.client)
			if st.refused == "" {
				if err != nil {
					t.Fatalf("key A (%s): %v", st.state, err)
				}
				seen = wantNewUpstream(t, p, seen, 1, st.client)
			} else {
				wantRefused(t, err, st.client, lg.a, st.refused)
				seen = wantNewUpstream(t, p, seen, 0, st.client)
			}

			if err := send(ctx, t, lg.b, sdkAnthropic); err != nil {
				t.Fatalf("key B, same org, while key A is %s: %v", st.state, err)
			}
			seen = wantNewUpstream(t, p, seen, 1, sdkAnthropic)
		})
	}
	assertProviderSawNoSecret(t, p, lg.neverUpstream())
	lg.assertLogsHoldNoSecret(t)
}

// lifecycleResult is one request of TestKeyLifecycleConcurrentRevoke.
type lifecycleResult struct {
	afterRevoke bool // the request started after Revoke had returned
	msg         *anthropic.Message
	err         error
}

// TestKeyLifecycleConcurrentRevoke: workers keep sending with key A while it
// is revoked. Every request that started after Revoke returned gets 401
// saying the key is revoked; requests in flight at that moment may end
// either way but in nothing else. Key B, of the same org, keeps getting
// 200 throughout, and the provider received exactly the answered requests.
func TestKeyLifecycleConcurrentRevoke(t *testing.T) {
	t.Parallel()
	const (
		workers    = 8
		warmup     = 2 // requests each worker completes before the revocation
		afterEach  = 3 // requests each worker starts after Revoke returned
		keyBWorker = workers
	)
	p := lifecycleProvider(t)
	defer p.Close()
	lg := startLifecycleGateway(t, p)
	ctx := t.Context()

	// revoked is set once Revoke has returned: a request that reads it
	// true before it starts started after the revocation. One that reads
	// false may have started just after it too and is merely allowed to
	// succeed.
	var revoked atomic.Bool
	var warm, done sync.WaitGroup
	results := make([][]lifecycleResult, workers+1)
	for w := range workers + 1 {
		g := lg.a
		if w == keyBWorker {
			g = lg.b
		}
		warm.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			// The answers are checked on the test's goroutine, after
			// done.Wait: a check here could stop this goroutine early.
			c := anthropicClient(g)
			n, after := 0, 0
			for after < afterEach {
				started := revoked.Load()
				msg, err := c.Messages.New(ctx, anthropicParams(prompt))
				results[w] = append(results[w], lifecycleResult{afterRevoke: started, msg: msg, err: err})
				// The loop cannot end before the revocation, which waits
				// for every worker's warmup: Done runs exactly once.
				if n++; n == warmup {
					warm.Done()
				}
				if started {
					after++
				}
			}
		}()
	}
	warm.Wait()
	if err := lg.keys.Revoke(ctx, lifecycleKeyA); err != nil {
		t.Fatal(err)
	}
	revoked.Store(true)
	done.Wait()

	var ok, refusedAfter, okInFlight, refusedInFlight int
	for w, rs := range results {
		for _, r := range rs {
			if r.err == nil {
				checkAnthropicMessage(t, r.msg)
				ok++
			}
			if w == keyBWorker {
				if r.err != nil {
					t.Errorf("key B, same org: %v", r.err)
				}
				continue
			}
			switch {
			case r.err == nil && r.afterRevoke:
				t.Errorf("worker %d: a request that started after Revoke returned succeeded", w)
			case r.err == nil:
				okInFlight++
			default:
				wantRefused(t, r.err, sdkAnthropic, lg.a, "revoked")
				if r.afterRevoke {
					refusedAfter++
				} else {
					refusedInFlight++
				}
			}
		}
	}
	if want := workers * afterEach; refusedAfter != want {
		t.Errorf("%d requests started after Revoke were refused, want %d", refusedAfter, want)
	}
	if n := len(p.Requests()); n != ok {
		t.Errorf("the provider received %d requests, but %d were answered: a refused request reached it", n, ok)
	}
	t.Logf("key A: %d answered and %d refused of those started before Revoke returned, %d refused of those started after; key B: %d answered",
		okInFlight, refusedInFlight, refusedAfter, len(results[keyBWorker]))
	assertProviderSawNoSecret(t, p, lg.neverUpstream())
	lg.assertLogsHoldNoSecret(t)
}
