// Package consistency finds orders that are stuck or inconsistent: it maps each
// order's events onto its workflows' steps, measures time in step against the
// stream's event-time watermark, and keeps the resulting findings.
package consistency
