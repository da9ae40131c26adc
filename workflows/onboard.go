package workflows

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/costlake/costlake/internal/contract/crawl"
	"github.com/costlake/costlake/internal/contract/onboard"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
)

// ErrTypeInvalidRegistration is the failure type of a registration the
// workflow cannot use (the gateway validates the same rules first).
const ErrTypeInvalidRegistration = "InvalidRegistration"

// OnboardPayer takes a payer account from registration to active:
//
//  1. publish the customer stack's template and quick-create link;
//  2. wait for the stack (polling CloudFormation, or a stack-deployed
//     signal), reminding the customer while it waits;
//  3. validate access: credentials, organization, bucket, export, delivery;
//  4. wait for the operator to approve, reject, or request changes (after
//     which the stack is awaited and the checks run again);
//  5. on approval, start the payer's first ingestion.
//
// It then stays open as the payer's record, queried by the gateway.
func OnboardPayer(ctx workflow.Context, in OnboardPayerInput) (OnboardingState, error) {
	if in.StackName == "" {
		in.StackName = DefaultStackName
	}
	o := &onboarding{timing: in.Timing.withDefaults()}
	if in.Resume != nil {
		o.state = *in.Resume // continued as new: the state says where we are
	} else {
		reg := in.Registration
		reg.Normalize()
		//workflowcheck:ignore Validate ranges over maps of field errors but reports them sorted
		if err := reg.Validate(); err != nil {
			return OnboardingState{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidRegistration, nil)
		}
		if reg.Access.Mode == payer.AssumeRole && reg.Access.ExternalID == "" {
			// The external ID is random, so it is drawn once and recorded.
			var id string
			if err := workflow.SideEffect(ctx, func(workflow.Context) any { return newExternalID() }).Get(&id); err != nil {
				return OnboardingState{}, err
			}
			reg.Access.ExternalID = id
		}
		o.state = OnboardingState{Registration: reg, Stack: StackState{Name: in.StackName}}
	}
	if err := workflow.SetQueryHandler(ctx, OnboardingStateQuery, func() (OnboardingState, error) { return o.state, nil }); err != nil {
		return o.state, err
	}
	o.signals = map[string]workflow.ReceiveChannel{}
	for _, name := range operatorSignals {
		o.signals[name] = workflow.GetSignalChannel(ctx, name)
	}
	if err := o.setRegistrationHandler(ctx); err != nil {
		return o.state, err
	}
	if err := o.setActionHandlers(ctx); err != nil {
		return o.state, err
	}
	if err := o.setChangeHandler(ctx); err != nil {
		return o.state, err
	}
	if o.state.Status == "" {
		o.record(ctx, "registered for customer "+o.state.Registration.CustomerID)
		if workflow.GetVersion(ctx, setupCheckChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
			if err := o.publish(ctx); err != nil {
				return o.state, err
			}
		} else {
			if err := o.start(ctx); err != nil {
				return o.state, err
			}
			if o.state.Status == StatusFailed {
				// The record stays readable; the registration update hears
				// why, and actions that came in meanwhile are refused.
				o.recordStatus(ctx)
				return o.state, o.finishActions(ctx)
			}
		}
	}
	for {
		o.recordStatus(ctx)
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			// Months of polling or signals would outgrow one history.
			o.drainSignals(ctx)
			// Accepted actions are applied; their updates answer before
			// this run ends.
			if err := o.finishActions(ctx); err != nil {
				return o.state, err
			}
			in.Resume = &o.state
			return o.state, workflow.NewContinueAsNewError(ctx, OnboardPayer, in)
		}
		var err error
		switch o.state.Status {
		case StatusAwaitingStack, StatusChangesRequested:
			err = o.waitForStack(ctx)
		case StatusValidating:
			err = o.validate(ctx)
		case StatusStackFailed, StatusChecksFailed, StatusAwaitingApproval:
			err = o.waitForOperator(ctx)
		case StatusActive:
			err = o.activate(ctx)
		case StatusOffboarded:
			if o.state.CrawlSchedule != "" {
				err := crawl.DeleteSchedule.Execute(persistentActivity(ctx), crawl.DeleteScheduleInput{ScheduleID: o.state.CrawlSchedule}).Get(ctx, nil)
				if err != nil {
					return o.state, err
				}
				o.record(ctx, "deleted crawl schedule "+o.state.CrawlSchedule)
			}
			return o.state, o.finishActions(ctx)
		case StatusRejected:
			return o.state, o.finishActions(ctx)
		default:
			return o.state, fmt.Errorf("onboarding reached unknown status %q", o.state.Status)
		}
		if err != nil {
			if temporal.IsCanceledError(err) && o.state.CrawlSchedule != "" {
				// A cancelled record must not leave its payer crawled.
				dctx, _ := workflow.NewDisconnectedContext(ctx)
				if derr := crawl.DeleteSchedule.Execute(shortActivity(dctx), crawl.DeleteScheduleInput{ScheduleID: o.state.CrawlSchedule}).Get(dctx, nil); derr != nil {
					workflow.GetLogger(ctx).Error("could not delete the crawl schedule of a cancelled onboarding", "schedule", o.state.CrawlSchedule, "error", derr)
				}
			}
			return o.state, err
		}
	}
}

