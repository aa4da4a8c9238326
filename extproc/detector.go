package extproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/takumo/aegis/detect"
	"github.com/takumo/aegis/detect/rules"
	"github.com/takumo/aegis/policy"
)

// detector holds the detection engine that follows the running policy: the
// base options (Config.EngineOptions) plus the policy's action overrides
// and custom rules (policy.Engine.Detections). Requests read it with one
// atomic load and one comparison of the policy's generation; a change of
// generation rebuilds it under mu, one rebuild at a time. A rebuild that
// fails keeps the last good engine, logs and counts the failure, and is not
// retried until the policy changes again.
type detector struct {
	pol    *policy.Engine
	base   *detect.Options // nil: fixed is used whatever the policy says
	fixed  *detect.Engine  // Config.Engine: used while the policy overrides nothing
	log    *slog.Logger
	counts metric.Int64Counter

	cur    atomic.Pointer[builtEngine]
	failed atomic.Uint64 // generation whose rebuild failed; 0 when none
	mu     sync.Mutex    // serializes rebuilds
}

// builtEngine is a detection engine and the policy generation it follows.
type builtEngine struct {
	eng *detect.Engine
	gen uint64
}

var (
	rebuildOK     = metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "success")))
	rebuildFailed = metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "failure")))
)

// newDetector builds the engine for the running policy. With base options
// a policy whose detection section the engine cannot honour is an error
// here (there is no last good engine to keep yet).
func newDetector(pol *policy.Engine, base *detect.Options, fixed *detect.Engine,
	log *slog.Logger, mp metric.MeterProvider) (*detector, error) {
	counts, err := mp.Meter(instrumentationName).Int64Counter("aegis_detect_engine_rebuilds_total",
		metric.WithDescription("Detection engine rebuilds after a policy change, by result; a failure keeps the last good engine."))
	if err != nil {
		return nil, fmt.Errorf("extproc: metric: %w", err)
	}
	d := &detector{pol: pol, base: base, fixed: fixed, log: log, counts: counts}
	if base == nil {
		d.cur.Store(&builtEngine{eng: fixed})
		return d, nil
	}
	snap := pol.Detections()
	eng, err := d.build(snap)
	if err != nil {
		return nil, fmt.Errorf("extproc: detection engine for policy revision %s: %w", snap.Revision, err)
	}
	d.cur.Store(&builtEngine{eng: eng, gen: snap.Generation})
	return d, nil
}

// engine returns the detection engine for the running policy, rebuilding
// it first when the policy changed since the last build.
func (d *detector) engine(ctx context.Context) *detect.Engine {
	b := d.cur.Load()
	if d.base == nil {
		return b.eng
	}
	gen := d.pol.Generation()
	if b.gen == gen || d.failed.Load() == gen {
		return b.eng
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	b = d.cur.Load()
	if b.gen == gen || d.failed.Load() == gen {
		return b.eng // another request rebuilt it (or failed to) meanwhile
	}
	snap := d.pol.Detections()
	eng, err := d.build(snap)
	if err != nil {
		d.failed.Store(snap.Generation)
		d.counts.Add(ctx, 1, rebuildFailed)
		d.log.LogAttrs(ctx, slog.LevelError, "detection engine not rebuilt for the new policy; keeping the last good engine",
			slog.String("revision", snap.Revision), slog.String("error", err.Error()))
		return b.eng
	}
	d.counts.Add(ctx, 1, rebuildOK)
	d.cur.Store(&builtEngine{eng: eng, gen: snap.Generation})
	d.log.LogAttrs(ctx, slog.LevelInfo, "detection engine rebuilt for the policy",
		slog.String("revision", snap.Revision), slog.Int("custom_rules", len(snap.Custom)),
		slog.Int("rule_actions", len(snap.RuleActions)), slog.Int("category_actions", len(snap.CategoryActions)))
	return eng
}

// build makes the engine for one policy snapshot. A policy without
// detection overrides or custom rules gets Config.Engine when there is one
// (it was built from the base options).
func (d *detector) build(snap policy.Detections) (*detect.Engine, error) {
	if d.fixed != nil && len(snap.RuleActions) == 0 && len(snap.CategoryActions) == 0 && len(snap.Custom) == 0 {
		return d.fixed, nil
	}
	opts, err := policyOptions(*d.base, snap)
	if err != nil {
		return nil, err
	}
	eng, err := detect.New(opts)
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	return eng, nil
}

// policyOptions lays the policy's detection section over base so that the
// engine's action for every finding is the one the embedded policy
// decides: a rule's entry in data.detections.rules, else its custom rule's
// own action, else its category's entry in data.detections.categories,
// else the engine's action. base is not changed.
func policyOptions(base detect.Options, snap policy.Detections) (detect.Options, error) {
	opts := base
	opts.Custom = append([]detect.Rule(nil), base.Custom...)
	opts.RuleActions = maps.Clone(base.RuleActions)
	opts.CategoryActions = maps.Clone(base.CategoryActions)
	if opts.RuleActions == nil {
		opts.RuleActions = map[string]detect.Action{}
	}
	if opts.CategoryActions == nil {
		opts.CategoryActions = map[detect.Category]detect.Action{}
	}
	var errs []error
	custom, err := customRules(snap.Custom)
	if err != nil {
		errs = append(errs, err)
	}
	opts.Custom = append(opts.Custom, custom...)

	for c, a := range snap.CategoryActions {
		cat, act := detect.Category(c), detect.Action(a)
		if !cat.Valid() || !act.Valid() {
			errs = append(errs, fmt.Errorf("detections.categories.%s: %q is not a category and action the engine knows", c, a))
			continue
		}
		opts.CategoryActions[cat] = act
	}
	// The policy's category beats the engine's own action, a base
	// override by rule id included: drop those for the categories the
	// policy sets.
	if len(snap.CategoryActions) > 0 {
		catalog := base.Rules
		if catalog == nil {
			catalog = rules.Builtin()
		}
		for _, r := range append(append([]detect.Rule(nil), catalog...), base.Custom...) {
			if _, ok := snap.CategoryActions[string(r.Category)]; ok {
				delete(opts.RuleActions, r.ID)
			}
		}
	}
	for _, r := range snap.Custom {
		if r.Action != "" {
			opts.RuleActions[r.ID] = detect.Action(r.Action)
		}
	}
	for id, a := range snap.RuleActions {
		act := detect.Action(a)
		if !act.Valid() {
			errs = append(errs, fmt.Errorf("detections.rules.%s: %q is not an action the engine knows", id, a))
			continue
		}
		opts.RuleActions[id] = act
	}
	if err := errors.Join(errs...); err != nil {
		return detect.Options{}, err
	}
	return opts, nil
}

// customRules compiles the policy data's custom rules with the detection
// engine's own policy-file rules (detect.ParsePolicy): the same id, pattern,
// category, keyword and action checks as a --policy file, and errors that
// never repeat a pattern. A JSON document is a YAML document.
func customRules(in []policy.CustomRule) ([]detect.Rule, error) {
	if len(in) == 0 {
		return nil, nil
	}
	doc, err := json.Marshal(struct {
		Version int                 `json:"version"`
		Rules   []policy.CustomRule `json:"rules"`
	}{1, in})
	if err != nil {
		return nil, fmt.Errorf("custom_rules: %w", err)
	}
	pol, err := detect.ParsePolicy(doc, "policy data custom_rules")
	if err != nil {
		return nil, err
	}
	return pol.Custom, nil
}
