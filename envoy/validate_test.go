package envoy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// shipped is every Envoy file this directory ships, with its kind.
var shipped = []struct {
	file string
	kind Kind
}{
	{"edge.yaml", Bootstrap},
	{"sidecar.yaml", Bootstrap},
	{"istio/envoyfilter.yaml", EnvoyFilter},
}

func TestShippedFilesAreValid(t *testing.T) {
	for _, tc := range shipped {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range Validate(tc.kind, data) {
				t.Errorf("%v", p)
			}
		})
	}
}

// TestBrokenFilesFail: each file in testdata/broken is a shipped file with
// one deliberate mistake; Validate must report it, naming the field.
func TestBrokenFilesFail(t *testing.T) {
	const broken = "testdata/broken/"
	tests := []struct {
		file string
		kind Kind
		want string // substring of one problem (path and message)
	}{
		{"edge-typo.yaml", Bootstrap, `http_filters[0].typed_config.failure_mode_alow: unknown field "failure_mode_alow"`},
		{"edge-type-url.yaml", Bootstrap, `http_filters[0].typed_config.@type: unknown type URL "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcesor"`},
		{"edge-negative-timeout.yaml", Bootstrap, "http_filters[0].typed_config.message_timeout: value must be inside range"},
		{"edge-bad-enum.yaml", Bootstrap, `typed_config.codec_type: invalid value for enum field codecType: "AUTOMATIC"`},
		{"edge-failure-mode-allow.yaml", Bootstrap, "typed_config.failure_mode_allow: must not be true"},
		{"edge-body-streamed.yaml", Bootstrap, "processing_mode.request_body_mode: must be BUFFERED, got STREAMED"},
		{"edge-no-override.yaml", Bootstrap, "typed_config.allow_mode_override: must be true"},
		{"edge-short-message-timeout.yaml", Bootstrap, "typed_config.message_timeout: must be at least 30s"},
		{"edge-no-namespace.yaml", Bootstrap, `metadata_options.receiving_namespaces.untyped: must include "takumo.aegis"`},
		{"edge-route-cache-retain.yaml", Bootstrap, "typed_config.route_cache_action: the route cache must be cleared"},
		{"edge-missing-cluster.yaml", Bootstrap, `routes[3].route.cluster: cluster "provider_mistrl" is not defined`},
		{"edge-grpc-http1.yaml", Bootstrap, `static_resources.clusters[0].typed_extension_protocol_options: cluster "takumo_extproc" carries gRPC`},
		{"edge-admin-public.yaml", Bootstrap, `admin.address: the admin interface must listen on loopback`},
		{"edge-no-route-timeout.yaml", Bootstrap, "routes[2].route.timeout: set a route timeout"},
		{"edge-no-connect-timeout.yaml", Bootstrap, "static_resources.clusters[5].connect_timeout: set a connect timeout"},
		{"edge-access-log-auth.yaml", Bootstrap, "access_log[0].typed_config: access logs must not record a credential header"},
		{"edge-access-log-query.yaml", Bootstrap, "access_log[0].typed_config: access logs must not record the path with its query"},
		{"edge-ratelimit-descriptors.yaml", Bootstrap, `virtual_hosts[0].rate_limits: rate-limit descriptors must be`},
		{"edge-ratelimit-domain.yaml", Bootstrap, `http_filters[1].typed_config.domain: must be "takumo"`},
		{"edge-ratelimit-order.yaml", Bootstrap, "http_filters[0]: local_ratelimit must come after ext_proc"},
		{"edge-upstream-no-verify.yaml", Bootstrap, "clusters[3].transport_socket.typed_config.common_tls_context.validation_context.trusted_ca: upstream TLS does not verify"},
		{"sidecar-extproc-cluster.yaml", Bootstrap, `grpc_service.envoy_grpc.cluster_name: cluster "takumo_ext_proc" is not defined`},
		{"sidecar-response-streamed.yaml", Bootstrap, "processing_mode.response_body_mode: must be BUFFERED, got STREAMED"},
		{"istio-unknown-field.yaml", EnvoyFilter, `unknown field "workloadSelectr"`},
		{"istio-value-typo.yaml", EnvoyFilter, `[0].spec.configPatches[0].patch.value.connect_timeot: unknown field "connect_timeot" in envoy.config.cluster.v3.Cluster`},
		{"istio-apply-to.yaml", EnvoyFilter, `[1].spec.configPatches[1].applyTo: "HTTP_FILTERS" is not one of`},
		{"istio-body-mode.yaml", EnvoyFilter, "[0].spec.configPatches[1].patch.value.typed_config.processing_mode.request_body_mode: must be BUFFERED, got NONE"},
		{"istio-failure-mode-allow.yaml", EnvoyFilter, "typed_per_filter_config[envoy.filters.http.ext_proc].overrides.failure_mode_allow: must not be true"},
	}
	listed := map[string]bool{}
	for _, tc := range tests {
		listed[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(broken + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			ps := Validate(tc.kind, data)
			if !hasProblem(ps, tc.want) {
				t.Errorf("no problem contains %q; got %d:\n%s", tc.want, len(ps), render(ps))
			}
		})
	}
	// Every broken file is in the table, so none is silently skipped.
	files, err := filepath.Glob(broken + "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			t.Errorf("%s is not in the table", f)
		}
	}
	// Every shipped file has at least one broken copy.
	for _, s := range shipped {
		prefix := strings.TrimSuffix(filepath.Base(s.file), ".yaml")
		if s.kind == EnvoyFilter {
			prefix = "istio"
		}
		found := false
		for f := range listed {
			found = found || strings.HasPrefix(f, prefix+"-")
		}
		if !found {
			t.Errorf("%s has no broken copy in %s", s.file, broken)
		}
	}
}

