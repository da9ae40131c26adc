package tests

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/gateway"
	"github.com/costlake/costlake/workflows"
)

// screenshotDir is where the console test writes a screenshot of each
// page; the README links them as examples.
const screenshotDir = "../docs/console"

// chromium finds Debian's Chromium; without it the test fails, saying
// how to install it (.ci/run installs it on CI).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("the console test drives a real Chromium and none is installed: apt-get install -y chromium")
	return ""
}

// browser is one Chromium tab on the console, collecting every console
// message the pages write.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, base: base}
	// Start the browser, then read its console in the background.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")), "start Chromium")
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.msgs = append(b.msgs, m)
			b.mu.Unlock()
		}
	}()
	// The listener hears the page's console: a probe error reaches it.
	_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`console.error("console-probe"); true`))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return slices.ContainsFunc(b.msgs, func(m chromedp.ConsoleMessage) bool { return strings.Contains(m.Text, "console-probe") })
	}, 10*time.Second, 50*time.Millisecond, "the console listener hears nothing")
	b.problems()
	return b
}

// problems returns and clears the errors and warnings the pages wrote
// to the console (exceptions, CSP violations, failed loads).
func (b *browser) problems() []string {
	time.Sleep(200 * time.Millisecond) // let the last page's messages arrive
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.msgs {
		switch m.Type {
		case chromedp.ConsoleError, chromedp.ConsoleException, chromedp.ConsoleWarning:
			out = append(out, fmt.Sprintf("%s (%s %s)", m, m.Source, m.URL))
		}
	}
	b.msgs = nil
	return out
}

// open navigates to a console path and returns the page's status.
func (b *browser) open(path string) int {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Navigate(b.base+path))
	require.NoError(b.t, err, "open %s", path)
	return int(resp.Status)
}

// submit runs an action that submits a form and returns the status of the
// page it lands on.
func (b *browser) submit(a chromedp.Action[chromedp.Void]) int {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, a)
	require.NoError(b.t, err)
	return int(resp.Status)
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(b.t, err, "text of %s", sel)
	return s
}

func (b *browser) has(sel string) bool {
	b.t.Helper()
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](fmt.Sprintf("document.querySelector(%q) !== null", sel)))
	require.NoError(b.t, err)
	return n
}

func (b *browser) location() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	require.NoError(b.t, err)
	return strings.TrimPrefix(loc, b.base)
}

// clean fails on any console problem of the pages since the last check.
func (b *browser) clean(page string) {
	b.t.Helper()
	require.Empty(b.t, b.problems(), "console errors on %s", page)
}

// refused expects the page's only console entry to be the failed load of
// the refused document itself.
func (b *browser) refused(page string, status int) {
	b.t.Helper()
	for _, p := range b.problems() {
		require.Containsf(b.t, p, fmt.Sprintf("status of %d", status), "console errors on %s", page)
	}
}

// shot writes a full-page PNG of the current page into docs/console.
func (b *browser) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	require.NoError(b.t, err)
	require.NoError(b.t, os.MkdirAll(screenshotDir, 0o755))
	require.NoError(b.t, os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644))
}

func (b *browser) signIn(key string) {
	b.t.Helper()
	require.Equal(b.t, http.StatusOK, b.open("/sign-in"))
	require.NoError(b.t, chromedp.Do(b.ctx, chromedp.SendKeys(chromedp.ID("key"), key)))
	require.Equal(b.t, http.StatusOK, b.submit(chromedp.Click(chromedp.CSS("#sign-in button"))))
	require.Equal(b.t, "/payers", b.location())
}

