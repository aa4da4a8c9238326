package charttest

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/takumo/aegis/envoy"
)

// wantObjects is what each documented values file renders, as "Kind/name".
var wantObjects = map[string][]string{
	"defaults": {
		"ConfigMap/aegis-gateway-envoy", "Deployment/aegis-gateway", "Deployment/gateway-coordinator",
		"HorizontalPodAutoscaler/aegis-gateway", "NetworkPolicy/aegis-gateway", "NetworkPolicy/gateway-coordinator",
		"PodDisruptionBudget/aegis-gateway", "PodDisruptionBudget/gateway-coordinator",
		"Service/aegis-gateway", "Service/aegis-gateway-metrics", "Service/gateway-coordinator",
	},
	"ha-values": {
		"ConfigMap/aegis-gateway-envoy", "ConfigMap/ratelimit-config", "Deployment/aegis-gateway",
		"Deployment/gateway-coordinator", "Deployment/ratelimit", "Deployment/redis",
		"HorizontalPodAutoscaler/aegis-gateway", "NetworkPolicy/aegis-gateway", "NetworkPolicy/gateway-coordinator",
		"NetworkPolicy/ratelimit", "NetworkPolicy/redis", "PodDisruptionBudget/aegis-gateway",
		"PodDisruptionBudget/gateway-coordinator", "PodDisruptionBudget/ratelimit", "Service/aegis-gateway",
		"Service/aegis-gateway-metrics", "Service/gateway-coordinator", "Service/ratelimit", "Service/redis",
		"ServiceMonitor/aegis-gateway", "ServiceMonitor/ratelimit",
	},
	"minimal-values": {
		"Deployment/aegis-gateway", "Deployment/gateway-coordinator", "Secret/aegis-join-key",
		"Secret/aegis-provider-keys", "Secret/aegis-token-secret", "Secret/coordinator-admin-token",
		"Service/aegis-extproc", "Service/aegis-gateway-metrics", "Service/gateway-coordinator",
	},
	"existing-secrets-values": {
		"ConfigMap/aegis-gateway-envoy", "ConfigMap/ratelimit-config", "Deployment/aegis-gateway",
		"Deployment/gateway-coordinator", "Deployment/ratelimit", "HorizontalPodAutoscaler/aegis-gateway",
		"NetworkPolicy/aegis-gateway", "NetworkPolicy/gateway-coordinator", "NetworkPolicy/ratelimit",
		"PodDisruptionBudget/aegis-gateway", "PodDisruptionBudget/gateway-coordinator",
		"PodDisruptionBudget/ratelimit", "Service/aegis-gateway", "Service/aegis-gateway-metrics",
		"Service/gateway-coordinator", "Service/ratelimit",
	},
}

func init() { wantObjects["default-values"] = wantObjects["defaults"] }

// TestRenderVariants renders every documented variant and checks each object.
func TestRenderVariants(t *testing.T) {
	vs := variants(t)
	for name := range wantObjects {
		if _, ok := vs[name]; !ok {
			t.Errorf("values file ci/%s.yaml is missing", name)
		}
	}
	for name, vals := range vs {
		t.Run(name, func(t *testing.T) {
			rel, err := render(vals)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			m, err := decodeManifest(rel.Manifest)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			want, ok := wantObjects[name]
			if !ok {
				t.Fatalf("no expected object list for ci/%s.yaml: add it to wantObjects", name)
			}
			if !slices.Equal(m.all, want) {
				t.Errorf("objects:\n got %v\nwant %v", m.all, want)
			}
			checkMetadata(t, m)
			checkDeployments(t, m)
			checkServices(t, m)
			checkSelectorsFindPods(t, m)
			checkEnvoyConfig(t, m)
			checkSecretRefs(t, m)
			if !strings.Contains(rel.Info.Notes, "join-keys create") || !strings.Contains(rel.Info.Notes, "keys create --org") ||
				!strings.Contains(rel.Info.Notes, "ANTHROPIC_API_KEY") || !strings.Contains(rel.Info.Notes, "ANTHROPIC_BASE_URL") {
				t.Errorf("NOTES.txt does not say how to create a join key and an API key and point Claude Code at the gateway:\n%s", rel.Info.Notes)
			}
		})
	}
}

