// Package charttest is the fast test tier of weft's Helm chart
// (charts/weft): lint with the Helm v4 SDK, values schema validation, a
// render of every charts/weft/ci/*.yaml values file, strict typed decoding
// of every rendered object into its Kubernetes API type, and assertions on
// what the chart must get right (security context, labels, checksums,
// secrets, probes, dashboards). It runs no cluster: docs/deploy.md.
//
// It is a module of its own so that Helm and the Kubernetes libraries stay
// out of weft's go.mod. Run: cd charts/test && go test ./...
package charttest
