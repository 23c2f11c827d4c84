// Package jaeger pins the Jaeger v2 binary that weft's tracing integration
// test exports to (docs/tracing.md). It is a module of its own because
// Jaeger's dependency graph conflicts with the pdata version weft uses;
// scripts/jaeger.sh builds the tool from here into the cache.
package jaeger
