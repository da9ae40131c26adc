// Package gateway is costlake's HTTP API (Echo). It validates requests and
// talks to Temporal through its client; it reads the reseller's records
// (customers, pricebooks) through a read-only connection when it has one,
// and never reads billing data's rows: its Iceberg REST catalog (iceberg.go)
// hands out table metadata, and engines read the files themselves.
package gateway

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/clock"
	"github.com/costlake/costlake/internal/contract/monthend"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/internal/restcatalog"
	"github.com/costlake/costlake/internal/telemetry"
	"github.com/costlake/costlake/workflows"
)

// Server is the HTTP gateway.
type Server struct {
	temporal client.Client
	log      *slog.Logger
	audit    *slog.Logger
	keys     *KeyRing
	limiters *limiters
	timing   workflows.OnboardTiming
	clock    clock.Clock
	// registerWait: see Config.RegisterWait.
	registerWait time.Duration
	// workerWait: see Config.WorkerWait.
	workerWait time.Duration
	records    Records
	// maxCrawlAge: see Config.MaxCrawlAge.
	maxCrawlAge time.Duration
	// iceberg, when set, serves the Iceberg REST catalog (iceberg.go);
	// tokenKey signs its tokens.
	iceberg  *restcatalog.Server
	tokenKey []byte
}

// Records are the reseller's records the gateway reads itself, so that a
// read starts no workflow: a reseller.Store over a read-only connection
// (reseller.ReadOnly).
type Records interface {
	View(ctx context.Context, customer, period string) (reseller.CustomerView, error)
	PricebookFor(ctx context.Context, customer, period string) (reseller.PricebookVersion, error)
	// CycleOf and InvoiceOf read a closed cycle and its invoice, whatever
	// Temporal still retains of the run that closed it.
	CycleOf(ctx context.Context, customer, period string) (reseller.Cycle, error)
	InvoiceOf(ctx context.Context, customer, period string) (reseller.Invoice, error)
	// The lists' reads: a page each (see gateway/lists.go).
	ListPayers(ctx context.Context, f reseller.PayerFilter) ([]reseller.PayerListing, error)
	ListCustomers(ctx context.Context, after, only, period string, limit int) ([]reseller.CustomerListing, error)
	ListCycles(ctx context.Context, customer, before string, limit int) ([]reseller.CycleListing, error)
	CustomerKnown(ctx context.Context, id string) (bool, error)
}

// Config configures the gateway.
type Config struct {
	// Keys are the accepted API keys; every route but /healthz needs one
	// as a bearer token.
	Keys []APIKey
	// KeyRing, when set, replaces Keys: the keys file, read again when it
	// changes, so revoking a key needs no restart.
	KeyRing *KeyRing
	// RateLimit is how many requests per second one key may make on
	// average, with bursts of up to RateBurst (default: twice RateLimit,
	// at least 1); zero means no limit. A key over it gets 429 with
	// Retry-After. The limiter runs on Clock.
	RateLimit float64
	RateBurst int
	// Audit receives one record per mutating call (POST, PUT, PATCH,
	// DELETE): key name and ID, route, target, status; never the key. Nil
	// writes them to the gateway's log.
	Audit *slog.Logger
	// OnboardTiming is given to every onboarding started; zero values take
	// the workflow's defaults.
	OnboardTiming workflows.OnboardTiming
	// Clock is the business date that picks the period a read means when
	// it names none; nil reads the system clock.
	Clock clock.Clock
	// RegisterWait bounds how long a registration waits for the worker to
	// check its settings and publish the stack; default 10 seconds.
	RegisterWait time.Duration
	// WorkerWait bounds how long a call that needs a worker (reading a
	// payer's onboarding state, an operator's action) waits for one before
	// it answers 503; default 10 seconds.
	WorkerWait time.Duration
	// Records, when set, answers the reads of customers and pricebooks.
	// Nil runs each such read as a short CustomerRequest workflow on a
	// worker, as before the gateway had a catalog connection.
	Records Records
	// Metrics counts requests by route pattern, method and status; nil
	// counts nothing.
	Metrics *telemetry.Metrics
	// MaxCrawlAge is the payer list's stale age: an active payer whose
	// last successful crawl is older is stale. Zero takes month-end's
	// default (monthend.DefaultMaxCrawlAge); give both the same setting.
	MaxCrawlAge time.Duration
	// TemporalUI is the Temporal Web UI's base URL the console links to,
	// filtered to a payer; empty shows no links. TemporalNamespace is the
	// namespace the links name (default "default").
	TemporalUI, TemporalNamespace string
	// SecureCookies marks the console's cookies Secure on plain HTTP too,
	// for TLS ended in front of the gateway; over TLS they always are.
	SecureCookies bool
	// Iceberg, when set, is served as a read-only Iceberg REST catalog
	// under /iceberg (iceberg.go); nil serves none.
	Iceberg *restcatalog.Server
	// IcebergTokenKey signs the catalog's OAuth2 tokens, so replicas
	// sharing it accept each other's; empty: a random key per process.
	IcebergTokenKey []byte
}

