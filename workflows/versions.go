package workflows

// Change IDs of the workflow.GetVersion gates. A gate lets runs started
// before a change replay the old way while new runs take the new one, so
// an ID never changes and a gate is removed only once no run older than
// it can still be open (OnboardPayer runs for months). The replay test
// (replay_test.go) replays recorded histories through these gates.
const (
	// setupCheckChange: OnboardPayer checks the worker's settings
	// (CheckSetup) before publishing the stack, and fails the onboarding
	// with the reason instead of publishing a stack it cannot use.
	setupCheckChange = "setup-check"
	// crawlScheduleChange: an active OnboardPayer creates the payer's
	// crawl schedule; older runs were crawled by hand.
	crawlScheduleChange = "crawl-schedule"
	// exportHealthChange: CrawlPayer reads the health of a known export
	// (ExportHealth) after refreshing the accounts.
	exportHealthChange = "export-health"
	// adjustClosedCyclesChange: IngestBillingPeriod turns a changed period
	// of closed cycles into adjustments of the next open cycles.
	adjustClosedCyclesChange = "adjust-closed-cycles"
	// businessClockChange: workflows judge dates by the worker's business
	// clock (a local activity) rather than by workflow.Now.
	businessClockChange = "business-clock"
	// crawlRecordChange: a successful CrawlPayer records its business
	// date in the catalog (RecordCrawlSuccess), the month-end freshness
	// guard's "last successful crawl".
	crawlRecordChange = "crawl-record"
	// finalDayChange: CloseBillingCycle's default finality moved from 5
	// to 10 days after the month (AWS support fees land by the 10th);
	// runs started before keep 5.
	finalDayChange = "final-day-10"
	// registrationChange: OnboardPayer applies a change of its
	// registration (ChangeRegistrationUpdate), updating the crawl
	// schedule.
	registrationChange = "registration-change"
	// exportCutoverChange: CrawlPayer takes the periods before a
	// cut-over from the previous export (CrawlPayerInput.Cutover).
	exportCutoverChange = "export-cutover"
	// statusRecordChange: OnboardPayer records each status it enters in
	// the catalog (RecordPayerStatus), the record the payer list reads.
	// Runs from before it pass "status-record/<turn>" gates instead
	// (legacyStatusRecordChange), one per status they enter, so they
	// record from their next status on.
	statusRecordChange = "status-record"
)
