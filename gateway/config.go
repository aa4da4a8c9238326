package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// MetadataNamespace is the dynamic-metadata namespace the ext_proc server
// writes identity into (org, key_id, plan, provider, model, request_id).
const MetadataNamespace = "takumo.aegis"

// Defaults used when the matching Config field is zero.
const (
	DefaultListen                = "127.0.0.1:8080"
	DefaultMaxBodyBytes          = 32 << 20
	DefaultMessageTimeout        = 10 * time.Second
	DefaultDialTimeout           = 10 * time.Second
	DefaultResponseHeaderTimeout = 10 * time.Minute
	DefaultShutdownTimeout       = 30 * time.Second
)

// DefaultUpstreams returns the public provider APIs, keyed by the value of
// the x-takumo-provider routing header.
func DefaultUpstreams() map[string]*url.URL {
	return map[string]*url.URL{
		"anthropic": {Scheme: "https", Host: "api.anthropic.com"},
		"openai":    {Scheme: "https", Host: "api.openai.com"},
		"mistral":   {Scheme: "https", Host: "api.mistral.ai"},
		"gemini":    {Scheme: "https", Host: "generativelanguage.googleapis.com"},
	}
}

// DefaultFilter returns the ext_proc filter configuration we also ship for
// Envoy: request headers SEND, request body BUFFERED, response headers SEND,
// response body BUFFERED (the server switches event streams to STREAMED with
// a mode_override), trailers SKIP, allow_mode_override, failure_mode_allow
// false, message_timeout 10 s and the "takumo.aegis" receiving namespace.
func DefaultFilter() *extprocfilterv3.ExternalProcessor {
	return &extprocfilterv3.ExternalProcessor{
		ProcessingMode: &extprocfilterv3.ProcessingMode{
			RequestHeaderMode:   extprocfilterv3.ProcessingMode_SEND,
			RequestBodyMode:     extprocfilterv3.ProcessingMode_BUFFERED,
			RequestTrailerMode:  extprocfilterv3.ProcessingMode_SKIP,
			ResponseHeaderMode:  extprocfilterv3.ProcessingMode_SEND,
			ResponseBodyMode:    extprocfilterv3.ProcessingMode_BUFFERED,
			ResponseTrailerMode: extprocfilterv3.ProcessingMode_SKIP,
		},
		AllowModeOverride: true,
		FailureModeAllow:  false,
		MessageTimeout:    durationpb.New(DefaultMessageTimeout),
		MetadataOptions: &extprocfilterv3.MetadataOptions{
			ReceivingNamespaces: &extprocfilterv3.MetadataOptions_MetadataNamespaces{
				Untyped: []string{MetadataNamespace},
			},
		},
	}
}

// Limit is one token bucket: RequestsPerMinute tokens are added per minute
// up to Burst (Burst 0 means RequestsPerMinute). RequestsPerMinute 0
// disables the bucket.
type Limit struct {
	RequestsPerMinute int
	Burst             int
}

// RateLimits configures the local limiter: one bucket per org and one per
// key id. PerOrg is the org's limit when ext_proc sends no plan limits,
// and a cap on the plan's per-minute limit when it does (package doc).
type RateLimits struct {
	PerOrg Limit
	PerKey Limit
	// MaxBuckets bounds the number of buckets kept per kind (default 10,000);
	// past it, idle (full) buckets are dropped first.
	MaxBuckets int
}

// Timeouts bound the upstream exchange.
type Timeouts struct {
	// Dial bounds connecting to the upstream (default 10 s); failing gives
	// 502 BAD_GATEWAY.
	Dial time.Duration
	// ResponseHeader bounds the wait for the upstream's response headers
	// after the request was written (default 10 min: non-streamed LLM
	// answers are slow); expiry gives 504 GATEWAY_TIMEOUT.
	ResponseHeader time.Duration
}

