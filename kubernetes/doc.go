// Package kubernetes holds no code: its tests check the manifests beside
// it (sidecar/; jwtauthz/, the central service that istio/ and
// envoy-gateway/ build on; monitoring/ and components/servicemonitor/)
// and the Helm chart in ../charts/jwtauthz. Each kustomization is built
// with kustomize's library and the chart rendered and linted with Helm's
// SDK; every object is decoded strictly into its Kubernetes, Istio, Envoy
// Gateway or prometheus-operator API type and the parts checked to agree —
// images pinned to one tag, probes on declared ports, ConfigMap keys where
// they are mounted, the Envoy configuration inside a ConfigMap loadable as
// envoy/ checks it, Istio's extension provider and Envoy Gateway's
// SecurityPolicy pointing at the Service, a ServiceMonitor at its metrics
// port — and jwtauthz's configuration passes `jwtauthz serve
// --check-config`.
package kubernetes
