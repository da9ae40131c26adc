package workflows

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/costlake/costlake/internal/contract/onboard"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
)

// OnboardingWorkflowID is the business key of a payer: "onboarding/<payer>".
// A payer account belongs to one customer, so registering it twice, for
// any customer, meets the same workflow and is a conflict.
func OnboardingWorkflowID(payerAccountID string) string { return "onboarding/" + payerAccountID }

// OnboardingStateQuery returns the OnboardingState of a payer.
const OnboardingStateQuery = "state"

// Signals an operator (through the gateway or the Temporal UI) sends to
// OnboardPayer.
const (
	// StackDeployedSignal says the customer deployed (or updated) the stack;
	// the checks run now instead of at the next poll.
	StackDeployedSignal = "stack-deployed"
	// ApproveSignal activates a payer whose checks passed.
	ApproveSignal = "approve"
	// RejectSignal ends the onboarding; Decision.Reason is required.
	RejectSignal = "reject"
	// RequestChangesSignal sends the customer back to the stack with
	// Decision.Issues; the checks run again once the stack changes.
	RequestChangesSignal = "request-changes"
	// OffboardSignal removes the payer: its crawl schedule is deleted and
	// the onboarding ends; its tables keep their data.
	OffboardSignal = "offboard"
)

// RegistrationUpdate is the Update the gateway starts an onboarding with
// (update-with-start): it completes once the worker has checked its own
// settings and published the stack, or has found that the onboarding
// cannot go on, in which case it fails with ErrTypeOnboardingFailed and
// the Failure's reason. It carries no input.
const RegistrationUpdate = "registration"

// ErrTypeOnboardingFailed is the failure type of a RegistrationUpdate
// whose onboarding ended in StatusFailed.
const ErrTypeOnboardingFailed = "OnboardingFailed"

// RegistrationResult answers a RegistrationUpdate that went well.
type RegistrationResult struct {
	Status string `json:"status"`
}

// Decision is the payload of the operator's signals.
type Decision struct {
	By     string   `json:"by"` // the API key's name, for the record
	Reason string   `json:"reason,omitempty"`
	Issues []string `json:"issues,omitempty"`
}

// Onboarding statuses.
const (
	StatusRegistered       = "registered"        // the worker checks its settings and publishes the stack
	StatusFailed           = "failed"            // final: the onboarding cannot go on; Failure says why and what to fix
	StatusAwaitingStack    = "awaiting_stack"    // the customer has the link; costlake polls the stack
	StatusStackFailed      = "stack_failed"      // the stack failed or never came; the operator decides
	StatusValidating       = "validating"        // checks are running
	StatusChecksFailed     = "checks_failed"     // a check failed; the operator requests changes or rejects
	StatusAwaitingApproval = "awaiting_approval" // every check passed
	StatusChangesRequested = "changes_requested" // the customer is fixing the stack
	StatusActive           = "active"            // approved; ingestion runs
	StatusRejected         = "rejected"          // final
	StatusOffboarded       = "offboarded"        // final: removed after being active
)

// OnboardPayerInput starts an onboarding.
type OnboardPayerInput struct {
	Registration payer.Registration `json:"registration"`
	// StackName defaults to DefaultStackName.
	StackName string        `json:"stack_name,omitempty"`
	Timing    OnboardTiming `json:"timing"`
	// Resume carries the state when the workflow continues as new; nil
	// for a new onboarding.
	Resume *OnboardingState `json:"resume,omitempty"`
}

// StackWait is the clock of a wait for the stack, kept in the state so it
// survives continue-as-new.
type StackWait struct {
	Since        time.Time `json:"since"`
	Deadline     time.Time `json:"deadline"`
	NextReminder time.Time `json:"next_reminder"`
	// FreshAfter: after a change request only a stack created or updated
	// later counts.
	FreshAfter time.Time `json:"fresh_after,omitzero"`
}

// DefaultStackName is the customer stack's name in the payer account.
const DefaultStackName = "costlake-billing-access"

// OnboardTiming tunes the waits; zero values take the defaults.
type OnboardTiming struct {
	StackPoll    time.Duration `json:"stack_poll"`    // default 1 minute
	StackTimeout time.Duration `json:"stack_timeout"` // default 7 days
	RemindEvery  time.Duration `json:"remind_every"`  // default 24 hours
}

func (t OnboardTiming) withDefaults() OnboardTiming {
	if t.StackPoll <= 0 {
		t.StackPoll = time.Minute
	}
	if t.StackTimeout <= 0 {
		t.StackTimeout = 7 * 24 * time.Hour
	}
	if t.RemindEvery <= 0 {
		t.RemindEvery = 24 * time.Hour
	}
	return t
}

