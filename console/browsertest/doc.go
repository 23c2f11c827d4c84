// Package browsertest drives the web console (docs/console.md) in a real
// browser: Debian's chromium through github.com/chromedp/chromedp, against
// `weft run` on the real Kafka broker and ClickHouse of `make test`. It is
// a module of its own so chromedp stays out of weft's dependencies; make
// test finds or installs chromium with scripts/chromium.sh.
package browsertest