// Config is everything New needs. Only ExtProc is required.
type Config struct {
	// Listen is the address the cli listens on (default 127.0.0.1:8080).
	// Serve takes the listener itself; the field is here so a config file
	// has one place for it.
	Listen string
	// ExtProc is the connection to the ext_proc server (in-process or
	// remote). When it also has GetState/Connect (a *grpc.ClientConn),
	// /readyz reports its connectivity.
	ExtProc grpc.ClientConnInterface
	// Filter is the ext_proc filter configuration (nil: DefaultFilter()).
	Filter *extprocfilterv3.ExternalProcessor
	// Upstreams maps the x-takumo-provider value to the provider base URL
	// (nil: DefaultUpstreams()). Entries given here replace the defaults of
	// the same name; the others keep their defaults.
	Upstreams map[string]*url.URL
	// MaxBodyBytes bounds a buffered request or response body (default
	// 32 MiB).
	MaxBodyBytes int64
	// Timeouts for the upstream exchange.
	Timeouts Timeouts
	// Transport overrides the upstream transport (tests); nil builds an
	// http.Transport without automatic decompression, HTTP/1.1 and HTTP/2.
	Transport http.RoundTripper
	// RateLimits configures the local token buckets; ignored when
	// RateLimiter is set.
	RateLimits RateLimits
	// RateLimiter replaces the local token buckets (a global rate-limit
	// service: NewServiceRateLimiter).
	RateLimiter RateLimiter
	// RateLimitFailClosed refuses a request with 503 SERVICE_UNAVAILABLE
	// when the rate limiter fails (the rate-limit service unreachable, too
	// slow, or without its Redis). False (the default, as Envoy's
	// failure_mode_deny false) lets the request through unlimited. Either
	// way the failure is logged and counted in
	// aegis_rate_limit_checks_total{result="error"}.
	RateLimitFailClosed bool
	// ShutdownTimeout bounds how long Serve waits for in-flight requests
	// (default 30 s).
	ShutdownTimeout time.Duration
	// Logger receives structured logs (nil: discard). Never a secret value.
	Logger *slog.Logger
	// MeterProvider receives the aegis_* instruments. When nil the gateway
	// builds its own with a Prometheus exporter and serves it on /metrics.
	MeterProvider metric.MeterProvider
	// MetricsHandler serves /metrics when MeterProvider is set (see
	// NewPrometheusMetrics); nil then means no /metrics route.
	MetricsHandler http.Handler
	// TracerProvider receives one server span per request with a child span
	// per ext_proc phase and for the upstream exchange (nil: no tracing).
	// Span attributes never carry header values, paths or bodies.
	TracerProvider trace.TracerProvider
}

// modes is the processing mode the gateway supports, checked once in New.
func validateFilter(f *extprocfilterv3.ExternalProcessor) error {
	var errs []error
	if f.GetGrpcService() != nil || f.GetHttpService() != nil {
		// The connection comes from Config.ExtProc; a service in the filter
		// would be silently ignored, so say so.
		errs = append(errs, errors.New("filter grpc_service/http_service are not used: pass the connection in Config.ExtProc"))
	}
	if f.GetObservabilityMode() {
		errs = append(errs, errors.New("observability_mode is not supported"))
	}
	if f.GetSendBodyWithoutWaitingForHeaderResponse() {
		errs = append(errs, errors.New("send_body_without_waiting_for_header_response is not supported"))
	}
	pm := f.GetProcessingMode()
	if pm.GetRequestHeaderMode() == extprocfilterv3.ProcessingMode_SKIP {
		errs = append(errs, errors.New("request_header_mode SKIP is not supported"))
	}
	if pm.GetResponseHeaderMode() == extprocfilterv3.ProcessingMode_SKIP {
		errs = append(errs, errors.New("response_header_mode SKIP is not supported"))
	}
	if pm.GetRequestTrailerMode() == extprocfilterv3.ProcessingMode_SEND || pm.GetResponseTrailerMode() == extprocfilterv3.ProcessingMode_SEND {
		errs = append(errs, errors.New("trailer mode SEND is not supported"))
	}
	if m := pm.GetRequestBodyMode(); m != extprocfilterv3.ProcessingMode_NONE && m != extprocfilterv3.ProcessingMode_BUFFERED {
		errs = append(errs, fmt.Errorf("request_body_mode %s is not supported (NONE or BUFFERED)", m))
	}
	if m := pm.GetResponseBodyMode(); !supportedResponseBodyMode(m) {
		errs = append(errs, fmt.Errorf("response_body_mode %s is not supported (NONE, BUFFERED or STREAMED)", m))
	}
	if r := f.GetMutationRules(); r != nil && (r.GetAllowExpression() != nil || r.GetDisallowExpression() != nil) {
		errs = append(errs, errors.New("mutation_rules allow_expression/disallow_expression are not supported"))
	}
	if len(f.GetRequestAttributes()) > 0 || len(f.GetResponseAttributes()) > 0 {
		errs = append(errs, errors.New("request_attributes/response_attributes are not supported"))
	}
	if t := f.GetMessageTimeout(); t != nil && (t.AsDuration() < 0 || t.AsDuration() > time.Hour) {
		errs = append(errs, errors.New("message_timeout must be between 0 and 3600 s"))
	}
	if err := f.ValidateAll(); err != nil {
		errs = append(errs, fmt.Errorf("filter: %w", err))
	}
	return errors.Join(errs...)
}

func supportedResponseBodyMode(m extprocfilterv3.ProcessingMode_BodySendMode) bool {
	switch m {
	case extprocfilterv3.ProcessingMode_NONE, extprocfilterv3.ProcessingMode_BUFFERED, extprocfilterv3.ProcessingMode_STREAMED:
		return true
	default:
		return false
	}
}

// cloneFilter copies f so that later changes by the caller do not reach a
// running gateway.
func cloneFilter(f *extprocfilterv3.ExternalProcessor) *extprocfilterv3.ExternalProcessor {
	c, ok := proto.Clone(f).(*extprocfilterv3.ExternalProcessor)
	if !ok {
		return DefaultFilter()
	}
	return c
}
