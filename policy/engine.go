package policy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// DecisionPath is the rule every policy (embedded or from a bundle) must
// define; its value is the decision document.
const DecisionPath = "aegis/authz/decision"

const decisionQuery = "data.aegis.authz.decision"

// ErrNoDecision is wrapped when the policy could not decide (evaluation
// error, no result, or a result of the wrong shape). The caller must fail
// closed (503 SERVICE_UNAVAILABLE).
var ErrNoDecision = errors.New("policy: no decision")

// ErrPolicy is wrapped when a policy (embedded or a bundle) cannot be
// loaded; the engine keeps the last good one.
var ErrPolicy = errors.New("policy: policy rejected")

// Options configure an Engine. The zero value is usable.
type Options struct {
	// Logger receives load errors and, through the default sink, the
	// decision log. slog.Default() when nil.
	Logger *slog.Logger
	// Sink receives the decision log; SlogSink{Logger} when nil.
	Sink Sink
	// MeterProvider for the engine's metrics (OTel API); no-op when nil.
	MeterProvider metric.MeterProvider
	// Clock returns the current time; time.Now when nil.
	Clock func() time.Time
}

// Engine decides requests. The query is prepared once per policy; loading
// another policy prepares a new query against its own store and swaps it in
// atomically, so every decision comes wholly from one policy. It is safe
// for concurrent use.
type Engine struct {
	// immutable after construction
	log   *slog.Logger
	sink  Sink
	clock func() time.Time
	ins   instruments

	cur atomic.Pointer[generation]

	mu      sync.Mutex     // serializes loads and data updates
	overlay map[string]any // guarded by mu: sections set by SetData, laid over every policy's data

	// gen counts loads and data updates (see Generation); written under mu
	// once the change is visible to decisions.
	gen atomic.Uint64
}

// generation is one loaded policy: a prepared query over its own store.
// Readers use query, revision and custom; data is the data document as
// loaded and updated, touched only under Engine.mu.
type generation struct {
	query    rego.PreparedEvalQuery
	store    storage.Store
	revision string
	source   string
	custom   []CustomRule
	plans    []string
	data     map[string]any // guarded by Engine.mu
	// ruleAct and categoryAct are data.detections; replaced by SetData,
	// so guarded by Engine.mu.
	ruleAct, categoryAct map[string]string
	// memo holds recent decisions (see memo.go); nil for a policy that
	// must not be memoized. SetData replaces it after writing the store.
	memo atomic.Pointer[memo]
}

// New returns an engine running the embedded policy.
func New(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Sink == nil {
		opts.Sink = SlogSink{Logger: opts.Logger}
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	mp := opts.MeterProvider
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	ins, err := newInstruments(mp)
	if err != nil {
		return nil, err
	}
	e := &Engine{log: opts.Logger, sink: opts.Sink, clock: opts.Clock, ins: ins}
	mods, data, err := embeddedPolicy(false)
	if err != nil {
		return nil, err
	}
	if err := e.Load(ctx, Policy{Modules: mods, Data: data, Source: "embedded", Revision: "embedded"}); err != nil {
		return nil, fmt.Errorf("policy: the embedded policy does not load: %w", err)
	}
	return e, nil
}

// Policy is a set of Rego modules and a data document to load.
type Policy struct {
	// Modules maps a file name to Rego source (v1 syntax). Ignored when
	// Parsed is set.
	Modules map[string]string
	// Parsed are already parsed modules (from an OPA bundle).
	Parsed map[string]*ast.Module
	// Data is the data document (JSON-like: maps, slices, strings,
	// numbers, bools).
	Data map[string]any
	// Source names where the policy came from, for logs (never holds
	// credentials). Revision is its version (bundle revision or ETag).
	Source, Revision string
}

// Load compiles p, validates its data, prepares the decision query, checks
// that the policy yields a well-formed decision for a sample input, and
// only then swaps it in. On error the running policy stays, the error is
// logged and counted (aegis_policy_loads_total{result="failure"}), and the
// error wraps ErrPolicy.
func (e *Engine) Load(ctx context.Context, p Policy) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	g, err := e.build(ctx, p)
	if err != nil {
		err = fmt.Errorf("%w (source %s, revision %s): %w", ErrPolicy, p.Source, p.Revision, err)
		e.ins.loads.Add(ctx, 1, e.ins.loadFailure)
		e.log.ErrorContext(ctx, "policy rejected; keeping the last good policy",
			"source", p.Source, "revision", p.Revision, "error", err)
		return err
	}
	old := e.cur.Swap(g)
	e.gen.Add(1)
	e.ins.loads.Add(ctx, 1, e.ins.loadSuccess)
	if old != nil {
		e.log.InfoContext(ctx, "policy loaded", "source", p.Source, "revision", p.Revision, "previous", old.revision)
	}
	return nil
}

