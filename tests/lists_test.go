package tests

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/gateway"
	"github.com/costlake/costlake/internal/clock"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/workflows"
)

// page is one page of a list as the gateway answers it.
type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// listAll follows a list's cursors from the first page with limit items
// a page, and returns every page.
func listAll[T any](t *testing.T, api apiClient, path string, limit int) []page[T] {
	t.Helper()
	var pages []page[T]
	cursor := ""
	for range 50 {
		u, _ := url.Parse(path)
		q := u.Query()
		q.Set("limit", strconv.Itoa(limit))
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		u.RawQuery = q.Encode()
		var p page[T]
		require.Equal(t, http.StatusOK, api.do("GET", u.String(), "", &p), u.String())
		require.LessOrEqual(t, len(p.Items), limit)
		pages = append(pages, p)
		if p.NextCursor == "" {
			return pages
		}
		cursor = p.NextCursor
	}
	t.Fatalf("%s: more than 50 pages", path)
	return nil
}

func payerIDs(pages []page[gateway.PayerItem]) []string {
	var ids []string
	for _, p := range pages {
		for _, it := range p.Items {
			ids = append(ids, it.PayerAccountID)
		}
	}
	return ids
}

// requireFieldError asserts a 400 naming field.
func requireFieldError(t *testing.T, api apiClient, path, field string) {
	t.Helper()
	var body apiErrorBody
	require.Equal(t, http.StatusBadRequest, api.do("GET", path, "", &body), path)
	require.Equal(t, "invalid_request", body.Error.Code, path)
	require.Contains(t, body.Error.Fields, field, path)
}

