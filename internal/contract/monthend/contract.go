// Package monthend is the contract between the month-end workflows
// (MonthEnd, run daily by a schedule, and MonthEndRequest, the gateway's
// changes to holds, accepted differences and the webhook endpoint) and
// their activities: names, inputs, results and failure types.
package monthend

import (
	"encoding/json"
	"time"

	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/reseller"
)

// Workflow names, the schedule's ID and the month-end run's workflow ID.
const (
	Workflow        = "MonthEnd"
	RequestWorkflow = "MonthEndRequest"
	ScheduleID      = "month-end"
)

// WorkflowID is the business key of a month-end run of a period: two
// runs of the same month never overlap.
func WorkflowID(p period.Period) string { return "month-end/" + p.String() }

// Activity names; they equal the method names on activities.MonthEnd,
// which a test checks.
const (
	PlanActivity        = "PlanMonthEnd"
	GuardsActivity      = "CheckCloseGuards"
	NotifyActivity      = "SendWebhookEvent"
	RecordCrawlActivity = "RecordCrawlSuccess"
	ApplyActivity       = "ApplyMonthEndOperation"
)

// Defaults of Settings.
const (
	DefaultMaxCrawlAge = 48 * time.Hour
	DefaultTolerance   = "0.01"
)

// Failure types.
const (
	ErrTypeInvalid  = "InvalidRequest" // 400
	ErrTypeNotFound = "NotFound"       // 404
	ErrTypeWebhook  = "InvalidWebhook" // a URL or secret costlake cannot send with
	ErrTypeSetup    = "InvalidSetup"   // the worker has no reseller records
)

// Reasons a cycle is blocked, in Blocked.Reason.
const (
	BlockedHold         = "on_hold"
	BlockedStale        = "payer_stale"
	BlockedCostExplorer = "cost_explorer_difference"
	// BlockedCloseFailed: the guards passed but CloseBillingCycle failed
	// (no pricebook, a destination refused); the message names why.
	BlockedCloseFailed = "close_failed"
)

// Settings are the month-end guards. Zero fields take the defaults.
type Settings struct {
	// FinalAfterDays: without invoice IDs, a period is final this many
	// days after its month ends (cycle.DefaultFinalAfterDays: once the
	// 10th has passed, when AWS support fees have landed).
	FinalAfterDays int `json:"final_after_days,omitempty"`
	// MaxCrawlAge: a payer's last successful crawl must be newer than
	// this (DefaultMaxCrawlAge).
	MaxCrawlAge time.Duration `json:"max_crawl_age,omitempty"`
	// Tolerance: a linked account's line items may differ from Cost
	// Explorer's unblended cost by at most this (DefaultTolerance), a
	// decimal.
	Tolerance *money.Amount `json:"tolerance,omitempty"`
}

// Input is one month-end run.
type Input struct {
	// Period to close; zero means the month before the business date.
	Period period.Period `json:"period,omitzero"`
	Settings
}

// Result is what a month-end run did with each customer.
type Result struct {
	Period  period.Period `json:"period"`
	Closed  []string      `json:"closed"`  // closed by this run
	Already []string      `json:"already"` // closed before
	Waiting []string      `json:"waiting"` // not final yet
	Blocked []Blocked     `json:"blocked"`
	Failed  []string      `json:"failed,omitempty"` // customer: why its close failed
	// Done: every customer's cycle of the period is closed.
	Done bool `json:"done"`
}

// Blocked is a cycle a guard keeps open.
type Blocked struct {
	CustomerID string `json:"customer_id"`
	Reason     string `json:"reason"` // BlockedHold, …
	Message    string `json:"message"`
}

// PlanInput asks which customers have a cycle in the period.
type PlanInput struct {
	Period period.Period `json:"period"`
}

// ClosedEventID is the webhook-id of a cycle's cycle.closed: one per
// cycle, whoever closed it.
func ClosedEventID(customer string, p period.Period) string {
	return "cycle.closed/" + customer + "/" + p.String()
}

// CustomerPlan is one customer's state at month end.
type CustomerPlan struct {
	CustomerID string `json:"customer_id"`
	Closed     bool   `json:"closed"`
	ClosedAt   string `json:"closed_at,omitempty"`
	// Announced: the closed cycle's cycle.closed went out already, so a
	// daily run after month end costs no delivery per closed customer.
	Announced bool           `json:"announced,omitempty"`
	Hold      *reseller.Hold `json:"hold,omitempty"`
}

