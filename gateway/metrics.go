package gateway

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// NewPrometheusMetrics builds an OTel MeterProvider whose instruments are
// exposed in the Prometheus text format by the returned handler, on a
// registry of its own (no global state). The cli can hand both to the
// gateway and to other components so /metrics shows them all.
func NewPrometheusMetrics() (*sdkmetric.MeterProvider, http.Handler, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	return mp, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil
}

// Failure kinds for aegis_extproc_failures_total.
const (
	failStream   = "stream_error"
	failTimeout  = "message_timeout"
	failSpurious = "spurious_reply"
	failMutation = "invalid_mutation"
	failOKClose  = "ok_close"
	failLength   = "content_length_mismatch"
)

// instruments are the gateway's metrics.
type instruments struct {
	requests       metric.Int64Counter
	duration       metric.Float64Histogram
	upstreamErrors metric.Int64Counter
	rateChecks     metric.Int64Counter
	extprocFails   metric.Int64Counter
	attrs          attrSets
}

func newInstruments(mp metric.MeterProvider) (*instruments, error) {
	m := mp.Meter("github.com/takumo/aegis/gateway")
	var in instruments
	var err error
	if in.requests, err = m.Int64Counter("aegis_gateway_requests", metric.WithDescription("HTTP requests served by the gateway front, by status and provider (the ext_proc server counts them as aegis_requests_total).")); err != nil {
		return nil, fmt.Errorf("metric: %w", err)
	}
	if in.duration, err = m.Float64Histogram("aegis_gateway_request_duration", metric.WithUnit("s"),
		metric.WithDescription("Time from request arrival to the end of the response."),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)); err != nil {
		return nil, fmt.Errorf("metric: %w", err)
	}
	if in.upstreamErrors, err = m.Int64Counter("aegis_gateway_upstream_errors", metric.WithDescription("Upstream exchanges that failed (connect, timeout, reset).")); err != nil {
		return nil, fmt.Errorf("metric: %w", err)
	}
	if in.rateChecks, err = m.Int64Counter("aegis_rate_limit_checks", metric.WithDescription("Rate-limit checks by result (ok, over_limit, error).")); err != nil {
		return nil, fmt.Errorf("metric: %w", err)
	}
	if in.extprocFails, err = m.Int64Counter("aegis_extproc_failures", metric.WithDescription("ext_proc exchanges that failed, by kind; ok_close means Envoy-style fail-open.")); err != nil {
		return nil, fmt.Errorf("metric: %w", err)
	}
	return &in, nil
}

func (in *instruments) extprocFailure(ctx context.Context, kind string) {
	in.extprocFails.Add(ctx, 1, in.attrs.get("kind", kind))
}

func (in *instruments) upstreamError(ctx context.Context, kind string) {
	in.upstreamErrors.Add(ctx, 1, in.attrs.get("kind", kind))
}

func (in *instruments) metricResult(r string) metric.AddOption {
	return in.attrs.get("result", r)
}
