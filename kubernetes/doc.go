// Package kubernetes holds no code: its tests check the manifests beside
// it (sidecar/, istio/) by decoding each strictly into its Kubernetes or
// Istio API type and checking that the parts agree — images pinned, probes
// on declared ports, ConfigMap keys where they are mounted, the Envoy
// configuration inside a ConfigMap loadable as envoy/ checks it, Istio's
// extension provider pointing at the Service.
package kubernetes
