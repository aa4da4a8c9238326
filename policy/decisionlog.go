package policy

import (
	"context"
	"log/slog"
	"time"
)

// DecisionRecord is one decision-log entry, in the style of OPA's decision
// logs: decision id, timestamp, path of the decision, the input (which holds
// no secret values by construction: see Input) and the result or error.
type DecisionRecord struct {
	DecisionID string        `json:"decision_id"`
	RequestID  string        `json:"request_id,omitempty"`
	Timestamp  time.Time     `json:"timestamp"`
	Path       string        `json:"path"`
	Revision   string        `json:"revision"` // policy revision that decided
	Input      Input         `json:"input"`
	Result     *Decision     `json:"result,omitempty"`
	Error      string        `json:"error,omitempty"`
	Duration   time.Duration `json:"duration_ns"`
}

// Sink receives decision-log records. Log is called synchronously after
// every decision with a context that is not cancelled with the request;
// implementations that do slow work should buffer. It must be safe for
// concurrent use.
type Sink interface {
	Log(ctx context.Context, r DecisionRecord) error
}

// SlogSink writes each record as one structured log line at Info level.
type SlogSink struct {
	Logger *slog.Logger
}

var _ Sink = SlogSink{}

// Log writes r.
func (s SlogSink) Log(ctx context.Context, r DecisionRecord) error {
	attrs := []slog.Attr{
		slog.String("decision_id", r.DecisionID),
		slog.String("path", r.Path),
		slog.String("revision", r.Revision),
		slog.Time("timestamp", r.Timestamp),
		slog.Duration("duration", r.Duration),
		slog.Group("input",
			slog.Group("key", slog.String("id", r.Input.Key.ID), slog.String("org", r.Input.Key.Org),
				slog.String("mode", r.Input.Key.Mode), slog.Any("scopes", r.Input.Key.Scopes), slog.String("status", r.Input.Key.Status)),
			slog.Group("org", slog.String("id", r.Input.Org.ID), slog.String("plan", r.Input.Org.Plan),
				slog.Int64("usage_requests", r.Input.Org.Usage.Requests), slog.Int64("usage_credits", r.Input.Org.Usage.Credits)),
			slog.Group("request", slog.String("method", r.Input.Request.Method), slog.String("path", r.Input.Request.Path),
				slog.String("provider", r.Input.Request.Provider), slog.String("model", r.Input.Request.Model),
				slog.String("operation", r.Input.Request.Operation)),
			slog.Any("detections", r.Input.Detections),
		),
	}
	if r.RequestID != "" {
		attrs = append(attrs, slog.String("request_id", r.RequestID))
	}
	if r.Result != nil {
		attrs = append(attrs, slog.Group("result",
			slog.Bool("allow", r.Result.Allow), slog.Int("status", r.Result.Status), slog.String("code", r.Result.Code),
			slog.String("message", r.Result.Message), slog.String("plan", r.Result.Plan),
			slog.Int64("credits", r.Result.Credits), slog.Bool("overage", r.Result.Overage),
			slog.Any("detections", r.Result.Detections)))
	}
	if r.Error != "" {
		attrs = append(attrs, slog.String("error", r.Error))
	}
	s.Logger.LogAttrs(ctx, slog.LevelInfo, "policy decision", attrs...)
	return nil
}

// DiscardSink drops every record (for benchmarks and for deployments that
// log decisions elsewhere).
type DiscardSink struct{}

// Log does nothing.
func (DiscardSink) Log(context.Context, DecisionRecord) error { return nil }
