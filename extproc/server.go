package extproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/status"

	"github.com/takumo/aegis/detect"
	"github.com/takumo/aegis/internal/pbcodec"
	"github.com/takumo/aegis/policy"
	"github.com/takumo/aegis/token"
)

// DefaultMaxBodyBytes is the default request body limit (32 MiB).
const DefaultMaxBodyBytes = 32 << 20

// DefaultPlan is the plan of an organization when Config.OrgPlan is nil: a
// gateway without a plan source (standalone, not yet connected to a
// coordinator) puts no plan limits on its own organization.
const DefaultPlan = "enterprise"

// maxSessionIDLen bounds a session id taken from a header.
const maxSessionIDLen = 256

// Config configures a Server. KeyStore, ProviderKeys, OrgSecret and Engine
// or EngineOptions are required.
type Config struct {
	// KeyStore authenticates Takumo keys and meters usage (a
	// keys.MemStore, or MemKeys in standalone mode).
	KeyStore KeyStore
	// Policy decides every request (scope, plan, limits, detection
	// actions). nil: an engine with the embedded policy, logging decisions
	// to Logger.
	Policy *policy.Engine
	// OrgPlan returns the plan the gateway knows for an organization (the
	// policy data's orgs.<id>.plan wins over it). nil: DefaultPlan for
	// every organization.
	OrgPlan func(org string) string
	// OnClose runs in Close, after the server's own cleanup (the CLI stops
	// the policy bundle loader there).
	OnClose func()
	// ProviderKeys hands out the provider key of an organisation.
	ProviderKeys ProviderKeys
	// EngineOptions are the detection engine's own options (catalog,
	// custom rules and actions of a --policy file, allow list). When set,
	// the server builds the detection engine from them plus the running
	// policy's detection overrides and custom rules
	// (policy.Engine.Detections), and rebuilds it when the policy changes,
	// so that every detection gets the action the policy decides.
	EngineOptions *detect.Options
	// Engine detects secrets. With EngineOptions it must have been built
	// from them and serves while the policy overrides nothing (it saves a
	// build); without, it is used whatever the policy says, and a policy
	// that wants tokenized what the engine leaves in place fails closed
	// (503).
	Engine *detect.Engine
	// Sessions holds the per-session vaults, keyed "org/session". Its
	// NewKey must derive the key from the org and session the id names (as
	// NewSessionStore below does). nil: NewServer makes one with the
	// defaults, keyed with DeriveSessionKey(OrgSecret(org), org, session).
	Sessions *token.SessionStore
	// OrgSecret returns the organisation's token secret (at least
	// token.MinOrgSecretLen bytes). Session keys and per-request vault keys
	// are derived from it.
	OrgSecret func(org string) []byte
	// MaxBodyBytes bounds request bodies: as sent, decompressed and
	// tokenized. 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Mode is the mode the gateway serves; "" means ModeTest.
	Mode Mode
	// Audit, when set, receives one AuditRecord per finished exchange
	// (metadata only), from the stream's goroutine: it must not block.
	Audit func(AuditRecord)
	// Logger receives one JSON-able record per request (never a value or a
	// key); nil discards.
	Logger *slog.Logger
	// MeterProvider and TracerProvider are the OpenTelemetry providers; nil
	// means no-op.
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
}

// NewSessionStore returns a session store for Config.Sessions whose ids
// are "org/session" and whose keys are DeriveSessionKey(orgSecret(org), org,
// session).
func NewSessionStore(orgSecret func(org string) []byte, opts token.StoreOptions) (*token.SessionStore, error) {
	opts.NewKey = func(id string) (token.Key, error) {
		org, session, ok := strings.Cut(id, "/")
		if !ok {
			return token.Key{}, fmt.Errorf("extproc: session id without an org")
		}
		k := token.DeriveSessionKey(orgSecret(org), org, session)
		if k.IsZero() {
			return token.Key{}, ErrNoVault
		}
		return k, nil
	}
	s, err := token.NewSessionStore(opts)
	if err != nil {
		return nil, fmt.Errorf("extproc: session store: %w", err)
	}
	return s, nil
}

// Server is the ext_proc gRPC service. It is safe for concurrent use; each
// stream gets its own processor.
type Server struct {
	extprocv3.UnimplementedExternalProcessorServer

	// immutable after NewServer
	cfg    Config
	policy *policy.Engine
	det    *detector // the detection engine following the policy
	log    *slog.Logger
	ins    *instruments
	bodies *pbcodec.Pool // tokenized request bodies, reused once sent
}

var _ extprocv3.ExternalProcessorServer = (*Server)(nil)