// activate starts the first ingestion and the crawl schedule once, then
// keeps the payer's record open until it is offboarded.
func (o *onboarding) activate(ctx workflow.Context) error {
	if o.state.ActivatedAt.IsZero() {
		o.state.ActivatedAt = workflow.Now(ctx)
	}
	if o.state.FirstIngestion == nil {
		o.startFirstIngestion(ctx)
	}
	if o.state.CrawlSchedule == "" && o.state.ScheduleError == "" && workflow.GetVersion(ctx, crawlScheduleChange, workflow.DefaultVersion, 1) == 1 {
		if err := o.ensureSchedule(ctx); err != nil {
			// The payer stays active and can be offboarded; the operator
			// sees why it is not crawled.
			o.state.ScheduleError = rootMessage(err)
			o.record(ctx, "the crawl schedule could not be created: "+o.state.ScheduleError)
		}
	}
	return o.waitForOperator(ctx)
}

// persistentActivity retries until it succeeds: a Temporal or AWS outage
// must not end a payer's record.
func persistentActivity(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 5 * time.Minute},
	})
}

func newExternalID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return "costlake-" + hex.EncodeToString(b)
}

var operatorSignals = []string{StackDeployedSignal, ApproveSignal, RejectSignal, RequestChangesSignal, OffboardSignal}

type onboarding struct {
	timing  OnboardTiming
	state   OnboardingState
	signals map[string]workflow.ReceiveChannel
	// actions are the accepted operator updates, for the main loop to
	// apply where it applies signals.
	actions workflow.Channel
}

// pendingAction is an accepted operator update until the main loop has
// applied it.
type pendingAction struct {
	name    string
	d       Decision
	applied bool
	result  ActionResult
	err     error
	// change is a registration change instead of an action; it answers
	// changed.
	change  *RegistrationChange
	changed ChangeResult
}

// setActionHandlers registers an update per operator action. The handler
// hands the action to the main loop and waits until it is applied, so an
// update changes the state exactly where a signal would: never in the
// middle of a check or a poll.
func (o *onboarding) setActionHandlers(ctx workflow.Context) error {
	o.actions = workflow.NewBufferedChannel(ctx, 64)
	for _, name := range operatorSignals {
		err := workflow.SetUpdateHandlerWithOptions(ctx, name, func(ctx workflow.Context, d Decision) (ActionResult, error) {
			p := &pendingAction{name: name, d: d}
			if !o.actions.SendAsync(p) {
				return ActionResult{}, temporal.NewApplicationError("too many operator actions are waiting; try again", ErrTypeActionRefused)
			}
			if err := workflow.Await(ctx, func() bool { return p.applied }); err != nil {
				return ActionResult{}, err
			}
			return p.result, p.err
		}, workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, d Decision) error {
			if err := o.state.CheckAction(name, d); err != nil {
				return temporal.NewApplicationError(err.Error(), ErrTypeActionRefused)
			}
			return nil
		}})
		if err != nil {
			return err
		}
	}
	return nil
}

