package workflows

import (
	"time"

	"github.com/costlake/costlake/internal/contract/crawl"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
)

// CrawlScheduleID is the Temporal Schedule of a payer's daily crawl.
func CrawlScheduleID(payerAccountID string) string { return "crawl/" + payerAccountID }

// BackfillWorkflowID is the business key of a backfill of a range of
// periods: running the same backfill twice meets the same workflow.
func BackfillWorkflowID(payerAccountID, from, to string) string {
	return "backfill/" + payerAccountID + "/" + from + "_" + to
}

// CrawlPayerInput says what a crawl looks at. The schedule holds one, made
// by CrawlInputFor when the payer is approved.
type CrawlPayerInput struct {
	PayerAccountID string `json:"payer_account_id"`
	// BillPayerAccountID, for a member account onboarded alone, is the
	// management account its rows name as bill payer.
	BillPayerAccountID string              `json:"bill_payer_account_id,omitempty"`
	CustomerID         string              `json:"customer_id"`
	Source             string              `json:"source"` // the report or export folder
	Access             payer.Access        `json:"access"`
	Accounts           payer.AccountPolicy `json:"accounts"`
	// Lookback is how many periods before the current one are looked at
	// (AWS restates the previous month until its invoice); 0 means 1.
	Lookback int `json:"lookback,omitempty"`
	// Periods, when set, are crawled instead (a backfill).
	Periods []period.Period `json:"periods,omitempty"`
	// ActiveSince starts the grace period in which "no delivery yet" is a
	// status, not a failure (AWS writes the first within 24 hours).
	ActiveSince time.Time `json:"active_since"`
	// CostExplorer crawls daily costs from Cost Explorer instead of files.
	CostExplorer bool `json:"cost_explorer,omitempty"`
	// Export, for an export the CUR or Data Exports API knows
	// (detect_existing or create), has each crawl read its health.
	Export *payer.Export `json:"export,omitempty"`
	// Cutover, while an export migration runs, is where the periods
	// before its From are still taken from; Source holds the others.
	Cutover *CrawlCutover `json:"cutover,omitempty"`
}

// CrawlCutover is the previous export of a payer.Cutover, as a crawl
// reads it.
type CrawlCutover struct {
	From   period.Period `json:"from"`   // the first period taken from Source
	Source string        `json:"source"` // the previous export's folder
	Access payer.Access  `json:"access"` // in the previous bucket's region
}

// sourceFor is the folder, and the access to it, that period p is taken
// from: exactly one, so no period is counted from two exports.
func (in CrawlPayerInput) sourceFor(p period.Period) (string, payer.Access) {
	if c := in.Cutover; c != nil && p.Before(c.From) {
		return c.Source, c.Access
	}
	return in.Source, in.Access
}

// FirstDeliveryGrace is how long after activation a missing export is
// normal.
const FirstDeliveryGrace = 24 * time.Hour

// CrawlInputFor is the crawl of an onboarded payer.
func CrawlInputFor(st OnboardingState) CrawlPayerInput {
	reg := st.Registration
	return CrawlPayerInput{
		PayerAccountID:     reg.PayerAccountID,
		BillPayerAccountID: st.BillPayerAccountID,
		CustomerID:         reg.CustomerID,
		Source:             reg.Export.Source(),
		Access:             *bucketAccess(reg),
		Accounts:           accountPolicy(reg),
		ActiveSince:        st.ActivatedAt,
		CostExplorer:       reg.Export.Type == payer.CostExplorer,
		Export:             knownExport(reg.Export),
		Cutover:            crawlCutover(reg),
	}
}

func crawlCutover(reg payer.Registration) *CrawlCutover {
	c := reg.Cutover
	if c == nil {
		return nil
	}
	a := reg.Access
	if c.Previous.Region != "" {
		a.Region = c.Previous.Region
	}
	return &CrawlCutover{From: c.From, Source: c.Previous.Source(), Access: a}
}

// accountPolicy is which usage accounts a payer's ingestions keep, as
// registered (IngestBillingPeriod narrows it to the member itself for a
// member account onboarded alone).
func accountPolicy(reg payer.Registration) payer.AccountPolicy {
	return payer.AccountPolicy{ConnectedOnly: reg.LinkedAccounts == "connected", Connected: reg.ConnectedAccounts}
}

// knownExport is the export a crawl checks the health of, if any.
func knownExport(e payer.Export) *payer.Export {
	switch {
	case e.Type != payer.LegacyCUR && e.Type != payer.CUR2 && e.Type != payer.FOCUS:
		return nil
	case !e.DetectExisting && !e.Create:
		return nil
	}
	return &e
}

// What a crawl did with a period.
const (
	ActionIngested       = "ingested"        // a new or restated delivery was ingested
	ActionUnchanged      = "unchanged"       // the table already holds this delivery
	ActionNoDelivery     = "no_delivery"     // nothing in the bucket for the period
	ActionAlreadyRunning = "already_running" // an ingestion of the period is running; it carries on
	ActionFailed         = "failed"          // the delivery cannot be read or its ingestion failed
)

// PeriodOutcome is what a crawl found and did for one period.
type PeriodOutcome struct {
	crawl.Delivery
	Action      string `json:"action"`
	IngestionID string `json:"ingestion_id,omitempty"`
	Rows        int64  `json:"rows,omitempty"`
	Failure     string `json:"failure,omitempty"`
}

// Crawl statuses.
const (
	CrawlDone                    = "done"
	CrawlWaitingForFirstDelivery = "waiting_for_first_delivery"
)

// CrawlPayerResult records what a crawl found and did.
type CrawlPayerResult struct {
	PayerAccountID string                `json:"payer_account_id"`
	Status         string                `json:"status"`
	Periods        []PeriodOutcome       `json:"periods,omitempty"`
	Accounts       *crawl.AccountChanges `json:"accounts,omitempty"`
	AccountsError  string                `json:"accounts_error,omitempty"`
	// Export is the export definition's health, when the crawl checks it.
	Export       *crawl.ExportHealth             `json:"export,omitempty"`
	CostExplorer *crawl.IngestCostExplorerResult `json:"cost_explorer,omitempty"`
}

// ErrTypeExportNotFound fails a crawl that finds no delivery past the
// first day: the export is not where the registration says.
const ErrTypeExportNotFound = "ExportNotFound"

// ErrTypeIngestionFailed fails a crawl one of whose periods could not be
// read or ingested; the details hold the CrawlPayerResult.
const ErrTypeIngestionFailed = "IngestionFailed"

// bucketAccess is the payer's access in its export bucket's region, so
// reads of a bucket outside us-east-1 are not redirected.
func bucketAccess(reg payer.Registration) *payer.Access {
	a := reg.Access
	if reg.Export.Region != "" {
		a.Region = reg.Export.Region
	}
	return &a
}
