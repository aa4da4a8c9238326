package charttest

import (
	"encoding/json"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func renderDecoded(t *testing.T, vals map[string]any) *manifest {
	t.Helper()
	rel, err := render(vals)
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeManifest(rel.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// anyNamespace is the peer of every pod in every namespace: an empty namespaceSelector
// alone (not "*": addresses outside the cluster stay out).
const anyNamespace = "any namespace"

// peersOf returns "*" for a rule without peers, else for each peer the
// app.kubernetes.io/name of a pod-selector peer in the release namespace, anyNamespace,
// or "other".
func peersOf(peers []networkingv1.NetworkPolicyPeer) []string {
	if len(peers) == 0 {
		return []string{"*"}
	}
	var out []string
	for _, p := range peers {
		switch {
		case p.PodSelector != nil && p.NamespaceSelector == nil && p.IPBlock == nil:
			out = append(out, p.PodSelector.MatchLabels["app.kubernetes.io/name"])
		case p.PodSelector == nil && p.IPBlock == nil && p.NamespaceSelector != nil &&
			len(p.NamespaceSelector.MatchLabels) == 0 && len(p.NamespaceSelector.MatchExpressions) == 0:
			out = append(out, anyNamespace)
		default:
			out = append(out, "other")
		}
	}
	return out
}

type flow struct {
	port  int32
	proto corev1.Protocol
	peer  string // "*" for anyone, else the app.kubernetes.io/name of the pods
}

func ingressFlows(np *networkingv1.NetworkPolicy) map[flow]bool {
	out := map[flow]bool{}
	for _, r := range np.Spec.Ingress {
		for _, peer := range peersOf(r.From) {
			for _, p := range r.Ports {
				out[flow{p.Port.IntVal, *p.Protocol, peer}] = true
			}
		}
	}
	return out
}

func egressFlows(np *networkingv1.NetworkPolicy) map[flow]bool {
	out := map[flow]bool{}
	for _, r := range np.Spec.Egress {
		for _, peer := range peersOf(r.To) {
			for _, p := range r.Ports {
				out[flow{p.Port.IntVal, *p.Protocol, peer}] = true
			}
		}
	}
	return out
}

func equalFlows(t *testing.T, what string, got map[flow]bool, want []flow) {
	t.Helper()
	w := map[flow]bool{}
	for _, f := range want {
		w[f] = true
		if !got[f] {
			t.Errorf("%s: %+v not allowed", what, f)
		}
	}
	for f := range got {
		if !w[f] {
			t.Errorf("%s: %+v allowed, not expected", what, f)
		}
	}
}

// TestNetworkPolicies: exactly the flows the product needs, per component.
func TestNetworkPolicies(t *testing.T) {
	const tcp, udp = corev1.ProtocolTCP, corev1.ProtocolUDP
	dns := []flow{{53, udp, "*"}, {53, tcp, "*"}}
	gwOut := append([]flow{{443, tcp, "*"}, {50051, tcp, "gateway-coordinator"}}, dns...)
	coord := [2][]flow{{{50051, tcp, "aegis-gateway"}, {8081, tcp, "*"}}, append([]flow{{5432, tcp, "*"}}, dns...)}
	withRL := map[string]any{"ratelimit": map[string]any{"enabled": true}, "redis": map[string]any{"enabled": true}}
	// A Prometheus in the namespace monitoring: one peer of both selectors.
	prometheus := map[string]any{
		"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "monitoring"}},
		"podSelector":       map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "prometheus"}},
	}
	for _, tc := range []struct {
		name string
		vals map[string]any
		want map[string][2][]flow // NetworkPolicy name: ingress, egress
	}{
		{"defaults", nil, map[string][2][]flow{
			"aegis-gateway":       {{{8443, tcp, "*"}, {9464, tcp, anyNamespace}}, gwOut},
			"gateway-coordinator": coord,
		}},
		{"ratelimit and redis", withRL, map[string][2][]flow{
			"aegis-gateway":       {{{8443, tcp, "*"}, {9464, tcp, anyNamespace}}, append([]flow{{8081, tcp, "ratelimit"}}, gwOut...)},
			"gateway-coordinator": coord,
			"ratelimit":           {{{8081, tcp, "aegis-gateway"}, {9090, tcp, anyNamespace}}, append([]flow{{6379, tcp, "*"}}, dns...)},
			"redis":               {{{6379, tcp, "ratelimit"}}, nil},
		}},
		{"no Envoy in the pod", map[string]any{"gateway": map[string]any{"envoy": map[string]any{"enabled": false}}}, map[string][2][]flow{
			"aegis-gateway":       {{{9000, tcp, "*"}, {9464, tcp, anyNamespace}}, gwOut},
			"gateway-coordinator": coord,
		}},
		{"metrics on another port", map[string]any{"gateway": map[string]any{"extproc": map[string]any{"metricsPort": 9100}}}, map[string][2][]flow{
			"aegis-gateway":       {{{8443, tcp, "*"}, {9100, tcp, anyNamespace}}, gwOut},
			"gateway-coordinator": coord,
		}},
		{"metrics from Prometheus only", map[string]any{"ratelimit": withRL["ratelimit"], "redis": withRL["redis"],
			"networkPolicy": map[string]any{"metricsFrom": []any{prometheus}}}, map[string][2][]flow{
			"aegis-gateway":       {{{8443, tcp, "*"}, {9464, tcp, "other"}}, append([]flow{{8081, tcp, "ratelimit"}}, gwOut...)},
			"gateway-coordinator": coord,
			"ratelimit":           {{{8081, tcp, "aegis-gateway"}, {9090, tcp, "other"}}, append([]flow{{6379, tcp, "*"}}, dns...)},
			"redis":               {{{6379, tcp, "ratelimit"}}, nil},
		}},
		// An empty list admits no scraper; it must not become a rule without peers (anyone).
		{"metrics from no one", map[string]any{"ratelimit": withRL["ratelimit"], "redis": withRL["redis"],
			"networkPolicy": map[string]any{"metricsFrom": []any{}}}, map[string][2][]flow{
			"aegis-gateway":       {{{8443, tcp, "*"}}, append([]flow{{8081, tcp, "ratelimit"}}, gwOut...)},
			"gateway-coordinator": coord,
			"ratelimit":           {{{8081, tcp, "aegis-gateway"}}, append([]flow{{6379, tcp, "*"}}, dns...)},
			"redis":               {{{6379, tcp, "ratelimit"}}, nil},
		}},
		{"off", map[string]any{"networkPolicy": map[string]any{"enabled": false}}, map[string][2][]flow{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := renderDecoded(t, tc.vals)
			if len(m.netpols) != len(tc.want) {
				t.Errorf("%d NetworkPolicies, want %d", len(m.netpols), len(tc.want))
			}
			for name, want := range tc.want {
				np := m.netpols[name]
				if np == nil {
					t.Errorf("no NetworkPolicy/%s", name)
					continue
				}
				if len(np.Spec.PolicyTypes) != 2 {
					t.Errorf("NetworkPolicy/%s: policyTypes %v, want Ingress and Egress", name, np.Spec.PolicyTypes)
				}
				if np.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"] != name {
					t.Errorf("NetworkPolicy/%s selects %v", name, np.Spec.PodSelector.MatchLabels)
				}
				equalFlows(t, "NetworkPolicy/"+name+" ingress", ingressFlows(np), want[0])
				equalFlows(t, "NetworkPolicy/"+name+" egress", egressFlows(np), want[1])
			}
		})
	}
}

