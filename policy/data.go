package policy

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/takumo/aegis/keys"
)

//go:embed rego/*.rego data/plans.yaml
var embedded embed.FS

// Org is an organization's entry in the policy data (data.orgs.<id>).
type Org struct {
	Plan  string `json:"plan"`
	Seats int    `json:"seats,omitempty"` // per-seat plans; 0 means 1
}

// CustomRule is a custom detection rule from the policy data
// (data.custom_rules). The policy only carries it: the caller compiles it
// into the detection engine (Engine.CustomRules).
type CustomRule struct {
	ID          string   `json:"id"`
	Description string   `json:"description,omitempty"`
	Regex       string   `json:"regex"`
	Category    string   `json:"category"`
	Keywords    []string `json:"keywords,omitempty"`
	SecretGroup int      `json:"secret_group,omitempty"`
	Action      string   `json:"action,omitempty"` // tokenize | block | monitor | off; "" = tokenize
}

// maxModelClasses is the length of the model_class chain in aegis.rego.
const maxModelClasses = 6

// Categories are the detection categories (DESIGN §4).
var categories = []string{"KEY", "SECRET", "CONN", "HOST", "TOKEN", "USER", "PKEY"}

// Raw shapes of the data sections, decoded strictly (unknown fields are
// errors) with pointers where a missing field must be told from a zero.
type rawPlan struct {
	RequestsPerMonth *int64 `json:"requests_per_month"`
	CreditsPerMonth  *int64 `json:"credits_per_month"`
	CreditsPerSeat   *bool  `json:"credits_per_seat"`
	HardCap          *bool  `json:"hard_cap"`
	RateLimits       *struct {
		PerMinute *int64 `json:"per_minute"`
		PerHour   *int64 `json:"per_hour"`
	} `json:"rate_limits"`
	Models []string `json:"models"`
}

type rawOperation struct {
	Scope   *string `json:"scope"`
	Credits *int64  `json:"credits"`
}

type rawModels struct {
	Order        []string            `json:"order"`
	UnknownClass string              `json:"unknown_class"`
	Classes      map[string][]string `json:"classes"`
}

type rawDetections struct {
	Rules      map[string]string `json:"rules"`
	Categories map[string]string `json:"categories"`
}

type rawOrg struct {
	Plan  *string `json:"plan"`
	Seats *int64  `json:"seats"`
}

// checkedData is what validation learns from the data that the engine
// needs outside Rego.
type checkedData struct {
	plans       []string
	custom      []CustomRule
	ruleAct     map[string]string // data.detections.rules
	categoryAct map[string]string // data.detections.categories
}

// ErrData is wrapped by every error in the policy data.
var ErrData = errors.New("policy: invalid policy data")

// decodeStrict decodes a generic JSON value into out, refusing unknown
// fields.
func decodeStrict(v any, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(out)
}