// build makes a generation from p. Call with mu held.
func (e *Engine) build(ctx context.Context, p Policy) (*generation, error) {
	data := maps.Clone(p.Data)
	if data == nil {
		data = map[string]any{}
	}
	for k, v := range e.overlay {
		data[k] = v
	}
	nd, err := normalize(data)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	data, _ = nd.(map[string]any)
	if data == nil {
		data = map[string]any{}
	}
	checked, err := validateData(data)
	if err != nil {
		return nil, err
	}
	mods := p.Parsed
	if mods == nil {
		mods = make(map[string]*ast.Module, len(p.Modules))
		for _, name := range sortedKeys(p.Modules) {
			m, err := ast.ParseModuleWithOpts(name, p.Modules[name], ast.ParserOptions{RegoVersion: ast.RegoV1})
			if err != nil {
				return nil, fmt.Errorf("parse: %w", err)
			}
			mods[name] = m
		}
	}
	if len(mods) == 0 {
		return nil, errors.New("no Rego modules")
	}
	compiler := ast.NewCompiler()
	if compiler.Compile(mods); compiler.Failed() {
		return nil, fmt.Errorf("compile: %w", compiler.Errors)
	}
	store := inmem.NewFromObjectWithOpts(data, inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))
	pq, err := rego.New(
		rego.Query(decisionQuery),
		rego.Compiler(compiler),
		rego.Store(store),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	g := &generation{query: pq, store: store, revision: p.Revision, source: p.Source,
		custom: checked.custom, plans: checked.plans, data: data,
		ruleAct: checked.ruleAct, categoryAct: checked.categoryAct}
	g.memo.Store(newMemo(compiler.Modules))
	// A policy that cannot decide a plain request is not swapped in.
	canary := canaryInput(checked.plans)
	if _, _, err := g.eval(ctx, &canary); err != nil {
		return nil, fmt.Errorf("sample decision: %w", err)
	}
	return g, nil
}

// canaryInput is a plain request used to check a new policy.
func canaryInput(plans []string) Input {
	plan := "free"
	if len(plans) > 0 && !slices.Contains(plans, plan) {
		plan = plans[0]
	}
	return Input{
		Key:        KeyInput{ID: "key_canary", Org: "org_canary", Mode: "live", Scopes: []string{"shield:write"}, Status: "active"},
		Org:        OrgInput{ID: "org_canary", Plan: plan},
		Request:    RequestInfo{Method: "POST", Path: "/v1/messages", Provider: "anthropic", Model: "claude-haiku-4-5", Operation: "proxy"},
		Detections: []Detection{{Rule: "canary-rule", Category: "KEY", Action: "tokenize", Line: 1}},
	}
}

// returnAST hands the decision's AST value to the typed getters without a
// conversion to Go values.
func returnAST(t *ast.Term, _ *rego.EvalContext) (any, error) { return t.Value, nil }

// decide answers in from the memo, or evaluates it under this generation
// and memoizes the answer.
func (g *generation) decide(ctx context.Context, in *Input) (Decision, error) {
	mo := g.memo.Load()
	if mo != nil {
		if d, ok := mo.lookup(in); ok {
			return d, nil
		}
	}
	d, h, err := g.eval(ctx, in)
	if err == nil && mo != nil {
		mo.store(in, d, h)
	}
	return d, err
}