// setChangeHandler registers ChangeRegistrationUpdate: the validator
// refuses what CheckChange refuses, and the main loop applies the change
// where it applies actions, never in the middle of a check or a poll.
func (o *onboarding) setChangeHandler(ctx workflow.Context) error {
	return workflow.SetUpdateHandlerWithOptions(ctx, ChangeRegistrationUpdate, func(ctx workflow.Context, ch RegistrationChange) (ChangeResult, error) {
		p := &pendingAction{name: ChangeRegistrationUpdate, change: &ch}
		if !o.actions.SendAsync(p) {
			return ChangeResult{}, temporal.NewApplicationError("too many operator actions are waiting; try again", ErrTypeActionRefused)
		}
		if err := workflow.Await(ctx, func() bool { return p.applied }); err != nil {
			return ChangeResult{}, err
		}
		return p.changed, p.err
	}, workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, ch RegistrationChange) error {
		//workflowcheck:ignore Apply ranges over maps of field errors; the error sorts them
		_, err := o.state.CheckChange(ch.Change)
		return changeRefusal(err)
	}})
}

// changeRefusal is the update failure of a refused change.
func changeRefusal(err error) error {
	var invalid *InvalidChangeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &invalid):
		return temporal.NewApplicationError(err.Error(), ErrTypeInvalidChange, invalid.Fields)
	}
	return temporal.NewApplicationError(err.Error(), ErrTypeActionRefused)
}

// applyChange applies an accepted registration change, checked again on
// the state as it is now. The crawl schedule follows it: its spec for a
// new schedule, the crawl's input (export, cut-over, accounts) for the
// others. When the schedule cannot be updated the change is undone, so
// the registration never says what the crawls do not do.
func (o *onboarding) applyChange(ctx workflow.Context, p *pendingAction) {
	if workflow.GetVersion(ctx, registrationChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		p.err = temporal.NewApplicationError("this onboarding cannot change its registration", ErrTypeActionRefused)
		return
	}
	//workflowcheck:ignore Apply ranges over maps of field errors; the error sorts them
	next, err := o.state.CheckChange(p.change.Change)
	if err != nil {
		p.err = changeRefusal(err)
		return
	}
	refuse := func(msg string) {
		o.record(ctx, "change by "+p.change.By+" not applied: "+msg)
		p.err = temporal.NewApplicationError(msg, ErrTypeActionRefused)
	}
	if p.change.Change.Export != nil {
		if err := o.checkExportReadable(ctx, next); err != nil {
			refuse(err.Error())
			return
		}
	}
	prev := o.state.Registration
	o.state.Registration = next
	changed := p.change.Change.Changed()
	switch {
	case o.state.CrawlSchedule != "":
		if _, err := o.upsertSchedule(ctx, 5); err != nil {
			o.state.Registration = prev
			refuse("the crawl schedule could not be updated, so the registration is unchanged: " + rootMessage(err))
			return
		}
	case o.state.Status == StatusActive && o.state.ScheduleError != "":
		// The schedule could not be created on approval; the change may
		// be what fixes it. The change stands either way.
		if id, err := o.upsertSchedule(ctx, 5); err == nil {
			o.state.CrawlSchedule, o.state.ScheduleError = id, ""
			o.record(ctx, "crawl schedule "+id+" created")
		} else {
			o.state.ScheduleError = rootMessage(err)
		}
	}
	what := "registration changed by " + p.change.By + ": " + strings.Join(changed, ", ")
	if c := next.Cutover; c != nil && p.change.Change.Export != nil {
		what += fmt.Sprintf("; periods from %s are taken from %s, earlier ones from %s", c.From, next.Export.Source(), c.Previous.Source())
	}
	o.record(ctx, what)
	p.changed = ChangeResult{Registration: next, Changed: changed, Status: o.state.Status, Schedule: o.state.CrawlSchedule}
}