// Plan is every customer owning accounts in the period, by ID.
type Plan struct {
	Customers []CustomerPlan `json:"customers"`
}

// GuardsInput asks whether a customer's cycle may close now.
type GuardsInput struct {
	CustomerID string        `json:"customer_id"`
	Period     period.Period `json:"period"`
	AsOf       time.Time     `json:"as_of"` // the business date
	Settings
}

// StalePayer is a payer whose last successful crawl is too old.
type StalePayer struct {
	PayerAccountID string    `json:"payer_account_id"`
	LastCrawl      time.Time `json:"last_crawl,omitzero"` // zero: never
	MaxAge         string    `json:"max_age"`
}

// Difference is one linked account whose line items and Cost Explorer
// disagree beyond the tolerance.
type Difference struct {
	PayerAccountID string       `json:"payer_account_id"`
	AccountID      string       `json:"account_id"`
	LineItems      money.Amount `json:"line_items"`
	CostExplorer   money.Amount `json:"cost_explorer"`
	Difference     money.Amount `json:"difference"` // line items − Cost Explorer
	Tolerance      money.Amount `json:"tolerance"`
	Accepted       bool         `json:"accepted"`
	AcceptedBy     string       `json:"accepted_by,omitempty"`
}

// GuardsResult says whether the cycle may close and, if not, why.
type GuardsResult struct {
	Final       bool         `json:"final"`
	FinalReason string       `json:"final_reason"`
	Stale       []StalePayer `json:"stale,omitempty"`
	Differences []Difference `json:"differences,omitempty"`
	// CostExplorerCalls counts the paid monthly queries made.
	CostExplorerCalls int `json:"cost_explorer_calls,omitempty"`
	// Blocked is "" when the cycle may close (Final and no guard
	// refuses), else BlockedStale or BlockedCostExplorer.
	Blocked string `json:"blocked,omitempty"`
	Message string `json:"message,omitempty"`
}

// Notify asks for one event's delivery. Data is the event's body; ID is
// stable per fact, so a delivered event is never sent again.
type Notify struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// NotifyResult says what happened to it.
type NotifyResult struct {
	Sent       bool   `json:"sent"`
	Status     int    `json:"status,omitempty"`
	Skipped    string `json:"skipped,omitempty"` // why not sent: no endpoint, not subscribed, delivered before
	WebhookURL string `json:"webhook_url,omitempty"`
}

// CrawlRecord is a payer's successful crawl, as CrawlPayer records it.
type CrawlRecord struct {
	PayerAccountID string       `json:"payer_account_id"`
	At             time.Time    `json:"at"` // the crawl's business date
	Access         payer.Access `json:"access"`
	CostExplorer   bool         `json:"cost_explorer,omitempty"`
	RunID          string       `json:"run_id,omitempty"`
}

// Request is one operator change, with exactly one operation set.
type Request struct {
	By string `json:"by"`
	// Hold holds a customer; answers Hold.
	Hold *reseller.Hold `json:"hold,omitempty"`
	// Release lifts a customer's hold; answers Hold (the one lifted).
	Release string `json:"release,omitempty"`
	// Accept records an accepted Cost Explorer difference; answers
	// Acceptance.
	Accept *reseller.Acceptance `json:"accept,omitempty"`
	// PutWebhook sets the endpoint; answers Webhook.
	PutWebhook *reseller.Webhook `json:"put_webhook,omitempty"`
	// DeleteWebhook removes it; answers Webhook (empty).
	DeleteWebhook bool `json:"delete_webhook,omitempty"`
}

// Op names the request's one operation, "" when it sets none or more.
func (r Request) Op() string {
	op := ""
	for _, o := range []struct {
		name string
		set  bool
	}{{"hold", r.Hold != nil}, {"release", r.Release != ""}, {"accept", r.Accept != nil}, {"put_webhook", r.PutWebhook != nil}, {"delete_webhook", r.DeleteWebhook}} {
		switch {
		case !o.set:
		case op != "":
			return ""
		default:
			op = o.name
		}
	}
	return op
}

// Answer is what a Request gives: one field is set.
type Answer struct {
	Hold       *reseller.Hold       `json:"hold,omitempty"`
	Acceptance *reseller.Acceptance `json:"acceptance,omitempty"`
	Webhook    *reseller.Webhook    `json:"webhook,omitempty"`
}
