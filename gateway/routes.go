package gateway

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// group is a set of routes behind the same authorization middleware.
// (Not echo.Group: a group with middleware and no path prefix adds
// catch-all routes, which would answer an unknown path with the group's
// 403 instead of 404.)
type group struct {
	e  *echo.Echo
	mw []echo.MiddlewareFunc
}

func (g group) add(method, path string, h echo.HandlerFunc) { g.e.Add(method, path, h, g.mw...) }

// guard is middleware that runs checks in order before the handler.
func guard(checks ...func(echo.Context) error) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			for _, check := range checks {
				if err := check(c); err != nil {
					return err
				}
			}
			return next(c)
		}
	}
}

// routes installs every route in its authorization group. authenticate
// (global) has already admitted the key, except on the public routes.
//
// Routes about one customer (PUT /v1/customers/…, the cycle close, the
// pricebook read) stay in the viewer group and check in customerFor:
// a scoped key must hear 404 for another customer before any 403, so
// the check depends on the target and cannot run before routing's
// parameters are read. The payer routes likewise answer 404 for payers
// a scoped key may not see (visiblePayer), after the role check.
func (s *Server) routes(e *echo.Echo) {
	public := group{e: e}
	public.add(http.MethodGet, "/healthz", s.handleHealth)
	public.add(http.MethodGet, "/readyz", s.handleReady)
	public.add(http.MethodGet, OpenAPIPath, handleOpenAPI)

	// viewer: any valid key.
	viewer := group{e: e}
	// Lists: scoped keys list their own customer's only.
	viewer.add(http.MethodGet, "/v1/payers", s.handleListPayers)
	viewer.add(http.MethodGet, "/v1/customers", s.handleListCustomers)
	viewer.add(http.MethodGet, "/v1/customers/:id/cycles", s.handleListCycles)
	viewer.add(http.MethodGet, "/v1/payers/:id", s.handleGetPayer)
	viewer.add(http.MethodGet, "/v1/payers/:id/runs", s.handleRuns)
	viewer.add(http.MethodGet, "/v1/customers/:id", s.handleGetCustomer)
	viewer.add(http.MethodGet, "/v1/customers/:id/pricebook", s.handleGetPricebook)
	viewer.add(http.MethodGet, "/v1/customers/:id/cycles/:period", s.handleGetCycle)
	// Changes to one customer: customerFor(c, true) checks 404, then the
	// role (unscoped operator).
	viewer.add(http.MethodPut, "/v1/customers/:id", s.handlePutCustomer)
	viewer.add(http.MethodPut, "/v1/customers/:id/accounts", s.handleSetAccounts)
	viewer.add(http.MethodPut, "/v1/customers/:id/pricebook", s.handlePutPricebook)
	viewer.add(http.MethodPost, "/v1/customers/:id/cycles/:period/close", s.handleCloseCycle)
	viewer.add(http.MethodPost, "/v1/customers/:id/cycles/:period/accept-difference", s.handleAcceptDifference)
	viewer.add(http.MethodPost, "/v1/customers/:id/hold", s.handleHold)
	viewer.add(http.MethodDelete, "/v1/customers/:id/hold", s.handleRelease)

	// unscoped: any role, keys not scoped to a customer (routes spanning
	// customers).
	unscoped := group{e: e, mw: []echo.MiddlewareFunc{guard(requireUnscoped)}}
	unscoped.add(http.MethodGet, "/v1/ingestions/*", s.handleGetIngestion)
	unscoped.add(http.MethodGet, "/v1/reports/unassigned", s.handleUnassigned)

	// operator: operator keys, scoped or not (a scoped key acts for its
	// own customer's payers).
	operator := group{e: e, mw: []echo.MiddlewareFunc{guard(requireOperator)}}
	operator.add(http.MethodPost, "/v1/payers", s.handleRegisterPayer)
	operator.add(http.MethodPost, "/v1/payers/:id/crawl", s.handleCrawl)
	operator.add(http.MethodPost, "/v1/payers/:id/backfill", s.handleBackfill)
	// A scoped key changes its own customer's payers (404 for others').
	operator.add(http.MethodPatch, "/v1/payers/:id", s.handleChangePayer)

	// unscoped operator: routes spanning customers that change things.
	unscopedOperator := group{e: e, mw: []echo.MiddlewareFunc{guard(requireOperator, requireUnscoped)}}
	unscopedOperator.add(http.MethodPost, "/v1/ingestions", s.handleStartIngestion)
	unscopedOperator.add(http.MethodPost, "/v1/exports/verify", s.handleVerifyExport)
	unscopedOperator.add(http.MethodPost, "/v1/exports/reseller", s.handleResellerExport)
	unscopedOperator.add(http.MethodPost, "/v1/month-end", s.handleRunMonthEnd)
	unscopedOperator.add(http.MethodPut, "/v1/webhook", s.handlePutWebhook)
	unscopedOperator.add(http.MethodDelete, "/v1/webhook", s.handleDeleteWebhook)

	// deciders: unscoped operators deciding about a payer; the refusal
	// of a scoped key says why (requireDecider).
	decider := group{e: e, mw: []echo.MiddlewareFunc{guard(requireDecider)}}
	for action, signal := range payerActions {
		decider.add(http.MethodPost, "/v1/payers/:id/"+action, s.payerAction(signal))
	}
	decider.add(http.MethodDelete, "/v1/payers/:id", s.handleOffboard)
	decider.add(http.MethodPost, "/v1/payers/:id/pause", s.scheduleAction(true))
	decider.add(http.MethodPost, "/v1/payers/:id/resume", s.scheduleAction(false))

	// The Iceberg REST catalog: any key; what it sees is its scope's.
	s.icebergRoutes(e)
}
