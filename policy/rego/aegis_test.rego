# Unit tests of the embedded policy, run by `go test ./policy` (OPA's Go
# tester) against the embedded data (policy/data/plans.yaml).
package aegis.authz_test

import data.aegis.authz

live_key := {"id": "key_1", "org": "org_a", "mode": "live", "scopes": ["shield:write"], "status": "active"}

key_in_test_mode := object.union(live_key, {"mode": "test"})

no_usage := {"requests": 0, "credits": 0}

req(plan, model) := {
	"key": live_key,
	"org": {"id": "org_a", "plan": plan, "usage": no_usage},
	"request": {"method": "POST", "path": "/v1/messages", "provider": "anthropic", "model": model, "operation": "proxy"},
	"detections": [],
}

with_usage(i, requests, credits) := object.union(i, {"org": object.union(i.org, {"usage": {"requests": requests, "credits": credits}})})

# ---------------------------------------------------------------- allow per plan

test_allow_every_plan_haiku if {
	every p in ["free", "developer", "pro", "enterprise"] {
		d := authz.decision with input as req(p, "claude-haiku-4-5")
		d.allow
		d.status == 200
		d.credits == 1
		d.plan == p
		d.headers["x-aegis-plan"] == p
	}
}

test_rate_limits_per_plan if {
	limits := {
		"free": {"per_minute": 30, "per_hour": 500},
		"developer": {"per_minute": 60, "per_hour": 2500},
		"pro": {"per_minute": 120, "per_hour": 5000},
		"enterprise": {"per_minute": 500, "per_hour": 20000},
	}
	every p, l in limits {
		d := authz.decision with input as req(p, "")
		d.rate_limit == l
	}
}

test_bodiless_request_has_no_model_check if {
	d := authz.decision with input as req("free", "")
	d.allow
}

# ---------------------------------------------------------------- models

test_models_per_plan if {
	cases := [
		["free", "claude-3-5-haiku-20241022", true],
		["free", "claude-sonnet-4-5", false],
		["free", "claude-opus-4-1", false],
		["free", "gpt-4o-mini", true],
		["free", "gpt-4o", false],
		["free", "some-new-model", false],
		["developer", "claude-sonnet-4-5-20250929", true],
		["developer", "Claude-Sonnet-4-5", true],
		["developer", "gpt-4.1", true],
		["developer", "models/gemini-2.5-pro", true],
		["developer", "claude-opus-4-1", false],
		["developer", "o3", false],
		["developer", "gpt-5-pro", false],
		["developer", "some-new-model", false],
		["pro", "claude-opus-4-1", true],
		["pro", "some-new-model", true],
		["enterprise", "claude-opus-4-1", true],
		["free", "anthropic.claude-3-haiku-20240307-v1:0", true],
		["free", "gemini-2.5-flash", true],
		["free", "o4-mini", true],
		["free", "mistral-small-latest", true],
		["developer", "mistral-large-latest", false],
	]
	every c in cases {
		d := authz.decision with input as req(c[0], c[1])
		d.allow == c[2]
	}
}

test_model_denied_names_model_and_plan if {
	d := authz.decision with input as req("free", "claude-sonnet-4-5")
	not d.allow
	d.status == 403
	d.code == "FORBIDDEN"
	contains(d.message, "claude-sonnet-4-5")
	contains(d.message, "free plan")
	contains(d.message, "haiku")
	d.credits == 0
}

test_model_class_order_first_match_wins if {
	authz.model_class == "haiku" with input as req("free", "gpt-5-mini")
	authz.model_class == "sonnet" with input as req("free", "gpt-5")
	authz.model_class == "opus" with input as req("free", "gpt-5-pro")
	authz.model_class == "opus" with input as req("free", "unheard-of-1")
}

# ---------------------------------------------------------------- key and scope

test_inactive_key_denied if {
	every s in ["disabled", "revoked", "", "paused"] {
		i := object.union(req("pro", ""), {"key": object.union(live_key, {"status": s})})
		d := authz.decision with input as i
		not d.allow
		d.status == 401
		d.code == "UNAUTHORIZED"
	}
}

test_missing_scope_denied if {
	i := object.union(req("pro", ""), {"key": object.union(live_key, {"scopes": ["shield:read"]})})
	d := authz.decision with input as i
	not d.allow
	d.status == 403
	d.code == "FORBIDDEN"
	contains(d.message, "shield:write")
}

test_scope_per_operation if {
	cases := {
		"proxy": "shield:write", "tokenize": "shield:write", "detect": "shield:write",
		"rehydrate": "shield:write", "audit.read": "audit:read", "fleet.write": "fleet:write",
		"policy.read": "policy:read", "org.write": "org:write", "usage.read": "org:read",
	}
	every op, scope in cases {
		base := object.union(req("pro", ""), {"request": object.union(req("pro", "").request, {"operation": op})})
		ok := object.union(base, {"key": object.union(live_key, {"scopes": [scope]})})
		authz.decision.allow with input as ok
		no := object.union(base, {"key": object.union(live_key, {"scopes": ["shield:read"]})})
		not authz.decision.allow with input as no
	}
}

test_unknown_operation_denied if {
	i := object.union(req("pro", ""), {"request": object.union(req("pro", "").request, {"operation": "launch"})})
	d := authz.decision with input as i
	not d.allow
	d.status == 403
	contains(d.message, "unknown operation")
}

# ---------------------------------------------------------------- plans in data