// StackState is what costlake published and saw of the customer stack.
type StackState struct {
	Name           string            `json:"name"`
	TemplateURL    string            `json:"template_url"`
	QuickCreateURL string            `json:"quick_create_url"`
	Parameters     map[string]string `json:"parameters"`
	Note           string            `json:"note,omitempty"`
	Status         string            `json:"status,omitempty"` // CloudFormation's stack status
	Reason         string            `json:"reason,omitempty"`
	Waiting        string            `json:"waiting,omitempty"` // why the stack cannot be read yet
	Outputs        map[string]string `json:"outputs,omitempty"`
	Polls          int               `json:"polls"`
	Reminders      int               `json:"reminders"`
}

// OnboardingEvent is one line of the onboarding's timeline.
type OnboardingEvent struct {
	At   time.Time `json:"at"`
	What string    `json:"what"`
}

// FirstIngestion is the ingestion started on approval.
type FirstIngestion struct {
	WorkflowID string        `json:"workflow_id,omitempty"`
	Period     period.Period `json:"period,omitzero"`
	Note       string        `json:"note,omitempty"`
}

// Failure says why an onboarding cannot go on and what to fix.
type Failure struct {
	Step   string `json:"step"` // "registration" (refused), "setup" (the worker's settings) or "publish" (the stack template)
	Reason string `json:"reason"`
	Fix    string `json:"fix"`
	// Settings are the worker settings to set, e.g. --aws-principal-arn.
	Settings []string `json:"settings,omitempty"`
	// Fields are the registration's fields refused (field -> why) when the
	// step is "registration".
	Fields map[string]string `json:"fields,omitempty"`
}

// Failure steps.
const (
	FailedAtRegistration = "registration" // the registration itself is refused
	FailedAtSetup        = "setup"
	FailedAtPublish      = "publish"
)

// OnboardingState is everything the gateway shows of a payer.
type OnboardingState struct {
	Status       string             `json:"status"`
	Failure      *Failure           `json:"failure,omitempty"` // set when Status is failed
	Registration payer.Registration `json:"registration"`
	Stack        StackState         `json:"stack"`
	Wait         *StackWait         `json:"wait,omitempty"`
	Checks       []onboard.Check    `json:"checks,omitempty"`
	ChecksAt     time.Time          `json:"checks_at,omitzero"`
	Accounts     []string           `json:"accounts,omitempty"`
	// BillPayerAccountID is set for a member account onboarded alone: the
	// management account its rows name as bill payer (ingestion keeps
	// them under the member).
	BillPayerAccountID string          `json:"bill_payer_account_id,omitempty"`
	LatestPeriod       period.Period   `json:"latest_period,omitzero"`
	RequestedChanges   []string        `json:"requested_changes,omitempty"`
	RejectReason       string          `json:"reject_reason,omitempty"`
	ApprovedBy         string          `json:"approved_by,omitempty"`
	ActivatedAt        time.Time       `json:"activated_at,omitzero"`
	CrawlSchedule      string          `json:"crawl_schedule,omitempty"` // the Temporal Schedule\'s ID
	ScheduleError      string          `json:"schedule_error,omitempty"` // why there is no crawl schedule
	FirstIngestion     *FirstIngestion `json:"first_ingestion,omitempty"`
	// StatusRecord is when the onboarding entered its status and whether
	// the catalog's record of it (the payer list's) is written; nil for
	// runs from before onboardings recorded their status.
	StatusRecord *StatusMark       `json:"status_record,omitempty"`
	Events       []OnboardingEvent `json:"events"`
}

// StatusMark is when an onboarding entered a status, and whether its
// record in the catalog is written. It is kept in the state, so that a run
// continued as new records the same time, not its own start.
type StatusMark struct {
	Status   string    `json:"status"`
	Since    time.Time `json:"since"`
	Recorded bool      `json:"recorded"`
}

// Operator actions are also Workflow Updates, under the signals' names
// (StackDeployedSignal, ApproveSignal, …) with a Decision: the update's
// validator refuses an action the status does not accept, or a rejection
// without a reason or a change request without issues, so one call is
// accepted or refused with the reason. An accepted update is applied by the
// workflow's main loop where it would apply the signal, and answers
// ActionResult.

// ActionResult is what an accepted operator update answers.
type ActionResult struct {
	Action string `json:"accepted"` // the action, e.g. "approve"
	From   string `json:"from"`     // the status it found
	Status string `json:"status"`   // the status it left
}

// ErrTypeActionRefused is the failure type of an operator update the
// onboarding refused, by its validator or when applying it.
const ErrTypeActionRefused = "ActionRefused"

