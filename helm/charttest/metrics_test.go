package charttest

import (
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// TestGatewayMetrics: the ext_proc server serves its metrics on the values' port, the
// headless Service aegis-gateway-metrics exposes it to scrapers only, and the
// ServiceMonitors scrape it (always with serviceMonitor.enabled) and the rate-limit
// service (only with ratelimit.enabled).
func TestGatewayMetrics(t *testing.T) {
	withSM := map[string]any{"enabled": true}
	for _, tc := range []struct {
		name string
		vals map[string]any
		port int32
		// frontPorts: the Envoy-facing Service and its port names, unchanged by metrics.
		frontService string
		frontPorts   []string
		// monitors: ServiceMonitor name -> the Service it scrapes.
		monitors map[string]string
	}{
		{"defaults", nil, 9464, "aegis-gateway", []string{"https"}, map[string]string{}},
		{"ServiceMonitor without ratelimit", map[string]any{"serviceMonitor": withSM}, 9464,
			"aegis-gateway", []string{"https"}, map[string]string{"aegis-gateway": "aegis-gateway-metrics"}},
		{"ServiceMonitor with ratelimit", map[string]any{
			"serviceMonitor": withSM, "ratelimit": map[string]any{"enabled": true, "redisAddress": "redis:6379"},
		}, 9464, "aegis-gateway", []string{"https"},
			map[string]string{"aegis-gateway": "aegis-gateway-metrics", "ratelimit": "ratelimit"}},
		// 9901 is Envoy's admin port: free when the pod has no Envoy.
		{"no Envoy, another port", map[string]any{
			"serviceMonitor": withSM,
			"gateway":        map[string]any{"envoy": map[string]any{"enabled": false}, "extproc": map[string]any{"metricsPort": 9901}},
		}, 9901, "aegis-extproc", []string{"grpc"}, map[string]string{"aegis-gateway": "aegis-gateway-metrics"}},
		{"ha-values", valuesFile(t, filepath.Join(chartDir, "ci", "ha-values.yaml")), 9464, "aegis-gateway", []string{"https"},
			map[string]string{"aegis-gateway": "aegis-gateway-metrics", "ratelimit": "ratelimit"}},
		{"minimal-values", valuesFile(t, filepath.Join(chartDir, "ci", "minimal-values.yaml")), 9464, "aegis-extproc", []string{"grpc"},
			map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := renderDecoded(t, tc.vals)
			checkServices(t, m)
			checkSelectorsFindPods(t, m)
			gw := m.deployments["aegis-gateway"]
			if gw == nil {
				t.Fatal("no Deployment/aegis-gateway")
			}

			ext := container(gw, "extproc")
			want := "0.0.0.0:" + strconv.Itoa(int(tc.port))
			if i := slices.IndexFunc(ext.Env, func(e corev1.EnvVar) bool { return e.Name == "TAKUMO_METRICS_ADDR" }); i < 0 ||
				ext.Env[i].Value != want || ext.Env[i].ValueFrom != nil {
				t.Errorf("extproc TAKUMO_METRICS_ADDR not %q: %+v", want, ext.Env)
			}
			if !slices.Contains(ext.Ports, corev1.ContainerPort{Name: "metrics", ContainerPort: tc.port, Protocol: corev1.ProtocolTCP}) {
				t.Errorf("extproc ports %+v: want metrics on TCP %d", ext.Ports, tc.port)
			}

			svc := m.services["aegis-gateway-metrics"]
			if svc == nil {
				t.Fatal("no Service/aegis-gateway-metrics")
			}
			if svc.Spec.ClusterIP != corev1.ClusterIPNone || svc.Spec.Type != corev1.ServiceTypeClusterIP {
				t.Errorf("Service/aegis-gateway-metrics: type %s clusterIP %q, want headless", svc.Spec.Type, svc.Spec.ClusterIP)
			}
			if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(gw.Spec.Template.Labels)) {
				t.Errorf("Service/aegis-gateway-metrics: selector %v misses the gateway pods", svc.Spec.Selector)
			}
			if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "metrics" || svc.Spec.Ports[0].Port != tc.port ||
				svc.Spec.Ports[0].TargetPort.StrVal != "metrics" {
				t.Errorf("Service/aegis-gateway-metrics ports %+v: want metrics %d -> metrics", svc.Spec.Ports, tc.port)
			}

			front := m.services[tc.frontService]
			if front == nil {
				t.Fatalf("no Service/%s", tc.frontService)
			}
			var names []string
			for _, p := range front.Spec.Ports {
				names = append(names, p.Name)
			}
			if !slices.Equal(names, tc.frontPorts) {
				t.Errorf("Service/%s ports %v, want %v (metrics stay off the client-facing Service)", tc.frontService, names, tc.frontPorts)
			}

			if len(m.serviceMonitors) != len(tc.monitors) {
				t.Errorf("%d ServiceMonitors, want %v", len(m.serviceMonitors), tc.monitors)
			}
			for name, service := range tc.monitors {
				sm := m.serviceMonitors[name]
				if sm == nil {
					t.Errorf("no ServiceMonitor/%s", name)
					continue
				}
				sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
				if err != nil || !sel.Matches(labels.Set(m.services[service].Labels)) {
					t.Errorf("ServiceMonitor/%s: selector %v does not select Service/%s: %v", name, sm.Spec.Selector, service, err)
				}
				if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[0].Path != "/metrics" {
					t.Errorf("ServiceMonitor/%s endpoints %+v: want port metrics, /metrics", name, sm.Spec.Endpoints)
				}
			}
			if sm := m.serviceMonitors["aegis-gateway"]; sm != nil && tc.name == "ha-values" && sm.Labels["release"] != "takumo-monitoring" {
				t.Errorf("ServiceMonitor/aegis-gateway: labels %v miss serviceMonitor.additionalLabels", sm.Labels)
			}
		})
	}
}
