package charttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const (
	chartDir  = "../takumo"
	repoRoot  = "../.."
	namespace = "takumo"
	release_  = "takumo"
)

// kubeVersion is the cluster version the chart is rendered for: the oldest it supports
// (Chart.yaml kubeVersion; grpc probes are GA from 1.27). Helm's own default, without a
// cluster, is older.
var kubeVersion = &chartutil.KubeVersion{Version: "v1.27.0", Major: "1", Minor: "27"}

// render installs the chart client-only (no cluster), as `helm install --dry-run` does,
// with vals on top of values.yaml.
func render(vals map[string]any) (*release.Release, error) {
	chrt, err := loader.Load(chartDir)
	if err != nil {
		return nil, err
	}
	inst := action.NewInstall(&action.Configuration{})
	inst.DryRun = true
	inst.ClientOnly = true
	inst.Replace = true
	inst.ReleaseName = release_
	inst.Namespace = namespace
	inst.KubeVersion = kubeVersion
	return inst.Run(chrt, copyValues(vals))
}

// valuesFile reads one of the chart's documented values files.
func valuesFile(t *testing.T, path string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValuesFile(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v.AsMap()
}

// serviceMonitor is the part of prometheus-operator's ServiceMonitor the chart writes.
// Decoding into it strictly makes it the schema: any other field is an error.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// manifest holds every rendered object, decoded into its type, by name.
type manifest struct {
	deployments     map[string]*appsv1.Deployment
	services        map[string]*corev1.Service
	configMaps      map[string]*corev1.ConfigMap
	secrets         map[string]*corev1.Secret
	hpas            map[string]*autoscalingv2.HorizontalPodAutoscaler
	pdbs            map[string]*policyv1.PodDisruptionBudget
	netpols         map[string]*networkingv1.NetworkPolicy
	serviceMonitors map[string]*serviceMonitor
	// all lists "Kind/name" of every object, sorted.
	all []string
	// meta is every object's metadata, by "Kind/name".
	meta map[string]metav1.ObjectMeta
}

// decodeManifest splits a rendered manifest and decodes each document strictly: an
// unknown or misplaced field, a wrong type or a duplicate key is an error.
func decodeManifest(text string) (*manifest, error) {
	m := &manifest{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{}, pdbs: map[string]*policyv1.PodDisruptionBudget{},
		netpols: map[string]*networkingv1.NetworkPolicy{}, serviceMonitors: map[string]*serviceMonitor{},
		meta: map[string]metav1.ObjectMeta{},
	}
	docs := releaseutil.SplitManifests(text)
	keys := make([]string, 0, len(docs))
	for k := range docs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		doc := docs[k]
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			return nil, fmt.Errorf("%s: %w\n%s", k, err, doc)
		}
		var obj interface{ GetName() string }
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 Deployment":
			obj = &appsv1.Deployment{}
		case "v1 Service":
			obj = &corev1.Service{}
		case "v1 ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1 Secret":
			obj = &corev1.Secret{}
		case "autoscaling/v2 HorizontalPodAutoscaler":
			obj = &autoscalingv2.HorizontalPodAutoscaler{}
		case "policy/v1 PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		case "networking.k8s.io/v1 NetworkPolicy":
			obj = &networkingv1.NetworkPolicy{}
		case "monitoring.coreos.com/v1 ServiceMonitor":
			obj = &serviceMonitor{}
		default:
			return nil, fmt.Errorf("%s: unexpected object %s %s", k, tm.APIVersion, tm.Kind)
		}
		if err := strictDecode([]byte(doc), obj); err != nil {
			return nil, fmt.Errorf("%s (%s): %w", k, tm.Kind, err)
		}
		id := tm.Kind + "/" + obj.GetName()
		if _, dup := m.meta[id]; dup {
			return nil, fmt.Errorf("%s rendered twice", id)
		}
		m.all = append(m.all, id)
		switch o := obj.(type) {
		case *appsv1.Deployment:
			m.deployments[o.Name], m.meta[id] = o, o.ObjectMeta
		case *corev1.Service:
			m.services[o.Name], m.meta[id] = o, o.ObjectMeta
		case *corev1.ConfigMap:
			m.configMaps[o.Name], m.meta[id] = o, o.ObjectMeta
		case *corev1.Secret:
			m.secrets[o.Name], m.meta[id] = o, o.ObjectMeta
		case *autoscalingv2.HorizontalPodAutoscaler:
			m.hpas[o.Name], m.meta[id] = o, o.ObjectMeta
		case *policyv1.PodDisruptionBudget:
			m.pdbs[o.Name], m.meta[id] = o, o.ObjectMeta
		case *networkingv1.NetworkPolicy:
			m.netpols[o.Name], m.meta[id] = o, o.ObjectMeta
		case *serviceMonitor:
			m.serviceMonitors[o.Name], m.meta[id] = o, o.ObjectMeta
		}
	}
	sort.Strings(m.all)
	return m, nil
}

// strictDecode converts YAML to JSON (rejecting duplicate keys) and decodes it with
// unknown fields as errors.
func strictDecode(doc []byte, into any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the object")
	}
	return nil
}

// variants are the values files the chart documents: the defaults and ci/*.yaml.
func variants(t *testing.T) map[string]map[string]any {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{"defaults": {}}
	for _, f := range files {
		out[strings.TrimSuffix(filepath.Base(f), ".yaml")] = valuesFile(t, f)
	}
	return out
}

// copyValues deep-copies vals: Helm merges the chart's defaults into the map it is given.
func copyValues(vals map[string]any) map[string]any {
	if vals == nil {
		return nil
	}
	b, err := json.Marshal(vals)
	if err != nil {
		panic(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}
