// Package charttest tests the Helm chart in ../takumo and the Dockerfile at the
// repository root. It is a module of its own so that Helm and the Kubernetes API types
// never enter the product's go.mod; helm itself is pinned here as a tool
// (go tool helm lint ../takumo).
//
// The tests render the chart with the Helm SDK for the default values and for every
// values file in ../takumo/ci, decode each object strictly into its Kubernetes API type
// (an unknown field is an error), check names, labels, selectors, probes, resources and
// the pod security settings, and validate the rendered Envoy bootstrap with
// envoy.Validate. Bad values must fail the render and helm lint with a clear message.
package charttest