// eval evaluates in under this generation, without the memo. The hints
// are what the policy stated about the decision's dependence on the usage
// and the detection lines (memo.go).
func (g *generation) eval(ctx context.Context, in *Input) (Decision, memoHints, error) {
	// OPA's default is a goroutine per evaluation that waits for ctx to be
	// done; context.AfterFunc gives the same cancellation without one.
	cancel := topdown.NewCancel()
	stop := context.AfterFunc(ctx, cancel.Cancel)
	rs, err := g.query.Eval(ctx,
		rego.EvalParsedInput(in.value()),
		rego.EvalGenerateJSON(returnAST),
		rego.EvalExternalCancel(cancel),
		rego.EvalMetrics(metrics.NoOp()),
		rego.EvalInstrument(false),
		rego.EvalRuleIndexing(true),
		rego.EvalEarlyExit(true))
	stop()
	if err != nil {
		return Decision{}, memoHints{}, fmt.Errorf("%w: evaluate: %w", ErrNoDecision, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return Decision{}, memoHints{}, fmt.Errorf("%w: %s is undefined for this input", ErrNoDecision, decisionQuery)
	}
	v, ok := rs[0].Expressions[0].Value.(ast.Value)
	if !ok {
		return Decision{}, memoHints{}, fmt.Errorf("%w: unexpected result type %T", ErrNoDecision, rs[0].Expressions[0].Value)
	}
	d, err := readDecision(v, len(in.Detections))
	if err != nil {
		return Decision{}, memoHints{}, fmt.Errorf("%w: %w", ErrNoDecision, err)
	}
	w, err := readUsageWindow(v)
	if err != nil {
		return Decision{}, memoHints{}, fmt.Errorf("%w: %w", ErrNoDecision, err)
	}
	return d, memoHints{window: w, linesCopied: readLinesCopied(v)}, nil
}

// Decide asks the policy about one request. An error wraps ErrNoDecision
// (fail closed: 503). Every call, successful or not, writes one decision-log
// record to the sink, with a context that outlives a cancelled request.
func (e *Engine) Decide(ctx context.Context, in Input) (Decision, error) {
	start := e.clock()
	in = in.sanitized()
	g := e.cur.Load()
	d, err := g.decide(ctx, &in)
	id := newDecisionID()
	rec := DecisionRecord{
		DecisionID: id, RequestID: in.RequestID, Timestamp: start.UTC(), Path: DecisionPath,
		Revision: g.revision, Input: in,
	}
	if err != nil {
		rec.Error = err.Error()
		e.ins.decisions.Add(ctx, 1, e.ins.decError)
	} else {
		d.ID = id
		rec.Result = &d
		if d.Allow {
			e.ins.decisions.Add(ctx, 1, e.ins.decAllow)
		} else {
			e.ins.decisions.Add(ctx, 1, e.ins.decDeny)
		}
	}
	rec.Duration = e.clock().Sub(start)
	if lerr := e.sink.Log(context.WithoutCancel(ctx), rec); lerr != nil {
		e.log.WarnContext(ctx, "policy decision log failed", "decision_id", id, "error", lerr)
	}
	if err != nil {
		return Decision{}, err
	}
	return d, nil
}

func newDecisionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "dec_" + hex.EncodeToString(b[:])
}

// Revision returns the revision of the running policy ("embedded", or the
// bundle's revision or ETag).
func (e *Engine) Revision() string { return e.cur.Load().revision }

// CustomRules returns the custom detection rules of the running policy's
// data, for the caller to compile into the detection engine. Poll it (or
// compare Revision) after a bundle loads.
func (e *Engine) CustomRules() []CustomRule {
	return cloneRules(e.cur.Load().custom)
}

func cloneRules(rules []CustomRule) []CustomRule {
	out := make([]CustomRule, len(rules))
	for i, r := range rules {
		r.Keywords = slices.Clone(r.Keywords)
		out[i] = r
	}
	return out
}

// Detections is what the running policy asks of the detection engine:
// the action overrides of data.detections and the custom rules of
// data.custom_rules. A detection engine built with these overrides and
// rules reports the actions the policy would decide for its detections
// (the embedded policy: a rule id wins over its category, which wins over
// the engine's own action).
type Detections struct {
	// Revision is the running policy's revision (as Engine.Revision).
	Revision string
	// Generation is Engine.Generation when this snapshot was taken.
	Generation uint64
	// RuleActions maps a rule id to its action (tokenize, block, monitor,
	// off); CategoryActions maps a category (KEY, SECRET, …) to its
	// action. Both are validated and may be empty.
	RuleActions     map[string]string
	CategoryActions map[string]string
	// Custom are the custom rules (as CustomRules).
	Custom []CustomRule
}