func checkMetadata(t *testing.T, m *manifest) {
	t.Helper()
	for id, md := range m.meta {
		if md.Namespace != namespace {
			t.Errorf("%s: namespace %q, want the release namespace %q", id, md.Namespace, namespace)
		}
		for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
			"app.kubernetes.io/part-of", "app.kubernetes.io/managed-by", "app.kubernetes.io/version", "helm.sh/chart"} {
			if md.Labels[k] == "" {
				t.Errorf("%s: label %s missing", id, k)
			}
		}
		if md.Labels["app.kubernetes.io/instance"] != release_ || md.Labels["app.kubernetes.io/managed-by"] != "Helm" {
			t.Errorf("%s: labels %v", id, md.Labels)
		}
	}
}

// podsOf lists the pod templates of the rendered Deployments.
func podsOf(m *manifest) map[string]*corev1.PodTemplateSpec {
	out := map[string]*corev1.PodTemplateSpec{}
	for n, d := range m.deployments {
		out[n] = &d.Spec.Template
	}
	return out
}

func checkDeployments(t *testing.T, m *manifest) {
	t.Helper()
	for name, d := range m.deployments {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() {
			t.Errorf("Deployment/%s: selector %v: %v", name, d.Spec.Selector, err)
			continue
		}
		if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("Deployment/%s: selector %v does not match its pod labels %v", name, d.Spec.Selector, d.Spec.Template.Labels)
		}
		if d.Spec.Template.Labels["app.kubernetes.io/name"] != name {
			t.Errorf("Deployment/%s: pods labelled app.kubernetes.io/name=%q", name, d.Spec.Template.Labels["app.kubernetes.io/name"])
		}
		if _, hpa := m.hpas[name]; hpa != (d.Spec.Replicas == nil) {
			t.Errorf("Deployment/%s: replicas %v with HPA %v: exactly one of them must set the count", name, d.Spec.Replicas, hpa)
		}
		checkPodSpec(t, "Deployment/"+name, &d.Spec.Template.Spec)
	}
	for name, h := range m.hpas {
		if h.Spec.ScaleTargetRef.Kind != "Deployment" || m.deployments[h.Spec.ScaleTargetRef.Name] == nil {
			t.Errorf("HorizontalPodAutoscaler/%s: scales %v, not a rendered Deployment", name, h.Spec.ScaleTargetRef)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < *h.Spec.MinReplicas || len(h.Spec.Metrics) != 2 {
			t.Errorf("HorizontalPodAutoscaler/%s: min %v max %d metrics %d", name, h.Spec.MinReplicas, h.Spec.MaxReplicas, len(h.Spec.Metrics))
		}
		b := h.Spec.Behavior
		if b == nil || b.ScaleDown == nil || *b.ScaleDown.StabilizationWindowSeconds != 300 || b.ScaleUp == nil || *b.ScaleUp.StabilizationWindowSeconds != 30 {
			t.Errorf("HorizontalPodAutoscaler/%s: behavior is not the reference's (down 300 s, up 30 s): %+v", name, b)
		}
	}
}