// checkExportReadable looks the new export's first period up with the
// payer's role before a change of the export applies, so an export the
// role cannot read (another bucket the stack does not grant, a bucket
// that does not exist) is refused with AWS's reason rather than failing
// every crawl after it. No delivery yet is fine: a new export may not
// have written one.
func (o *onboarding) checkExportReadable(ctx workflow.Context, next payer.Registration) error {
	if next.Export.Type == payer.CostExplorer {
		return nil
	}
	first := period.Of(businessNow(ctx))
	if next.Cutover != nil {
		first = next.Cutover.From
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
	})
	var res crawl.DiscoverDeliveriesResult
	err := crawl.DiscoverDeliveries.Execute(actx, crawl.DiscoverDeliveriesInput{
		PayerAccountID: next.PayerAccountID, CustomerID: next.CustomerID, Source: next.Export.Source(), Access: bucketAccess(next), Periods: []period.Period{first},
	}).Get(ctx, &res)
	if err != nil {
		return fmt.Errorf("the payer's role cannot read the new export %s (%s); grant it (update the stack), then change the export again", next.Export.Source(), rootMessage(err))
	}
	return nil
}

// finishActions answers every operator update still waiting (an onboarding
// that ends refuses them) before the run ends.
func (o *onboarding) finishActions(ctx workflow.Context) error {
	for {
		var p *pendingAction
		for o.actions.ReceiveAsync(&p) {
			o.applyAction(ctx, p)
		}
		// An action accepted while waiting is applied (or refused) too, so
		// no handler waits forever for the main loop.
		err := workflow.Await(ctx, func() bool { return o.actions.Len() > 0 || workflow.AllHandlersFinished(ctx) })
		if err != nil || o.actions.Len() == 0 {
			return err
		}
	}
}

// applyAction applies an accepted update, unless the status moved on since
// it was validated.
func (o *onboarding) applyAction(ctx workflow.Context, p *pendingAction) {
	if p.change != nil {
		o.applyChange(ctx, p)
		p.applied = true
		return
	}
	from := o.state.Status
	if err := o.state.CheckAction(p.name, p.d); err != nil {
		p.err = temporal.NewApplicationError(err.Error(), ErrTypeActionRefused)
	} else {
		o.onSignal(ctx, p.name, p.d)
		p.result = ActionResult{Action: p.name, From: from, Status: o.state.Status}
	}
	p.applied = true
}

func (o *onboarding) record(ctx workflow.Context, what string) {
	o.state.Events = append(o.state.Events, OnboardingEvent{At: workflow.Now(ctx), What: what})
}

func shortActivity(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5},
	})
}

// setRegistrationHandler answers the gateway's RegistrationUpdate once the
// onboarding has started well (the stack is published) or failed.
func (o *onboarding) setRegistrationHandler(ctx workflow.Context) error {
	return workflow.SetUpdateHandler(ctx, RegistrationUpdate, func(ctx workflow.Context) (RegistrationResult, error) {
		err := workflow.Await(ctx, func() bool { return o.state.Status != "" && o.state.Status != StatusRegistered })
		if err != nil {
			return RegistrationResult{}, err
		}
		if f := o.state.Failure; o.state.Status == StatusFailed && f != nil {
			return RegistrationResult{}, temporal.NewNonRetryableApplicationError(f.Reason, ErrTypeOnboardingFailed, nil, *f)
		}
		return RegistrationResult{Status: o.state.Status}, nil
	})
}

