// Package onboard is the contract between the OnboardPayer workflow and
// its activities: activity names, inputs and results, and the checks that
// validation reports. Workflows and activities both import it; neither
// imports the other.
package onboard

import (
	"time"

	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
)

// Activity names. They equal the method names on activities.Onboard,
// which a test checks.
const (
	PublishStackTemplateActivity  = "PublishStackTemplate"
	DescribeCustomerStackActivity = "DescribeCustomerStack"
	ValidateAccessActivity        = "ValidateAccess"
	RemindCustomerActivity        = "RemindCustomer"
	CheckSetupActivity            = "CheckOnboardingSetup"
	RecordStatusActivity          = "RecordPayerStatus"
)

// ErrTypeInvalidSetup is the failure type of a worker that lacks what
// onboarding needs (e.g. costlake's own AWS principal); the workflow
// reports it instead of retrying.
const ErrTypeInvalidSetup = "InvalidOnboardingSetup"

// CheckSetupInput asks the worker whether it has the settings an
// onboarding of this registration needs, before anything is published.
type CheckSetupInput struct {
	Registration payer.Registration
}

// SetupProblem is one missing or unusable worker setting.
type SetupProblem struct {
	Setting string `json:"setting"` // the flag, e.g. --aws-principal-arn
	Env     string `json:"env"`     // its environment variable
	Message string `json:"message"` // what is wrong and what to set
}

// CheckSetupResult lists the problems; none means the onboarding can go on.
type CheckSetupResult struct {
	Problems []SetupProblem `json:"problems,omitempty"`
	// Refused names the registration's fields no worker setting can make
	// acceptable (field -> why), e.g. a payer that is costlake's own account.
	Refused map[string]string `json:"refused,omitempty"`
}

// PublishStackTemplateInput asks for the customer stack of a registration.
type PublishStackTemplateInput struct {
	Registration payer.Registration
	StackName    string
}

// PublishStackTemplateResult is where the template is and the link the
// customer's admin opens.
type PublishStackTemplateResult struct {
	TemplateURL    string            `json:"template_url"`
	QuickCreateURL string            `json:"quick_create_url"`
	Parameters     map[string]string `json:"parameters"`
	// Note explains a link the AWS console cannot open (a template kept in
	// a local folder), so the operator knows to publish it elsewhere.
	Note string `json:"note,omitempty"`
}

// DescribeCustomerStackInput names the stack in the payer account.
type DescribeCustomerStackInput struct {
	Access    payer.Access
	StackName string
	Region    string
	// PayerAccountID and CustomerID name the role session, so the
	// customer's CloudTrail shows who costlake acted for.
	PayerAccountID string `json:",omitempty"`
	CustomerID     string `json:",omitempty"`
}

// Stack statuses that end a deployment, as CloudFormation names them.
const (
	StackCreateComplete = "CREATE_COMPLETE"
	StackUpdateComplete = "UPDATE_COMPLETE"
)

// DescribeCustomerStackResult is what costlake could see of the stack.
// Unreachable is set, with a reason, when the stack cannot be read yet
// (the role does not exist before the stack creates it).
type DescribeCustomerStackResult struct {
	Found       bool              `json:"found"`
	Unreachable string            `json:"unreachable,omitempty"`
	Status      string            `json:"status,omitempty"`
	Reason      string            `json:"reason,omitempty"` // StackStatusReason, or the first failed resource's reason
	Outputs     map[string]string `json:"outputs,omitempty"`
	UpdatedAt   time.Time         `json:"updated_at"` // last update, or creation
}

// Complete reports a stack whose deployment finished well.
func (r DescribeCustomerStackResult) Complete() bool {
	return r.Status == StackCreateComplete || r.Status == StackUpdateComplete
}

// Failed reports a stack whose deployment failed or was rolled back.
func (r DescribeCustomerStackResult) Failed() bool {
	switch r.Status {
	case "CREATE_FAILED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED",
		"UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "UPDATE_FAILED",
		"DELETE_IN_PROGRESS", "DELETE_COMPLETE", "DELETE_FAILED":
		return true
	}
	return false
}