// checkPodSpec checks the Takumo reference §12.2 pod security, probes and resources.
func checkPodSpec(t *testing.T, id string, p *corev1.PodSpec) {
	t.Helper()
	ps := p.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser != 65534 ||
		ps.RunAsGroup == nil || *ps.RunAsGroup != 65534 || ps.FSGroup == nil || *ps.FSGroup != 65534 ||
		ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod securityContext %+v is not the reference's (non-root 65534, RuntimeDefault seccomp)", id, ps)
	}
	if p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
		t.Errorf("%s: the pods need no Kubernetes API token", id)
	}
	volumes := map[string]bool{}
	for _, v := range p.Volumes {
		volumes[v.Name] = true
	}
	if len(p.Containers) == 0 {
		t.Errorf("%s: no containers", id)
	}
	for _, c := range p.Containers {
		cid := id + " container " + c.Name
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
			sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: securityContext %+v is not the reference's", cid, sc)
		}
		for _, res := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
			if res.Cpu().IsZero() || res.Memory().IsZero() {
				t.Errorf("%s: cpu and memory requests and limits must be set: %+v", cid, c.Resources)
			}
		}
		if c.Resources.Requests.Memory().Cmp(*c.Resources.Limits.Memory()) > 0 || c.Resources.Requests.Cpu().Cmp(*c.Resources.Limits.Cpu()) > 0 {
			t.Errorf("%s: requests above limits: %+v", cid, c.Resources)
		}
		if c.ReadinessProbe == nil || c.LivenessProbe == nil {
			t.Errorf("%s: readiness and liveness probes must be set", cid)
		}
		for _, pr := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
			if pr != nil && !probePortExists(pr, c) {
				t.Errorf("%s: probe %+v names no port of the container", cid, pr.ProbeHandler)
			}
		}
		for _, vm := range c.VolumeMounts {
			if !volumes[vm.Name] {
				t.Errorf("%s: mounts volume %q, which the pod does not have", cid, vm.Name)
			}
		}
		if c.Image == "" || strings.HasSuffix(c.Image, ":") {
			t.Errorf("%s: image %q", cid, c.Image)
		}
	}
}

func probePortExists(pr *corev1.Probe, c corev1.Container) bool {
	var port intOrName
	switch {
	case pr.HTTPGet != nil:
		port = intOrName{pr.HTTPGet.Port.IntVal, pr.HTTPGet.Port.StrVal}
	case pr.TCPSocket != nil:
		port = intOrName{pr.TCPSocket.Port.IntVal, pr.TCPSocket.Port.StrVal}
	case pr.GRPC != nil:
		port = intOrName{pr.GRPC.Port, ""}
	default:
		return false
	}
	for _, p := range c.Ports {
		if (port.name != "" && p.Name == port.name) || (port.name == "" && p.ContainerPort == port.num) {
			return true
		}
	}
	return false
}

type intOrName struct {
	num  int32
	name string
}

func checkServices(t *testing.T, m *manifest) {
	t.Helper()
	for name, s := range m.services {
		if len(s.Spec.Selector) == 0 {
			t.Errorf("Service/%s: no selector", name)
			continue
		}
		var pods []*corev1.PodTemplateSpec
		for _, p := range podsOf(m) {
			if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(p.Labels)) {
				pods = append(pods, p)
			}
		}
		if len(pods) != 1 {
			t.Errorf("Service/%s: selector %v matches %d Deployments' pods, want 1", name, s.Spec.Selector, len(pods))
			continue
		}
		for _, sp := range s.Spec.Ports {
			if !podHasPort(pods[0], sp.TargetPort.StrVal, sp.TargetPort.IntVal) {
				t.Errorf("Service/%s: port %s targets %v, which no container declares", name, sp.Name, sp.TargetPort.String())
			}
		}
	}
}

func podHasPort(p *corev1.PodTemplateSpec, name string, num int32) bool {
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if (name != "" && cp.Name == name) || (name == "" && cp.ContainerPort == num) {
				return true
			}
		}
	}
	return false
}