// Detections returns a consistent snapshot of the running policy's
// detection overrides and custom rules with its revision and generation.
// The maps and slices are the caller's own.
func (e *Engine) Detections() Detections {
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.cur.Load()
	return Detections{
		Revision:        g.revision,
		Generation:      e.gen.Load(),
		RuleActions:     maps.Clone(g.ruleAct),
		CategoryActions: maps.Clone(g.categoryAct),
		Custom:          cloneRules(g.custom),
	}
}

// Generation returns a number that changes whenever the running policy or
// its data changes (every successful Load, bundle activation and SetData;
// Revision stays the same across SetData). It is one atomic load: cheap
// enough to compare on every request and call Detections when it moved.
func (e *Engine) Generation() uint64 { return e.gen.Load() }

// settableSections are the data sections SetData may replace. Custom rules
// are not among them: they change the detection engine, so they come with
// a policy load.
var settableSections = []string{"plans", "orgs", "operations", "models", "detections"}

// SetData replaces one top-level section of the data document ("plans",
// "orgs", "operations", "models" or "detections") in the running policy
// without re-preparing the query: OPA evaluates a prepared query against
// the store at evaluation time, and the new section is written in one store
// transaction, so a decision sees either the old or the new section, never
// a mix. The whole data document is validated first; on error nothing
// changes. The section is kept and laid over the data of every policy
// loaded later (a coordinator's org → plan map survives a bundle swap).
func (e *Engine) SetData(ctx context.Context, section string, value any) error {
	if !slices.Contains(settableSections, section) {
		return fmt.Errorf("policy: set data: section %q cannot be set (settable: %v)", section, settableSections)
	}
	v, err := normalize(value)
	if err != nil {
		return fmt.Errorf("policy: set data %s: %w", section, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.cur.Load()
	next := maps.Clone(g.data)
	next[section] = v
	checked, err := validateData(next)
	if err != nil {
		return fmt.Errorf("policy: set data %s: %w", section, err)
	}
	if err := storage.WriteOne(ctx, g.store, storage.AddOp, storage.Path{section}, v); err != nil {
		return fmt.Errorf("policy: set data %s: write: %w", section, err)
	}
	// Only now, with the store written, may decisions be memoized anew:
	// a decision from the old data can only reach the old memo.
	g.memo.Store(g.memo.Load().fresh())
	g.data = next
	g.plans = checked.plans
	g.ruleAct, g.categoryAct = checked.ruleAct, checked.categoryAct
	e.gen.Add(1)
	if e.overlay == nil {
		e.overlay = map[string]any{}
	}
	e.overlay[section] = v
	return nil
}

// SetOrgs sets the org → plan map (data.orgs) with SetData.
func (e *Engine) SetOrgs(ctx context.Context, orgs map[string]Org) error {
	return e.SetData(ctx, "orgs", orgs)
}

// Plans returns the names of the plans in the running policy's data.
func (e *Engine) Plans() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := slices.Clone(e.cur.Load().plans)
	sort.Strings(p)
	return p
}

// instruments are the engine's metrics.
type instruments struct {
	loads       metric.Int64Counter
	decisions   metric.Int64Counter
	loadSuccess metric.AddOption
	loadFailure metric.AddOption
	decAllow    metric.AddOption
	decDeny     metric.AddOption
	decError    metric.AddOption
}

func newInstruments(mp metric.MeterProvider) (instruments, error) {
	m := mp.Meter("github.com/takumo/aegis/policy")
	var ins instruments
	var err error
	if ins.loads, err = m.Int64Counter("aegis_policy_loads_total",
		metric.WithDescription("Policy loads (embedded or bundle) by result; a failure keeps the last good policy.")); err != nil {
		return ins, fmt.Errorf("policy: metrics: %w", err)
	}
	if ins.decisions, err = m.Int64Counter("aegis_policy_decisions_total",
		metric.WithDescription("Policy decisions by result (allow, deny, error).")); err != nil {
		return ins, fmt.Errorf("policy: metrics: %w", err)
	}
	set := func(k, v string) metric.AddOption {
		return metric.WithAttributeSet(attribute.NewSet(attribute.String(k, v)))
	}
	ins.loadSuccess, ins.loadFailure = set("result", "success"), set("result", "failure")
	ins.decAllow, ins.decDeny, ins.decError = set("result", "allow"), set("result", "deny"), set("result", "error")
	return ins, nil
}
