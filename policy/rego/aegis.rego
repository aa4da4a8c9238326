# METADATA
# title: Takumo Aegis decision policy
# description: |
#   One decision per request (DESIGN §7): key state, the scope the operation
#   needs, the organization's plan (models, monthly requests and credits),
#   and the effective action of every detection. Query:
#   data.aegis.authz.decision. Input and decision are described in the Go
#   package doc of policy; the data schema in policy/data/plans.yaml.
#
#   It runs on every request that the engine's memo has not seen (for one,
#   every new set of detection lines), so it is written for OPA's evaluator:
#   a request that is allowed is decided in one rule body that reads each
#   rule and data document once into a local variable (every reference to a
#   rule costs an index lookup, even when its value is cached); the deny
#   reasons are looked at only when that body fails.
package aegis.authz

# ---------------------------------------------------------------- request

operation := data.operations[input.request.operation]

# Limits apply to live traffic of metered operations (credits > 0) only:
# test-mode traffic is counted apart and never against the plan.
default limits_apply := false

limits_apply if {
	input.key.mode == "live"
	operation.credits > 0
}

# ---------------------------------------------------------------- plan

# The plan of an org listed in data wins over the plan the key store reports.
plan_name := p if {
	p := data.orgs[input.org.id].plan
} else := p if {
	p := input.org.plan
	p != ""
}

plan_label := p if {
	p := plan_name
} else := "(none)"

plan := data.plans[plan_name]

# The plan's monthly credits, times the org's seats on a per-seat plan.
credit_allowance := a if {
	plan.credits_per_seat
	plan.credits_per_month >= 0
	a := plan.credits_per_month * seats
} else := plan.credits_per_month

seats := n if {
	n := data.orgs[input.org.id].seats
} else := 1

# ---------------------------------------------------------------- models

# The model id as matched: lower case, without any "provider/" or "models/"
# prefix.
model := m if {
	input.request.model != ""
	parts := split(lower(input.request.model), "/")
	m := parts[count(parts) - 1]
}

# The first class in data.models.order with a matching pattern; each class
# stops at its first matching pattern. (Written as an else chain, not a
# comprehension over every pattern, because it runs on every request.)
model_class := data.models.order[0] if {
	class_matches(data.models.order[0])
} else := data.models.order[1] if {
	class_matches(data.models.order[1])
} else := data.models.order[2] if {
	class_matches(data.models.order[2])
} else := data.models.order[3] if {
	class_matches(data.models.order[3])
} else := data.models.order[4] if {
	class_matches(data.models.order[4])
} else := data.models.order[5] if {
	class_matches(data.models.order[5])
} else := data.models.unknown_class

class_matches(k) if {
	some p in data.models.classes[k]
	glob.match(p, null, model)
}

# model_allowed(classes) holds when a plan allowing these model classes
# takes the request's model (a request without a model has no model check).
model_allowed(_) if input.request.model == ""

model_allowed(classes) if "*" in classes

model_allowed(classes) if model_class in classes

# ---------------------------------------------------------------- limits

# The usage window of one monthly counter: the inclusive range of the
# counter within which the decision stays the same when nothing but the
# usage changes (the decision's usage_window; the engine reuses a decision
# only while the usage lies within it). A request is over a limit when the
# counter so far is above limit - cost ([limit - cost + 1, null]); within it
# otherwise ([null, limit - cost]); a limit of -1 is unlimited ([null,
# null]), as is a request the limits do not apply to. For requests the cost
# is 1 (usage.requests >= requests_per_month is over); for credits it is
# the request's credits. These two calls are the only reads of
# input.org.usage: keep it so, or widen nothing here without a test in
# policy/memo_test.go.
window(applies, limit, cost, used) := [(limit - cost) + 1, null] if {
	applies
	limit >= 0
	used > limit - cost
} else := [null, limit - cost] if {
	applies
	limit >= 0
} else := [null, null]

usage_window := {
	"requests": window(limits_apply, plan.requests_per_month, 1, input.org.usage.requests),
	"credits": window(limits_apply, credit_allowance, operation.credits, input.org.usage.credits),
} if {
	plan
	operation
} else := {"requests": [null, null], "credits": [null, null]}

# A window with a lower bound is one the usage is over.
over(w) if w[0] != null

# ---------------------------------------------------------------- detections

# A detection's effective action: its rule's entry in data, else its custom
# rule's action, else its category's entry, else the engine's default
# action, else tokenize. The maps are built once per decision and read into
# locals before the loop (a rule referenced inside the loop would be looked
# up once per detection).
rule_actions := object.union(custom_rule_actions, r) if {
	r := data.detections.rules
} else := custom_rule_actions

custom_rule_actions := {r.id: r.action |
	some r in data.custom_rules
	r.action != ""
}

category_actions := c if {
	c := data.detections.categories
} else := {}