// TestConsoleInChromium drives the operator console in a real Chromium
// against a real stand (Temporal, worker, gateway, MinIO, the AWS
// emulator): sign in, a payer's checks, approve it, a closed cycle and its
// invoice, a form without its CSRF token refused, a customer-scoped key
// refused another customer's pages; no page writes a console error. It
// writes a screenshot of each page into docs/console.
func TestConsoleInChromium(t *testing.T) {
	chromium(t) // fail before the stand starts
	e := newOnboardEnv(t, fastTiming)
	const payerID = "151987654321"
	period, _ := e.delivery("acme-cur", payerID)
	e.completeStack(payerID)
	require.Equal(t, http.StatusCreated, e.operator.do("POST", "/v1/payers", registration("acme", payerID, "acme-cur"), nil))
	e.waitStatus(payerID, workflows.StatusAwaitingApproval)
	require.Equal(t, http.StatusOK, e.operator.do("PUT", "/v1/customers/acme", `{"name":"Acme Corp"}`, nil))
	require.Equal(t, http.StatusOK, e.operator.do("PUT", "/v1/customers/globex", `{"name":"Globex"}`, nil))

	// The console is on the gateway itself (not behind the stand's
	// OpenAPI check, which knows the API only).
	cfg := e.gatewayConfig
	cfg.TemporalUI = "http://127.0.0.1:8233"
	srv := httptest.NewServer(gateway.New(e.client, slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})), cfg))
	t.Cleanup(srv.Close)
	b := newBrowser(t, srv.URL)

	// Signed out, every page leads to the sign-in page.
	require.Equal(t, http.StatusOK, b.open("/payers/"+payerID))
	require.Equal(t, "/sign-in", b.location())
	b.clean("sign-in")
	b.shot("sign-in")
	b.signIn(e.operator.key)
	cookies, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{})
	require.NoError(t, err)
	var session *network.Cookie
	for _, c := range cookies.Cookies {
		require.NotContains(t, c.Value, e.operator.key, "cookie %s holds the key", c.Name)
		if c.Name == "costlake_session" {
			session = c
		}
	}
	require.NotNil(t, session, "a session cookie")
	require.True(t, session.HTTPOnly)
	require.Equal(t, network.CookieSameSiteStrict, session.SameSite)
	require.False(t, session.Secure, "plain HTTP: not Secure (over TLS it is)")
	b.clean("payers")
	b.shot("payers")
	// The payers list comes from GET /v1/payers; a gateway without it
	// says so instead of failing.
	if b.has("#list-unavailable") {
		require.Contains(t, b.text("#list-unavailable"), "GET /v1/payers")
	} else {
		require.Contains(t, b.text("#payers"), payerID)
	}

	require.Equal(t, http.StatusOK, b.open("/approvals"))
	b.clean("approvals")
	b.shot("approvals")
	if !b.has("#list-unavailable") {
		require.Contains(t, b.text("table.queue"), payerID)
	}

	// The payer: five passed checks, the link into the Temporal UI, the
	// decisions.
	require.Equal(t, http.StatusOK, b.open("/payers/"+payerID))
	require.Equal(t, workflows.StatusAwaitingApproval, b.text("#payer-status"))
	checks := b.text("#checks")
	require.Equal(t, 5, strings.Count(checks, "passed"), checks)
	link, err := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.ID("temporal-link"), "href"))
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:8233/namespaces/default/workflows?query=CostlakePayer%3D%22"+payerID+"%22", link.Value)
	b.clean("payer")
	b.shot("payer-awaiting-approval")

	// A reject without its reason never leaves the browser (required).
	require.True(t, b.has("form.reject input[name=reason][required]"))
	require.True(t, b.has("form.request-changes textarea[name=issues][required]"))

	// Approve.
	require.Equal(t, http.StatusOK, b.submit(chromedp.Click(chromedp.CSS("form.approve button"))))
	require.Contains(t, b.location(), "/payers/"+payerID+"?done=approve")
	b.clean("approved")
	p := e.waitActive(payerID)
	require.Equal(t, "test-operator", p.ApprovedBy, "approved with the signed-in key")
	e.waitWorkflow(p.FirstIngestion.WorkflowID, nil)
	require.Equal(t, http.StatusOK, b.open("/payers/"+payerID))
	require.Equal(t, workflows.StatusActive, b.text("#payer-status"))
	b.clean("payer")
	b.shot("payer-active")

	// Close acme's cycle through the API, then read it in the console.
	require.Equal(t, http.StatusOK, e.operator.do("PUT", "/v1/customers/acme/accounts",
		`{"effective_from":"`+period+`","payers":[{"payer_account_id":"`+payerID+`","accounts":["*"]}]}`, nil))
	require.Equal(t, http.StatusOK, e.operator.do("PUT", "/v1/customers/acme/pricebook", `{"effective_from":"`+period+`","global_percent":"7.5"}`, nil))
	require.Equal(t, http.StatusAccepted, e.operator.do("POST", "/v1/customers/acme/cycles/"+period+"/close", "", nil))
	var cyc gateway.CycleResponse
	require.Eventually(t, func() bool {
		e.operator.do("GET", "/v1/customers/acme/cycles/"+period, "", &cyc)
		return cyc.Status != "running"
	}, 2*time.Minute, 200*time.Millisecond)
	require.Equal(t, "completed", cyc.Status, cyc.Failure)

	require.Equal(t, http.StatusOK, b.open("/customers"))
	b.clean("customers")
	b.shot("customers")
	if !b.has("#list-unavailable") {
		require.Contains(t, b.text("#customers"), "acme")
	}
	require.Equal(t, http.StatusOK, b.open("/customers/acme"))
	require.Contains(t, b.text("#pricebook"), "version 1")
	require.Contains(t, b.text("#accounts"), payerID)
	if !b.has("#list-unavailable") {
		require.Contains(t, b.text("#cycles"), period, "the closed cycle in the customer's list")
	}
	b.clean("customer")
	b.shot("customer")
	// The cycle, from the customer page's form.
	require.NoError(t, chromedp.Do(b.ctx, chromedp.SetValue(chromedp.ID("period"), period)))
	require.Equal(t, http.StatusOK, b.submit(chromedp.Click(chromedp.CSS("#open-cycle button"))))
	require.Equal(t, "/customers/acme/cycles/"+period, b.location())
	require.Contains(t, b.text("#cycle-status"), "completed")
	require.Equal(t, cyc.Result.Bill.Total.String()+" "+cyc.Result.Bill.Currency, b.text("#bill-total"))
	require.Equal(t, cyc.Result.Bill.Due.String()+" "+cyc.Result.Bill.Currency, b.text("#bill-due"))
	require.Contains(t, b.text("#bill-cost"), cyc.Result.Bill.Cost.String(), "the operator sees the cost")
	b.clean("cycle")
	b.shot("cycle")

	require.Equal(t, http.StatusOK, b.open("/month-end"))
	require.True(t, b.has("#run-month-end"), "an unscoped operator may run month-end")
	b.clean("month-end")
	b.shot("month-end")

	// A form without the session's CSRF token is refused, and the session
	// goes on.
	_, err = chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.querySelector('#sign-out input[name=csrf]').remove(); true`))
	require.NoError(t, err)
	require.Equal(t, http.StatusForbidden, b.submit(chromedp.Click(chromedp.CSS("#sign-out button"))))
	require.Contains(t, b.text("#refusal"), "CSRF token")
	b.refused("csrf", http.StatusForbidden)
	b.shot("csrf-refused")
	require.Equal(t, http.StatusOK, b.open("/payers/"+payerID), "still signed in")
	require.Equal(t, "/payers/"+payerID, b.location())
	b.clean("payer")

	// Sign out; the old session is gone.
	require.Equal(t, http.StatusOK, b.submit(chromedp.Click(chromedp.CSS("#sign-out button"))))
	require.Equal(t, "/sign-in?signed-out=1", b.location())
	b.open("/payers/" + payerID)
	require.Equal(t, "/sign-in", b.location())
	b.clean("signed out")

	// globex's key: its own customer's page, never acme's.
	b.signIn(e.globex.key)
	b.clean("payers (globex)")
	require.Equal(t, http.StatusOK, b.open("/customers/globex"))
	require.Contains(t, b.text("h1"), "globex")
	b.clean("customer (globex)")
	b.shot("customer-scoped")
	for _, path := range []string{"/customers/acme", "/customers/acme/cycles/" + period, "/payers/" + payerID} {
		require.Equal(t, http.StatusNotFound, b.open(path), path)
		require.Contains(t, b.text("#refusal"), "no ", path)
		b.refused(path, http.StatusNotFound)
	}
	b.shot("scoped-refused")
	require.Equal(t, http.StatusOK, b.open("/month-end"))
	require.False(t, b.has("#run-month-end"), "a scoped key has no month-end button")
	b.clean("month-end (globex)")
}
