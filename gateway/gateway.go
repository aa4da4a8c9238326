package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/experimental"

	"github.com/takumo/aegis/internal/pbcodec"
)

// Gateway is the standalone data plane. Build it with New.
type Gateway struct {
	// immutable after New
	cfg        Config
	filter     *extprocfilterv3.ExternalProcessor
	upstreams  map[string]*url.URL
	transport  http.RoundTripper
	limiter    RateLimiter
	log        *slog.Logger
	metrics    *instruments
	metricsH   http.Handler
	tracer     trace.Tracer
	msgTimeout time.Duration
	maxTimeout time.Duration
	handler    http.Handler

	draining atomic.Bool // set when Serve starts shutting down

	probeMu sync.Mutex
	probed  bool // guarded by probeMu: the ext_proc health probe once answered
}

// stateConn is what a *grpc.ClientConn offers beyond ClientConnInterface.
type stateConn interface {
	GetState() connectivity.State
	Connect()
}

// New checks cfg, fills in the defaults and builds a Gateway.
func New(cfg Config) (*Gateway, error) {
	if cfg.ExtProc == nil {
		return nil, errors.New("gateway: Config.ExtProc is required")
	}
	g := &Gateway{cfg: cfg}
	if g.cfg.Listen == "" {
		g.cfg.Listen = DefaultListen
	}
	if cfg.Filter == nil {
		g.filter = DefaultFilter()
	} else {
		g.filter = cloneFilter(cfg.Filter)
	}
	if err := validateFilter(g.filter); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.msgTimeout = 200 * time.Millisecond // Envoy's default when the field is unset
	if t := g.filter.GetMessageTimeout(); t != nil {
		g.msgTimeout = t.AsDuration()
	}
	g.maxTimeout = g.filter.GetMaxMessageTimeout().AsDuration()

	g.upstreams = DefaultUpstreams()
	for name, u := range cfg.Upstreams {
		if u == nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("gateway: upstream %q: need an http or https URL with a host", name)
		}
		g.upstreams[name] = u
	}
	if g.cfg.MaxBodyBytes <= 0 {
		g.cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if g.cfg.ShutdownTimeout <= 0 {
		g.cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	g.transport = cfg.Transport
	if g.transport == nil {
		g.transport = newTransport(cfg.Timeouts)
	}
	g.limiter = cfg.RateLimiter
	if g.limiter == nil {
		g.limiter = NewLocalRateLimiter(cfg.RateLimits)
	}
	g.log = cfg.Logger
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	mp, mh := cfg.MeterProvider, cfg.MetricsHandler
	if mp == nil {
		var err error
		mp, mh, err = NewPrometheusMetrics()
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	var err error
	if g.metrics, err = newInstruments(mp); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.metricsH = mh
	tp := cfg.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	g.tracer = tp.Tracer("github.com/takumo/aegis/gateway")
	g.handler = g.buildHandler()
	return g, nil
}

// ExtProcDialOptions are the gRPC options a connection to the ext_proc
// server needs for bodies up to maxBodyBytes: gRPC's 4 MiB default message
// limit would otherwise fail large bodies (extproc-anchors §1.8). The
// server side must raise MaxRecvMsgSize the same way. They also tune the
// connection for 64 KB-class bodies: a codec and buffer pool of their own
// (codec.go), HTTP/2 windows a prompt fits in, and larger transport
// buffers; the wire format is gRPC's usual proto. Call it once per
// connection: each call makes a new pool.
func ExtProcDialOptions(maxBodyBytes int64) []grpc.DialOption {
	if maxBodyBytes <= 0 {
		maxBodyBytes = DefaultMaxBodyBytes
	}
	n := int(min(maxBodyBytes+1<<20, math.MaxInt32)) // room for headers and framing
	pool := pbcodec.NewPool()
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(n), grpc.MaxCallRecvMsgSize(n),
			grpc.ForceCodecV2(pbcodec.Codec{Pool: pool, Errors: "ext_proc codec"})),
		experimental.WithBufferPool(pool),
		// A 64 KB prompt does not fit HTTP/2's default 64 KB window: the
		// message would stall on a WINDOW_UPDATE round trip. The windows
		// are credit, not memory: each stream's reader drains its messages.
		grpc.WithInitialWindowSize(extProcStreamWindow),
		grpc.WithInitialConnWindowSize(extProcConnWindow),
		grpc.WithWriteBufferSize(extProcIOBuffer),
		grpc.WithReadBufferSize(extProcIOBuffer),
	}
}

// HTTP/2 settings of the ext_proc connection (the server side uses the same
// figures: extproc.ServerOptions).
const (
	extProcStreamWindow = 1 << 20
	extProcConnWindow   = 16 << 20
	extProcIOBuffer     = 256 << 10
)

// Listen returns the configured listen address (default 127.0.0.1:8080).
func (g *Gateway) Listen() string { return g.cfg.Listen }