// TestLists: the lists of payers, customers, a customer's cycles and a
// payer's runs on the real stand (Temporal, the worker, the gateway's
// read-only catalog connection): pages follow their cursors in a stable
// order to the last page, a tampered or foreign cursor and a bad limit or
// status are field errors, a scoped key lists its own customer's only
// (another's is 404), the payers' statuses are those their onboardings
// recorded (unknown for a payer only held), stale follows the last
// successful crawl and the stale age, and no list starts a workflow.
func TestLists(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	ctx := context.Background()
	const acmePayer, globexPayer, heldPayer = "610987654321", "620987654321", "630987654321"

	// acme's payer active and crawled; globex's registered by its own
	// scoped key; initech's only held (its ownership recorded, no
	// onboarding): a payer registered before onboardings recorded status.
	e.activate("acme", acmePayer, "acme-cur")
	e.crawlNow(acmePayer)
	e.delivery("globex-cur", globexPayer)
	require.Equal(t, http.StatusCreated, e.globex.do("POST", "/v1/payers", registration("globex", globexPayer, "globex-cur"), nil))
	db, postgres := e.lake.DB()
	store, err := reseller.Open(ctx, db, postgres)
	require.NoError(t, err)
	_, err = store.ClaimPayer(ctx, heldPayer, "initech", "test", false)
	require.NoError(t, err)

	// Every payer, one a page, by payer account ID.
	var all []page[gateway.PayerItem]
	require.Eventually(t, func() bool {
		all = listAll[gateway.PayerItem](t, e.viewer, "/v1/payers", 1)
		return len(all) == 3 && all[1].Items[0].Status != "unknown" && all[1].Items[0].Status != "registered"
	}, 60*time.Second, 200*time.Millisecond, "globex's onboarding records its status")
	require.Equal(t, []string{acmePayer, globexPayer, heldPayer}, payerIDs(all))
	acme, globex, held := all[0].Items[0], all[1].Items[0], all[2].Items[0]
	require.Equal(t, "acme", acme.CustomerID)
	require.Equal(t, "active", acme.Status)
	require.NotNil(t, acme.StatusSince)
	require.NotNil(t, acme.Checks)
	require.Zero(t, acme.Checks.Failed)
	require.Positive(t, acme.Checks.Passed)
	require.NotNil(t, acme.LastCrawl, "the crawl recorded its success")
	require.True(t, acme.LastCrawl.Equal(e.today), "the crawl's business time: %s", acme.LastCrawl)
	require.False(t, acme.Stale, "crawled today")
	_, gp := e.state(e.operator, globexPayer)
	want := map[string]string{workflows.StatusAwaitingStack: "waiting_for_stack", workflows.StatusValidating: "validating",
		workflows.StatusChecksFailed: "checks_failed", workflows.StatusAwaitingApproval: "waiting_for_approval"}
	require.Contains(t, want, gp.Status)
	require.Eventually(t, func() bool {
		_, gp = e.state(e.operator, globexPayer)
		var p page[gateway.PayerItem]
		e.viewer.do("GET", "/v1/payers?customer=globex", "", &p)
		return len(p.Items) == 1 && p.Items[0].Status == want[gp.Status]
	}, 60*time.Second, 200*time.Millisecond, "the list shows globex's status as its onboarding has it")
	require.Equal(t, "globex", globex.CustomerID)
	require.Equal(t, gateway.PayerItem{PayerAccountID: heldPayer, CustomerID: "initech", Status: "unknown"}, held)
	require.Empty(t, all[2].NextCursor, "the last page has no cursor")

	// Filters: status and customer; stale by the gateway's clock and
	// stale age (the default 48 hours; three days later it is stale).
	var active page[gateway.PayerItem]
	require.Equal(t, http.StatusOK, e.viewer.do("GET", "/v1/payers?status=active", "", &active))
	require.Equal(t, []string{acmePayer}, payerIDs([]page[gateway.PayerItem]{active}))
	var stale page[gateway.PayerItem]
	require.Equal(t, http.StatusOK, e.viewer.do("GET", "/v1/payers?status=stale", "", &stale))
	require.Empty(t, stale.Items)
	var unknown page[gateway.PayerItem]
	require.Equal(t, http.StatusOK, e.viewer.do("GET", "/v1/payers?status=unknown&customer=initech", "", &unknown))
	require.Equal(t, []string{heldPayer}, payerIDs([]page[gateway.PayerItem]{unknown}))
	later := e.gatewayWith(func(c *gateway.Config) { c.Clock = clock.Fixed(e.today.Add(72 * time.Hour)) })
	require.Equal(t, http.StatusOK, later.do("GET", "/v1/payers?status=stale", "", &stale))
	require.Len(t, stale.Items, 1)
	require.True(t, stale.Items[0].Stale)
	require.Equal(t, acmePayer, stale.Items[0].PayerAccountID)
	lenient := e.gatewayWith(func(c *gateway.Config) {
		c.Clock = clock.Fixed(e.today.Add(72 * time.Hour))
		c.MaxCrawlAge = 96 * time.Hour
	})
	require.Equal(t, http.StatusOK, lenient.do("GET", "/v1/payers?status=stale", "", &stale))
	require.Empty(t, stale.Items, "the stale age is the gateway's --max-crawl-age")

	// Bad limits, statuses, customers and cursors are field errors.
	for _, l := range []string{"0", "201", "-1", "ten", "1.5"} {
		requireFieldError(t, e.viewer, "/v1/payers?limit="+l, "limit")
	}
	requireFieldError(t, e.viewer, "/v1/payers?status=sleeping", "status")
	requireFieldError(t, e.viewer, "/v1/payers?customer="+url.QueryEscape("a b/c"), "customer")
	next := all[0].NextCursor
	require.NotEmpty(t, next)
	tampered := []byte(next)
	tampered[len(tampered)/2] ^= 1
	for _, bad := range []string{"garbage", string(tampered), next[:len(next)-2], "AAAAAAAAAAAAAAAAAAAA"} {
		requireFieldError(t, e.viewer, "/v1/payers?limit=1&cursor="+url.QueryEscape(bad), "cursor")
	}
	requireFieldError(t, e.viewer, "/v1/payers?limit=1&status=active&cursor="+url.QueryEscape(next), "cursor")
	requireFieldError(t, e.viewer, "/v1/customers?limit=1&cursor="+url.QueryEscape(next), "cursor")

	// A scoped key lists its own customer's payers; another customer is
	// 404, as its payers are.
	scoped := listAll[gateway.PayerItem](t, e.globex, "/v1/payers", 1)
	require.Equal(t, []string{globexPayer}, payerIDs(scoped))
	var nf apiErrorBody
	require.Equal(t, http.StatusNotFound, e.globex.do("GET", "/v1/payers?customer=acme", "", &nf))
	require.Equal(t, "not_found", nf.Error.Code)

	// Customers: every one the records know, by ID, two a page.
	for _, c := range []string{`acme`, `globex`} {
		require.Equal(t, http.StatusOK, e.operator.do("PUT", "/v1/customers/"+c, `{"name":"`+c+` Inc"}`, nil))
	}
	require.Equal(t, http.StatusOK, e.operator.do("PUT", "/v1/customers/acme/accounts",
		`{"effective_from":"2026-10","payers":[{"payer_account_id":"`+acmePayer+`","accounts":["*"]}]}`, nil))
	for _, p := range []string{"2026-07", "2026-08", "2026-09"} {
		require.NoError(t, store.CloseCycle(ctx, reseller.Cycle{CustomerID: "acme", Period: p, PricebookVersion: 1, Snapshots: map[string]int64{acmePayer: 1}}))
	}
	_, err = store.SaveInvoice(ctx, reseller.Invoice{CustomerID: "acme", Period: "2026-08", Currency: "USD", Total: "120.50", Due: "100.25", Body: []byte(`{}`)})
	require.NoError(t, err)
	_, err = store.PutHold(ctx, reseller.Hold{CustomerID: "globex", Reason: "dispute", HeldBy: "test"})
	require.NoError(t, err)
	_, requestsBefore := customerReadWorkflows(t, e.client) // the changes above ran as workflows

	customers := listAll[gateway.CustomerItem](t, e.viewer, "/v1/customers", 2)
	require.Len(t, customers, 2)
	require.NotEmpty(t, customers[0].NextCursor)
	got := slices.Concat(customers[0].Items, customers[1].Items)
	require.Equal(t, []gateway.CustomerItem{
		{ID: "acme", Name: "acme Inc", Accounts: 1, LastClosedPeriod: "2026-09"},
		{ID: "globex", Name: "globex Inc", OnHold: true},
		{ID: "initech"},
	}, got)
	own := listAll[gateway.CustomerItem](t, e.globex, "/v1/customers", 50)
	require.Equal(t, []gateway.CustomerItem{{ID: "globex", Name: "globex Inc", OnHold: true}}, own[0].Items)

	// Cycles: newest period first, two a page; invoiced with the amounts.
	cycles := listAll[gateway.CycleItem](t, e.viewer, "/v1/customers/acme/cycles", 2)
	require.Len(t, cycles, 2)
	require.Len(t, cycles[0].Items, 2)
	c9, c8, c7 := cycles[0].Items[0], cycles[0].Items[1], cycles[1].Items[0]
	require.Equal(t, []string{"2026-09", "2026-08", "2026-07"}, []string{c9.Period, c8.Period, c7.Period})
	require.Equal(t, "closed", c9.Status)
	require.Empty(t, c9.Total)
	require.Equal(t, gateway.CycleItem{Period: "2026-08", Status: "invoiced", ClosedAt: c8.ClosedAt, PricebookVersion: 1, Currency: "USD", Total: "120.50", Due: "100.25"}, c8)
	require.NotEmpty(t, c8.ClosedAt)
	require.Equal(t, http.StatusNotFound, e.globex.do("GET", "/v1/customers/acme/cycles", "", nil), "another customer's cycles")
	require.Equal(t, http.StatusNotFound, e.viewer.do("GET", "/v1/customers/umbrella/cycles", "", nil), "a customer no record knows")
	var none page[gateway.CycleItem]
	require.Equal(t, http.StatusOK, e.globex.do("GET", "/v1/customers/globex/cycles", "", &none))
	require.Empty(t, none.Items)
	requireFieldError(t, e.viewer, "/v1/customers/acme/cycles?cursor="+url.QueryEscape(customers[0].NextCursor), "cursor")

	// Runs: pages of the payer's crawls through visibility's page tokens.
	runs := e.runs(acmePayer)
	require.NotEmpty(t, runs)
	var pagedRuns []string
	for _, p := range listAll[gateway.RunView](t, e.viewer, "/v1/payers/"+acmePayer+"/runs", 1) {
		for _, r := range p.Items {
			pagedRuns = append(pagedRuns, r.RunID)
		}
	}
	var wantRuns []string
	for _, r := range runs {
		wantRuns = append(wantRuns, r.RunID)
	}
	require.Equal(t, wantRuns, pagedRuns)
	requireFieldError(t, e.viewer, "/v1/payers/"+acmePayer+"/runs?cursor="+url.QueryEscape(next), "cursor")
	requireFieldError(t, e.viewer, "/v1/payers/"+acmePayer+"/runs?limit=500", "limit")
	require.Equal(t, http.StatusNotFound, e.globex.do("GET", "/v1/payers/"+acmePayer+"/runs", "", nil))

	_, requestsAfter := customerReadWorkflows(t, e.client)
	require.Equal(t, requestsBefore, requestsAfter, "no list started a workflow")

	// Without the catalog the lists that read it say so.
	noCatalog := e.gatewayWith(func(c *gateway.Config) { c.Records = nil })
	var unavailable apiErrorBody
	require.Equal(t, http.StatusServiceUnavailable, noCatalog.do("GET", "/v1/payers", "", &unavailable))
	require.Equal(t, "unavailable", unavailable.Error.Code)
	require.Contains(t, unavailable.Error.Message, "--catalog")
}
