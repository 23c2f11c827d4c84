// Package kubeapiserver pins the kube-apiserver binary that the chart's real
// API server tier (charts/kubetest, docs/chart-testing.md) installs weft's Helm
// chart into. It is a module of its own so that Kubernetes' dependency graph
// stays out of weft's go.mod; scripts/kube-apiserver.sh builds the tool from
// here into the cache.
package kubeapiserver
