package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/takumo/aegis/extproc"
	"github.com/takumo/aegis/gateway"
	"github.com/takumo/aegis/llm"
	"github.com/takumo/aegis/policy"
	"github.com/takumo/aegis/token"
)

// standaloneOrg is the one organisation of a standalone gateway or a
// coordinator-less ext_proc server: every configured key belongs to it and
// it uses the TAKUMO_*_API_KEY provider keys.
const (
	standaloneOrg = "standalone"
)

func (a *app) extprocCommand() *cobra.Command {
	var cf *configFlags
	cmd := &cobra.Command{
		Use:   "extproc",
		Short: "Run the ext_proc gRPC server for Envoy",
		Long: `Run the Envoy external processor (envoy.service.ext_proc.v3) alone, for an
Envoy in front of the AI providers: it authenticates Takumo keys, tokenizes
request bodies and rehydrates responses. It listens on --listen, a TCP
host:port or unix:/path, serves the gRPC health service, raises the gRPC
message limits to fit --max-body-bytes and stops gracefully on SIGINT or
SIGTERM.

Keys come from TAKUMO_API_KEYS (comma-separated), provider keys from
TAKUMO_ANTHROPIC_API_KEY, TAKUMO_OPENAI_API_KEY, TAKUMO_MISTRAL_API_KEY and
TAKUMO_GEMINI_API_KEY (or the --config file). See 'gateway --help' for the
precedence of flags, environment and file.`,
		Example: `  TAKUMO_API_KEYS=tk_live_… TAKUMO_ANTHROPIC_API_KEY=sk-ant-… \
    takumo-aegis extproc --mode live --listen unix:/run/aegis/extproc.sock`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			cfg, err := cf.resolve(os.LookupEnv, os.ReadFile)
			if err != nil {
				return usageOrRun(cmd, err)
			}
			return a.runExtProc(cmd.Context(), cfg)
		}),
	}
	cf = addConfigFlags(cmd.Flags(), forExtProc)
	return cmd
}

// usageOrRun makes configuration mistakes usage errors (exit 2 with the
// pointer to --help); other errors stay as they are.
func usageOrRun(cmd *cobra.Command, err error) error {
	var ce configErrors
	if errors.As(err, &ce) {
		return &usageError{cmd: cmd.CommandPath(), err: err}
	}
	return err
}