// start checks that the worker has the settings the onboarding needs and
// publishes the stack. When it cannot, the status is failed with the
// reason and the fix; the error is only a cancellation.
func (o *onboarding) start(ctx workflow.Context) error {
	o.state.Status = StatusRegistered
	var setup onboard.CheckSetupResult
	err := onboard.CheckSetup.Execute(shortActivity(ctx), onboard.CheckSetupInput{Registration: o.state.Registration}).Get(ctx, &setup)
	if temporal.IsCanceledError(err) {
		return err
	}
	if err != nil {
		o.fail(ctx, &Failure{Step: FailedAtSetup, Reason: "the worker could not check its settings: " + rootMessage(err),
			Fix: "run a costlake worker of this version on task queue " + TaskQueue + ", then register the payer again"})
		return nil
	}
	if len(setup.Refused) > 0 {
		// No setting makes these acceptable: the registration is refused.
		f := &Failure{Step: FailedAtRegistration, Fields: setup.Refused, Fix: "register the customer's own payer account instead"}
		var reasons []string
		//workflowcheck:ignore the keys are sorted before use
		for _, field := range slices.Sorted(maps.Keys(setup.Refused)) {
			reasons = append(reasons, field+": "+setup.Refused[field])
		}
		f.Reason = strings.Join(reasons, "; ")
		o.fail(ctx, f)
		return nil
	}
	if len(setup.Problems) > 0 {
		f := &Failure{Step: FailedAtSetup}
		var reasons []string
		for _, p := range setup.Problems {
			f.Settings = append(f.Settings, p.Setting)
			reasons = append(reasons, p.Message)
		}
		f.Reason = strings.Join(reasons, "; ")
		f.Fix = "set " + strings.Join(f.Settings, " and ") + " on every worker, restart the workers, then register the payer again"
		o.fail(ctx, f)
		return nil
	}
	err = o.publish(ctx)
	if temporal.IsCanceledError(err) {
		return err
	}
	if err != nil {
		o.fail(ctx, &Failure{Step: FailedAtPublish, Reason: "the customer stack's template could not be published: " + failureMessage(err),
			Fix: "fix what the reason names (usually the worker's --templates location, which must exist and be writable by the worker), then register the payer again"})
	}
	return nil
}

// failureMessage is the message of the activity's own failure, which
// names what to fix, rather than of its innermost cause.
func failureMessage(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return rootMessage(err)
}

// fail ends the onboarding's progress: the status says failed, the
// failure says why and what to fix.
func (o *onboarding) fail(ctx workflow.Context, f *Failure) {
	o.state.Status, o.state.Failure = StatusFailed, f
	o.record(ctx, "the onboarding cannot go on: "+f.Reason+"; to fix: "+f.Fix)
}

func (o *onboarding) publish(ctx workflow.Context) error {
	var res onboard.PublishStackTemplateResult
	err := onboard.PublishStackTemplate.Execute(shortActivity(ctx), onboard.PublishStackTemplateInput{Registration: o.state.Registration, StackName: o.state.Stack.Name}).Get(ctx, &res)
	if err != nil {
		return err
	}
	o.state.Stack.TemplateURL = res.TemplateURL
	o.state.Stack.QuickCreateURL = res.QuickCreateURL
	o.state.Stack.Parameters = res.Parameters
	o.state.Stack.Note = res.Note
	o.state.Status = StatusAwaitingStack
	o.record(ctx, "published the stack template; waiting for the customer to deploy "+o.state.Stack.Name)
	return nil
}

// onSignal applies an operator's signal, or records why it was ignored.
func (o *onboarding) onSignal(ctx workflow.Context, name string, d Decision) {
	if !o.state.Accepts(name) {
		o.record(ctx, fmt.Sprintf("ignored %s from %s: status is %s", name, d.By, o.state.Status))
		return
	}
	o.state.Wait = nil // a new status starts a new wait, if any
	switch name {
	case StackDeployedSignal:
		o.state.Status = StatusValidating
		o.record(ctx, "stack reported deployed by "+d.By)
	case ApproveSignal:
		o.state.Status = StatusActive
		o.state.ApprovedBy = d.By
		o.record(ctx, "approved by "+d.By)
	case RejectSignal:
		o.state.Status = StatusRejected
		o.state.RejectReason = d.Reason
		o.record(ctx, fmt.Sprintf("rejected by %s: %s", d.By, d.Reason))
	case OffboardSignal:
		o.state.Status = StatusOffboarded
		o.record(ctx, fmt.Sprintf("offboarded by %s: %s", d.By, d.Reason))
	case RequestChangesSignal:
		o.state.Status = StatusChangesRequested
		o.state.RequestedChanges = d.Issues
		o.record(ctx, fmt.Sprintf("changes requested by %s: %v", d.By, d.Issues))
	}
}