// TestValidateReportsEveryProblem: one file with a typo, a wrong type URL
// and an out-of-range value gets three problems, each at its field.
func TestValidateReportsEveryProblem(t *testing.T) {
	const doc = `
static_resources:
  listeners:
  - name: l
    address: {socket_address: {address: 127.0.0.1, port_value: 8080}}
    filter_chains:
    - filters:
      - name: hcm
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: s
          route_config: {name: r}
          http_filters:
          - name: envoy.filters.http.ext_proc
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
              failure_mode_alow: false
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Routr
  clusters:
  - name: c
    connect_timeout: -1s
`
	cases := []struct {
		name string
		doc  string
		want []string
	}{
		{"structure", doc, []string{
			`http_filters[0].typed_config.failure_mode_alow: unknown field "failure_mode_alow"`,
			`http_filters[1].typed_config.@type: unknown type URL "type.googleapis.com/envoy.extensions.filters.http.router.v3.Routr"`,
		}},
		{"range", strings.NewReplacer("failure_mode_alow", "failure_mode_allow", "Routr", "Router").Replace(doc), []string{
			"static_resources.clusters[0].connect_timeout: value must be greater than 0s",
		}},
		{"negative message timeout", `
static_resources:
  listeners:
  - name: l
    address: {socket_address: {address: 127.0.0.1, port_value: 8080}}
    filter_chains:
    - filters:
      - name: hcm
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: s
          http_filters:
          - name: envoy.filters.http.ext_proc
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
              message_timeout: -3s
`, []string{"http_filters[0].typed_config.message_timeout: value must be inside range [0s, 1h0m0s]"}},
		{"duplicate key", "admin: {}\nadmin: {}\n", []string{`"admin" already defined`}},
		{"two documents", "admin: {}\n---\nadmin: {}\n", []string{"a bootstrap is one YAML document, found 2"}},
		{"not an object", "static_resources: [1]\n", []string{"static_resources: want an object"}},
		{"oneof twice", `
static_resources:
  clusters:
  - name: c
    connect_timeout: 1s
    type: STATIC
    cluster_type: {name: x}
`, []string{"only one of"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := Validate(Bootstrap, []byte(tc.doc))
			for _, w := range tc.want {
				if !hasProblem(ps, w) {
					t.Errorf("no problem contains %q; got:\n%s", w, render(ps))
				}
			}
		})
	}
}

func TestProblemError(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{Path: "a.b", Message: "bad"}, "a.b: bad"},
		{Problem{Message: "bad"}, "bad"},
	}
	for _, tc := range tests {
		if got := tc.p.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	if ps := Validate(Kind(9), nil); !hasProblem(ps, "unknown kind Kind(9)") {
		t.Errorf("unknown kind: got %s", render(ps))
	}
}

func TestPGVField(t *testing.T) {
	tests := []struct{ in, want string }{
		{"StaticResources", "static_resources"},
		{"Listeners[0]", "listeners[0]"},
		{"Http2ProtocolOptions", "http2_protocol_options"},
		{"TypedPerFilterConfig[envoy.filters.http.ExtProc]", "typed_per_filter_config[envoy.filters.http.ExtProc]"},
	}
	for _, tc := range tests {
		if got := pgvField(tc.in); got != tc.want {
			t.Errorf("pgvField(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func hasProblem(ps []Problem, want string) bool {
	for _, p := range ps {
		if strings.Contains(p.Error(), want) {
			return true
		}
	}
	return false
}

func render(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("  " + p.Error() + "\n")
	}
	return b.String()
}