// checkSelectorsFindPods: every PDB, NetworkPolicy and ServiceMonitor selects something.
func checkSelectorsFindPods(t *testing.T, m *manifest) {
	t.Helper()
	matchesPods := func(id string, ls *metav1.LabelSelector) {
		sel, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil || sel.Empty() {
			t.Errorf("%s: selector %v: %v", id, ls, err)
			return
		}
		for _, p := range podsOf(m) {
			if sel.Matches(labels.Set(p.Labels)) {
				return
			}
		}
		t.Errorf("%s: selector %v matches no rendered pods", id, ls)
	}
	for n, p := range m.pdbs {
		matchesPods("PodDisruptionBudget/"+n, p.Spec.Selector)
		if d := m.deployments[n]; d == nil || (d.Spec.Replicas != nil && *d.Spec.Replicas < 2) {
			t.Errorf("PodDisruptionBudget/%s: for a Deployment that cannot have two pods (it would block drains)", n)
		}
	}
	for n, np := range m.netpols {
		matchesPods("NetworkPolicy/"+n, &np.Spec.PodSelector)
		for _, r := range np.Spec.Ingress {
			for _, f := range r.From {
				// A peer with a namespaceSelector (networkPolicy.metricsFrom) selects pods
				// of other namespaces, which the chart does not render.
				if f.PodSelector != nil && f.NamespaceSelector == nil {
					matchesPods("NetworkPolicy/"+n+" ingress from", f.PodSelector)
				}
			}
		}
		for _, r := range np.Spec.Egress {
			for _, to := range r.To {
				if to.PodSelector != nil {
					matchesPods("NetworkPolicy/"+n+" egress to", to.PodSelector)
				}
			}
		}
	}
	// Every ServiceMonitor selects exactly one Service of the release namespace, and each
	// endpoint names a port of it (checkServices: whose target a container declares).
	for n, sm := range m.serviceMonitors {
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil || sel.Empty() {
			t.Errorf("ServiceMonitor/%s: selector %v: %v", n, sm.Spec.Selector, err)
			continue
		}
		if !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{namespace}) {
			t.Errorf("ServiceMonitor/%s: namespaces %v, want [%s]", n, sm.Spec.NamespaceSelector.MatchNames, namespace)
		}
		var selected []*corev1.Service
		for _, s := range m.services {
			if sel.Matches(labels.Set(s.Labels)) {
				selected = append(selected, s)
			}
		}
		if len(selected) != 1 || len(sm.Spec.Endpoints) == 0 {
			t.Errorf("ServiceMonitor/%s: selects %d Services (want 1) with %d endpoints", n, len(selected), len(sm.Spec.Endpoints))
			continue
		}
		for _, e := range sm.Spec.Endpoints {
			if !slices.ContainsFunc(selected[0].Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == e.Port }) {
				t.Errorf("ServiceMonitor/%s: endpoint port %q is not a port of Service/%s", n, e.Port, selected[0].Name)
			}
		}
	}
}

// checkEnvoyConfig validates the rendered Envoy bootstrap with the same validator as
// envoy/*.yaml, and the gateway pod against it.
func checkEnvoyConfig(t *testing.T, m *manifest) {
	t.Helper()
	gw := m.deployments["aegis-gateway"]
	if gw == nil {
		t.Fatal("no Deployment/aegis-gateway")
	}
	names := []string{}
	for _, c := range gw.Spec.Template.Spec.Containers {
		names = append(names, c.Name)
	}
	cm := m.configMaps["aegis-gateway-envoy"]
	if cm == nil {
		if !slices.Equal(names, []string{"extproc"}) {
			t.Errorf("no Envoy ConfigMap but containers %v", names)
		}
		return
	}
	if !slices.Equal(names, []string{"envoy", "extproc"}) {
		t.Errorf("gateway containers %v, want envoy and extproc", names)
	}
	for _, p := range envoy.Validate(envoy.Bootstrap, []byte(cm.Data["envoy.yaml"])) {
		t.Errorf("rendered envoy.yaml: %v", p)
	}
	var sds struct {
		Resources []map[string]any `json:"resources"`
	}
	if err := yaml.UnmarshalStrict([]byte(cm.Data["sds.yaml"]), &sds); err != nil || len(sds.Resources) != 1 || sds.Resources[0]["name"] != "edge_certificate" {
		t.Errorf("sds.yaml: %v %v", err, sds)
	}
	if want := "ratelimit." + namespace + ".svc.cluster.local"; !strings.Contains(cm.Data["envoy.yaml"], want) {
		t.Errorf("rendered envoy.yaml does not dial the rate-limit service at %s", want)
	}
	// The ext_proc cluster of edge.yaml dials 127.0.0.1:9000: the sidecar must serve there.
	ext := container(gw, "extproc")
	if !slices.Contains(ext.Args, "extproc") || !slices.Contains(ext.Args, "0.0.0.0:9000") {
		t.Errorf("extproc args %v: edge.yaml dials the ext_proc server on 127.0.0.1:9000", ext.Args)
	}
	if ext.ReadinessProbe == nil || ext.ReadinessProbe.GRPC == nil || ext.ReadinessProbe.GRPC.Port != 9000 {
		t.Errorf("extproc readiness probe %+v: want the gRPC health service on 9000", ext.ReadinessProbe)
	}
	env := container(gw, "envoy")
	if env.ReadinessProbe == nil || env.ReadinessProbe.HTTPGet == nil || env.ReadinessProbe.HTTPGet.Path != "/healthz" ||
		env.ReadinessProbe.HTTPGet.Scheme != corev1.URISchemeHTTPS {
		t.Errorf("envoy readiness probe %+v: want HTTPS /healthz on the listener", env.ReadinessProbe)
	}
	mounts := map[string]string{}
	for _, vm := range env.VolumeMounts {
		mounts[vm.MountPath] = vm.Name
	}
	for _, path := range []string{"/etc/envoy", "/etc/takumo/tls"} {
		if mounts[path] == "" {
			t.Errorf("envoy: nothing mounted at %s (edge.yaml and sds.yaml read from there)", path)
		}
	}
}

