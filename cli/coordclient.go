package cli

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordv1 "github.com/takumo/aegis/api/takumo/coordinator/v1"
	"github.com/takumo/aegis/coordinator/client"
	"github.com/takumo/aegis/extproc"
	"github.com/takumo/aegis/keys"
	"github.com/takumo/aegis/policy"
)

// fleetMember is a server's connection to the coordinator
// (--coordinator-url): the key store, the orgs' plans and the policy data
// come from its snapshots; audit records go to it.
type fleetMember struct {
	c      *client.Client
	log    *slog.Logger
	pol    *policy.Engine
	plan   string // plan of an org the snapshot does not list
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.RWMutex
	plans map[string]string // org → plan, from the last snapshot

	bundleSum [32]byte // SHA-256 of the bundle last loaded; zero: the embedded policy
}

// fleetConn says how to reach a coordinator: a remote one
// (coordinator_url) or the gateway's embedded one.
type fleetConn struct {
	addr, joinKey, dataDir string
	dial                   []grpc.DialOption
	// health overrides the coordinator's report interval (the embedded
	// one: usage shows up in `takumo-aegis usage` within seconds).
	health time.Duration
}

// fleetFromConfig is the remote coordinator of cfg, nil when none is set.
func fleetFromConfig(cfg *serverConfig) (*fleetConn, error) {
	if cfg.CoordinatorURL == "" {
		return nil, nil
	}
	if cfg.JoinKey == "" {
		return nil, errors.New("coordinator_url is set but TAKUMO_JOIN_KEY is not: a gateway registers with a join key (takumo-aegis join-keys create)")
	}
	fc := &fleetConn{addr: cfg.CoordinatorURL, joinKey: cfg.JoinKey, dataDir: cfg.DataDir}
	switch {
	case cfg.CoordinatorCA != "":
		tc, err := coordinatorTLS(cfg)
		if err != nil {
			return nil, err
		}
		fc.dial = append(fc.dial, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	case cfg.CoordinatorCert != "" || cfg.CoordinatorKey != "":
		return nil, errors.New("coordinator_cert and coordinator_key need coordinator_ca (the CA that signed the coordinator's certificate)")
	}
	return fc, nil
}

// coordinatorTLS is the TLS client config for the coordinator: its CA, and
// this gateway's certificate when mTLS is configured.
func coordinatorTLS(cfg *serverConfig) (*tls.Config, error) {
	pem, err := os.ReadFile(cfg.CoordinatorCA)
	if err != nil {
		return nil, fmt.Errorf("coordinator_ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("coordinator_ca %s holds no PEM certificate", cfg.CoordinatorCA)
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if (cfg.CoordinatorCert == "") != (cfg.CoordinatorKey == "") {
		return nil, errors.New("coordinator_cert and coordinator_key go together")
	}
	if cfg.CoordinatorCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CoordinatorCert, cfg.CoordinatorKey)
		if err != nil {
			return nil, fmt.Errorf("coordinator_cert: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// joinFleet makes the coordinator client and starts it. Stop it with
// stop (it drains the audit events already sent).
func joinFleet(cfg *serverConfig, fc *fleetConn, pol *policy.Engine, logger *slog.Logger) (*fleetMember, error) {
	name, _ := os.Hostname()
	f := &fleetMember{log: logger, pol: pol, plan: cfg.Plan, plans: map[string]string{}, done: make(chan struct{})}
	if f.plan == "" {
		f.plan = extproc.DefaultPlan
	}
	c, err := client.New(client.Options{
		Addr: fc.addr, JoinKey: fc.joinKey, Name: name, Version: Version, Mode: keys.Mode(cfg.Mode),
		DataDir: fc.dataDir, FailMode: cfg.FailMode, Logger: logger, DialOptions: fc.dial,
		HealthInterval: fc.health,
		OnSnapshot:     f.onSnapshot,
	})
	if err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	f.c = c
	// A cached snapshot (fail_open, or fail_closed within its grace)
	// serves before the first sync.
	f.onSnapshot(c.Version())
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() {
		defer close(f.done)
		if err := c.Run(ctx); err != nil && ctx.Err() == nil {
			logger.Error("coordinator client stopped", "err", err)
		}
	}()
	return f, nil
}

// waitReady waits until the client holds a usable snapshot, at most d.
func (f *fleetMember) waitReady(d time.Duration) error {
	deadline := time.Now().Add(d)
	for !f.c.Ready() {
		if time.Now().After(deadline) {
			return fmt.Errorf("no snapshot from the coordinator after %v", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// stop ends the client and waits for it.
func (f *fleetMember) stop() {
	f.cancel()
	<-f.done
}

// onSnapshot applies a snapshot's orgs and policy data to the policy
// engine. A policy data document that does not apply is logged and the
// running data kept: the engine swaps data atomically per section.
func (f *fleetMember) onSnapshot(uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, havePolicy := f.c.Policy()
	f.applyBundle(ctx, p.Bundle)
	orgs := f.c.Orgs()
	plans := make(map[string]string, len(orgs))
	porgs := make(map[string]policy.Org, len(orgs))
	for _, o := range orgs {
		plans[o.ID] = o.Plan
		porgs[o.ID] = policy.Org{Plan: o.Plan, Seats: o.Seats}
	}
	f.mu.Lock()
	f.plans = plans
	f.mu.Unlock()
	if f.pol != nil && len(porgs) > 0 {
		if err := f.pol.SetOrgs(ctx, porgs); err != nil {
			f.log.Error("coordinator snapshot: orgs not applied to the policy", "err", err)
		}
	}
	if !havePolicy || f.pol == nil || len(p.DataJSON) == 0 {
		return
	}
	var sections map[string]json.RawMessage
	if err := json.Unmarshal(p.DataJSON, &sections); err != nil {
		f.log.Error("coordinator snapshot: policy data is not a JSON object; keeping the running data", "revision", p.Revision, "err", err)
		return
	}
	for name, raw := range sections {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			f.log.Error("coordinator snapshot: policy data section not applied", "section", name, "err", err)
			continue
		}
		if err := f.pol.SetData(ctx, name, v); err != nil {
			f.log.Error("coordinator snapshot: policy data section not applied", "section", name, "revision", p.Revision, "err", err)
		}
	}
}

// instrument exports the client's audit buffer on mp:
// aegis_audit_events_dropped_total (events lost because the buffer was
// full while the coordinator was away) and aegis_audit_events_buffered.
func (f *fleetMember) instrument(mp metric.MeterProvider) error {
	m := mp.Meter("github.com/takumo/aegis/coordinator/client")
	if _, err := m.Int64ObservableCounter("aegis_audit_events_dropped",
		metric.WithDescription("Audit events dropped because the buffer for the coordinator was full."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(f.c.Dropped())) //nolint:gosec // G115: a count
			return nil
		})); err != nil {
		return fmt.Errorf("coordinator metrics: %w", err)
	}
	if _, err := m.Int64ObservableGauge("aegis_audit_events_buffered",
		metric.WithDescription("Audit events held until the coordinator acknowledges them."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(f.c.Buffered()))
			return nil
		})); err != nil {
		return fmt.Errorf("coordinator metrics: %w", err)
	}
	return nil
}

// applyBundle loads the policy bundle the coordinator pushed when it
// changed (and the embedded policy again when the coordinator's policy no
// longer has one). A bundle that does not load leaves the running policy
// in place; the engine logs and counts the failure.
func (f *fleetMember) applyBundle(ctx context.Context, raw []byte) {
	if f.pol == nil {
		return
	}
	var sum [32]byte
	if len(raw) > 0 {
		sum = sha256.Sum256(raw)
	}
	if sum == f.bundleSum {
		return
	}
	var (
		p   policy.Policy
		err error
	)
	if len(raw) == 0 {
		p, err = policy.Embedded()
	} else {
		p, err = policy.ParseBundle(raw, "coordinator")
	}
	if err == nil {
		err = f.pol.Load(ctx, p)
	}
	if err != nil {
		f.log.Error("coordinator snapshot: policy bundle not loaded; keeping the running policy", "err", err)
		return
	}
	f.bundleSum = sum
	f.log.Info("coordinator snapshot: policy loaded", "revision", p.Revision)
}

// orgPlan is extproc's Config.OrgPlan.
func (f *fleetMember) orgPlan(org string) string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if p, ok := f.plans[org]; ok {
		return p
	}
	return f.plan
}

// audit is extproc's Config.Audit: the record goes to the coordinator
// client's bounded buffer (never blocking the request).
func (f *fleetMember) audit(r extproc.AuditRecord) {
	e := &coordv1.AuditEvent{RequestId: r.RequestID, Time: timestamppb.New(r.Time), Org: r.Org, KeyId: r.KeyID,
		Provider: r.Provider, Model: r.Model, Status: int32(r.Status), Code: r.Code, //nolint:gosec // G115: HTTP statuses
		DurationUs: r.Duration.Microseconds(), Mode: string(r.Mode)}
	for _, d := range r.Detections {
		e.Detections = append(e.Detections, &coordv1.AuditDetection{Rule: d.Rule, Category: d.Category, Action: d.Action,
			Line: int32(d.Line)}) //nolint:gosec // G115: line numbers
	}
	f.c.Audit(e)
}
