package extproc

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/takumo/aegis/detect"
	"github.com/takumo/aegis/keys"
	"github.com/takumo/aegis/policy"
)

// The operations this server asks the policy about (data.operations).
const (
	opProxy    = "proxy"
	opTokenize = "tokenize"
	opDetect   = "detect"
)

// decide asks the policy about the request, once the model and the
// detections are known (after the body; at the headers for bodiless
// requests). dets carry the detection engine's actions; fields, when not
// nil, names the JSON field of each detection for the client's error
// details. A denial is a *DeniedError, a policy that cannot decide an error
// wrapping policy.ErrNoDecision (503), usage that cannot be read an
// ErrKeyStore (503). On success p.decision holds the decision and the
// request's usage will be recorded when the exchange ends.
func (p *processor) decide(op string, dets []policy.Detection, fields []string) error {
	org := p.key.Org
	usage, err := p.s.cfg.KeyStore.Month(org, time.Now())
	if err != nil {
		return fmt.Errorf("%w: usage: %w", ErrKeyStore, err)
	}
	if dets == nil {
		dets = []policy.Detection{}
	}
	d, err := p.s.policy.Decide(p.ctx, policy.Input{
		RequestID: p.requestID,
		Key: policy.KeyInput{ID: p.key.ID, Org: org, Mode: string(p.key.Mode), Scopes: p.key.Scopes,
			Status: string(p.key.State)},
		Org: policy.OrgInput{ID: org, Plan: p.s.cfg.OrgPlan(org),
			Usage: policy.Usage{Requests: usage.Live.Requests, Credits: usage.Live.Credits}},
		Request: policy.RequestInfo{Method: p.method, Path: p.path, Provider: string(p.info.Provider),
			Model: p.info.Model, Operation: op},
		Detections: dets,
	})
	if err != nil {
		return fmt.Errorf("extproc: policy: %w", err)
	}
	if len(d.Detections) != len(dets) {
		return fmt.Errorf("extproc: policy: %w: %d actions for %d detections", policy.ErrNoDecision, len(d.Detections), len(dets))
	}
	p.decision = d
	p.blocked = len(d.Blocked)
	if !d.Allow {
		de := &DeniedError{Status: d.Status, Code: d.Code, Message: d.Message}
		for i, a := range d.Detections {
			if a.Action != string(detect.Block) {
				continue
			}
			bd := BlockDetail{Rule: a.Rule, Category: a.Category, Line: a.Line}
			if i < len(fields) {
				bd.Field = fields[i]
			}
			de.Details = append(de.Details, bd)
		}
		return de
	}
	p.meter = true
	return nil
}

// checkApplied fails closed when the policy wants a detection tokenized
// that the tokenizer left in place (the engine's action was monitor or
// block and a policy bundle overrides it): the value would travel in
// clear. The other direction (tokenized, policy says monitor or off) keeps
// the token: the safer of the two, and the request is allowed.
func checkApplied(d policy.Decision, applied []detect.Action) error {
	for i, a := range d.Detections {
		if a.Action == string(detect.Tokenize) && i < len(applied) && applied[i] != detect.Tokenize {
			return fmt.Errorf("%w: rule %s (engine action %s)", ErrPolicyMismatch, a.Rule, applied[i])
		}
	}
	return nil
}

// decisionHeaders are the decision's headers for the response to the
// client (x-aegis-plan, x-aegis-overage), nil before a decision.
func (p *processor) decisionHeaders() []*corev3.HeaderValueOption {
	if len(p.decision.Headers) == 0 {
		return nil
	}
	out := make([]*corev3.HeaderValueOption, 0, len(p.decision.Headers))
	for k, v := range p.decision.Headers {
		out = append(out, setHeader(k, v))
	}
	return out
}

// recordUsage meters an allowed request: one request and the decision's
// credits, live and test apart (the store counts test traffic separately
// and never against the plan).
func (p *processor) recordUsage() {
	err := p.s.cfg.KeyStore.Record(context.WithoutCancel(p.ctx), keys.Usage{
		Org: p.key.Org, KeyID: p.key.ID, Mode: p.key.Mode, Requests: 1, Credits: p.decision.Credits,
	})
	if err != nil {
		p.s.log.LogAttrs(p.ctx, slog.LevelWarn, "usage not recorded", slog.String("request_id", p.requestID),
			slog.String("org", p.key.Org), slog.String("key_id", p.key.ID), slog.String("error", err.Error()))
	}
}