func (a *app) runExtProc(ctx context.Context, cfg *serverConfig) error {
	defer tuneServerGC(os.LookupEnv)()
	logger := newServerLogger(cfg, a.stderr)
	if len(cfg.APIKeys) == 0 && cfg.CoordinatorURL == "" {
		return errors.New("extproc: no Takumo API key configured (set TAKUMO_API_KEYS or api_keys in --config, or TAKUMO_COORDINATOR_URL and TAKUMO_JOIN_KEY)")
	}
	fc, err := fleetFromConfig(cfg)
	if err != nil {
		return err
	}
	var mp metric.MeterProvider
	if cfg.MetricsAddr != "" {
		smp, handler, err := gateway.NewPrometheusMetrics()
		if err != nil {
			return fmt.Errorf("extproc: metrics: %w", err)
		}
		defer func() { _ = smp.Shutdown(context.WithoutCancel(ctx)) }()
		mln, err := listen(ctx, cfg.MetricsAddr)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", handler)
		ms := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = ms.Serve(mln) }()
		defer func() { _ = ms.Close() }()
		logger.Info("extproc metrics listening", "addr", mln.Addr().String())
		mp = smp
	}
	srv, fm, err := a.newExtProcServer(cfg, nil, logger, mp, fc)
	if err != nil {
		return err
	}
	defer func() { _ = srv.Close() }()
	ln, err := listen(ctx, cfg.ListenAddr)
	if err != nil {
		return err
	}
	g := grpc.NewServer(extproc.ServerOptions(cfg.MaxBodyBytes)...)
	srv.Register(g)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	if fm != nil {
		// In a fleet the server is ready only with a usable snapshot of
		// keys (fail_closed: a current one; fail_open: any), so that
		// Envoy's health checks and Kubernetes' probes route around it
		// rather than into 503s.
		hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
		go func() {
			t := time.NewTicker(500 * time.Millisecond)
			defer t.Stop()
			for {
				st := healthpb.HealthCheckResponse_NOT_SERVING
				if fm.c.Ready() {
					st = healthpb.HealthCheckResponse_SERVING
				}
				hs.SetServingStatus("", st)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}

	served := make(chan error, 1)
	go func() { served <- g.Serve(ln) }()
	logger.Info("extproc listening", "addr", ln.Addr().String(), "mode", cfg.Mode, "max_body_bytes", cfg.MaxBodyBytes)

	select {
	case err := <-served:
		return fmt.Errorf("extproc: serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("extproc shutting down", "grace", cfg.ShutdownTimeout.String())
	hs.Shutdown()
	stopGRPC(g, cfg.ShutdownTimeout)
	// After Stop or GracefulStop, Serve returns nil, or ErrServerStopped if
	// it had not started yet: both are the shutdown we asked for.
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("extproc: serve: %w", err)
	}
	return nil
}

// stopGRPC stops g gracefully, cutting the streams still open after grace.
func stopGRPC(g *grpc.Server, grace time.Duration) {
	done := make(chan struct{})
	go func() {
		g.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		g.Stop()
		<-done
	}
}

// newExtProcServer builds the ext_proc server of the standalone
// organisation: cfg.APIKeys plus extraKey (the dev key, may be empty)
// belong to it, the org token secret is random per process (tokens are
// stable within a process's lifetime; a restart starts new sessions).
func (a *app) newExtProcServer(cfg *serverConfig, extraKeys []string, logger *slog.Logger, mp metric.MeterProvider, fc *fleetConn) (srv *extproc.Server, fm *fleetMember, err error) {
	engine, err := a.newEngine(engineSources{policyFile: cfg.Policy})
	if err != nil {
		return nil, nil, err
	}
	mode := extproc.Mode(cfg.Mode)
	keys := extproc.NewMemKeys()
	for i, k := range append(append([]string(nil), cfg.APIKeys...), extraKeys...) {
		id := extproc.Identity{
			KeyID:  fmt.Sprintf("key_%d", i+1),
			Org:    standaloneOrg,
			Mode:   mode,
			Scopes: []string{extproc.ScopeShieldWrite},
		}
		if i >= len(cfg.APIKeys) {
			id.KeyID = "key_dev"
		}
		if !strings.HasPrefix(k, "tk_"+cfg.Mode+"_") {
			return nil, nil, fmt.Errorf("api_keys: key %s is not a tk_%s_ key, and this server serves %s mode", id.KeyID, cfg.Mode, cfg.Mode)
		}
		if err := keys.Add(k, id); err != nil {
			return nil, nil, fmt.Errorf("api_keys: %w", err)
		}
	}
	secret := cfg.TokenSecret
	if len(secret) == 0 {
		// Tokens then differ between processes: fine for one gateway,
		// wrong for replicas behind one load balancer (set TAKUMO_TOKEN_SECRET).
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, nil, fmt.Errorf("org token secret: %w", err)
		}
	}
	sessions, err := extproc.NewSessionStore(func(string) []byte { return secret }, token.StoreOptions{
		MaxSessions: cfg.MaxConcurrentSessions,
		Limits:      token.Limits{MaxEntries: cfg.MaxVaultEntries},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("session store: %w", err)
	}
	pk := extproc.StaticProviderKeys{}
	for p, k := range map[llm.Provider]string{
		llm.Anthropic: cfg.AnthropicKey, llm.OpenAI: cfg.OpenAIKey,
		llm.Mistral: cfg.MistralKey, llm.Gemini: cfg.GeminiKey,
	} {
		if k != "" {
			pk[p] = k
		}
	}
	if len(pk) == 0 {
		logger.Warn("no provider API key configured: requests will fail until one of TAKUMO_ANTHROPIC_API_KEY, TAKUMO_OPENAI_API_KEY, TAKUMO_MISTRAL_API_KEY or TAKUMO_GEMINI_API_KEY is set")
	}
	pol, stop, err := newPolicyEngine(cfg, logger, mp)
	if err != nil {
		return nil, nil, err
	}
	plan := cfg.Plan
	if plan == "" {
		plan = extproc.DefaultPlan
	}
	var (
		keyStore extproc.KeyStore = keys
		orgPlan                   = func(string) string { return plan }
		audit    func(extproc.AuditRecord)
	)
	if fc != nil {
		// Keys, orgs and policy data come from the coordinator (remote, or
		// the gateway's embedded one, which holds TAKUMO_API_KEYS).
		if cfg.CoordinatorURL != "" && (len(cfg.APIKeys) > 0 || len(extraKeys) > 0) {
			logger.Warn("coordinator_url is set: TAKUMO_API_KEYS and the dev key are ignored; keys come from the coordinator")
		}
		fm, err = joinFleet(cfg, fc, pol, logger)
		if err != nil {
			stop()
			return nil, nil, err
		}
		keyStore, orgPlan, audit = fm.c.Keys(), fm.orgPlan, fm.audit
		if mp != nil {
			if err := fm.instrument(mp); err != nil {
				fm.stop()
				stop()
				return nil, nil, err
			}
		}
		stopPolicy := stop
		stop = func() { fm.stop(); stopPolicy() }
	}
	srv, err = extproc.NewServer(extproc.Config{
		Policy:        pol,
		OrgPlan:       orgPlan,
		Audit:         audit,
		OnClose:       stop,
		KeyStore:      keyStore,
		ProviderKeys:  pk,
		Engine:        engine.Engine,
		EngineOptions: &engine.opts,
		Sessions:      sessions,
		OrgSecret:     func(string) []byte { return secret },
		MaxBodyBytes:  cfg.MaxBodyBytes,
		Mode:          mode,
		Logger:        logger,
		MeterProvider: mp,
	})
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("extproc: %w", err)
	}
	return srv, fm, nil
}

// newPolicyEngine builds the OPA policy engine: the embedded policy, or the
// bundle of --policy-bundle. A bundle that cannot be loaded at start is an
// error (an operator who asked for a policy must not silently get the
// embedded one); once running, a broken update keeps the last good policy
// (policy package). The returned stop ends the bundle polling.
func newPolicyEngine(cfg *serverConfig, logger *slog.Logger, mp metric.MeterProvider) (*policy.Engine, func(), error) {
	ctx := context.Background()
	eng, err := policy.New(ctx, policy.Options{Logger: logger, MeterProvider: mp})
	if err != nil {
		return nil, nil, fmt.Errorf("policy: %w", err)
	}
	if cfg.PolicyBundle == "" {
		if cfg.PolicyBundleKey != "" {
			return nil, nil, errors.New("policy_bundle_key is set but policy_bundle is not: give the bundle too")
		}
		return eng, func() {}, nil
	}
	opts := policy.BundleOptions{Source: cfg.PolicyBundle}
	if cfg.PolicyBundleKey != "" {
		k, err := os.ReadFile(cfg.PolicyBundleKey)
		if err != nil {
			return nil, nil, fmt.Errorf("policy_bundle_key: %w (check the path)", err)
		}
		opts.VerificationKey = string(k)
	}
	l, err := eng.NewBundleLoader(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("policy_bundle: %w", err)
	}
	if err := l.Poll(ctx); err != nil {
		return nil, nil, fmt.Errorf("policy_bundle %s: first load failed: %w", cfg.PolicyBundle, err)
	}
	l.Start(ctx)
	return eng, func() { l.Stop(ctx) }, nil
}

// listen opens a TCP host:port, or a unix socket for "unix:/path". A socket
// file left behind by a process that is gone is replaced. ctx bounds the
// opening only (and the probe of a socket left behind), not the listener's
// lifetime.
func listen(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	path, isUnix := strings.CutPrefix(addr, "unix:")
	if !isUnix {
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		return ln, nil
	}
	path = strings.TrimPrefix(path, "//")
	if path == "" {
		return nil, errors.New("listen: unix: needs a socket path, as in unix:/run/aegis.sock")
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		var d net.Dialer
		if c, err := d.DialContext(ctx, "unix", path); err == nil {
			_ = c.Close()
			return nil, fmt.Errorf("listen: %s: another process is serving this socket", path)
		}
		// A dial cut short by ctx says nothing about the socket: never
		// remove it then, it may be another process's live one.
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listen: removing the stale socket: %w", err)
		}
	}
	ln, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	return ln, nil
}

// newServerLogger is the structured logger of the server commands, on w.
func newServerLogger(cfg *serverConfig, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
