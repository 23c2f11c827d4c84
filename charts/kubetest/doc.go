// Package kubetest is the chart's real API server tier: it starts etcd
// (Debian's etcd-server) and kube-apiserver (built by
// scripts/kube-apiserver.sh) on 127.0.0.1, then installs and upgrades
// charts/weft with the Helm v4 SDK into a namespace that enforces the
// restricted Pod Security Standard, using server-side apply with strict field
// validation, and reads back what the API server stored. There is no kubelet
// and no controller-manager, so no pod ever runs: each rendered pod template
// is instead created as a Pod with dryRun=All, which runs the API server's
// validation and admission (PodSecurity included) without storing it
// (docs/chart-testing.md).
//
// It is a module of its own so that Helm's and Kubernetes' libraries stay
// out of weft's go.mod. `go test -short` skips it; otherwise a missing binary
// fails the tests, naming the script that provides it.
package kubetest