test_unknown_plan_is_a_safe_deny if {
	d := authz.decision with input as req("platinum", "")
	not d.allow
	d.status == 403
	contains(d.message, "platinum")
	d.rate_limit == {"per_minute": 0, "per_hour": 0}
}

test_no_plan_at_all_is_a_safe_deny if {
	d := authz.decision with input as req("", "")
	not d.allow
	contains(d.message, "(none)")
}

test_org_plan_in_data_wins if {
	d := authz.decision with input as req("free", "claude-opus-4-1")
		with data.orgs as {"org_a": {"plan": "enterprise"}}
	d.allow
	d.plan == "enterprise"
}

test_org_whose_plan_was_deleted if {
	d := authz.decision with input as req("pro", "")
		with data.orgs as {"org_a": {"plan": "gold"}}
	not d.allow
	contains(d.message, "gold")
}

# ---------------------------------------------------------------- limits

test_free_hard_cap_requests if {
	d := authz.decision with input as with_usage(req("free", ""), 10000, 0)
	not d.allow
	d.status == 403
	d.code == "PLAN_LIMIT_REACHED"
	contains(d.message, "10000 requests")
	authz.decision.allow with input as with_usage(req("free", ""), 9999, 0)
}

test_free_hard_cap_credits if {
	d := authz.decision with input as with_usage(req("free", ""), 10, 1000)
	d.code == "PLAN_LIMIT_REACHED"
	contains(d.message, "1000 credits")
	authz.decision.allow with input as with_usage(req("free", ""), 10, 999)
}

test_paid_plans_overage_allowed_and_counted if {
	every p in ["developer", "pro"] {
		d := authz.decision with input as with_usage(req(p, ""), 100000000, 100000000)
		d.allow
		d.overage
		d.credits == 1
		d.headers["x-aegis-overage"] == "true"
	}
}

test_within_allowance_no_overage if {
	d := authz.decision with input as with_usage(req("developer", ""), 10, 10)
	d.allow
	not d.overage
	not d.headers["x-aegis-overage"]
}

test_enterprise_unlimited if {
	d := authz.decision with input as with_usage(req("enterprise", ""), 999999999, 999999999)
	d.allow
	not d.overage
}

test_pro_credits_scale_with_seats if {
	authz.decision.overage with input as with_usage(req("pro", ""), 0, 5000)
	not authz.decision.overage with input as with_usage(req("pro", ""), 0, 5000)
		with data.orgs as {"org_a": {"plan": "pro", "seats": 5}}
	authz.decision.overage with input as with_usage(req("pro", ""), 0, 25000)
		with data.orgs as {"org_a": {"plan": "pro", "seats": 5}}
}

test_test_mode_never_against_the_plan if {
	i := object.union(with_usage(req("free", ""), 10000, 1000), {"key": key_in_test_mode})
	d := authz.decision with input as i
	d.allow
	not d.overage
}

test_unmetered_operation_not_capped if {
	i := with_usage(req("free", ""), 10000, 1000)
	j := object.union(i, {
		"request": object.union(i.request, {"operation": "usage.read"}),
		"key": object.union(live_key, {"scopes": ["org:read"]}),
	})
	d := authz.decision with input as j
	d.allow
	d.credits == 0
}

# ---------------------------------------------------------------- detections

dets := [
	{"rule": "aws-access-key-id", "category": "KEY", "action": "tokenize", "line": 3},
	{"rule": "postgres-url", "category": "CONN", "action": "", "line": 7},
	{"rule": "generic-password", "category": "SECRET", "action": "monitor", "line": 9},
]

with_dets(i, ds) := object.union(i, {"detections": ds})

test_detections_default_actions if {
	d := authz.decision with input as with_dets(req("pro", ""), dets)
	d.allow
	[x.action | some x in d.detections] == ["tokenize", "tokenize", "monitor"]
}

test_block_by_rule if {
	d := authz.decision with input as with_dets(req("pro", ""), dets)
		with data.detections as {"rules": {"aws-access-key-id": "block"}, "categories": {}}
	not d.allow
	d.status == 403
	d.code == "FORBIDDEN"
	d.blocked == [{"rule": "aws-access-key-id", "category": "KEY", "line": 3}]
	contains(d.message, "rule aws-access-key-id, category KEY, line 3")
}

test_block_by_category if {
	d := authz.decision with input as with_dets(req("pro", ""), dets)
		with data.detections as {"rules": {}, "categories": {"CONN": "block", "KEY": "block"}}
	not d.allow
	count(d.blocked) == 2
	contains(d.message, "line 3")
	contains(d.message, "line 7")
}

test_rule_overrides_category if {
	d := authz.decision with input as with_dets(req("pro", ""), dets)
		with data.detections as {"rules": {"aws-access-key-id": "monitor"}, "categories": {"KEY": "block", "SECRET": "off"}}
	d.allow
	[x.action | some x in d.detections] == ["monitor", "tokenize", "off"]
}

test_custom_rule_action if {
	ds := [{"rule": "acme-internal-token", "category": "TOKEN", "action": "", "line": 1}]
	d := authz.decision with input as with_dets(req("pro", ""), ds)
		with data.custom_rules as [{"id": "acme-internal-token", "regex": "acme_[0-9a-f]{32}", "category": "TOKEN", "action": "block"}]
	not d.allow
	d.blocked[0].rule == "acme-internal-token"
}

test_deny_order_scope_before_block if {
	i := object.union(with_dets(req("pro", ""), dets), {"key": object.union(live_key, {"scopes": []})})
	d := authz.decision with input as i
		with data.detections as {"rules": {}, "categories": {"KEY": "block"}}
	contains(d.message, "scope")
}