// New returns an Echo instance with every route installed.
func New(c client.Client, log *slog.Logger, cfg Config) *echo.Echo {
	s := &Server{temporal: c, log: log, audit: cmp.Or(cfg.Audit, log), keys: cmp.Or(cfg.KeyRing, StaticKeys(cfg.Keys)),
		limiters: newLimiters(cfg.RateLimit, cfg.RateBurst), timing: cfg.OnboardTiming, clock: cfg.Clock, registerWait: cmp.Or(cfg.RegisterWait, 10*time.Second),
		workerWait: cmp.Or(cfg.WorkerWait, workerWait), records: cfg.Records, maxCrawlAge: cmp.Or(cfg.MaxCrawlAge, monthend.DefaultMaxCrawlAge),
		iceberg: cfg.Iceberg, tokenKey: newTokenKey(cfg.IcebergTokenKey)}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(countRequests(cfg.Metrics))
	e.Use(middleware.Recover())
	e.Use(s.auditCall)
	e.Use(middleware.BodyLimit("1M"))
	e.Use(s.authenticate)
	s.routes(e)
	if err := s.mountConsole(e, cfg); err != nil {
		// Only embedded templates that fail to parse: a build fault.
		panic(err)
	}
	return e
}

// HealthResponse is the body of GET /healthz.
type HealthResponse struct {
	Status string `json:"status"`
}

func (s *Server) handleHealth(c echo.Context) error {
	return c.JSON(http.StatusOK, HealthResponse{Status: "ok"})
}

// readyWait bounds the readiness probe's check of Temporal.
const readyWait = 3 * time.Second

// handleReady is the readiness probe: ready while Temporal answers its
// health check, since every route but the catalog reads needs it; a load
// balancer then sends no traffic to a gateway that cut off from Temporal.
func (s *Server) handleReady(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), readyWait)
	defer cancel()
	if _, err := s.temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return errorf(kindUnavailable, "Temporal does not answer: %s", rootCause(err).Error())
	}
	return c.JSON(http.StatusOK, HealthResponse{Status: "ok"})
}

// IngestionRequest is the body of POST /v1/ingestions.
type IngestionRequest struct {
	Source         string `json:"source"`
	Period         string `json:"period"`
	PayerAccountID string `json:"payer_account_id,omitempty"`
	// BillPayerAccountID, for a member account onboarded alone
	// (payer_account_id), is the management account its rows name as bill
	// payer; the member's own usage is kept under the member.
	BillPayerAccountID string `json:"bill_payer_account_id,omitempty"`
	Concurrency        int    `json:"concurrency,omitempty"`
	// LinkedAccounts is "all" (the default) or "connected": keep only the
	// rows of ConnectedAccounts; the rest are counted in the result.
	LinkedAccounts    string   `json:"linked_accounts,omitempty"`
	ConnectedAccounts []string `json:"connected_accounts,omitempty"`
}

// IngestionResponse describes a started or running ingestion.
type IngestionResponse struct {
	ID       string                               `json:"id"`
	RunID    string                               `json:"run_id"`
	Status   string                               `json:"status"`
	Progress *workflows.IngestProgress            `json:"progress,omitempty"`
	Result   *workflows.IngestBillingPeriodResult `json:"result,omitempty"`
	Failure  string                               `json:"failure,omitempty"`
}