// ValidateAccessInput asks for every access check of a registration.
type ValidateAccessInput struct {
	Registration payer.Registration
	// AsOf picks the billing periods to look for deliveries in: its month
	// and the one before.
	AsOf time.Time
}

// Check names, in the order they run.
const (
	CheckCredentials  = "credentials"  // assume the role / web identity / keys
	CheckOrganization = "organization" // list the organization's accounts
	CheckBucket       = "bucket"       // list the export bucket under the prefix
	CheckExport       = "export"       // find (or create) the export definition
	CheckDelivery     = "delivery"     // find a delivery under the prefix
	// CheckCostExplorer replaces bucket, export and delivery for payers
	// read through Cost Explorer: one GetCostAndUsage call.
	CheckCostExplorer = "cost_explorer"
)

// Check results.
const (
	Passed  = "passed"
	Failed  = "failed"
	Skipped = "skipped" // an earlier check failed
	// NotApplicable: the check does not apply to this payer (the
	// organization check of a standalone account, or of a member account
	// onboarded alone); the message says why. It does not block approval.
	NotApplicable = "not_applicable"
	// Warning: the check passed, but the export has something to fix that
	// costs data quality (no resource IDs, no automatic refresh); the
	// message says what. It does not block approval.
	Warning = "warning"
)

// Check is one validation step and a message a person can act on.
type Check struct {
	Name    string `json:"name"`
	Result  string `json:"result"`
	Message string `json:"message"`
}

// ValidateAccessResult holds every check, and what was found.
type ValidateAccessResult struct {
	Checks []Check `json:"checks"`
	// Accounts are the organization's active accounts, or the payer's own
	// account alone when it is standalone or a member onboarded alone.
	Accounts []string `json:"accounts,omitempty"`
	// BillPayerAccountID is the management account that AWS bills a
	// member account onboarded alone to, and writes in its rows'
	// bill_payer_account_id; empty for every other payer.
	BillPayerAccountID string `json:"bill_payer_account_id,omitempty"`
	// LatestPeriod is the newest billing period with a delivery; empty
	// when there is none yet.
	LatestPeriod period.Period `json:"latest_period,omitzero"`
	Source       string        `json:"source"` // the report or export folder ingestion reads
}

// AllPassed reports whether every check passed (perhaps with a warning)
// or does not apply.
func (r ValidateAccessResult) AllPassed() bool {
	for _, c := range r.Checks {
		if c.Result != Passed && c.Result != NotApplicable && c.Result != Warning {
			return false
		}
	}
	return len(r.Checks) > 0
}

// RemindCustomerInput says who is waited for, and since when.
type RemindCustomerInput struct {
	CustomerID     string
	PayerAccountID string
	StackName      string
	QuickCreateURL string
	Waiting        time.Duration
	Reminder       int // 1 for the first reminder
}

// StatusRecord is a payer's onboarding status as the onboarding records
// it in the catalog at each change (RecordPayerStatus), for the payer
// list to read without asking every onboarding.
type StatusRecord struct {
	PayerAccountID string    `json:"payer_account_id"`
	CustomerID     string    `json:"customer_id"`
	Name           string    `json:"name,omitempty"`
	Status         string    `json:"status"`
	Since          time.Time `json:"since"`
	// Checks sums the latest checks; nil before any ran.
	Checks *CheckCounts `json:"checks,omitempty"`
	// RunID is "<workflow ID>/<run ID>" of the onboarding that recorded it.
	RunID string `json:"run_id"`
}

// CheckCounts sums checks: passed (warnings and checks that do not apply
// included, since they do not block approval), failed, and pending
// (skipped after an earlier failure).
type CheckCounts struct {
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Pending int `json:"pending"`
}

// CountChecks sums checks; nil when there are none.
func CountChecks(checks []Check) *CheckCounts {
	if len(checks) == 0 {
		return nil
	}
	var c CheckCounts
	for _, ch := range checks {
		switch ch.Result {
		case Failed:
			c.Failed++
		case Skipped:
			c.Pending++
		default:
			c.Passed++
		}
	}
	return &c
}