// validateData checks the sections of the data document this package knows
// (plans, operations, models, detections, custom_rules, orgs) and reports
// every problem at once. Other top-level keys are left to the operator's
// policy. The embedded policy needs plans, operations and models; a bundle
// that brings its own policy may leave them out.
func validateData(data map[string]any) (checkedData, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	var out checkedData

	classes := map[string]bool{"*": true}
	if v, ok := data["models"]; ok {
		var m rawModels
		if err := decodeStrict(v, &m); err != nil {
			bad("models: %v", err)
		} else {
			if len(m.Order) > maxModelClasses {
				bad("models.order: at most %d classes (the embedded policy tries them in an unrolled chain)", maxModelClasses)
			}
			for _, c := range m.Order {
				if len(m.Classes[c]) == 0 {
					bad("models.order: class %q has no patterns in models.classes", c)
				}
				classes[c] = true
			}
			for c := range m.Classes {
				if !slices.Contains(m.Order, c) {
					bad("models.classes.%s: not listed in models.order", c)
				}
			}
			if m.UnknownClass == "" || !slices.Contains(m.Order, m.UnknownClass) {
				bad("models.unknown_class: %q is not a class in models.order", m.UnknownClass)
			}
		}
	}

	if v, ok := data["plans"]; ok {
		var plans map[string]rawPlan
		if err := decodeStrict(v, &plans); err != nil {
			bad("plans: %v", err)
		}
		for _, name := range sortedKeys(plans) {
			p := plans[name]
			out.plans = append(out.plans, name)
			at := "plans." + name
			if p.RequestsPerMonth == nil || *p.RequestsPerMonth < -1 {
				bad("%s.requests_per_month: required, a count or -1 (unlimited)", at)
			}
			if p.CreditsPerMonth == nil || *p.CreditsPerMonth < -1 {
				bad("%s.credits_per_month: required, a count or -1 (unlimited)", at)
			}
			if p.HardCap == nil {
				bad("%s.hard_cap: required (true: deny over the allowance; false: overage)", at)
			}
			if p.RateLimits == nil || p.RateLimits.PerMinute == nil || p.RateLimits.PerHour == nil ||
				*p.RateLimits.PerMinute == 0 || *p.RateLimits.PerMinute < -1 || *p.RateLimits.PerHour == 0 || *p.RateLimits.PerHour < -1 {
				bad("%s.rate_limits: per_minute and per_hour are required, each a positive count or -1", at)
			}
			if len(p.Models) == 0 {
				bad("%s.models: required: model classes, or \"*\" for every model", at)
			}
			for _, c := range p.Models {
				if !classes[c] {
					bad("%s.models: unknown model class %q", at, c)
				}
			}
		}
	}

	if v, ok := data["operations"]; ok {
		var ops map[string]rawOperation
		if err := decodeStrict(v, &ops); err != nil {
			bad("operations: %v", err)
		}
		for _, name := range sortedKeys(ops) {
			op := ops[name]
			switch {
			case op.Scope == nil:
				bad("operations.%s.scope: required", name)
			case !keys.KnownScope(*op.Scope):
				bad("operations.%s.scope: unknown scope name %q (known: %s)", name, *op.Scope, strings.Join(keys.Scopes(), ", "))
			}
			if op.Credits == nil || *op.Credits < 0 {
				bad("operations.%s.credits: required, 0 or more", name)
			}
		}
	}

	if v, ok := data["detections"]; ok {
		var d rawDetections
		if err := decodeStrict(v, &d); err != nil {
			bad("detections: %v", err)
		}
		for _, id := range sortedKeys(d.Rules) {
			if !validActions[d.Rules[id]] {
				bad("detections.rules.%s: unknown action %q (tokenize, block, monitor, off)", id, d.Rules[id])
			}
		}
		for _, c := range sortedKeys(d.Categories) {
			if !slices.Contains(categories, c) {
				bad("detections.categories: unknown category %q (known: %s)", c, strings.Join(categories, ", "))
			}
			if !validActions[d.Categories[c]] {
				bad("detections.categories.%s: unknown action %q (tokenize, block, monitor, off)", c, d.Categories[c])
			}
		}
		out.ruleAct, out.categoryAct = d.Rules, d.Categories
	}

	if v, ok := data["custom_rules"]; ok {
		var rules []CustomRule
		if err := decodeStrict(v, &rules); err != nil {
			bad("custom_rules: %v", err)
		}
		seen := map[string]bool{}
		for i, r := range rules {
			at := fmt.Sprintf("custom_rules[%d]", i)
			if r.ID == "" {
				bad("%s.id: required", at)
			} else if seen[r.ID] {
				bad("%s.id: duplicate id %q", at, r.ID)
			}
			seen[r.ID] = true
			if _, err := regexp.Compile(r.Regex); r.Regex == "" || err != nil {
				bad("%s.regex: a valid regular expression is required", at)
			}
			if !slices.Contains(categories, r.Category) {
				bad("%s.category: unknown category %q", at, r.Category)
			}
			if r.Action != "" && !validActions[r.Action] {
				bad("%s.action: unknown action %q", at, r.Action)
			}
		}
		out.custom = rules
	}

	if v, ok := data["orgs"]; ok {
		var orgs map[string]rawOrg
		if err := decodeStrict(v, &orgs); err != nil {
			bad("orgs: %v", err)
		}
		_, havePlans := data["plans"]
		for _, id := range sortedKeys(orgs) {
			o := orgs[id]
			switch {
			case o.Plan == nil || *o.Plan == "":
				bad("orgs.%s.plan: required", id)
			case havePlans && !slices.Contains(out.plans, *o.Plan):
				bad("orgs.%s.plan: plan %q is not defined in plans", id, *o.Plan)
			}
			if o.Seats != nil && *o.Seats < 1 {
				bad("orgs.%s.seats: must be 1 or more", id)
			}
		}
	}

	if len(errs) > 0 {
		return checkedData{}, fmt.Errorf("%w: %w", ErrData, errors.Join(errs...))
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// normalize turns any JSON-encodable value into the generic form OPA's
// store holds (maps, slices, strings, json.Number, bools, nil).
func normalize(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

// embeddedPolicy returns the embedded Rego modules (tests included when
// withTests) and the embedded data document.
func embeddedPolicy(withTests bool) (map[string]string, map[string]any, error) {
	mods := map[string]string{}
	err := fs.WalkDir(embedded, "rego", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".rego" {
			return err
		}
		if !withTests && strings.HasSuffix(p, "_test.rego") {
			return nil
		}
		b, err := embedded.ReadFile(p)
		if err != nil {
			return err
		}
		mods[p] = string(b)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("policy: read embedded rego: %w", err)
	}
	raw, err := embedded.ReadFile("data/plans.yaml")
	if err != nil {
		return nil, nil, fmt.Errorf("policy: read embedded data: %w", err)
	}
	data, err := parseYAMLData(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("policy: embedded data/plans.yaml: %w", err)
	}
	return mods, data, nil
}

// parseYAMLData decodes a YAML data document into the generic JSON form.
func parseYAMLData(raw []byte) (map[string]any, error) {
	var y map[string]any
	if err := yaml.Unmarshal(raw, &y); err != nil {
		return nil, err
	}
	n, err := normalize(y)
	if err != nil {
		return nil, err
	}
	m, ok := n.(map[string]any)
	if !ok {
		return nil, errors.New("the data document must be a mapping")
	}
	return m, nil
}

// Embedded returns the embedded policy (its Rego modules, tests left out,
// and a fresh copy of its data document) for a caller that loads it with
// changes: a custom_rules section, say, which SetData cannot set.
func Embedded() (Policy, error) {
	mods, data, err := embeddedPolicy(false)
	if err != nil {
		return Policy{}, err
	}
	return Policy{Modules: mods, Data: data, Source: "embedded", Revision: "embedded"}, nil
}