detections := [{"rule": d.rule, "category": d.category, "line": d.line, "action": action} |
	rules := rule_actions
	cats := category_actions
	some d in input.detections
	action := object.get(rules, d.rule, object.get(cats, d.category, object.get({"": "tokenize"}, d.action, d.action)))
]

blocked := [{"rule": d.rule, "category": d.category, "line": d.line} |
	some d in detections
	d.action == "block"
]

# ---------------------------------------------------------------- allow

# An allowed request: every check of the deny chain below passes. This is
# the common case, decided in one body.
decision := {
	"allow": true,
	"status": 200,
	"code": "",
	"message": "",
	"headers": headers(p, overage),
	"detections": dets,
	"blocked": [],
	"credits": op.credits,
	"overage": overage,
	"plan": p,
	"rate_limit": pl.rate_limits,
	"usage_window": windows,
	# The lines are only copied into detections (memo.go): the engine may
	# reuse this decision for the same request with other lines.
	"detection_lines": "copied",
} if {
	op := operation
	input.key.status == "active"
	op.scope in input.key.scopes
	p := plan_name
	pl := data.plans[p]
	model_allowed(pl.models)
	windows := usage_window
	not hard_capped(pl, windows)
	dets := detections
	not blocking(dets)
	overage := over_allowance(pl, windows)
} else := denied

hard_capped(pl, windows) if {
	pl.hard_cap
	over(windows.requests)
}

hard_capped(pl, windows) if {
	pl.hard_cap
	over(windows.credits)
}

blocking(dets) if {
	some d in dets
	d.action == "block"
}

# Paid plans may go over their allowance: allowed, and counted as overage.
default over_allowance(_, _) := false

over_allowance(pl, windows) if {
	not pl.hard_cap
	over(windows.requests)
}

over_allowance(pl, windows) if {
	not pl.hard_cap
	over(windows.credits)
}

headers(label, true) := {"x-aegis-plan": label, "x-aegis-overage": "true"}

headers(label, false) := {"x-aegis-plan": label}

# ---------------------------------------------------------------- deny

# The first reason that applies, in this order.
deny := {
	"status": 403, "code": "FORBIDDEN",
	"message": sprintf("unknown operation %q: the policy does not say which scope it needs", [input.request.operation]),
} if {
	not operation
} else := {
	"status": 401, "code": "UNAUTHORIZED",
	"message": "this API key is not active (disabled or revoked)",
} if {
	input.key.status != "active"
} else := {
	"status": 403, "code": "FORBIDDEN",
	"message": sprintf("this API key lacks the %s scope that %s needs", [operation.scope, input.request.operation]),
} if {
	not operation.scope in input.key.scopes
} else := {
	"status": 403, "code": "FORBIDDEN",
	"message": sprintf("the organization's plan %s is not defined in the gateway policy: an operator must fix the policy data", [plan_label]),
} if {
	not plan
} else := {
	"status": 403, "code": "FORBIDDEN",
	"message": sprintf("model %s is not available on the %s plan, which allows %s models", [input.request.model, plan_name, concat(" and ", plan.models)]),
} if {
	not model_allowed(plan.models)
} else := {
	"status": 403, "code": "PLAN_LIMIT_REACHED",
	"message": sprintf("the %s plan's monthly allowance of %d requests is used up; it renews on the first day of next month (UTC), or upgrade the plan", [plan_name, plan.requests_per_month]),
} if {
	plan.hard_cap
	over(usage_window.requests)
} else := {
	"status": 403, "code": "PLAN_LIMIT_REACHED",
	"message": sprintf("the %s plan's monthly allowance of %d credits is used up; it renews on the first day of next month (UTC), or upgrade the plan", [plan_name, credit_allowance]),
} if {
	plan.hard_cap
	over(usage_window.credits)
} else := {
	"status": 403, "code": "FORBIDDEN",
	"message": sprintf("request blocked by policy: %d detection(s) with the block action (%s); the values were not sent", [count(blocked), blocked_text]),
} if {
	count(blocked) > 0
}

blocked_text := concat("; ", [sprintf("rule %s, category %s, line %d", [b.rule, b.category, b.line]) | some b in blocked])

rate_limit := {"per_minute": plan.rate_limits.per_minute, "per_hour": plan.rate_limits.per_hour} if {
	plan
} else := {"per_minute": 0, "per_hour": 0}

# The headers of a denial still say whether the plan is over its allowance.
plan_overage := over_allowance(plan, usage_window) if {
	plan
} else := false

# A denied request: no credits, no overage.
denied := {
	"allow": false,
	"status": d.status,
	"code": d.code,
	"message": d.message,
	"headers": headers(plan_label, plan_overage),
	"detections": detections,
	"blocked": blocked,
	"credits": 0,
	"overage": false,
	"plan": plan_label,
	"rate_limit": rate_limit,
	"usage_window": usage_window,
} if {
	d := deny
}