func container(d *appsv1.Deployment, name string) *corev1.Container {
	for i := range d.Spec.Template.Spec.Containers {
		if c := &d.Spec.Template.Spec.Containers[i]; c.Name == name {
			return c
		}
	}
	return &corev1.Container{}
}

// checkSecretRefs: the environment the ext_proc server and the coordinator read, from
// Secrets where secret.
func checkSecretRefs(t *testing.T, m *manifest) {
	t.Helper()
	envOf := func(c *corev1.Container) map[string]corev1.EnvVar {
		out := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			out[e.Name] = e
		}
		return out
	}
	ext := envOf(container(m.deployments["aegis-gateway"], "extproc"))
	for _, name := range []string{"TAKUMO_JOIN_KEY", "TAKUMO_TOKEN_SECRET", "TAKUMO_ANTHROPIC_API_KEY", "TAKUMO_OPENAI_API_KEY",
		"TAKUMO_MISTRAL_API_KEY", "TAKUMO_GEMINI_API_KEY"} {
		if e, ok := ext[name]; !ok || e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("extproc %s must come from a Secret: %+v", name, e)
		}
	}
	for _, name := range []string{"TAKUMO_COORDINATOR_URL", "TAKUMO_FAIL_MODE", "TAKUMO_DATA_DIR", "TAKUMO_MODE"} {
		if ext[name].Value == "" {
			t.Errorf("extproc %s is not set", name)
		}
	}
	if got := ext["TAKUMO_COORDINATOR_URL"].Value; got != "gateway-coordinator.takumo.svc.cluster.local:50051" {
		t.Errorf("TAKUMO_COORDINATOR_URL %q", got)
	}
	coord := envOf(container(m.deployments["gateway-coordinator"], "coordinator"))
	if e := coord["TAKUMO_ADMIN_TOKEN"]; e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Optional != nil {
		t.Errorf("coordinator TAKUMO_ADMIN_TOKEN must come from a required Secret key: %+v", e)
	}
	// A Secret the chart renders must hold the key its reference names.
	for _, d := range m.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					continue
				}
				ref := e.ValueFrom.SecretKeyRef
				if s := m.secrets[ref.Name]; s != nil {
					if _, ok := s.Data[ref.Key]; !ok && (ref.Optional == nil || !*ref.Optional) {
						t.Errorf("%s %s: Secret/%s has no key %q", d.Name, e.Name, ref.Name, ref.Key)
					}
				}
			}
		}
	}
}

