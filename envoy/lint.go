package envoy

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// The contract with the ext_proc server (extproc/doc.go) and with
// envoy/ratelimit/config.yaml.
const (
	// MetadataNamespace is the dynamic metadata namespace ext_proc writes.
	MetadataNamespace = "takumo.aegis"
	// RateLimitDomain is the envoyproxy/ratelimit domain of our descriptors.
	RateLimitDomain = "takumo"
	// MinMessageTimeout is the least ext_proc message_timeout that fits
	// the tokenization of a 32 MiB body.
	MinMessageTimeout = 30 * time.Second
)

// rateLimitContract is the descriptor list every forwarded request sends,
// one entry per rate_limits item: descriptor key = metadata key.
var rateLimitContract = []string{
	"org=org,plan=plan",
	"key=key_id,plan=plan",
	"org=org,plan=plan,window:hour",
	"key=key_id,plan=plan,window:hour",
}

type rooted struct {
	path string
	msg  proto.Message
}

type lintInput struct {
	roots []rooted
	// routesLocal says route clusters must be defined in the same input
	// (a bootstrap); Istio patches route to Istio's own clusters.
	routesLocal bool
}

type clusterRef struct {
	path, name string
	grpc       bool // used by a grpc_service: must speak HTTP/2
	route      bool
}

type linter struct {
	clusters    map[string]*clusterv3.Cluster
	clusterPath map[string]string
	refs        []clusterRef
	problems    []Problem
}

