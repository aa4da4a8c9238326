package extproc

import (
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/takumo/aegis/llm"
)

// Header names of the wire contract (doc.go).
const (
	headerRequestID = "x-aegis-request-id"
	headerProvider  = "x-takumo-provider"
	headerOrg       = "x-takumo-org"
	headerKeyID     = "x-takumo-key-id"
	headerPlan      = "x-takumo-plan"
	headerSession   = "x-takumo-session"
	headerCCSession = "x-claude-code-session-id"
)

// metadataNamespace is the dynamic metadata namespace the data plane receives.
const metadataNamespace = "takumo.aegis"

// Metadata keys of the org's plan rate limits (requests; -1 unlimited).
const (
	metaRateLimitPerMinute = "rate_limit_per_minute"
	metaRateLimitPerHour   = "rate_limit_per_hour"
)

// headers is the read side of an ext_proc header map. Envoy sends keys in
// lower case and values in raw_value.
type headers struct {
	m *corev3.HeaderMap
}

var _ llm.Header = headers{}

func value(h *corev3.HeaderValue) string {
	if h.GetRawValue() != nil {
		return string(h.GetRawValue())
	}
	return h.GetValue()
}

// Get returns the first value of name ("" if absent).
func (h headers) Get(name string) string {
	v, _ := h.lookup(name)
	return v
}

// lookup returns the first value of name, whether it is present, and is
// case-insensitive on name.
func (h headers) lookup(name string) (string, bool) {
	for _, hv := range h.m.GetHeaders() {
		if strings.EqualFold(hv.GetKey(), name) {
			return value(hv), true
		}
	}
	return "", false
}

// values returns every value of name, in order (nil when absent).
func (h headers) values(name string) []string {
	var vs []string
	for _, hv := range h.m.GetHeaders() {
		if strings.EqualFold(hv.GetKey(), name) {
			vs = append(vs, value(hv))
		}
	}
	return vs
}

// setHeader is a set_headers entry that overwrites (Envoy ignores
// append_action in ext_proc and honours append, which defaults to false;
// the action is set for forward compatibility).
func setHeader(key, val string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: key, RawValue: []byte(val)},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// mediaType returns the lower-cased media type of a content-type value,
// without parameters.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// isJSON reports whether a media type is JSON (application/json or a
// +json suffix type).
func isJSON(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// pathOnly returns the path without its query.
func pathOnly(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		return p[:i]
	}
	return p
}