// addSignals makes sel receive every operator signal.
func (o *onboarding) addSignals(ctx workflow.Context, sel workflow.Selector) {
	sel.AddReceive(o.actions, func(c workflow.ReceiveChannel, _ bool) {
		var p *pendingAction
		c.Receive(ctx, &p)
		o.applyAction(ctx, p)
	})
	for _, name := range operatorSignals {
		sel.AddReceive(o.signals[name], func(c workflow.ReceiveChannel, _ bool) {
			var d Decision
			c.Receive(ctx, &d)
			o.onSignal(ctx, name, d)
		})
	}
}

// waitForStack polls the stack until it is complete (created or updated
// after the wait began, when changes were requested), fails, or the wait
// times out; an operator's signal can cut it short. It also returns when
// the history should continue as new; the wait's clock is in the state.
func (o *onboarding) waitForStack(ctx workflow.Context) error {
	waiting := o.state.Status
	if o.state.Wait == nil {
		now := workflow.Now(ctx)
		w := &StackWait{Since: now, Deadline: now.Add(o.timing.StackTimeout), NextReminder: now.Add(o.timing.RemindEvery)}
		if waiting == StatusChangesRequested {
			w.FreshAfter = now
		}
		o.state.Wait = w
	}
	w := o.state.Wait
	defer func() {
		if o.state.Status != waiting {
			o.state.Wait = nil
		}
	}()
	reg := o.state.Registration
	for o.state.Status == waiting && !workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
		var st onboard.DescribeCustomerStackResult
		err := onboard.DescribeCustomerStack.Execute(shortActivity(ctx), onboard.DescribeCustomerStackInput{
			Access: reg.Access, StackName: o.state.Stack.Name, PayerAccountID: reg.PayerAccountID, CustomerID: reg.CustomerID,
		}).Get(ctx, &st)
		o.state.Stack.Polls++
		if err != nil {
			// Waiting is the job here: an outage is reported, not fatal.
			o.state.Stack.Waiting = "could not read the stack: " + rootMessage(err)
		} else {
			o.state.Stack.Waiting = st.Unreachable
		}
		if err == nil && st.Found {
			o.state.Stack.Status, o.state.Stack.Reason, o.state.Stack.Outputs = st.Status, st.Reason, st.Outputs
			fresh := w.FreshAfter.IsZero() || st.UpdatedAt.After(w.FreshAfter)
			switch {
			case fresh && st.Complete():
				if arn := st.Outputs["RoleArn"]; arn != "" && arn != o.state.Registration.Access.RoleARN {
					if strings.Contains(arn, ":"+reg.PayerAccountID+":role/") {
						o.state.Registration.Access.RoleARN = arn
						o.record(ctx, "the stack created role "+arn)
					} else {
						o.record(ctx, "ignored the stack's RoleArn output "+arn+": it is not in payer account "+reg.PayerAccountID)
					}
				}
				o.state.Status = StatusValidating
				o.record(ctx, "stack "+o.state.Stack.Name+" is "+st.Status)
				return nil
			case fresh && st.Failed():
				o.state.Status = StatusStackFailed
				o.record(ctx, fmt.Sprintf("stack %s is %s: %s", o.state.Stack.Name, st.Status, st.Reason))
				return nil
			}
		}

		now := workflow.Now(ctx)
		if !now.Before(w.Deadline) {
			o.state.Status = StatusStackFailed
			o.state.Stack.Reason = fmt.Sprintf("no complete stack %s after %s; last seen: %s", o.state.Stack.Name, o.timing.StackTimeout, lastSeen(o.state.Stack))
			o.record(ctx, "timed out waiting for the stack: "+o.state.Stack.Reason)
			return nil
		}
		if !now.Before(w.NextReminder) {
			o.state.Stack.Reminders++
			w.NextReminder = now.Add(o.timing.RemindEvery)
			o.record(ctx, fmt.Sprintf("reminder %d: the stack is not deployed yet", o.state.Stack.Reminders))
			err := onboard.RemindCustomer.Execute(shortActivity(ctx), onboard.RemindCustomerInput{
				CustomerID: reg.CustomerID, PayerAccountID: reg.PayerAccountID, StackName: o.state.Stack.Name,
				QuickCreateURL: o.state.Stack.QuickCreateURL, Waiting: now.Sub(w.Since), Reminder: o.state.Stack.Reminders,
			}).Get(ctx, nil)
			if err != nil {
				workflow.GetLogger(ctx).Warn("reminder failed", "error", err)
			}
		}

		wait := min(o.timing.StackPoll, w.Deadline.Sub(now))
		timerCtx, cancel := workflow.WithCancel(ctx)
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(workflow.NewTimer(timerCtx, wait), func(workflow.Future) {})
		o.addSignals(ctx, sel)
		sel.Select(ctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

func lastSeen(s StackState) string {
	switch {
	case s.Status != "":
		return s.Status
	case s.Waiting != "":
		return s.Waiting
	}
	return "no stack"
}

func (o *onboarding) validate(ctx workflow.Context) error {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5},
	})
	var res onboard.ValidateAccessResult
	err := onboard.ValidateAccess.Execute(actx, onboard.ValidateAccessInput{
		Registration: o.state.Registration, AsOf: businessNow(ctx),
	}).Get(ctx, &res)
	if err != nil {
		// The checks could not run: the operator sees why and can rerun
		// them (stack-deployed) rather than lose the onboarding.
		res = onboard.ValidateAccessResult{Checks: []onboard.Check{{Name: "validation", Result: onboard.Failed,
			Message: "the checks could not run: " + rootMessage(err) + "; post stack-deployed to run them again"}}}
	}
	o.state.Checks, o.state.ChecksAt = res.Checks, workflow.Now(ctx)
	o.state.Accounts, o.state.LatestPeriod = res.Accounts, res.LatestPeriod
	o.state.BillPayerAccountID = res.BillPayerAccountID
	if res.AllPassed() {
		o.state.Status = StatusAwaitingApproval
		o.record(ctx, "every check passed; waiting for the operator's approval")
	} else {
		o.state.Status = StatusChecksFailed
		for _, c := range res.Checks {
			if c.Result == onboard.Failed {
				o.record(ctx, "check "+c.Name+" failed: "+c.Message)
			}
		}
	}
	return nil
}