func (r IngestionRequest) validate() error {
	fields := map[string]string{}
	if r.Source == "" {
		fields["source"] = "required: s3://bucket/prefix/report or file:///path/prefix/report"
	} else if loc, err := blob.ParseLocation(r.Source); err != nil {
		fields["source"] = err.Error()
	} else if loc.Scheme == "gs" {
		fields["source"] = "AWS billing deliveries are read from s3:// or file:// locations"
	}
	if _, err := period.Parse(r.Period); err != nil {
		fields["period"] = "required, as YYYY-MM"
	}
	if r.PayerAccountID != "" && !payer.ValidAccountID(r.PayerAccountID) {
		fields["payer_account_id"] = "must be a 12-digit AWS account ID"
	}
	switch b := r.BillPayerAccountID; {
	case b == "":
	case !payer.ValidAccountID(b):
		fields["bill_payer_account_id"] = "must be a 12-digit AWS account ID"
	case r.PayerAccountID == "" || b == r.PayerAccountID:
		fields["bill_payer_account_id"] = "names the management account of payer_account_id (a member account onboarded alone): payer_account_id is required and differs"
	}
	maps.Copy(fields, payer.LinkedAccountsFieldErrors(r.LinkedAccounts, r.ConnectedAccounts))
	if r.Concurrency < 0 || r.Concurrency > 64 {
		fields["concurrency"] = "must be between 1 and 64 (0 for the default)"
	}
	if len(fields) > 0 {
		return validationError(fields)
	}
	return nil
}

func (s *Server) handleStartIngestion(c echo.Context) error {
	var req IngestionRequest
	if err := c.Bind(&req); err != nil {
		return validationError(map[string]string{"body": "must be a JSON object: " + err.Error()})
	}
	if err := req.validate(); err != nil {
		return err
	}
	p, _ := period.Parse(req.Period) // validate parsed it
	run, err := workflows.StartIngestion(c.Request().Context(), s.temporal, workflows.IngestBillingPeriodInput{
		Source: req.Source, Period: p, PayerAccountID: req.PayerAccountID, BillPayerAccountID: req.BillPayerAccountID, Concurrency: req.Concurrency,
		Accounts: payer.AccountPolicy{ConnectedOnly: req.LinkedAccounts == "connected", Connected: req.ConnectedAccounts},
	})
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/ingestions/"+run.GetID())
	return c.JSON(http.StatusAccepted, IngestionResponse{ID: run.GetID(), RunID: run.GetRunID(), Status: "running"})
}

func (s *Server) handleGetIngestion(c echo.Context) error {
	id := c.Param("*")
	if !strings.HasPrefix(id, "ingest/") {
		return errorf(kindNotFound, "no ingestion %q", id)
	}
	ctx := c.Request().Context()
	desc, err := s.temporal.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return err
	}
	info := desc.GetWorkflowExecutionInfo()
	resp := IngestionResponse{ID: id, RunID: info.GetExecution().GetRunId(), Status: statusName(info.GetStatus())}
	switch info.GetStatus() {
	case enums.WORKFLOW_EXECUTION_STATUS_RUNNING:
		var p workflows.IngestProgress
		if v, err := s.temporal.QueryWorkflow(ctx, id, resp.RunID, workflows.IngestProgressQuery); err == nil && v.Get(&p) == nil {
			resp.Progress = &p
		}
	case enums.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		var r workflows.IngestBillingPeriodResult
		if err := s.temporal.GetWorkflow(ctx, id, resp.RunID).Get(ctx, &r); err != nil {
			return err
		}
		resp.Result = &r
	default:
		err := s.temporal.GetWorkflow(ctx, id, resp.RunID).Get(ctx, nil)
		if err != nil {
			resp.Failure = rootCause(err).Error()
		}
	}
	return c.JSON(http.StatusOK, resp)
}

func statusName(s enums.WorkflowExecutionStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "WORKFLOW_EXECUTION_STATUS_"))
}

func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
