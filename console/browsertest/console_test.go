package browsertest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/weft-sh/weft/auditor"
	"github.com/weft-sh/weft/internal/auth"
	"github.com/weft-sh/weft/internal/chstore"
	"github.com/weft-sh/weft/internal/demo"
	"github.com/weft-sh/weft/internal/testenv"
)

// TestConsoleInBrowser: the demo's history into the real broker, `weft
// run` (the binary users run, built from this tree) over it with the
// audit trail on, and chromium driving the console as an on-call
// engineer would: log in with an operator token, read the stuck list (the
// demo's injected stuck orders, exactly), sort it, follow an order, see its
// causal chain drawn (one SVG node per stored event, version vectors on
// hover), acknowledge its stuck finding — recorded in ClickHouse as by
// the token's identity — then log out and in as a viewer: no acknowledge
// button, and an acknowledgement posted from the viewer's page with its
// CSRF token is refused with 403 and writes nothing but the denial in the
// operator-actions log. Screenshots go to the artifact folder it prints.
func TestConsoleInBrowser(t *testing.T) {
	brokers := testenv.Kafka(t)
	browser := chromiumPath(t)
	chCfg := testenv.ClickHouse(t)
	name := testenv.Name(t)
	artifacts := artifactDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// 1. A demo history with stuck orders, on topics of this test's own.
	dcfg := demo.DefaultConfig()
	dcfg.Seed = 20261201
	dcfg.Orders = 40
	dcfg.Now = time.Now().UTC().Add(-time.Minute)
	dcfg.Topics = demo.TopicNames{Suffix: "." + name}
	manifest := testenv.DemoHistory(t, brokers, dcfg)
	var injected []string
	for _, f := range manifest.FaultsOf(demo.KindStuck) {
		injected = append(injected, f.OrderID)
	}
	slices.Sort(injected)
	injected = slices.Compact(injected)
	require.GreaterOrEqual(t, len(injected), 2, "the demo injects stuck orders")

	// 2. weft run, with a viewer's and an operator's token.
	tokens := map[auth.Role]string{}
	var entries []auth.Token
	for _, role := range []auth.Role{auth.Viewer, auth.Operator} {
		tok, hash, err := auth.GenerateToken()
		require.NoError(t, err)
		tokens[role] = tok
		entries = append(entries, auth.Token{Name: "browser-" + string(role), Roles: []auth.Role{role}, Hash: hash})
	}
	consoleURL := startWeft(t, ctx, weftConfig(t, brokers, chCfg, name, entries))

	// 3. Wait until the detector has found every injected stuck order, so
	// the page has a known answer.
	store, err := chstore.Open(ctx, chCfg)
	require.NoError(t, err)
	defer store.Close()
	openStuck := func() []chstore.FindingRow {
		rows, err := store.Findings(ctx, chstore.FindingQuery{Kind: "stuck", Status: "open"})
		if err != nil {
			return nil
		}
		return rows
	}
	require.Eventually(t, func() bool { return len(openStuck()) == len(injected) }, 90*time.Second, 250*time.Millisecond,
		"the detector's open stuck findings, want %d", len(injected))

	// 4. The browser.
	bctx := newBrowser(t, browser, artifacts)
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(artifacts, name), png, 0o644))
	}
	strs := func(js string) []string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](js))
		require.NoError(t, err, js)
		return v
	}
	login := func(token string) {
		t.Helper()
		require.NoError(t, chromedp.Do(bctx,
			chromedp.Navigate(consoleURL),
			chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SendKeys(chromedp.CSS("#token"), token),
			chromedp.Click(chromedp.CSS("#login")),
			chromedp.WaitVisible(chromedp.CSS("#stuck-summary")),
		))
	}

	// Not logged in: the console sends the browser to its login form.
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate(consoleURL), chromedp.WaitVisible(chromedp.CSS("#token"))))
	loc, err := chromedp.Run(bctx, chromedp.Location())
	require.NoError(t, err)
	assert.Contains(t, loc, "/login?next=%2F")
	shot("01-login.png")
	// The session cookie is out of the page's reach (HttpOnly).
	login(tokens[auth.Operator])
	cookie, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.cookie`))
	require.NoError(t, err)
	assert.NotContains(t, cookie, "weft_session", "the session cookie must be HttpOnly")
	who, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#identity")))
	require.NoError(t, err)
	assert.Contains(t, who, "browser-operator")

	// The stuck list: exactly the injected stuck orders, each with its why.
	listed := strs(`Array.from(document.querySelectorAll("#stuck-table tbody tr")).map(r => r.dataset.order)`)
	slices.Sort(listed)
	assert.Equal(t, injected, listed, "the stuck list shows the injected stuck orders")
	whys := strs(`Array.from(document.querySelectorAll("#stuck-table td.why")).map(td => td.textContent.trim())`)
	for _, w := range whys {
		assert.NotEmpty(t, w, "every stuck order says why")
	}
	shot("02-stuck.png")

	// Sorted by reason, by a click on its header.
	require.NoError(t, chromedp.Do(bctx, chromedp.Click(chromedp.CSS("#sort-reason")), chromedp.WaitVisible(chromedp.CSS(`th a[href*="dir=desc"]#sort-reason`))))
	reasons := strs(`Array.from(document.querySelectorAll("#stuck-table tbody tr td[data-label=Reason]")).map(td => td.textContent.trim())`)
	assert.True(t, slices.IsSorted(reasons), "sorted by reason: %v", reasons)
	assert.Len(t, reasons, len(injected))

	// Follow the first order.
	order := strs(`[document.querySelector("#stuck-table tbody tr").dataset.order]`)[0]
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-order=%q] a.order-link`, order))),
		chromedp.WaitVisible(chromedp.CSS("svg.chain")),
	))
	loc, err = chromedp.Run(bctx, chromedp.Location())
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(loc, "/orders/"+order), loc)
	// One node per stored event of the order (redeliveries of one record
	// are one event), each with its version vector on hover.
	var stored uint64
	require.NoError(t, testenv.Conn(t).QueryRow(ctx, "SELECT count() FROM (SELECT DISTINCT topic, partition, offset FROM "+
		store.Table("events")+" WHERE order_id = ?)", order).Scan(&stored))
	require.NotZero(t, stored)
	titles := strs(`Array.from(document.querySelectorAll("svg.chain g.node > title")).map(t => t.textContent)`)
	assert.Len(t, titles, int(stored), "one chain node per stored event")
	for _, title := range titles {
		assert.Regexp(t, `version vector (\{.+\}|-)`, title)
	}
	assert.Contains(t, strings.Join(titles, "\n"), "version vector {", "the demo's events carry version vectors")
	shot("03-order.png")

	// Acknowledge its stuck finding.
	var finding string
	for _, f := range openStuck() {
		if f.OrderID == order {
			finding = f.ID
		}
	}
	require.NotEmpty(t, finding, "order %s has an open stuck finding", order)
	row := fmt.Sprintf("#finding-%s", finding)
	reason := "browser test: replay scheduled"
	require.NoError(t, chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.CSS(row+" input[name=reason]"), reason),
		chromedp.Click(chromedp.CSS(row+" button")),
		chromedp.WaitVisible(chromedp.CSS(row+" .ack-by")),
	))
	by, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(row+" .ack-by")))
	require.NoError(t, err)
	assert.Equal(t, "browser-operator", by)
	acked := findingByID(t, ctx, store, finding)
	assert.Equal(t, "acknowledged", acked.Status)
	assert.Equal(t, "browser-operator", acked.AckBy, "recorded as by the logged-in identity")
	assert.Equal(t, reason, acked.AckReason)
	assert.Equal(t, 1, actionCount(t, ctx, store, "browser-operator", "finding/"+finding, "success"), "in the operator-actions log")
	shot("04-acknowledged.png")

	// Log out, and in as a viewer.
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(`header form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#token")),
	))
	login(tokens[auth.Viewer])
	other := ""
	for _, id := range injected {
		if id != order {
			other = id
			break
		}
	}
	var viewerFinding string
	for _, f := range openStuck() {
		if f.OrderID == other {
			viewerFinding = f.ID
		}
	}
	require.NotEmpty(t, viewerFinding)
	// A deep link straight to the order.
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(consoleURL+"orders/"+other),
		chromedp.WaitVisible(chromedp.CSS("svg.chain")),
		chromedp.WaitVisible(chromedp.CSS("#ack-hint")),
	))
	forms := strs(`Array.from(document.querySelectorAll("form.ack")).map(f => f.action)`)
	assert.Empty(t, forms, "a viewer is offered no acknowledge button")
	shot("05-viewer.png")
	// Posted anyway, from the viewer's page with its session's CSRF token:
	// refused, and nothing acknowledged.
	status, err := chromedp.Run(bctx, chromedp.Evaluate[int](fmt.Sprintf(`fetch("/findings/%s/ack", {method: "POST", credentials: "same-origin",
		headers: {"Content-Type": "application/x-www-form-urlencoded"},
		body: new URLSearchParams({csrf: document.querySelector("meta[name=csrf-token]").content, reason: "viewer tries", back: "/"})
	}).then(r => r.status)`, viewerFinding), chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	assert.Equal(t, 403, status, "a viewer's acknowledgement is refused")
	still := findingByID(t, ctx, store, viewerFinding)
	assert.Equal(t, "open", still.Status)
	assert.Empty(t, still.AckBy)
	var byViewer uint64
	require.NoError(t, testenv.Conn(t).QueryRow(ctx, "SELECT count() FROM "+store.Table("findings")+" WHERE ack_by = 'browser-viewer' OR ack_reason = 'viewer tries'").Scan(&byViewer))
	assert.Zero(t, byViewer, "the refused acknowledgement wrote no finding")
	assert.Equal(t, 1, actionCount(t, ctx, store, "browser-viewer", "finding/"+viewerFinding, "denied"), "the refusal is in the operator-actions log")
	assert.Zero(t, actionCount(t, ctx, store, "browser-viewer", "finding/"+viewerFinding, "success"))

	// On a phone: the stuck list's rows become labelled cards.
	require.NoError(t, chromedp.Do(bctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(consoleURL),
		chromedp.WaitVisible(chromedp.CSS("#stuck-table tbody tr")),
	))
	head, err := chromedp.Run(bctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("#stuck-table thead")).display`))
	require.NoError(t, err)
	assert.Equal(t, "none", head, "on a phone the table's rows are cards")
	shot("06-phone.png")
	t.Logf("screenshots in %s", artifacts)
	fmt.Fprintf(os.Stderr, "console browser test: screenshots in %s\n", artifacts)
}

// weftConfig is `weft run`'s configuration for the test: the test's
// topics, database and group, fast passes, the audit trail on, and the
// tokens.
func weftConfig(t *testing.T, brokers []string, ch chstore.Config, name string, tokens []auth.Token) string {
	t.Helper()
	dir := t.TempDir()
	signing, _, err := auditor.GenerateKey("weft-browsertest")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "signing.key"), []byte(signing+"\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "source.key"), []byte(auditor.GenerateSourceKey()+"\n"), 0o600))
	cfg := map[string]any{
		"log":        map[string]any{"level": "info", "format": "json"},
		"kafka":      map[string]any{"brokers": brokers},
		"clickhouse": map[string]any{"addr": ch.Addr, "database": ch.Database},
		"http":       map[string]any{"listen": "127.0.0.1:0", "auth": map[string]any{"tokens": tokens}},
		"collector": map[string]any{
			"group":  "weft_" + name,
			"topics": map[string]any{"include": []string{".*" + regexp.QuoteMeta("."+name)}, "refresh_interval": "1s"},
			"batch":  map[string]any{"flush_interval": "200ms"},
			"lag":    map[string]any{"interval": "2s"},
		},
		"consistency": map[string]any{"interval": "1s", "settle": "1s", "windows": map[string]any{"grace": "1s", "convergence": "1s"}},
		"audit": map[string]any{"enabled": true, "cluster_id": "browsertest",
			"signing_key_file": filepath.Join(dir, "signing.key"), "source_key_file": filepath.Join(dir, "source.key")},
	}
	b, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	path := filepath.Join(dir, "weft.yaml")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

// startWeft builds weft from this tree and runs `weft run -c cfg` until
// the test ends; it returns the console's URL from the "weft running"
// log line (the port it bound).
func startWeft(t *testing.T, ctx context.Context, cfg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "weft")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/weft")
	build.Dir = filepath.Join("..", "..")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	cmd := exec.Command(bin, "run", "-c", cfg)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	var tail []string
	urls := make(chan string, 1)
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if len(tail) < 200 {
				tail = append(tail, line)
			}
			var ev struct {
				Message string `json:"message"`
				Console string `json:"console"`
			}
			if json.Unmarshal([]byte(line), &ev) == nil && ev.Message == "weft running" && ev.Console != "" {
				urls <- ev.Console
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("weft run's log:\n%s", strings.Join(tail, "\n"))
		}
	})
	select {
	case u := <-urls:
		return u
	case <-exited:
		t.Fatalf("weft run exited before serving:\n%s", strings.Join(tail, "\n"))
	case <-time.After(60 * time.Second):
		t.Fatalf("weft run did not start within 60s:\n%s", strings.Join(tail, "\n"))
	}
	return ""
}

// newBrowser starts headless chromium for the test.
//
// When the test fails, the page it was on is saved beside the
// screenshots (failed.png, failed.html).
func newBrowser(t *testing.T, path, artifacts string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // the tests run as root in CI
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	// Start the browser with the context's first action, without a
	// deadline (a deadline on the first action would end the browser).
	require.NoError(t, chromedp.Do(bctx), "start chromium %s", path)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		dctx, cancel := context.WithTimeout(bctx, 10*time.Second)
		defer cancel()
		if png, err := chromedp.Run(dctx, chromedp.FullScreenshot(100)); err == nil {
			_ = os.WriteFile(filepath.Join(artifacts, "failed.png"), png, 0o644)
		}
		if html, err := chromedp.Run(dctx, chromedp.Evaluate[string](`location.href + "\n" + document.documentElement.outerHTML`)); err == nil {
			_ = os.WriteFile(filepath.Join(artifacts, "failed.html"), []byte(html), 0o644)
		}
		t.Logf("the failed page is in %s", artifacts)
	})
	tctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(cancel)
	return tctx
}

// chromiumPath is the browser to drive: $WEFT_CHROMIUM, else chromium on
// the PATH. Without one the test fails: `make test` installs it
// (scripts/chromium.sh).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WEFT_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium: install Debian's chromium package (scripts/chromium.sh does, as root) or set WEFT_CHROMIUM")
	return ""
}

// artifactDir is where the screenshots go: $WEFT_TEST_ARTIFACTS/console,
// else .artifacts/console at the top of the repository (ignored by git),
// emptied first.
func artifactDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("WEFT_TEST_ARTIFACTS")
	if base == "" {
		base = filepath.Join("..", "..", ".artifacts")
	}
	dir, err := filepath.Abs(filepath.Join(base, "console"))
	require.NoError(t, err)
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// findingByID is the finding's current version.
func findingByID(t *testing.T, ctx context.Context, store *chstore.Store, id string) chstore.FindingRow {
	t.Helper()
	rows, err := store.Findings(ctx, chstore.FindingQuery{ID: id})
	require.NoError(t, err)
	require.Len(t, rows, 1, "finding %s", id)
	return rows[0]
}

// actionCount counts the operator-actions log's entries of actor on
// resource with outcome.
func actionCount(t *testing.T, ctx context.Context, store *chstore.Store, actor, resource, outcome string) int {
	t.Helper()
	var n uint64
	require.NoError(t, testenv.Conn(t).QueryRow(ctx, "SELECT count() FROM "+store.Table("audit_actions")+
		" WHERE actor = ? AND resource = ? AND outcome = ?", actor, resource, outcome).Scan(&n))
	return int(n)
}
