// Package policy decides, with OPA, whether a request may go on: the key's
// state and scopes, the organization's plan (models, monthly requests and
// credits), and the effective action of each detection (DESIGN §7). Rego
// stays behind one call, [Engine.Decide].
//
// # How the ext_proc server calls it
//
// Build one engine at start (cli wiring), optionally with a bundle:
//
//	eng, err := policy.New(ctx, policy.Options{Logger: log, MeterProvider: mp})
//	if bundleFlag != "" {                          // --policy-bundle path-or-URL
//		l, err := eng.NewBundleLoader(policy.BundleOptions{Source: bundleFlag, VerificationKey: pem})
//		_ = l.Poll(ctx)                            // first load; on error the embedded policy stays
//		l.Start(ctx); defer l.Stop(ctx)
//	}
//
// Per request, once the model and the detections are known (after the
// request body), and for bodiless requests at the request headers:
//
//	rec, _ := keyStore.Authenticate(ctx, raw)      // package keys
//	usage, _ := keyStore.Month(rec.Org, now)
//	d, err := eng.Decide(ctx, policy.Input{
//		RequestID: reqID,
//		Key:     policy.KeyInput{ID: rec.ID, Org: rec.Org, Mode: string(rec.Mode), Scopes: rec.Scopes, Status: string(rec.State)},
//		Org:     policy.OrgInput{ID: rec.Org, Plan: orgPlan, Usage: policy.Usage{Requests: usage.Live.Requests, Credits: usage.Live.Credits}},
//		Request: policy.RequestInfo{Method: m, Path: p, Provider: prov, Model: model, Operation: "proxy"}, // or tokenize, detect
//		Detections: dets, // one per finding: rule id, category, engine default action, 1-based line; never the value
//	})
//	switch {
//	case err != nil:  // errors.Is(err, policy.ErrNoDecision): 503 SERVICE_UNAVAILABLE (fail closed)
//	case !d.Allow:    // d.Status, d.Code, d.Message are the DESIGN §6 error; d.Blocked lists rule, category, line
//	default:          // apply d.Detections[i].Action to finding i (tokenize, monitor: forward, off: ignore);
//	                  // add d.Headers to the response; record usage: keys.Usage{Requests: 1, Credits: d.Credits, Mode: rec.Mode};
//	                  // hand d.RateLimit (per org) to the data plane's rate limiter.
//	}
//
// orgPlan is the plan the org store knows ("" is fine when the policy data
// lists the org: data.orgs.<id>.plan wins). Stop ends the loader's polling
// (HTTP polling does not follow ctx).
//
// What the policy asks of the detection engine (data.detections action
// overrides per rule and category, data.custom_rules) comes out of
// [Engine.Detections] as one snapshot; rebuild the detection engine from
// it when [Engine.Generation] changes (every load and every SetData: a
// SetData of "detections" keeps the Revision). An engine built that way
// reports for each detection the action the embedded policy decides. The coordinator's org → plan map goes in with [Engine.SetOrgs].
//
// # Input and decision
//
// The input document is [Input] in its JSON form: key {id, org, mode,
// scopes, status}, org {id, plan, usage {requests, credits}}, request
// {method, path, provider, model, operation}, detections [{rule, category,
// action, line}]. It has no field that could carry a secret value; the path
// is cut at "?" before it reaches the policy or the log.
//
// The policy must define data.aegis.authz.decision as an object with
// allow (bool), status (number), code, message (strings), headers (object of
// strings), detections (array, one {rule, category, line, action} per input
// detection in order), blocked (array of {rule, category, line}), credits
// (number), overage (bool), plan (string) and rate_limit {per_minute,
// per_hour}, and optionally usage_window {requests: [min, max], credits:
// [min, max]} (null for an open end): the usage within which the decision
// would be the same with every other input unchanged. Each field is read
// by a typed getter that fails loudly; a policy that yields a malformed
// decision for a sample request is refused at load, and a malformed
// decision at run time is an ErrNoDecision.
//
// # The embedded policy
//
// policy/rego/aegis.rego with data policy/data/plans.yaml (see the comments
// there for the schema). Deny reasons, first match wins: unknown operation
// (403 FORBIDDEN), key not active (401 UNAUTHORIZED), missing scope (403
// FORBIDDEN), plan not defined in data (403 FORBIDDEN, a safe deny naming
// the plan), model not in the plan (403 FORBIDDEN naming the model and the
// plan), monthly requests or credits used up on a hard-capped plan (403
// PLAN_LIMIT_REACHED), a detection whose action is block (403 FORBIDDEN
// listing rule, category and line). Paid plans go over their allowance as
// overage (allowed, Overage true, counted). Test-mode keys never count
// against the plan; operations that cost 0 credits are not metered. Model
// ids map to classes (haiku, sonnet, opus) by glob patterns in data; models
// of other providers map by size (mini, nano, flash, small → haiku; the
// mid-size flagships → sonnet; the largest and reasoning models → opus) and
// a model no pattern knows is treated as opus, so only plans that allow
// every model can use it.
//
// # Bundles and data updates
//
// An operator replaces the embedded policy with a standard OPA bundle (a
// directory, a .tar.gz, or an HTTP bundle server), see [BundleLoader]. The
// bundle's data document uses the same top-level keys; the sections this
// package knows (plans, operations, models, detections, custom_rules, orgs)
// are validated strictly (unknown fields, unknown scope names, unknown
// actions or categories, orgs on undefined plans are errors, all reported
// at once). Each load prepares a new query against a new store and swaps
// one pointer, so a decision never mixes two policies; a broken bundle is
// logged, counted in aegis_policy_loads_total{result="failure"}, and the
// last good policy stays.
//
// Data-only updates ([Engine.SetData], [Engine.SetOrgs]) do not re-prepare
// the query: a prepared OPA query reads the store at evaluation time, so the
// new section is written to the running policy's store in one transaction.
// Such sections persist across later bundle loads.
//
// # Memoized decisions
//
// Each policy generation keeps recent decisions, keyed on exactly the input
// fields its modules read (found in the compiled Rego), so a repeated
// request is answered without evaluating Rego again; see memo.go for why an
// answer can never be stale. The usage is left out of the key when the
// decision states its usage_window (the embedded policy does), and an entry
// is used only while the usage lies in it. Policies that call a
// nondeterministic builtin (time.now_ns, http.send, …) are not memoized.
// Data updates start a new memo.
//
// # Decision log
//
// Every Decide writes one [DecisionRecord] (decision_id, timestamp, path,
// revision, input, result or error) to the [Sink] (default: [SlogSink] on
// the engine's logger), with context.WithoutCancel so a cancelled request is
// still logged.
package policy
