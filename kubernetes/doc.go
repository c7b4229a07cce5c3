// Package kubernetes holds no code: its tests check the manifests beside
// it (sidecar/; jwtauthz/, the central service that istio/ and
// envoy-gateway/ build on) by decoding each strictly into its Kubernetes,
// Istio or Envoy Gateway API type and checking that the parts agree —
// images pinned, probes on declared ports, ConfigMap keys where they are
// mounted, the Envoy configuration inside a ConfigMap loadable as envoy/
// checks it, Istio's extension provider and Envoy Gateway's SecurityPolicy
// pointing at the Service.
package kubernetes
