package policy

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Input is what a decision is asked about. It holds no secret values by
// construction: detections carry rule, category, action and line only, and
// the request path is cut at "?" (a Gemini key= parameter never reaches
// the policy or the decision log).
type Input struct {
	// RequestID is the X-Aegis-Request-Id of the request; it goes into the
	// decision log, not into the policy.
	RequestID  string      `json:"request_id,omitempty"`
	Key        KeyInput    `json:"key"`
	Org        OrgInput    `json:"org"`
	Request    RequestInfo `json:"request"`
	Detections []Detection `json:"detections"`
}

// KeyInput describes the Takumo key of the request (never the key itself).
type KeyInput struct {
	ID     string   `json:"id"`
	Org    string   `json:"org"`
	Mode   string   `json:"mode"`   // live | test
	Scopes []string `json:"scopes"` // e.g. shield:write
	Status string   `json:"status"` // active | disabled | revoked
}

// OrgInput describes the key's organization.
type OrgInput struct {
	ID string `json:"id"`
	// Plan is the plan the key store knows; an org listed in the policy
	// data (orgs.<id>.plan) overrides it.
	Plan  string `json:"plan"`
	Usage Usage  `json:"usage"`
}

// Usage is the organization's live usage this calendar month (UTC) before
// this request. Test-mode usage does not belong here.
type Usage struct {
	Requests int64 `json:"requests"`
	Credits  int64 `json:"credits"`
}

// RequestInfo describes the request.
type RequestInfo struct {
	Method    string `json:"method"`
	Path      string `json:"path"`      // without the query string
	Provider  string `json:"provider"`  // anthropic | openai | mistral | gemini | ""
	Model     string `json:"model"`     // "" when not known (bodiless requests)
	Operation string `json:"operation"` // proxy | tokenize | detect | … (data.operations)
}

// Detection is one detection as the policy sees it: where and what kind,
// never the value.
type Detection struct {
	Rule     string `json:"rule"`
	Category string `json:"category"` // KEY, SECRET, CONN, HOST, TOKEN, USER, PKEY
	Action   string `json:"action"`   // the detection engine's default action ("" = tokenize)
	Line     int    `json:"line"`     // 1-based line in the request text
}

// sanitized returns a copy of in fit for the policy and the decision log.
func (in Input) sanitized() Input {
	if i := strings.IndexByte(in.Request.Path, '?'); i >= 0 {
		in.Request.Path = in.Request.Path[:i]
	}
	return in
}

// value builds the Rego input document directly as an AST value (cheaper
// than a round trip through JSON).
func (in *Input) value() ast.Value {
	scopes := make([]*ast.Term, len(in.Key.Scopes))
	for i, s := range in.Key.Scopes {
		scopes[i] = ast.StringTerm(s)
	}
	dets := make([]*ast.Term, len(in.Detections))
	for i, d := range in.Detections {
		dets[i] = ast.ObjectTerm(
			ast.Item(ast.InternedTerm("rule"), ast.StringTerm(d.Rule)),
			ast.Item(ast.InternedTerm("category"), ast.StringTerm(d.Category)),
			ast.Item(ast.InternedTerm("action"), ast.StringTerm(d.Action)),
			ast.Item(ast.InternedTerm("line"), ast.IntNumberTerm(d.Line)),
		)
	}
	return ast.NewObject(
		ast.Item(ast.InternedTerm("key"), ast.ObjectTerm(
			ast.Item(ast.InternedTerm("id"), ast.StringTerm(in.Key.ID)),
			ast.Item(ast.InternedTerm("org"), ast.StringTerm(in.Key.Org)),
			ast.Item(ast.InternedTerm("mode"), ast.StringTerm(in.Key.Mode)),
			ast.Item(ast.InternedTerm("scopes"), ast.ArrayTerm(scopes...)),
			ast.Item(ast.InternedTerm("status"), ast.StringTerm(in.Key.Status)),
		)),
		ast.Item(ast.InternedTerm("org"), ast.ObjectTerm(
			ast.Item(ast.InternedTerm("id"), ast.StringTerm(in.Org.ID)),
			ast.Item(ast.InternedTerm("plan"), ast.StringTerm(in.Org.Plan)),
			ast.Item(ast.InternedTerm("usage"), ast.ObjectTerm(
				ast.Item(ast.InternedTerm("requests"), int64Term(in.Org.Usage.Requests)),
				ast.Item(ast.InternedTerm("credits"), int64Term(in.Org.Usage.Credits)),
			)),
		)),
		ast.Item(ast.InternedTerm("request"), ast.ObjectTerm(
			ast.Item(ast.InternedTerm("method"), ast.StringTerm(in.Request.Method)),
			ast.Item(ast.InternedTerm("path"), ast.StringTerm(in.Request.Path)),
			ast.Item(ast.InternedTerm("provider"), ast.StringTerm(in.Request.Provider)),
			ast.Item(ast.InternedTerm("model"), ast.StringTerm(in.Request.Model)),
			ast.Item(ast.InternedTerm("operation"), ast.StringTerm(in.Request.Operation)),
		)),
		ast.Item(ast.InternedTerm("detections"), ast.ArrayTerm(dets...)),
	)
}

func int64Term(n int64) *ast.Term {
	return ast.NumberTerm(json.Number(strconv.FormatInt(n, 10)))
}
