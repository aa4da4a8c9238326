# METADATA
# title: Takumo Aegis decision policy
# description: |
#   One decision per request (DESIGN §7): key state, the scope the operation
#   needs, the organization's plan (models, monthly requests and credits),
#   and the effective action of every detection. Query:
#   data.aegis.authz.decision. Input and decision are described in the Go
#   package doc of policy; the data schema in policy/data/plans.yaml.
package aegis.authz

# ---------------------------------------------------------------- request

operation := data.operations[input.request.operation]

# Credits this request costs (0 for operations that are not metered).
credits := c if {
	c := operation.credits
} else := 0

metered if credits > 0

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

seats := n if {
	n := data.orgs[input.org.id].seats
} else := 1

credit_allowance := a if {
	plan.credits_per_seat
	plan.credits_per_month >= 0
	a := plan.credits_per_month * seats
} else := plan.credits_per_month

rate_limit := {"per_minute": plan.rate_limits.per_minute, "per_hour": plan.rate_limits.per_hour} if {
	plan
} else := {"per_minute": 0, "per_hour": 0}

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

model_allowed if "*" in plan.models

model_allowed if model_class in plan.models

# ---------------------------------------------------------------- limits

# Test-mode traffic is counted apart and never against the plan.
limits_apply if {
	input.key.mode == "live"
	metered
}

over_requests if {
	limits_apply
	plan.requests_per_month >= 0
	input.org.usage.requests >= plan.requests_per_month
}

over_credits if {
	limits_apply
	credit_allowance >= 0
	input.org.usage.credits + credits > credit_allowance
}

# The usage ranges within which the decision stays the same when nothing
# but the usage changes (the decision's usage_window; the engine reuses a
# decision only while the usage lies within it). over_requests and
# over_credits above are the only reads of input.org.usage: keep it so, or
# widen nothing here without a test in policy/memo_test.go.
usage_window := {"requests": requests_window, "credits": credits_window}

requests_window := [plan.requests_per_month, null] if {
	over_requests
} else := [null, plan.requests_per_month - 1] if {
	limits_apply
	plan.requests_per_month >= 0
} else := [null, null]

credits_window := [(credit_allowance - credits) + 1, null] if {
	over_credits
} else := [null, credit_allowance - credits] if {
	limits_apply
	credit_allowance >= 0
} else := [null, null]

default overage := false

# Paid plans may go over their allowance: allowed, and counted as overage.
overage if {
	over_requests
	not plan.hard_cap
}

overage if {
	over_credits
	not plan.hard_cap
}

# ---------------------------------------------------------------- detections

# A detection's effective action: its rule's entry in data, else its custom
# rule's action, else its category's entry, else the engine's default
# action, else tokenize. The maps are built once per decision, then looked
# up per detection with object.get (cheaper than a function per detection).
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
	some d in input.detections
	action := object.get(rule_actions, d.rule, object.get(category_actions, d.category, object.get({"": "tokenize"}, d.action, d.action)))
]

blocked := [{"rule": d.rule, "category": d.category, "line": d.line} |
	some d in detections
	d.action == "block"
]

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
	model
	not model_allowed
} else := {
	"status": 403, "code": "PLAN_LIMIT_REACHED",
	"message": sprintf("the %s plan's monthly allowance of %d requests is used up; it renews on the first day of next month (UTC), or upgrade the plan", [plan_name, plan.requests_per_month]),
} if {
	over_requests
	plan.hard_cap
} else := {
	"status": 403, "code": "PLAN_LIMIT_REACHED",
	"message": sprintf("the %s plan's monthly allowance of %d credits is used up; it renews on the first day of next month (UTC), or upgrade the plan", [plan_name, credit_allowance]),
} if {
	over_credits
	plan.hard_cap
} else := {
	"status": 403, "code": "FORBIDDEN",
	"message": sprintf("request blocked by policy: %d detection(s) with the block action (%s); the values were not sent", [count(blocked), blocked_text]),
} if {
	count(blocked) > 0
}

blocked_text := concat("; ", [sprintf("rule %s, category %s, line %d", [b.rule, b.category, b.line]) | some b in blocked])

# ---------------------------------------------------------------- decision

headers := {"x-aegis-plan": plan_label, "x-aegis-overage": "true"} if {
	overage
} else := {"x-aegis-plan": plan_label}

decision := {
	"allow": false,
	"status": d.status,
	"code": d.code,
	"message": d.message,
	"headers": headers,
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

decision := {
	"allow": true,
	"status": 200,
	"code": "",
	"message": "",
	"headers": headers,
	"detections": detections,
	"blocked": [],
	"credits": credits,
	"overage": overage,
	"plan": plan_label,
	"rate_limit": rate_limit,
	"usage_window": usage_window,
} if {
	not deny
}