// TestMetricsPeersAsGiven: networkPolicy.metricsFrom reaches both metrics rules unchanged.
func TestMetricsPeersAsGiven(t *testing.T) {
	peers := []networkingv1.NetworkPolicyPeer{
		{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}},
			PodSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "app.kubernetes.io/name", Operator: metav1.LabelSelectorOpIn, Values: []string{"prometheus", "vmagent"}},
			}},
		},
		{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}},
	}
	b, err := json.Marshal(peers)
	if err != nil {
		t.Fatal(err)
	}
	var asValues []any
	if err := json.Unmarshal(b, &asValues); err != nil {
		t.Fatal(err)
	}
	m := renderDecoded(t, map[string]any{
		"ratelimit":     map[string]any{"enabled": true, "redisAddress": "redis:6379"},
		"networkPolicy": map[string]any{"metricsFrom": asValues},
	})
	for name, port := range map[string]int32{"aegis-gateway": 9464, "ratelimit": 9090} {
		np := m.netpols[name]
		if np == nil {
			t.Fatalf("no NetworkPolicy/%s", name)
		}
		var got []networkingv1.NetworkPolicyPeer
		for _, r := range np.Spec.Ingress {
			if len(r.Ports) == 1 && r.Ports[0].Port.IntVal == port {
				got = r.From
			}
		}
		if !reflect.DeepEqual(got, peers) {
			t.Errorf("NetworkPolicy/%s: metrics port %d from %+v, want %+v", name, port, got, peers)
		}
	}
}

// TestAutoscalingAsReference: the gateway's HPA is the Takumo reference §12.2's.
func TestAutoscalingAsReference(t *testing.T) {
	h := renderDecoded(t, nil).hpas["aegis-gateway"]
	if h == nil {
		t.Fatal("no HorizontalPodAutoscaler/aegis-gateway")
	}
	if *h.Spec.MinReplicas != 2 || h.Spec.MaxReplicas != 10 {
		t.Errorf("replicas %d–%d, want 2–10", *h.Spec.MinReplicas, h.Spec.MaxReplicas)
	}
	targets := map[corev1.ResourceName]int32{}
	for _, mt := range h.Spec.Metrics {
		targets[mt.Resource.Name] = *mt.Resource.Target.AverageUtilization
	}
	if targets[corev1.ResourceCPU] != 70 || targets[corev1.ResourceMemory] != 80 {
		t.Errorf("targets %v, want cpu 70 %% and memory 80 %%", targets)
	}
	down, up := h.Spec.Behavior.ScaleDown, h.Spec.Behavior.ScaleUp
	if len(down.Policies) != 1 || down.Policies[0].Type != "Percent" || down.Policies[0].Value != 25 || down.Policies[0].PeriodSeconds != 60 {
		t.Errorf("scale-down policies %+v, want 25 %% per 60 s", down.Policies)
	}
	if len(up.Policies) != 2 || up.Policies[0].Value != 100 || up.Policies[0].PeriodSeconds != 30 ||
		up.Policies[1].Type != "Pods" || up.Policies[1].Value != 4 || up.Policies[1].PeriodSeconds != 60 {
		t.Errorf("scale-up policies %+v, want 100 %% per 30 s or 4 pods per 60 s", up.Policies)
	}
}
