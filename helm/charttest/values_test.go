package charttest

import (
	"errors"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
)

// badValues break the schema or a rule the templates enforce; each must fail the render
// and helm lint with a message that names the problem.
var badValues = []struct {
	name string
	vals map[string]any
	want string
	// renderOnly: a rule across keys that templates/validate.yaml enforces with fail.
	// helm lint renders in lint mode, where fail only logs, so lint cannot catch these;
	// install and template stop with the message.
	renderOnly bool
}{
	{"unknown top-level key", map[string]any{"replicaCount": 3}, "replicaCount", false},
	{"unknown nested key", map[string]any{"gateway": map[string]any{"envoy": map[string]any{"imageTag": "v1"}}}, "imageTag", false},
	{"typo in a secret block", map[string]any{"gateway": map[string]any{"joinKey": map[string]any{"secretname": "x"}}}, "secretname", false},
	{"negative replicas", map[string]any{"coordinator": map[string]any{"replicas": -1}}, "replicas", false},
	{"replicas as a string", map[string]any{"gateway": map[string]any{"replicas": "two"}}, "replicas", false},
	{"port out of range", map[string]any{"coordinator": map[string]any{"service": map[string]any{"grpcPort": 70000}}}, "grpcPort", false},
	{"fail mode not known", map[string]any{"gateway": map[string]any{"extproc": map[string]any{"failMode": "open"}}}, "failMode", false},
	{"mode not known", map[string]any{"gateway": map[string]any{"extproc": map[string]any{"mode": "prod"}}}, "mode", false},
	{"boolean as a string", map[string]any{"networkPolicy": map[string]any{"enabled": "yes"}}, "enabled", false},
	{"CPU target above 100", map[string]any{"gateway": map[string]any{"autoscaling": map[string]any{"targetCPUUtilizationPercentage": 170}}}, "targetCPUUtilizationPercentage", false},
	{"secret name not a DNS name", map[string]any{"coordinator": map[string]any{"database": map[string]any{"secretName": "Coordinator_DB"}}}, "secretName", false},
	{"resources with a bad quantity", map[string]any{"gateway": map[string]any{"envoy": map[string]any{"resources": map[string]any{"limits": map[string]any{"memory": "lots"}}}}}, "memory", false},
	{"unknown resources key", map[string]any{"coordinator": map[string]any{"resources": map[string]any{"limit": map[string]any{}}}}, "limit", false},
	{"redis address without port", map[string]any{"ratelimit": map[string]any{"redisAddress": "redis"}}, "redisAddress", false},
	{"metrics port out of range", map[string]any{"gateway": map[string]any{"extproc": map[string]any{"metricsPort": 0}}}, "metricsPort", false},
	{"metrics peer with an unknown key", map[string]any{"networkPolicy": map[string]any{"metricsFrom": []any{map[string]any{"namespaceSelectr": map[string]any{}}}}}, "namespaceSelectr", false},
	{"metrics peer empty", map[string]any{"networkPolicy": map[string]any{"metricsFrom": []any{map[string]any{}}}}, "metricsFrom", false},
	{"metrics peers not a list", map[string]any{"networkPolicy": map[string]any{"metricsFrom": "monitoring"}}, "metricsFrom", false},
	// Rules across keys, enforced by the templates (templates/validate.yaml).
	{"SQLite with two coordinators", map[string]any{"coordinator": map[string]any{"database": map[string]any{"enabled": false}}}, "SQLite", true},
	{"ratelimit without Redis", map[string]any{"ratelimit": map[string]any{"enabled": true}}, "needs a Redis", true},
	{"metrics port on the gRPC port", map[string]any{"gateway": map[string]any{"extproc": map[string]any{"metricsPort": 9000}}}, "metricsPort: 9000 is taken by gateway.extproc.port", true},
	{"metrics port on Envoy's listener", map[string]any{"gateway": map[string]any{"extproc": map[string]any{"metricsPort": 8443}}}, "metricsPort: 8443 is taken by Envoy's listener", true},
	{"metrics port on Envoy's admin", map[string]any{"gateway": map[string]any{"extproc": map[string]any{"metricsPort": 9901}}}, "metricsPort: 9901 is taken by Envoy's admin interface", true},
	{"HPA min above max", map[string]any{"gateway": map[string]any{"autoscaling": map[string]any{"minReplicas": 8, "maxReplicas": 4}}}, "minReplicas (8) is above maxReplicas (4)", true},
	{"create without a value", map[string]any{"gateway": map[string]any{"joinKey": map[string]any{"create": true}}}, "gateway.joinKey: create is true but value is empty", true},
}

func TestBadValuesFailRender(t *testing.T) {
	for _, tc := range badValues {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(tc.vals)
			if err == nil {
				t.Fatalf("rendered with %v", tc.vals)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

func lint(vals map[string]any) *action.LintResult {
	l := action.NewLint()
	l.Namespace = namespace
	l.KubeVersion = kubeVersion
	l.Strict = true
	return l.Run([]string{chartDir}, copyValues(vals))
}

func TestBadValuesFailLint(t *testing.T) {
	for _, tc := range badValues {
		if tc.renderOnly {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			res := lint(tc.vals)
			if len(res.Errors) == 0 {
				t.Fatalf("helm lint passed with %v", tc.vals)
			}
			if err := errors.Join(res.Errors...); !strings.Contains(err.Error(), tc.want) {
				t.Errorf("lint errors %q do not name %q", err, tc.want)
			}
		})
	}
}

// TestLint runs helm lint --strict on the chart with each documented values file.
func TestLint(t *testing.T) {
	for name, vals := range variants(t) {
		t.Run(name, func(t *testing.T) {
			res := lint(vals)
			for _, e := range res.Errors {
				t.Errorf("lint: %v", e)
			}
			for _, m := range res.Messages {
				// Helm's INFO "icon is recommended" is advice, not a defect.
				if m.Severity > 1 {
					t.Errorf("lint: %v", m)
				}
			}
		})
	}
}