func (l *linter) add(path, format string, args ...any) {
	l.problems = append(l.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func lint(in lintInput) []Problem {
	l := &linter{clusters: map[string]*clusterv3.Cluster{}, clusterPath: map[string]string{}}
	for _, r := range in.roots {
		walk(r.path, r.msg.ProtoReflect(), l.visit)
	}
	for _, ref := range l.refs {
		if ref.route && !in.routesLocal {
			continue
		}
		c, ok := l.clusters[ref.name]
		if !ok {
			l.add(ref.path, "cluster %q is not defined", ref.name)
			continue
		}
		if ref.grpc && !speaksHTTP2(c) {
			l.add(l.clusterPath[ref.name]+".typed_extension_protocol_options",
				"cluster %q carries gRPC (%s) but is not HTTP/2: set envoy.extensions.upstreams.http.v3.HttpProtocolOptions explicit_http_config.http2_protocol_options", ref.name, ref.path)
		}
	}
	return l.problems
}

func (l *linter) visit(path string, m protoreflect.Message) {
	switch v := m.Interface().(type) {
	case *bootstrapv3.Admin:
		l.admin(path, v)
	case *clusterv3.Cluster:
		l.cluster(path, v)
	case *routev3.Route:
		l.route(path, v)
	case *corev3.GrpcService:
		if eg := v.GetEnvoyGrpc(); eg != nil {
			l.refs = append(l.refs, clusterRef{path: path + ".envoy_grpc.cluster_name", name: eg.GetClusterName(), grpc: true})
		}
	case *extprocv3.ExternalProcessor:
		l.extProc(path, v)
	case *extprocv3.ExtProcPerRoute:
		if o := v.GetOverrides(); o != nil {
			if o.GetFailureModeAllow().GetValue() {
				l.add(path+".overrides.failure_mode_allow", "must not be true: ext_proc fails closed (a request it did not see would reach the provider untokenized)")
			}
			if o.GetProcessingMode() != nil {
				l.processingMode(path+".overrides.processing_mode", o.GetProcessingMode())
			}
		}
	case *ratelimitv3.RateLimit:
		l.rateLimitFilter(path, v)
	case *localratelimitv3.LocalRateLimit:
		l.localRateLimit(path, v)
	case *hcmv3.HttpConnectionManager:
		l.hcm(path, v)
	case *accesslogv3.AccessLog:
		l.accessLog(path, v)
	}
}

func (l *linter) admin(path string, a *bootstrapv3.Admin) {
	addr := a.GetAddress()
	if addr == nil {
		return // no admin listener
	}
	if addr.GetPipe() != nil {
		return
	}
	sa := addr.GetSocketAddress()
	ip, err := netip.ParseAddr(sa.GetAddress())
	if sa == nil || err != nil || !ip.IsLoopback() {
		l.add(path+".address", "the admin interface must listen on loopback (127.0.0.1 or ::1) or a unix socket, not %q", sa.GetAddress())
	}
}

func (l *linter) cluster(path string, c *clusterv3.Cluster) {
	name := c.GetName()
	if prev, dup := l.clusterPath[name]; dup {
		l.add(path+".name", "cluster %q is also defined at %s", name, prev)
	}
	l.clusters[name] = c
	l.clusterPath[name] = path
	if c.GetConnectTimeout() == nil {
		l.add(path+".connect_timeout", "set a connect timeout explicitly")
	}
	usesTLSPort := false
	for _, le := range c.GetLoadAssignment().GetEndpoints() {
		for _, ep := range le.GetLbEndpoints() {
			if ep.GetEndpoint().GetAddress().GetSocketAddress().GetPortValue() == 443 {
				usesTLSPort = true
			}
		}
	}
	ts := c.GetTransportSocket()
	if ts == nil {
		if usesTLSPort {
			l.add(path+".transport_socket", "cluster %q connects to port 443 without TLS", name)
		}
		return
	}
	inner, err := ts.GetTypedConfig().UnmarshalNew()
	if err != nil {
		return // reported by checkTree
	}
	up, ok := inner.(*tlsv3.UpstreamTlsContext)
	if !ok {
		return
	}
	tp := path + ".transport_socket.typed_config"
	if up.GetSni() == "" && !up.GetAutoHostSni() {
		l.add(tp+".sni", "upstream TLS without SNI")
	}
	vc := up.GetCommonTlsContext().GetValidationContext()
	if vc.GetTrustedCa() == nil && vc.GetCaCertificateProviderInstance() == nil {
		l.add(tp+".common_tls_context.validation_context.trusted_ca", "upstream TLS does not verify the server's certificate")
	}
	if len(vc.GetMatchTypedSubjectAltNames()) == 0 && !up.GetAutoSniSanValidation() {
		l.add(tp+".common_tls_context.validation_context.match_typed_subject_alt_names", "upstream TLS does not check the server's name")
	}
}

func speaksHTTP2(c *clusterv3.Cluster) bool {
	if c.GetHttp2ProtocolOptions() != nil { //nolint:staticcheck // the deprecated field still counts
		return true
	}
	for _, a := range c.GetTypedExtensionProtocolOptions() {
		inner, err := a.UnmarshalNew()
		if err != nil {
			continue
		}
		if o, ok := inner.(*upstreamhttpv3.HttpProtocolOptions); ok && o.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil {
			return true
		}
	}
	return false
}

func (l *linter) route(path string, r *routev3.Route) {
	ra := r.GetRoute()
	if ra == nil {
		return // direct_response, redirect, filter_action
	}
	ap := path + ".route"
	switch {
	case ra.GetCluster() != "":
		l.refs = append(l.refs, clusterRef{path: ap + ".cluster", name: ra.GetCluster(), route: true})
	case ra.GetWeightedClusters() != nil:
		for i, wc := range ra.GetWeightedClusters().GetClusters() {
			l.refs = append(l.refs, clusterRef{path: fmt.Sprintf("%s.weighted_clusters.clusters[%d].name", ap, i), name: wc.GetName(), route: true})
		}
	default:
		l.add(ap, "the upstream cluster must be named in the route (cluster or weighted_clusters) so that it can be checked")
	}
	for i, mp := range ra.GetRequestMirrorPolicies() {
		l.refs = append(l.refs, clusterRef{path: fmt.Sprintf("%s.request_mirror_policies[%d].cluster", ap, i), name: mp.GetCluster(), route: true})
	}
	switch t := ra.GetTimeout(); {
	case t == nil:
		l.add(ap+".timeout", "set a route timeout explicitly (Envoy's 15 s default cuts long answers)")
	case t.AsDuration() <= 0:
		l.add(ap+".timeout", "must be positive, got %s (0 disables the timeout)", t.AsDuration())
	}
}

// wantModes is the processing mode DESIGN §2 requires.
var wantModes = []struct {
	field string
	get   func(*extprocv3.ProcessingMode) string
	want  string
}{
	{"request_header_mode", func(p *extprocv3.ProcessingMode) string { return p.GetRequestHeaderMode().String() }, "SEND"},
	{"request_body_mode", func(p *extprocv3.ProcessingMode) string { return p.GetRequestBodyMode().String() }, "BUFFERED"},
	{"response_header_mode", func(p *extprocv3.ProcessingMode) string { return p.GetResponseHeaderMode().String() }, "SEND"},
	{"response_body_mode", func(p *extprocv3.ProcessingMode) string { return p.GetResponseBodyMode().String() }, "BUFFERED"},
}

func (l *linter) processingMode(path string, pm *extprocv3.ProcessingMode) {
	for _, w := range wantModes {
		if got := w.get(pm); got != w.want {
			l.add(path+"."+w.field, "must be %s, got %s", w.want, got)
		}
	}
}

func (l *linter) extProc(path string, e *extprocv3.ExternalProcessor) {
	if e.GetFailureModeAllow() {
		l.add(path+".failure_mode_allow", "must not be true: ext_proc fails closed (a request it did not see would reach the provider untokenized)")
	}
	if e.GetGrpcService() == nil {
		l.add(path+".grpc_service", "ext_proc must use a grpc_service (http_service carries headers only)")
	}
	if e.GetObservabilityMode() {
		l.add(path+".observability_mode", "must not be true: Envoy would ignore the tokenized body")
	}
	if e.GetDisableImmediateResponse() {
		l.add(path+".disable_immediate_response", "must not be true: the server answers refusals with an immediate response")
	}
	if e.GetProcessingMode() == nil {
		l.add(path+".processing_mode", "missing")
	} else {
		l.processingMode(path+".processing_mode", e.GetProcessingMode())
	}
	if !e.GetAllowModeOverride() {
		l.add(path+".allow_mode_override", "must be true: the server switches event streams to STREAMED")
	}
	if e.GetSendBodyWithoutWaitingForHeaderResponse() {
		l.add(path+".send_body_without_waiting_for_header_response", "must be false: it disables mode overrides")
	}
	if d := e.GetMessageTimeout(); d == nil || d.AsDuration() < MinMessageTimeout {
		l.add(path+".message_timeout", "must be at least %s to fit a 32 MiB body, got %s", MinMessageTimeout, durationString(d))
	}
	if !slices.Contains(e.GetMetadataOptions().GetReceivingNamespaces().GetUntyped(), MetadataNamespace) {
		l.add(path+".metadata_options.receiving_namespaces.untyped", "must include %q: rate limiting and access logs read the server's metadata there", MetadataNamespace)
	}
	if e.GetRouteCacheAction() == extprocv3.ExternalProcessor_RETAIN || e.GetDisableClearRouteCache() {
		l.add(path+".route_cache_action", "the route cache must be cleared after ext_proc (CLEAR, or DEFAULT without disable_clear_route_cache), or the provider header cannot pick the route")
	}
}

func durationString(d *durationpb.Duration) string {
	if d == nil {
		return "none (Envoy's default is 200ms)"
	}
	return d.AsDuration().String()
}

func (l *linter) rateLimitFilter(path string, r *ratelimitv3.RateLimit) {
	if r.GetDomain() != RateLimitDomain {
		l.add(path+".domain", "must be %q (envoy/ratelimit/config.yaml), got %q", RateLimitDomain, r.GetDomain())
	}
	if r.GetEnableXRatelimitHeaders() != ratelimitv3.RateLimit_DRAFT_VERSION_03 {
		l.add(path+".enable_x_ratelimit_headers", "must be DRAFT_VERSION_03: responses carry X-RateLimit-* (DESIGN §6)")
	}
	if r.GetTimeout() == nil {
		l.add(path+".timeout", "set the rate-limit service timeout explicitly")
	}
	rls := r.GetRateLimitService()
	if rls == nil {
		l.add(path+".rate_limit_service", "missing")
		return
	}
	if rls.GetTransportApiVersion() != corev3.ApiVersion_V3 {
		l.add(path+".rate_limit_service.transport_api_version", "must be V3")
	}
}

func (l *linter) localRateLimit(path string, r *localratelimitv3.LocalRateLimit) {
	if r.GetFilterEnabled().GetDefaultValue().GetNumerator() == 0 {
		l.add(path+".filter_enabled", "must be above 0%% (Envoy's default turns the filter off)")
	}
	if r.GetFilterEnforced().GetDefaultValue().GetNumerator() == 0 {
		l.add(path+".filter_enforced", "must be above 0%% (Envoy's default only counts)")
	}
	if r.GetTokenBucket() == nil {
		l.add(path+".token_bucket", "missing")
	}
}

// filterKind names an HTTP filter by the type of its config.
func filterKind(f *hcmv3.HttpFilter) string {
	inner, err := f.GetTypedConfig().UnmarshalNew()
	if err != nil {
		return ""
	}
	switch inner.(type) {
	case *extprocv3.ExternalProcessor:
		return "ext_proc"
	case *ratelimitv3.RateLimit:
		return "ratelimit"
	case *localratelimitv3.LocalRateLimit:
		return "local_ratelimit"
	case *routerv3.Router:
		return "router"
	}
	return ""
}

func (l *linter) hcm(path string, h *hcmv3.HttpConnectionManager) {
	fs := h.GetHttpFilters()
	first := map[string]int{}
	for i, f := range fs {
		k := filterKind(f)
		if _, seen := first[k]; !seen && k != "" {
			first[k] = i
		}
	}
	r, ok := first["router"]
	if !ok || r != len(fs)-1 {
		l.add(path+".http_filters", "the router must be the last HTTP filter")
	}
	ep, hasExtProc := first["ext_proc"]
	for _, k := range []string{"ratelimit", "local_ratelimit"} {
		i, ok := first[k]
		if !ok {
			continue
		}
		if !hasExtProc || i < ep {
			l.add(fmt.Sprintf("%s.http_filters[%d]", path, i), "%s must come after ext_proc: its descriptors come from ext_proc's metadata", k)
		}
	}
	if _, ok := first["ratelimit"]; !ok {
		return
	}
	rc := h.GetRouteConfig()
	if rc == nil {
		return // RDS: checked where the routes are
	}
	reported := map[string]bool{}
	for i, vh := range rc.GetVirtualHosts() {
		vp := fmt.Sprintf("%s.route_config.virtual_hosts[%d]", path, i)
		for j, rt := range vh.GetRoutes() {
			if rt.GetRoute() == nil {
				continue
			}
			limits, lp := rt.GetRoute().GetRateLimits(), fmt.Sprintf("%s.routes[%d].route.rate_limits", vp, j)
			if len(limits) == 0 {
				limits, lp = vh.GetRateLimits(), vp+".rate_limits"
			}
			if got := descriptors(limits); !slices.Equal(got, rateLimitContract) && !reported[lp] {
				reported[lp] = true
				l.add(lp, "rate-limit descriptors must be %q (envoy/ratelimit/config.yaml; metadata actions, source DYNAMIC, namespace %s, in this order), got %q",
					rateLimitContract, MetadataNamespace, got)
			}
		}
	}
}

// descriptors renders rate_limits as "descriptor_key=metadata_key,..."
// per entry (a generic_key as "descriptor_key:value"); an action that is
// neither that nor a DYNAMIC metadata read from our namespace renders as
// "?".
func descriptors(rls []*routev3.RateLimit) []string {
	var out []string
	for _, rl := range rls {
		var parts []string
		for _, a := range rl.GetActions() {
			if gk := a.GetGenericKey(); gk != nil {
				parts = append(parts, gk.GetDescriptorKey()+":"+gk.GetDescriptorValue())
				continue
			}
			md := a.GetMetadata()
			mk := md.GetMetadataKey()
			if md == nil || md.GetSource() != routev3.RateLimit_Action_MetaData_DYNAMIC ||
				mk.GetKey() != MetadataNamespace || len(mk.GetPath()) != 1 {
				parts = append(parts, "?")
				continue
			}
			parts = append(parts, md.GetDescriptorKey()+"="+mk.GetPath()[0].GetKey())
		}
		out = append(out, strings.Join(parts, ","))
	}
	return out
}

// accessLogLeaks are what an access log format must not mention: bodies,
// credentials, and the full path (a Gemini client may put its key in the
// query).
var accessLogLeaks = []struct {
	re   *regexp.Regexp
	what string
}{
	{regexp.MustCompile(`(?i)body`), "a body"},
	{regexp.MustCompile(`(?i)authorization|x-api-key|x-goog-api-key|cookie`), "a credential header"},
	{regexp.MustCompile(`(?i)%(req|trailer)\(\s*(:path|x-envoy-original-path)`), "the path with its query (use %REQ_WITHOUT_QUERY(:PATH)%)"},
	{regexp.MustCompile(`(?i)%path(\((wq)?[^)n]*\))?%`), "the path with its query (use %PATH(NQ)% or %REQ_WITHOUT_QUERY(:PATH)%)"},
}

func (l *linter) accessLog(path string, a *accesslogv3.AccessLog) {
	inner, err := a.GetTypedConfig().UnmarshalNew()
	if err != nil {
		return
	}
	b, err := protojson.Marshal(inner)
	if err != nil {
		return
	}
	for _, leak := range accessLogLeaks {
		if m := leak.re.Find(b); m != nil {
			l.add(path+".typed_config", "access logs must not record %s (found %q)", leak.what, m)
		}
	}
}