// TestSecretNamesFollowValues: the existing-secrets variant references the operator's names.
func TestSecretNamesFollowValues(t *testing.T) {
	rel, err := render(valuesFile(t, filepath.Join(chartDir, "ci", "existing-secrets-values.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeManifest(rel.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	refs := map[string]string{}
	for _, d := range m.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					refs[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
				}
				if e.Name == "REDIS_URL" {
					refs[e.Name] = e.Value
				}
			}
		}
	}
	want := map[string]string{
		"TAKUMO_JOIN_KEY":          "prod-gateway-join-key/token",
		"TAKUMO_TOKEN_SECRET":      "prod-token-secret/secret",
		"TAKUMO_ANTHROPIC_API_KEY": "prod-provider-keys/anthropic-api-key",
		"TAKUMO_DATABASE_URL":      "prod-coordinator-db/url",
		"TAKUMO_ADMIN_TOKEN":       "prod-coordinator-admin/token",
		"REDIS_URL":                "redis-master.redis.svc.cluster.local:6379",
	}
	for k, v := range want {
		if refs[k] != v {
			t.Errorf("%s from %q, want %q", k, refs[k], v)
		}
	}
	if len(m.secrets) != 0 {
		t.Errorf("the chart created Secrets %v; they exist already", m.secrets)
	}
	tlsFound := false
	for _, v := range m.deployments["aegis-gateway"].Spec.Template.Spec.Volumes {
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				tlsFound = tlsFound || (s.Secret != nil && s.Secret.Name == "edge-tls")
			}
		}
	}
	if !tlsFound {
		t.Error("the edge certificate does not come from Secret edge-tls")
	}
	if ps := m.deployments["aegis-gateway"].Spec.Template.Spec.ImagePullSecrets; len(ps) != 1 || ps[0].Name != "registry-credentials" {
		t.Errorf("imagePullSecrets %v", ps)
	}
}

// TestShippedFilesMatch: the chart ships copies of envoy/edge.yaml and
// envoy/ratelimit/config.yaml (Helm reads files only inside the chart); they must not drift.
func TestShippedFilesMatch(t *testing.T) {
	for chartFile, source := range map[string]string{
		"files/edge.yaml":             "envoy/edge.yaml",
		"files/ratelimit-config.yaml": "envoy/ratelimit/config.yaml",
	} {
		a, err := os.ReadFile(filepath.Join(chartDir, chartFile))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(repoRoot, source))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("helm/takumo/%s differs from %s: cp %s helm/takumo/%s", chartFile, source, source, chartFile)
		}
	}
	rel, err := render(map[string]any{"ratelimit": map[string]any{"enabled": true, "redisAddress": "redis:6379"}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeManifest(rel.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(repoRoot, "envoy/ratelimit/config.yaml"))
	if got := m.configMaps["ratelimit-config"].Data["config.yaml"]; got != string(b) {
		t.Error("the ratelimit ConfigMap's config.yaml is not envoy/ratelimit/config.yaml")
	}
	// Rendered with the default namespace, the Envoy config is edge.yaml unchanged.
	edge, _ := os.ReadFile(filepath.Join(repoRoot, "envoy/edge.yaml"))
	if got := m.configMaps["aegis-gateway-envoy"].Data["envoy.yaml"]; got != string(edge) {
		t.Error("in namespace takumo the rendered envoy.yaml should be envoy/edge.yaml byte for byte")
	}
}

// TestEnvoyImageMatchesVersion: the Envoy image is the release envoy/VERSION targets.
func TestEnvoyImageMatchesVersion(t *testing.T) {
	v, err := os.ReadFile(filepath.Join(repoRoot, "envoy/VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	rel, err := render(nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeManifest(rel.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	want := "envoyproxy/envoy:v" + strings.TrimSpace(string(v))
	if got := container(m.deployments["aegis-gateway"], "envoy").Image; got != want {
		t.Errorf("envoy image %q, want %q (envoy/VERSION)", got, want)
	}
}
