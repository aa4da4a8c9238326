package benchkit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/takumo/aegis/detect"
	"github.com/takumo/aegis/extproc"
	"github.com/takumo/aegis/gateway"
	"github.com/takumo/aegis/internal/memconn"
	"github.com/takumo/aegis/llm"
	"github.com/takumo/aegis/policy"
)

// Org is the organisation of the bench key (TakumoKey).
const Org = "standalone"

// GatewayOptions are the parts of an in-process gateway a measurement may
// choose. The zero value is the gateway StartGateway starts.
type GatewayOptions struct {
	// Logger receives the gateway's logs (nil: discarded).
	Logger *slog.Logger
	// Policy decides every request (nil: the ext_proc server's own engine
	// with the embedded policy).
	Policy *policy.Engine
	// TracerProvider receives the gateway's and the ext_proc server's
	// spans (nil: none).
	TracerProvider trace.TracerProvider
	// Echo replaces the ext_proc server with echoExtProc, which echoes each
	// body and does none of the product's work: the ceiling measurement.
	Echo bool
}

// StartGatewayWith starts a gateway on addr ("" means a free loopback
// port) that routes anthropic to providerURL, wired as StartGateway wires
// it, with the choices of opts.
func StartGatewayWith(addr, providerURL string, opts GatewayOptions) (*Gateway, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	up, err := url.Parse(providerURL)
	if err != nil {
		return nil, fmt.Errorf("provider url: %w", err)
	}
	detOpts := detect.Options{}
	det, err := detect.New(detOpts)
	if err != nil {
		return nil, fmt.Errorf("detector: %w", err)
	}
	if opts.Policy == nil {
		if opts.Policy, err = unlimitedPolicy(log); err != nil {
			return nil, err
		}
	}
	keys := extproc.NewMemKeys()
	if err := keys.Add(TakumoKey, extproc.Identity{KeyID: "key_bench", Org: Org,
		Mode: extproc.ModeTest, Scopes: []string{extproc.ScopeShieldWrite}}); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	cfg := extproc.Config{
		KeyStore:       keys,
		ProviderKeys:   extproc.StaticProviderKeys{llm.Anthropic: ProviderKey},
		OrgSecret:      func(string) []byte { return []byte(orgSecret) },
		Logger:         log,
		Engine:         det,
		Policy:         opts.Policy,
		TracerProvider: opts.TracerProvider,
	}
	if opts.Policy != nil {
		// As `takumo-aegis gateway` runs it: the detection engine is
		// rebuilt from these options when the policy's detection
		// settings change.
		cfg.EngineOptions = &detOpts
	}
	srv, err := extproc.NewServer(cfg)
	if err != nil {
		return nil, fmt.Errorf("extproc: %w", err)
	}
	lis := memconn.Listen()
	gs := grpc.NewServer(extproc.ServerOptions(0)...)
	if opts.Echo {
		extprocv3.RegisterExternalProcessorServer(gs, echoExtProc{})
	} else {
		srv.Register(gs)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	stopGRPC := func() {
		gs.Stop()
		<-served
	}
	conn, err := grpc.NewClient("passthrough:///in-process", append(gateway.ExtProcDialOptions(0),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))...)
	if err != nil {
		stopGRPC()
		return nil, errors.Join(fmt.Errorf("grpc client: %w", err), srv.Close())
	}
	gw, err := gateway.New(gateway.Config{
		ExtProc:   conn,
		Upstreams: map[string]*url.URL{"anthropic": up},
		RateLimits: gateway.RateLimits{
			PerKey: gateway.Limit{RequestsPerMinute: 100_000_000},
			PerOrg: gateway.Limit{RequestsPerMinute: 100_000_000},
		},
		Logger:         log,
		TracerProvider: opts.TracerProvider,
	})
	if err != nil {
		_ = conn.Close()
		stopGRPC()
		return nil, errors.Join(fmt.Errorf("gateway: %w", err), srv.Close())
	}
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", addr)
	if err != nil {
		_ = conn.Close()
		stopGRPC()
		return nil, errors.Join(fmt.Errorf("listen: %w", err), srv.Close())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, ln) }()
	return &Gateway{
		URL: "http://" + ln.Addr().String(),
		stop: func() error {
			cancel()
			err := <-done
			_ = conn.Close()
			stopGRPC()
			return errors.Join(err, srv.Close())
		},
	}, nil
}

// unlimitedPolicy is the embedded policy with every plan's rate limits
// off (-1): the load measurements measure the gateway, not the limiter
// (the enterprise plan allows 500 requests a minute).
func unlimitedPolicy(log *slog.Logger) (*policy.Engine, error) {
	ctx := context.Background()
	p, err := policy.Embedded()
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	plans, ok := p.Data["plans"].(map[string]any)
	if !ok {
		return nil, errors.New("policy: the embedded data has no plans")
	}
	for _, pl := range plans {
		if m, ok := pl.(map[string]any); ok {
			m["rate_limits"] = map[string]any{"per_minute": -1, "per_hour": -1}
		}
	}
	p.Source, p.Revision = "bench", "bench-unlimited"
	e, err := policy.New(ctx, policy.Options{Logger: log, Sink: policy.DiscardSink{}})
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if err := e.Load(ctx, p); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return e, nil
}
