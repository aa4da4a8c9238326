package extproc

import (
	"context"
	"fmt"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

const instrumentationName = "github.com/takumo/aegis/extproc"

// instruments are the server's metrics (DESIGN §11). Labels carry statuses,
// providers, categories and actions only: never a value, a key or an id.
type instruments struct {
	requests        metric.Int64Counter
	duration        metric.Float64Histogram
	secrets         metric.Int64Counter
	vaultEntries    metric.Int64Gauge
	upstreamErrors  metric.Int64Counter
	sessionsGauge   metric.Int64ObservableGauge
	sessionCallback metric.Registration
	tracer          trace.Tracer
	attrs           attrSets
}

func newInstruments(mp metric.MeterProvider, tp trace.TracerProvider, sessions func() int) (*instruments, error) {
	m := mp.Meter(instrumentationName)
	var ins instruments
	var err error
	if ins.requests, err = m.Int64Counter("aegis_requests_total",
		metric.WithDescription("Requests handled, by final HTTP status and provider.")); err != nil {
		return nil, fmt.Errorf("extproc: metric: %w", err)
	}
	if ins.duration, err = m.Float64Histogram("aegis_request_duration_seconds",
		metric.WithDescription("Time from request headers to the end of the exchange."), metric.WithUnit("s")); err != nil {
		return nil, fmt.Errorf("extproc: metric: %w", err)
	}
	if ins.secrets, err = m.Int64Counter("aegis_secrets_detected_total",
		metric.WithDescription("Secrets detected in requests, by category and action.")); err != nil {
		return nil, fmt.Errorf("extproc: metric: %w", err)
	}
	if ins.vaultEntries, err = m.Int64Gauge("aegis_vault_entries",
		metric.WithDescription("Entries of the vault a request used, after tokenization.")); err != nil {
		return nil, fmt.Errorf("extproc: metric: %w", err)
	}
	if ins.upstreamErrors, err = m.Int64Counter("aegis_upstream_errors_total",
		metric.WithDescription("Provider answers with an error status, by provider and status.")); err != nil {
		return nil, fmt.Errorf("extproc: metric: %w", err)
	}
	if ins.sessionsGauge, err = m.Int64ObservableGauge("aegis_concurrent_sessions",
		metric.WithDescription("Session vaults held.")); err != nil {
		return nil, fmt.Errorf("extproc: metric: %w", err)
	}
	if sessions != nil {
		ins.sessionCallback, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
			o.ObserveInt64(ins.sessionsGauge, int64(sessions()))
			return nil
		}, ins.sessionsGauge)
		if err != nil {
			return nil, fmt.Errorf("extproc: metric callback: %w", err)
		}
	}
	ins.tracer = tp.Tracer(instrumentationName)
	return &ins, nil
}

func (ins *instruments) close() error {
	if ins.sessionCallback != nil {
		if err := ins.sessionCallback.Unregister(); err != nil {
			return fmt.Errorf("extproc: unregister metric callback: %w", err)
		}
	}
	return nil
}

func statusAttr(status int) attribute.KeyValue {
	return attribute.String("status", strconv.Itoa(status))
}