// Upstreams returns a copy of the routing table in use.
func (g *Gateway) Upstreams() map[string]*url.URL { return maps.Clone(g.upstreams) }

func newTransport(t Timeouts) *http.Transport {
	dial := t.Dial
	if dial <= 0 {
		dial = DefaultDialTimeout
	}
	rh := t.ResponseHeader
	if rh <= 0 {
		rh = DefaultResponseHeaderTimeout
	}
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		DisableCompression:    true, // bodies go to ext_proc as the provider sent them
		ResponseHeaderTimeout: rh,
		TLSHandshakeTimeout:   dial,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
	}
}

// Handler returns the gateway's HTTP handler: /healthz, /readyz, /metrics,
// and everything else proxied through ext_proc.
func (g *Gateway) Handler() http.Handler { return g.handler }

func (g *Gateway) buildHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", g.serveReady)
	if g.metricsH != nil {
		mux.Handle("GET /metrics", g.metricsH)
	}
	proxy := http.HandlerFunc(g.serveProxy)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz", "/readyz", "/metrics":
			if r.Method == http.MethodGet {
				mux.ServeHTTP(w, r)
				return
			}
		}
		proxy.ServeHTTP(w, r)
	})
}

// serveReady answers 200 when the ext_proc connection is READY and a
// one-time probe through ext_proc (GET /v1/health as request headers) got
// a well-formed answer.
func (g *Gateway) serveReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if g.draining.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	if sc, ok := g.cfg.ExtProc.(stateConn); ok {
		st := sc.GetState()
		if st == connectivity.Idle {
			sc.Connect()
		}
		if st != connectivity.Ready && st != connectivity.Idle {
			http.Error(w, "ext_proc connection "+st.String(), http.StatusServiceUnavailable)
			return
		}
	}
	if err := g.probe(r.Context()); err != nil {
		g.log.Warn("ext_proc readiness probe failed", "error", err)
		http.Error(w, "ext_proc not answering", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// probe sends one bodiless request-headers message and accepts any
// well-formed reply (an ImmediateResponse or a headers reply). It runs
// until it succeeds once.
func (g *Gateway) probe(ctx context.Context) error {
	g.probeMu.Lock()
	defer g.probeMu.Unlock()
	if g.probed {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, max(g.msgTimeout, time.Second))
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	s, err := openSideStream(ctx, g.cfg.ExtProc, &wg, max(g.msgTimeout, time.Second), 0, g.protocolConfig())
	if err != nil {
		return err
	}
	hm := headerMap{{":method", "GET"}, {":path", "/v1/health"}, {":authority", "localhost"}, {":scheme", "http"}}
	now := time.Now()
	if err := s.send(ctx, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: hm.toProto(), EndOfStream: true},
	}}); err != nil {
		return err
	}
	resp, err := s.await(ctx, now)
	if err != nil {
		return err
	}
	if resp.GetImmediateResponse() == nil && resp.GetRequestHeaders() == nil {
		return errSpurious
	}
	s.closeSend()
	g.probed = true
	return nil
}

func (g *Gateway) protocolConfig() *extprocv3.ProtocolConfiguration {
	pm := g.filter.GetProcessingMode()
	return &extprocv3.ProtocolConfiguration{
		RequestBodyMode:  pm.GetRequestBodyMode(),
		ResponseBodyMode: pm.GetResponseBodyMode(),
	}
}

// Serve serves the gateway on ln until ctx is done, then shuts down
// gracefully: requests in flight finish (up to ShutdownTimeout), new
// requests on open connections get 503 SERVICE_UNAVAILABLE.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           g.handler,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetHTTP2(true)
	srv.Protocols.SetUnencryptedHTTP2(true)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("gateway: serve: %w", err)
	case <-ctx.Done():
	}
	g.draining.Store(true)
	g.log.Info("gateway shutting down", "grace", g.cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), g.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		_ = srv.Close() // grace period over: cut what is left
		err = fmt.Errorf("gateway: shutdown: %w", err)
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("gateway: serve: %w", serr))
	}
	return err
}

// statusWriter records the status written, for metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	if err != nil {
		return n, fmt.Errorf("write to client: %w", err)
	}
	return n, nil
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// record writes the per-request metrics.
func (g *Gateway) record(ctx context.Context, start time.Time, status, provider string) {
	ctx = context.WithoutCancel(ctx)
	g.metrics.requests.Add(ctx, 1, g.metrics.attrs.get("status", status, "provider", provider))
	g.metrics.duration.Record(ctx, time.Since(start).Seconds(), g.metrics.attrs.get("provider", provider))
}

// httpStatusCode converts an Envoy HttpStatus (status < 200 → 200).
func httpStatusCode(s int) int {
	if s < 200 || s > 999 {
		return http.StatusOK
	}
	return s
}