// CheckAction is the validator of an operator's update: nil when action
// with d may be applied in the current status, else why not.
func (s OnboardingState) CheckAction(action string, d Decision) error {
	switch {
	case !slices.Contains(operatorSignals, action):
		return fmt.Errorf("no operator action %q", action)
	case action == RejectSignal && strings.TrimSpace(d.Reason) == "":
		return errors.New("a rejection needs a reason")
	case action == RequestChangesSignal && len(d.Issues) == 0:
		return errors.New("a change request needs the issues to fix")
	case !s.Accepts(action):
		return fmt.Errorf("cannot %s payer %s: its onboarding is %s", action, s.Registration.PayerAccountID, s.Status)
	}
	return nil
}

// Accepts reports whether a signal makes sense in the current status; the
// gateway asks before signalling so operators get a clear conflict, and
// the workflow asks again and records signals it ignores.
func (s OnboardingState) Accepts(signal string) bool {
	switch signal {
	case ApproveSignal:
		return s.Status == StatusAwaitingApproval
	case RejectSignal:
		return s.Status != StatusActive && s.Status != StatusRejected && s.Status != StatusOffboarded && s.Status != StatusFailed
	case OffboardSignal:
		return s.Status != StatusRejected && s.Status != StatusOffboarded && s.Status != StatusFailed
	case RequestChangesSignal:
		return s.Status == StatusStackFailed || s.Status == StatusChecksFailed || s.Status == StatusAwaitingApproval
	case StackDeployedSignal:
		return s.Status == StatusAwaitingStack || s.Status == StatusChangesRequested || s.Status == StatusStackFailed ||
			s.Status == StatusChecksFailed || s.Status == StatusAwaitingApproval
	}
	return false
}

// ChangeRegistrationUpdate changes a payer's registration (PATCH
// /v1/payers/{id}) with a RegistrationChange: its validator refuses a
// change that is invalid (ErrTypeInvalidChange, the fields in its
// details) or that the status does not allow (ErrTypeActionRefused); the
// main loop applies it, updates the crawl schedule (its spec and the
// crawl's input) and answers ChangeResult, the registration as it is now.
const ChangeRegistrationUpdate = "change-registration"

// ErrTypeInvalidChange is the failure type of a change whose fields are
// invalid; its details are a map of field to message, as a registration's.
const ErrTypeInvalidChange = "InvalidChange"

// RegistrationChange is the payload of ChangeRegistrationUpdate.
type RegistrationChange struct {
	By     string       `json:"by"` // the API key's name, for the record
	Change payer.Change `json:"change"`
}

// ChangeResult answers an applied ChangeRegistrationUpdate.
type ChangeResult struct {
	Registration payer.Registration `json:"registration"`
	Changed      []string           `json:"changed"`
	Status       string             `json:"status"`
	// Schedule is the crawl schedule updated with the change; "" when the
	// payer has none yet (it is created from the new registration).
	Schedule string `json:"schedule,omitempty"`
}

// CheckChange is the validator of a registration change: the registration
// it makes, or why it is refused.
func (s OnboardingState) CheckChange(ch payer.Change) (payer.Registration, error) {
	switch s.Status {
	case StatusRegistered, "":
		return s.Registration, changeRefused("cannot change payer %s yet: its stack is being published", s.Registration.PayerAccountID)
	case StatusFailed, StatusRejected, StatusOffboarded:
		return s.Registration, changeRefused("cannot change payer %s: its onboarding is %s; register it again", s.Registration.PayerAccountID, s.Status)
	}
	if ch.Export != nil && s.Status != StatusActive {
		// The checks and the stack are about the export registered.
		return s.Registration, changeRefused("cannot change the export of payer %s while its onboarding is %s: the export changes once the payer is active; until then request changes, or reject it and register it again", s.Registration.PayerAccountID, s.Status)
	}
	next, fields := s.Registration.Apply(ch)
	if len(fields) > 0 {
		return s.Registration, &InvalidChangeError{Fields: fields}
	}
	return next, nil
}

// ChangeRefusedError is a change the onboarding's status refuses.
type ChangeRefusedError struct{ Reason string }

func (e *ChangeRefusedError) Error() string { return e.Reason }

func changeRefused(format string, args ...any) error {
	return &ChangeRefusedError{Reason: fmt.Sprintf(format, args...)}
}

// InvalidChangeError names the fields of a change that are invalid.
type InvalidChangeError struct{ Fields map[string]string }

func (e *InvalidChangeError) Error() string {
	keys := slices.Sorted(maps.Keys(e.Fields))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e.Fields[k]
	}
	return "invalid change of the registration: " + strings.Join(parts, "; ")
}