// waitForOperator blocks until a signal changes the status, the
// workflow is cancelled, or the history should continue as new.
func (o *onboarding) waitForOperator(ctx workflow.Context) error {
	status := o.state.Status
	for o.state.Status == status && !workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
		sel := workflow.NewSelector(ctx)
		o.addSignals(ctx, sel)
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
		sel.Select(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// drainSignals applies the signals already received, so none is lost
// when the workflow continues as new.
func (o *onboarding) drainSignals(ctx workflow.Context) {
	var p *pendingAction
	for o.actions.ReceiveAsync(&p) {
		o.applyAction(ctx, p)
	}
	for _, name := range operatorSignals {
		var d Decision
		for o.signals[name].ReceiveAsync(&d) {
			o.onSignal(ctx, name, d)
			d = Decision{}
		}
	}
}

// ensureSchedule creates the payer's crawl schedule.
func (o *onboarding) ensureSchedule(ctx workflow.Context) error {
	id, err := o.upsertSchedule(ctx, 20)
	if err != nil {
		return err
	}
	o.state.CrawlSchedule = id
	o.record(ctx, "crawl schedule "+id+" created")
	return nil
}

// upsertSchedule creates the payer's crawl schedule from the state, or
// updates it (spec, policies and the crawl's input; a pause stays).
func (o *onboarding) upsertSchedule(ctx workflow.Context, attempts int32) (string, error) {
	reg := o.state.Registration
	// encoding/json writes struct fields in order and map keys sorted; what
	// workflowcheck sees is its reflection cache.
	args, err := json.Marshal(CrawlInputFor(o.state)) //workflowcheck:ignore deterministic output, see above
	if err != nil {
		return "", err
	}
	id := CrawlScheduleID(reg.PayerAccountID)
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute, MaximumAttempts: attempts},
	})
	err = crawl.EnsureSchedule.Execute(actx, crawl.EnsureScheduleInput{
		ScheduleID: id, Workflow: "CrawlPayer", WorkflowID: id, TaskQueue: TaskQueue, Args: args,
		Schedule: reg.Schedule, Note: fmt.Sprintf("crawl of payer %s for customer %s", reg.PayerAccountID, reg.CustomerID),
		PayerAccountID: reg.PayerAccountID, CustomerID: reg.CustomerID,
	}).Get(ctx, nil)
	return id, err
}

