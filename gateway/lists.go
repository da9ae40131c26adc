package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.temporal.io/api/serviceerror"

	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/workflows"
)

// The lists (GET /v1/payers, /v1/customers, /v1/customers/{id}/cycles,
// /v1/payers/{id}/runs) answer a page of items and the cursor of the
// next page. The first three read the reseller's records (one query a
// page, a few for customers), the runs Temporal's visibility; none starts
// a workflow or asks one per item.

// Page sizes of every list.
const (
	defaultPageSize = 50
	maxPageSize     = 200
	// maxCursorLen bounds the cursor a client sends back (a Temporal page
	// token is the largest part, well under this).
	maxCursorLen = 4096
)

// Page is the answer of every list: a page of items, and the cursor of
// the next page (empty on the last one).
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// pageSize is the request's ?limit: 1 to maxPageSize, defaultPageSize
// when absent.
func pageSize(c echo.Context) (int, error) {
	q := c.QueryParam("limit")
	if q == "" {
		return defaultPageSize, nil
	}
	n, err := strconv.Atoi(q)
	if err != nil || n < 1 || n > maxPageSize {
		return 0, validationError(map[string]string{"limit": "an integer from 1 to " + strconv.Itoa(maxPageSize)})
	}
	return n, nil
}

// cursor is where a page starts. On the wire it is opaque: base64url of
// its JSON and a checksum, so a cursor cut, edited or made up is refused
// (400 on field cursor) rather than read as another position. It holds
// a position only, never a right: every page applies the key's scope and
// the filters again, and a cursor names the list and filters it was
// made for, so it cannot carry one list's position into another.
type cursor struct {
	List   string `json:"l"`
	Filter string `json:"f,omitempty"`
	After  string `json:"a,omitempty"` // the last key of the previous page
	Token  []byte `json:"t,omitempty"` // Temporal's next page token (runs)
}

// cursorSum is the checksum a cursor carries: the first 8 bytes of the
// SHA-256 of its JSON, with a domain prefix.
func cursorSum(payload []byte) []byte {
	sum := sha256.Sum256(append([]byte("costlake-cursor/v1\x00"), payload...))
	return sum[:8]
}

func (cur cursor) String() string {
	payload, _ := json.Marshal(cur) // strings and bytes: cannot fail
	return base64.RawURLEncoding.EncodeToString(append(payload, cursorSum(payload)...))
}

// errCursor is the answer to a cursor the gateway did not make for this
// list and these filters.
func errCursor() error {
	return validationError(map[string]string{"cursor": "not a cursor of this list with these filters: pass next_cursor from the previous page unchanged, with the same filters, or leave it out for the first page"})
}

// pageCursor reads the request's ?cursor for list with filter; valid
// checks its key. No cursor is the first page (a zero cursor).
func pageCursor(c echo.Context, list, filter string, valid func(key string) bool) (cursor, error) {
	q := c.QueryParam("cursor")
	if q == "" {
		return cursor{}, nil
	}
	if len(q) > maxCursorLen {
		return cursor{}, errCursor()
	}
	raw, err := base64.RawURLEncoding.DecodeString(q)
	if err != nil || len(raw) <= 8 {
		return cursor{}, errCursor()
	}
	payload, sum := raw[:len(raw)-8], raw[len(raw)-8:]
	if !bytes.Equal(sum, cursorSum(payload)) {
		return cursor{}, errCursor()
	}
	var cur cursor
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if dec.Decode(&cur) != nil || cur.List != list || cur.Filter != filter || (cur.After == "" && len(cur.Token) == 0) ||
		(cur.After != "" && !valid(cur.After)) {
		return cursor{}, errCursor()
	}
	return cur, nil
}

// listRecords is the reseller's records a list needs: without --catalog
// the lists answer 503 rather than start a workflow per request.
func (s *Server) listRecords() (Records, error) {
	if s.records == nil {
		return nil, errorf(kindUnavailable, "this list reads the reseller's records: start the gateway with --catalog (COSTLAKE_CATALOG)")
	}
	return s.records, nil
}

