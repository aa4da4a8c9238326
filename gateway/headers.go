package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"golang.org/x/net/http/httpguts"
)

// Envoy's HCM defaults for a header block; a mutation that grows the map
// past them fails the request.
const (
	maxHeaderCount = 100
	maxHeaderBytes = 60 << 10
)

// header is one entry of an Envoy header map: a lower-cased key and its raw
// value. A key may repeat.
type header struct {
	key, value string
}

// headerMap is an ordered Envoy-style header map.
type headerMap []header

// hopByHop are connection-level headers neither Envoy nor we forward.
var hopByHop = map[string]bool{
	"connection":          true,
	"proxy-connection":    true,
	"keep-alive":          true,
	"te":                  true,
	"trailer":             true,
	"transfer-encoding":   true,
	"upgrade":             true,
	"proxy-authenticate":  true,
	"proxy-authorization": true,
}

// appendHTTP adds the entries of h, lower-cased, without hop-by-hop
// headers (and without those the Connection header names).
func (m headerMap) appendHTTP(h http.Header) headerMap {
	named := map[string]bool{}
	for _, v := range h.Values("Connection") {
		for f := range strings.SplitSeq(v, ",") {
			named[strings.ToLower(strings.TrimSpace(f))] = true
		}
	}
	for k, vs := range h {
		lk := strings.ToLower(k)
		if hopByHop[lk] || named[lk] {
			continue
		}
		for _, v := range vs {
			m = append(m, header{lk, v})
		}
	}
	return m
}

// get returns the first value of key and whether it is present.
func (m headerMap) get(key string) (string, bool) {
	for _, h := range m {
		if h.key == key {
			return h.value, true
		}
	}
	return "", false
}

// set replaces every entry of key with one entry holding value.
func (m headerMap) set(key, value string) headerMap {
	for i := range m {
		if m[i].key == key {
			m[i].value = value
			rest := m[i+1:].remove(key)
			return m[:i+1+len(rest)]
		}
	}
	return append(m, header{key, value})
}

// remove drops every entry of key.
func (m headerMap) remove(key string) headerMap {
	out := m[:0]
	for _, h := range m {
		if h.key != key {
			out = append(out, h)
		}
	}
	return out
}

// toProto renders the map for a ProcessingRequest, values in raw_value.
func (m headerMap) toProto() *corev3.HeaderMap {
	hs := make([]*corev3.HeaderValue, 0, len(m))
	for _, h := range m {
		hs = append(hs, &corev3.HeaderValue{Key: h.key, RawValue: []byte(h.value)})
	}
	return &corev3.HeaderMap{Headers: hs}
}

// toHTTP writes the regular (non-pseudo) entries into dst.
func (m headerMap) toHTTP(dst http.Header) {
	for _, h := range m {
		if strings.HasPrefix(h.key, ":") {
			continue
		}
		dst[http.CanonicalHeaderKey(h.key)] = append(dst[http.CanonicalHeaderKey(h.key)], h.value)
	}
}

// size is the byte size of the block as HCM counts it.
func (m headerMap) size() int {
	n := 0
	for _, h := range m {
		n += len(h.key) + len(h.value)
	}
	return n
}

// errMutation marks a mutation Envoy refuses; the request then fails like
// any other ext_proc error (status_on_error).
var errMutation = errors.New("invalid header mutation")

// mutationPolicy is the part of the filter config and state that decides
// how a header mutation applies.
type mutationPolicy struct {
	rules *mutationrulesv3.HeaderMutationRules
	// replacing is true for CONTINUE_AND_REPLACE, where :method may change.
	replacing bool
	// dropContentLength skips content-length in set_headers (body modes in
	// which Envoy manages the header itself).
	dropContentLength bool
}

// allowed reports whether Envoy's default HeaderMutationChecker lets a
// mutation of key through; an error means disallow_is_error made a refusal
// fatal.
func (p mutationPolicy) allowed(key string) (bool, error) {
	ok := true
	r := p.rules
	switch {
	case r.GetDisallowAll().GetValue():
		ok = false
	case key == "host" || key == ":authority" || key == ":scheme":
		ok = r.GetAllowAllRouting().GetValue() && !r.GetDisallowSystem().GetValue()
	case key == ":method":
		ok = (r.GetAllowAllRouting().GetValue() || p.replacing) && !r.GetDisallowSystem().GetValue()
	case strings.HasPrefix(key, "x-envoy-"):
		ok = r.GetAllowEnvoy().GetValue()
	case strings.HasPrefix(key, ":"):
		ok = !r.GetDisallowSystem().GetValue()
	}
	if !ok && r.GetDisallowIsError().GetValue() {
		return false, fmt.Errorf("%w: mutation of %q refused by mutation_rules", errMutation, key)
	}
	return ok, nil
}

// applyHeaderMutation applies mut to m with Envoy's rules (mutation_utils.cc):
// removals first, then sets; pseudo-headers and host cannot be removed;
// values come from raw_value (value and raw_value both set is an error);
// append (the deprecated BoolValue) adds, otherwise a set overwrites;
// append_action is ignored; routing headers and x-envoy-* are ignored
// unless the rules allow them. It returns the new map and the number of
// mutations the rules ignored.
func applyHeaderMutation(m headerMap, mut *extprocv3.HeaderMutation, p mutationPolicy) (headerMap, int, error) {
	if mut == nil {
		return m, 0, nil
	}
	ignored := 0
	for _, name := range mut.GetRemoveHeaders() {
		key := strings.ToLower(name)
		if !httpguts.ValidHeaderFieldName(strings.TrimPrefix(key, ":")) {
			return m, ignored, fmt.Errorf("%w: invalid header name to remove", errMutation)
		}
		if strings.HasPrefix(key, ":") || key == "host" {
			ignored++
			continue
		}
		ok, err := p.allowed(key)
		if err != nil {
			return m, ignored, err
		}
		if !ok {
			ignored++
			continue
		}
		m = m.remove(key)
	}
	for _, opt := range mut.GetSetHeaders() {
		hv := opt.GetHeader()
		key := strings.ToLower(hv.GetKey())
		if key == "" || !httpguts.ValidHeaderFieldName(strings.TrimPrefix(key, ":")) {
			return m, ignored, fmt.Errorf("%w: invalid header name", errMutation)
		}
		if hv.GetValue() != "" && len(hv.GetRawValue()) > 0 {
			return m, ignored, fmt.Errorf("%w: both value and raw_value set for %q", errMutation, key)
		}
		value := string(hv.GetRawValue())
		if len(hv.GetRawValue()) == 0 {
			value = hv.GetValue()
		}
		if !httpguts.ValidHeaderFieldValue(value) {
			return m, ignored, fmt.Errorf("%w: invalid value for %q", errMutation, key)
		}
		if key == "content-length" && p.dropContentLength {
			ignored++
			continue
		}
		ok, err := p.allowed(key)
		if err != nil {
			return m, ignored, err
		}
		if !ok {
			ignored++
			continue
		}
		// Envoy's ext_proc honours only the deprecated append flag.
		if opt.GetAppend().GetValue() { //nolint:staticcheck // SA1019: append_action is ignored by ext_proc (extproc-anchors §1.3)
			if _, exists := m.get(key); exists {
				m = append(m, header{key, value})
				continue
			}
		}
		m = m.set(key, value)
	}
	if len(m) > maxHeaderCount || m.size() > maxHeaderBytes {
		return m, ignored, fmt.Errorf("%w: header block too large after mutation", errMutation)
	}
	return m, ignored, nil
}
