package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/takumo/aegis/extproc"
	"github.com/takumo/aegis/gateway"
	"github.com/takumo/aegis/internal/memconn"
)

func (a *app) gatewayCommand() *cobra.Command {
	var cf *configFlags
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run the standalone gateway (point an AI tool's base URL at it)",
		Long: `Run the standalone gateway: one process that plays Envoy's role for one
machine. AI tools send their requests to it; it tokenizes the secrets in each
request through the ext_proc server, forwards the request to the provider with
the provider key configured here, and puts the real values back into the
answer, streamed or not. It serves /healthz, /readyz and /metrics too.

The ext_proc server runs in the same process by default (reached over an
in-memory gRPC connection, exactly as Envoy would reach it); --extproc-addr
uses a remote one instead (host:port or unix:/path).

--dev is the one-command local start: test mode with a dev key (TAKUMO_DEV_KEY
when it holds a valid tk_test_ key, else a new random one). It prints
TAKUMO_API_KEY=<key> and the export lines for Claude Code and OpenAI-based
tools on stdout; logs go to stderr.

Settings come from flags, TAKUMO_* environment variables and a YAML --config
file, in that order of precedence (a flag beats the environment, which beats
the file). File keys are the variable names in lower case without TAKUMO_,
e.g. listen_addr, anthropic_url, anthropic_api_key, api_keys (a list),
max_body_bytes. Provider keys and Takumo keys have no flags (command lines
are visible to other users): TAKUMO_ANTHROPIC_API_KEY, TAKUMO_OPENAI_API_KEY,
TAKUMO_MISTRAL_API_KEY, TAKUMO_GEMINI_API_KEY, TAKUMO_API_KEYS.`,
		Example: `  TAKUMO_ANTHROPIC_API_KEY=sk-ant-… takumo-aegis gateway --dev
  takumo-aegis gateway --config /etc/aegis/gateway.yaml --listen 0.0.0.0:8080`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			cfg, err := cf.resolve(os.LookupEnv, os.ReadFile)
			if err != nil {
				return usageOrRun(cmd, err)
			}
			return a.runGateway(cmd.Context(), cfg)
		}),
	}
	cf = addConfigFlags(cmd.Flags(), forGateway)
	return cmd
}

// devKeyFor returns the dev key: TAKUMO_DEV_KEY when it is a valid tk_test_
// key, else a new random one. fromEnv says which.
func devKeyFor(envKey string) (key string, fromEnv bool, err error) {
	if strings.HasPrefix(envKey, "tk_test_") && validTakumoKey(envKey) {
		return envKey, true, nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", false, fmt.Errorf("generating the dev key: %w", err)
	}
	return "tk_test_" + hex.EncodeToString(b), false, nil
}

