// Package deploy holds what an operator deploys garner with: Kubernetes
// manifests (kubernetes/, a kustomize base and overlays) and a Grafana
// dashboard (grafana/). It has no code; its tests render the manifests with
// kubectl, decode them strictly into the Kubernetes API types, load every
// embedded garner config with garner's own loader as the container would,
// and check the dashboard's queries against a running garner's /metrics.
package deploy