// NewServer checks cfg and returns a Server.
func NewServer(cfg Config) (*Server, error) {
	var errs []error
	if cfg.KeyStore == nil {
		errs = append(errs, errors.New("a KeyStore is required"))
	}
	if cfg.ProviderKeys == nil {
		errs = append(errs, errors.New("a ProviderKeys is required"))
	}
	if cfg.Engine == nil && cfg.EngineOptions == nil {
		errs = append(errs, errors.New("an Engine or EngineOptions is required"))
	}
	if cfg.OrgSecret == nil {
		errs = append(errs, errors.New("an OrgSecret func is required"))
	}
	if cfg.MaxBodyBytes < 0 {
		errs = append(errs, errors.New("a negative MaxBodyBytes"))
	}
	switch cfg.Mode {
	case "":
		cfg.Mode = ModeTest
	case ModeTest, ModeLive:
	default:
		errs = append(errs, fmt.Errorf("mode %q: want test or live", cfg.Mode))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("extproc: config: %w", errors.Join(errs...))
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Sessions == nil {
		st, err := NewSessionStore(cfg.OrgSecret, token.StoreOptions{})
		if err != nil {
			return nil, err
		}
		cfg.Sessions = st
	}
	if cfg.MeterProvider == nil {
		cfg.MeterProvider = metricnoop.NewMeterProvider()
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = tracenoop.NewTracerProvider()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.OrgPlan == nil {
		cfg.OrgPlan = func(string) string { return DefaultPlan }
	}
	pol := cfg.Policy
	if pol == nil {
		var err error
		pol, err = policy.New(context.Background(), policy.Options{Logger: log, MeterProvider: cfg.MeterProvider})
		if err != nil {
			return nil, fmt.Errorf("extproc: policy: %w", err)
		}
	}
	ins, err := newInstruments(cfg.MeterProvider, cfg.TracerProvider, cfg.Sessions.Len)
	if err != nil {
		return nil, err
	}
	det, err := newDetector(pol, cfg.EngineOptions, cfg.Engine, log, cfg.MeterProvider)
	if err != nil {
		return nil, errors.Join(err, ins.close())
	}
	return &Server{cfg: cfg, policy: pol, det: det, log: log, ins: ins, bodies: pbcodec.NewPool()}, nil
}

// Close releases the server's metric callbacks and runs Config.OnClose.
// Streams in flight are not affected; stop the gRPC server first.
func (s *Server) Close() error {
	err := s.ins.close()
	if s.cfg.OnClose != nil {
		s.cfg.OnClose()
	}
	return err
}

// Register registers the service on g.
func (s *Server) Register(g *grpc.Server) {
	extprocv3.RegisterExternalProcessorServer(g, s)
}

// ServerOptions returns gRPC server options whose message size limits fit a
// body of maxBody bytes (0: DefaultMaxBodyBytes) plus headroom for headers
// and framing. Without them Go's 4 MiB default fails large bodies. They
// also tune the server for 64 KB-class bodies: a codec and buffer pool of
// their own (codec.go; the wire format is gRPC's usual proto), HTTP/2
// windows a prompt fits in, larger transport buffers and stream workers.
// Call it once per gRPC server: each call makes a new pool.
func ServerOptions(maxBody int64) []grpc.ServerOption {
	if maxBody <= 0 {
		maxBody = DefaultMaxBodyBytes
	}
	// Tokens can be longer than the secrets they replace and headers ride
	// along: allow a quarter more plus 1 MiB.
	limit := maxBody + maxBody/4 + 1<<20
	const maxInt = int64(^uint(0) >> 1)
	if limit > maxInt || limit < 0 {
		limit = maxInt
	}
	pool := pbcodec.NewPool()
	return []grpc.ServerOption{
		// Streams run on long-lived workers (more streams than workers get
		// a goroutine each, as without the option): a fresh goroutine per
		// stream grew its stack again for every request's tokenization.
		grpc.NumStreamWorkers(streamWorkers),
		grpc.MaxRecvMsgSize(int(limit)), grpc.MaxSendMsgSize(int(limit)),
		grpc.ForceServerCodecV2(pbcodec.Codec{Pool: pool, Errors: "extproc codec"}),
		experimental.BufferPool(pool),
		// A 64 KB prompt does not fit HTTP/2's default 64 KB window: it
		// would stall on a WINDOW_UPDATE round trip. Windows are credit,
		// not memory: each stream drains its messages as they come.
		grpc.InitialWindowSize(streamWindow),
		grpc.InitialConnWindowSize(connWindow),
		grpc.WriteBufferSize(ioBuffer),
		grpc.ReadBufferSize(ioBuffer),
	}
}

// HTTP/2 settings of the ext_proc server (the gateway's client side uses
// the same figures).
const (
	streamWindow = 1 << 20
	connWindow   = 16 << 20
	ioBuffer     = 256 << 10
	// streamWorkers bounds the goroutines kept for streams.
	streamWorkers = 64
)

// Process serves one ext_proc stream (one HTTP exchange). It returns nil
// only once the exchange is complete (an immediate response sent, or the
// last response message answered); a stream that ends earlier gets a non-OK
// status, so that Envoy never carries on without us.
func (s *Server) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	ctx := stream.Context()
	p := s.newProcessor(ctx)
	defer p.finish()
	for {
		req, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				p.abort("client closed the stream")
				return status.Error(codes.Aborted, "extproc: stream closed before the exchange was complete")
			}
			if status.Code(err) == codes.Canceled || errors.Is(err, context.Canceled) {
				p.abort("stream canceled")
				return status.Error(codes.Canceled, "extproc: stream canceled")
			}
			p.abort("receive failed")
			return fmt.Errorf("extproc: receive: %w", err)
		}
		resp, err := p.handle(req)
		if err != nil {
			// A failure once the response has started (or a protocol
			// violation): Envoy resets the stream.
			p.abort(err.Error())
			if _, ok := status.FromError(err); ok {
				return err
			}
			return status.Error(codes.Internal, "extproc: processing failed")
		}
		if resp != nil {
			err := stream.Send(resp)
			p.releaseBody() // Send has marshalled resp: its body is ours again
			if err != nil {
				p.abort("send failed")
				return fmt.Errorf("extproc: send: %w", err)
			}
		}
		if p.done {
			return nil
		}
	}
}