// startFirstIngestion starts the ingestion of the newest period found, as
// a child that outlives nothing: it keeps running if this record changes.
func (o *onboarding) startFirstIngestion(ctx workflow.Context) {
	reg := o.state.Registration
	if reg.Export.Type == payer.CostExplorer {
		o.startFirstCostCrawl(ctx)
		return
	}
	if o.state.LatestPeriod.IsZero() {
		o.state.FirstIngestion = &FirstIngestion{Note: "no delivery yet; the first one is ingested when it arrives"}
		o.record(ctx, "active; no delivery to ingest yet")
		return
	}
	in := IngestBillingPeriodInput{
		Source:             reg.Export.Source(),
		Period:             o.state.LatestPeriod,
		PayerAccountID:     reg.PayerAccountID,
		BillPayerAccountID: o.state.BillPayerAccountID,
		Access:             bucketAccess(reg),
		Accounts:           accountPolicy(reg),
		CustomerID:         reg.CustomerID,
	}
	id := IngestWorkflowID(reg.PayerAccountID, in.Source, in.Period)
	attrs, summary := ingestionRun(in)
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            id,
		TaskQueue:             TaskQueue,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: attrs,
		StaticSummary:         summary,
	})
	child := workflow.ExecuteChildWorkflow(cctx, IngestBillingPeriod, in)
	// Shown once started, so whoever reads the state can wait for it.
	err := child.GetChildWorkflowExecution().Get(ctx, nil)
	o.state.FirstIngestion = &FirstIngestion{WorkflowID: id, Period: in.Period}
	if err != nil {
		o.state.FirstIngestion.Note = "not started: " + err.Error()
		o.record(ctx, "active; the first ingestion did not start: "+err.Error())
		return
	}
	o.record(ctx, "active; ingesting "+in.Period.String()+" in "+id)
}

// startFirstCostCrawl pulls a Cost Explorer payer's recent daily costs
// right away instead of waiting for the schedule.
func (o *onboarding) startFirstCostCrawl(ctx workflow.Context) {
	reg := o.state.Registration
	id := CrawlScheduleID(reg.PayerAccountID) + "-first"
	attrs, summary := crawlRun(reg.PayerAccountID, reg.CustomerID)
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            id,
		TaskQueue:             TaskQueue,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		TypedSearchAttributes: attrs,
		StaticSummary:         summary,
	})
	err := workflow.ExecuteChildWorkflow(cctx, CrawlPayer, CrawlInputFor(o.state)).GetChildWorkflowExecution().Get(ctx, nil)
	o.state.FirstIngestion = &FirstIngestion{WorkflowID: id, Note: "daily costs from Cost Explorer"}
	if err != nil {
		o.state.FirstIngestion.Note = "not started: " + err.Error()
		o.record(ctx, "active; the first Cost Explorer crawl did not start: "+err.Error())
		return
	}
	o.record(ctx, "active; pulling daily costs from Cost Explorer in "+id)
}