// Payer list statuses: the onboarding's statuses under the names the
// list shows and filters by (GET /v1/payers?status=), plus "unknown" for
// a payer whose onboarding has recorded no status yet. "stale" filters
// the active payers whose last successful crawl is older than the
// gateway's --max-crawl-age (each item's stale flag).
var payerListStatus = map[string]string{
	workflows.StatusRegistered:       "registered",
	workflows.StatusAwaitingStack:    "waiting_for_stack",
	workflows.StatusStackFailed:      "stack_failed",
	workflows.StatusValidating:       "validating",
	workflows.StatusChecksFailed:     "checks_failed",
	workflows.StatusAwaitingApproval: "waiting_for_approval",
	workflows.StatusChangesRequested: "changes_requested",
	workflows.StatusActive:           "active",
	workflows.StatusFailed:           "failed",
	workflows.StatusRejected:         "rejected",
	workflows.StatusOffboarded:       "offboarded",
	reseller.PayerStatusUnknown:      "unknown",
}

// StatusStale is the payer list's filter of active payers not crawled
// successfully within the stale age.
const StatusStale = "stale"

// PayerListStatuses are the values GET /v1/payers?status= takes, sorted.
func PayerListStatuses() []string {
	out := []string{StatusStale}
	for _, v := range payerListStatus {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// listStatusOf is the list's name of an onboarding status; a status this
// gateway does not know (a newer worker's) is shown as it is recorded.
func listStatusOf(status string) string {
	if v, ok := payerListStatus[status]; ok {
		return v
	}
	return status
}

// PayerItem is one payer in GET /v1/payers.
type PayerItem struct {
	PayerAccountID string `json:"payer_account_id"`
	CustomerID     string `json:"customer_id"`
	Name           string `json:"name"`
	Status         string `json:"status"`
	// StatusSince is when the onboarding entered its status; absent when
	// it is unknown.
	StatusSince *time.Time            `json:"status_since,omitempty"`
	Checks      *reseller.CheckCounts `json:"checks,omitempty"`
	// LastCrawl is the last successful crawl's business time.
	LastCrawl *time.Time `json:"last_crawl,omitempty"`
	// Stale: active, and its last successful crawl (or, never crawled,
	// its activation) is older than the stale age.
	Stale bool `json:"stale"`
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// payerItem is a listing as the list shows it, judged stale at now.
func (s *Server) payerItem(p reseller.PayerListing, now time.Time) PayerItem {
	it := PayerItem{PayerAccountID: p.PayerAccountID, CustomerID: p.CustomerID, Name: p.Name, Status: listStatusOf(p.Status),
		Checks: p.Checks, LastCrawl: timeOrNil(p.LastCrawl)}
	if p.Recorded {
		it.StatusSince = timeOrNil(p.Since)
	}
	if p.Status == workflows.StatusActive {
		ref := p.LastCrawl
		if ref.IsZero() {
			ref = p.Since
		}
		it.Stale = now.Sub(ref) > s.maxCrawlAge
	}
	return it
}

// handleListPayers lists the payers the key may see, by payer account ID,
// filtered by ?status= (one of PayerListStatuses) and ?customer=.
func (s *Server) handleListPayers(c echo.Context) error {
	limit, err := pageSize(c)
	if err != nil {
		return err
	}
	status, customer := c.QueryParam("status"), c.QueryParam("customer")
	fields := map[string]string{}
	var statuses []string
	switch {
	case status == "":
	case status == StatusStale:
		statuses = []string{workflows.StatusActive}
	default:
		for onboarding, listed := range payerListStatus {
			if listed == status {
				statuses = []string{onboarding}
			}
		}
		if statuses == nil {
			fields["status"] = "one of " + strings.Join(PayerListStatuses(), ", ")
		}
	}
	if customer != "" && !payer.ValidCustomerID(customer) {
		fields["customer"] = "a customer ID"
	}
	if len(fields) > 0 {
		return validationError(fields)
	}
	if k := principal(c); k.CustomerID != "" {
		if customer != "" && customer != k.CustomerID {
			return errorf(kindNotFound, "no customer %q", customer)
		}
		customer = k.CustomerID
	}
	cur, err := pageCursor(c, "payers", status+"/"+customer, payer.ValidAccountID)
	if err != nil {
		return err
	}
	recs, err := s.listRecords()
	if err != nil {
		return err
	}
	now := s.clock.Now()
	items := []PayerItem{}
	// The stale filter is judged here, on each row's times, so a page may
	// take more than one query; each starts after the last row read.
	after := cur.After
	for len(items) <= limit {
		rows, err := recs.ListPayers(c.Request().Context(), reseller.PayerFilter{After: after, Customer: customer, Statuses: statuses, Limit: limit + 1})
		if err != nil {
			return recordsError(err)
		}
		for _, r := range rows {
			it := s.payerItem(r, now)
			if status != StatusStale || it.Stale {
				items = append(items, it)
			}
		}
		if len(rows) < limit+1 {
			break
		}
		after = rows[len(rows)-1].PayerAccountID
	}
	page := Page[PayerItem]{Items: items}
	if len(items) > limit {
		page.Items = items[:limit]
		page.NextCursor = cursor{List: "payers", Filter: status + "/" + customer, After: items[limit-1].PayerAccountID}.String()
	}
	return c.JSON(http.StatusOK, page)
}

// CustomerItem is one customer in GET /v1/customers.
type CustomerItem struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Accounts counts the assignments in force this month (an account, or
	// a whole payer, each one).
	Accounts int `json:"accounts"`
	// PricebookVersion is the version in force this month; absent when
	// none is, and for customer-scoped keys (pricebooks are the
	// reseller's).
	PricebookVersion int    `json:"pricebook_version,omitempty"`
	LastClosedPeriod string `json:"last_closed_period,omitempty"`
	OnHold           bool   `json:"on_hold"`
}

// handleListCustomers lists the customers the key may see, by ID: a
// customer-scoped key its own only.
func (s *Server) handleListCustomers(c echo.Context) error {
	limit, err := pageSize(c)
	if err != nil {
		return err
	}
	only := principal(c).CustomerID
	cur, err := pageCursor(c, "customers", only, payer.ValidCustomerID)
	if err != nil {
		return err
	}
	recs, err := s.listRecords()
	if err != nil {
		return err
	}
	rows, err := recs.ListCustomers(c.Request().Context(), cur.After, only, period.Of(s.clock.Now()).String(), limit+1)
	if err != nil {
		return recordsError(err)
	}
	page := Page[CustomerItem]{Items: []CustomerItem{}}
	for _, r := range rows {
		it := CustomerItem{ID: r.ID, Name: r.Name, Accounts: r.Accounts, PricebookVersion: r.PricebookVersion, LastClosedPeriod: r.LastClosedPeriod, OnHold: r.OnHold}
		if only != "" {
			it.PricebookVersion = 0
		}
		page.Items = append(page.Items, it)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.NextCursor = cursor{List: "customers", Filter: only, After: page.Items[limit-1].ID}.String()
	}
	return c.JSON(http.StatusOK, page)
}

// CycleItem is one closed cycle in GET /v1/customers/{id}/cycles: closed
// (frozen), or invoiced, with what the customer is charged.
type CycleItem struct {
	Period           string `json:"period"`
	Status           string `json:"status"` // closed or invoiced
	ClosedAt         string `json:"closed_at"`
	PricebookVersion int    `json:"pricebook_version"`
	Currency         string `json:"currency,omitempty"`
	Total            string `json:"total,omitempty"`
	Due              string `json:"due,omitempty"`
}

func validPeriod(s string) bool {
	_, err := period.Parse(s)
	return err == nil
}

// handleListCycles lists a customer's closed cycles, newest period
// first, from the records (whatever Temporal still retains).
func (s *Server) handleListCycles(c echo.Context) error {
	id, err := customerFor(c, false)
	if err != nil {
		return err
	}
	limit, err := pageSize(c)
	if err != nil {
		return err
	}
	cur, err := pageCursor(c, "cycles", id, validPeriod)
	if err != nil {
		return err
	}
	recs, err := s.listRecords()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if known, err := recs.CustomerKnown(ctx, id); err != nil {
		return recordsError(err)
	} else if !known {
		return errorf(kindNotFound, "no customer %q", id)
	}
	rows, err := recs.ListCycles(ctx, id, cur.After, limit+1)
	if err != nil {
		return recordsError(err)
	}
	page := Page[CycleItem]{Items: []CycleItem{}}
	for _, r := range rows {
		page.Items = append(page.Items, CycleItem{Period: r.Period, Status: r.Status, ClosedAt: r.ClosedAt, PricebookVersion: r.PricebookVersion,
			Currency: r.Currency, Total: r.Total, Due: r.Due})
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.NextCursor = cursor{List: "cycles", Filter: id, After: page.Items[limit-1].Period}.String()
	}
	return c.JSON(http.StatusOK, page)
}

// isInvalidArgument tells a Temporal refusal of the request's arguments
// (a page token it did not make).
func isInvalidArgument(err error) bool {
	var ia *serviceerror.InvalidArgument
	return errors.As(err, &ia)
}