func (a *app) runGateway(ctx context.Context, cfg *serverConfig) error {
	defer tuneServerGC(os.LookupEnv)()
	var extraKeys []string
	var devKey string
	if cfg.Dev {
		cfg.Mode = "test"
		if !cfg.set["log_format"] {
			cfg.LogFormat = "text"
		}
		k, fromEnv, err := devKeyFor(cfg.DevKey)
		if err != nil {
			return err
		}
		if cfg.DevKey != "" && !fromEnv {
			fmt.Fprintln(a.stderr, "warning: TAKUMO_DEV_KEY is not a tk_test_ key with 64 lowercase hex characters; using a new dev key")
		}
		devKey = k
		extraKeys = []string{k}
	}
	logger := newServerLogger(cfg, a.stderr)
	if len(cfg.APIKeys) == 0 && devKey == "" && cfg.CoordinatorURL == "" {
		return errors.New("gateway: no Takumo API key configured (set TAKUMO_API_KEYS or api_keys in --config, or use --dev)")
	}
	upstreams, err := cfg.upstreams()
	if err != nil {
		return err
	}
	mp, metricsHandler, err := gateway.NewPrometheusMetrics()
	if err != nil {
		return fmt.Errorf("gateway: metrics: %w", err)
	}
	defer func() { _ = mp.Shutdown(context.WithoutCancel(ctx)) }()

	// The connection to ext_proc: a server in this process over an
	// in-memory listener (no port another local user could reach), or a
	// remote one.
	dialOpts := append(gateway.ExtProcDialOptions(cfg.MaxBodyBytes),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	var conn *grpc.ClientConn
	if cfg.ExtProcAddr == "" {
		fc, err := fleetFromConfig(cfg)
		if err != nil {
			return err
		}
		if fc == nil {
			// Standalone: keys live in an embedded coordinator, so the
			// admin commands work against this gateway too.
			emb, efc, err := startEmbeddedCoordinator(ctx, cfg, devKey, logger)
			if err != nil {
				return err
			}
			defer emb.stop()
			fc = efc
		}
		srv, fm, err := a.newExtProcServer(cfg, extraKeys, logger, mp, fc)
		if err != nil {
			return err
		}
		defer func() { _ = srv.Close() }()
		if cfg.CoordinatorURL == "" {
			// The embedded coordinator answers in milliseconds: serve only
			// once its keys are here, so no first request meets a 503.
			if err := fm.waitReady(30 * time.Second); err != nil {
				return fmt.Errorf("gateway: embedded coordinator: %w", err)
			}
		}
		lis := memconn.Listen()
		g := grpc.NewServer(extproc.ServerOptions(cfg.MaxBodyBytes)...)
		srv.Register(g)
		served := make(chan struct{})
		go func() {
			defer close(served)
			_ = g.Serve(lis)
		}()
		// Runs after the gateway has drained (defers run last in, first out).
		defer func() {
			stopGRPC(g, cfg.ShutdownTimeout)
			<-served
		}()
		conn, err = grpc.NewClient("passthrough:///in-process",
			append(dialOpts, grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
				return lis.DialContext(ctx)
			}))...)
		if err != nil {
			return fmt.Errorf("gateway: ext_proc connection: %w", err)
		}
	} else {
		if cfg.Dev {
			logger.Warn("--dev with --extproc-addr: the remote ext_proc server must know the dev key (TAKUMO_DEV_KEY)")
		}
		conn, err = grpc.NewClient(grpcTarget(cfg.ExtProcAddr), dialOpts...)
		if err != nil {
			return fmt.Errorf("gateway: --extproc-addr: %w", err)
		}
	}
	defer func() { _ = conn.Close() }()

	// A global rate-limit service, when configured, replaces the local
	// token buckets so that replicas share one count.
	var limiter gateway.RateLimiter
	if cfg.RateLimitService != "" {
		rlConn, err := grpc.NewClient(grpcTarget(cfg.RateLimitService), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return fmt.Errorf("gateway: --ratelimit-service: %w", err)
		}
		defer func() { _ = rlConn.Close() }()
		if limiter, err = gateway.NewServiceRateLimiter(gateway.RateLimitServiceConfig{Conn: rlConn}); err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
	}

	gw, err := gateway.New(gateway.Config{
		Listen:       cfg.ListenAddr,
		ExtProc:      conn,
		Upstreams:    upstreams,
		MaxBodyBytes: cfg.MaxBodyBytes,
		Timeouts:     gateway.Timeouts{ResponseHeader: cfg.UpstreamTimeout},
		RateLimits: gateway.RateLimits{
			PerKey: gateway.Limit{RequestsPerMinute: cfg.RateLimitPerKey, Burst: cfg.RateLimitBurst},
			PerOrg: gateway.Limit{RequestsPerMinute: cfg.RateLimitPerOrg, Burst: cfg.RateLimitBurst},
		},
		RateLimiter:         limiter,
		RateLimitFailClosed: cfg.RateLimitFailMode == "closed",
		ShutdownTimeout:     cfg.ShutdownTimeout,
		Logger:              logger,
		MeterProvider:       mp,
		MetricsHandler:      metricsHandler,
	})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	ln, err := listen(ctx, cfg.ListenAddr)
	if err != nil {
		return err
	}
	if devKey != "" {
		if err := printDevLines(a.stdout, devKey, ln.Addr()); err != nil {
			_ = ln.Close()
			return err
		}
	}
	logger.Info("gateway listening", "addr", ln.Addr().String(), "mode", cfg.Mode,
		"extproc", extprocDesc(cfg.ExtProcAddr), "max_body_bytes", cfg.MaxBodyBytes,
		"rate_limit", rateLimitDesc(cfg))
	if err := gw.Serve(ctx, ln); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	logger.Info("gateway stopped")
	return nil
}

// rateLimitDesc says which rate limiter runs, for the startup log.
func rateLimitDesc(cfg *serverConfig) string {
	if cfg.RateLimitService == "" {
		return "local"
	}
	return "service " + cfg.RateLimitService + " (fail " + cfg.RateLimitFailMode + ")"
}

func extprocDesc(addr string) string {
	if addr == "" {
		return "in-process"
	}
	return addr
}

// grpcTarget turns host:port or unix:/path into a gRPC target.
func grpcTarget(addr string) string {
	if strings.HasPrefix(addr, "unix:") {
		return addr
	}
	return "passthrough:///" + addr
}

// upstreams is the routing table of the configured provider URLs.
func (c *serverConfig) upstreams() (map[string]*url.URL, error) {
	out := map[string]*url.URL{}
	for name, raw := range map[string]string{
		"anthropic": c.AnthropicURL, "openai": c.OpenAIURL, "mistral": c.MistralURL, "gemini": c.GeminiURL,
	} {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%s_url: %w", name, err)
		}
		out[name] = u
	}
	return out, nil
}

// printDevLines writes the dev key and the export lines for AI tools.
func printDevLines(w io.Writer, key string, addr net.Addr) error {
	base := "http://" + dialableAddr(addr)
	_, err := fmt.Fprintf(w, "TAKUMO_API_KEY=%s\n\n"+
		"# Claude Code and other Anthropic SDK tools:\n"+
		"export ANTHROPIC_BASE_URL=%s\n"+
		"export ANTHROPIC_API_KEY=%s\n\n"+
		"# OpenAI SDK tools:\n"+
		"export OPENAI_BASE_URL=%s/v1\n"+
		"export OPENAI_API_KEY=%s\n",
		key, base, key, base, key)
	return err
}

// dialableAddr is addr with an unspecified IP (0.0.0.0, ::) replaced by
// loopback, so the printed URL works on this machine.
func dialableAddr(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	ip := tcp.IP
	switch {
	case ip == nil || ip.IsUnspecified() && ip.To4() != nil:
		ip = net.IPv4(127, 0, 0, 1)
	case ip.IsUnspecified():
		ip = net.IPv6loopback
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(tcp.Port))
}
