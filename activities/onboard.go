package activities

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bcmdataexports"
	bcmtypes "github.com/aws/aws-sdk-go-v2/service/bcmdataexports/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	curapi "github.com/aws/aws-sdk-go-v2/service/costandusagereportservice"
	curtypes "github.com/aws/aws-sdk-go-v2/service/costandusagereportservice/types"
	"github.com/aws/aws-sdk-go-v2/service/costexplorer"
	cetypes "github.com/aws/aws-sdk-go-v2/service/costexplorer/types"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/awsauth"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/onboard"
	"github.com/costlake/costlake/internal/cur"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/reseller"
)

// Onboard holds OnboardPayer's activities: check the worker's settings,
// publish the customer stack, read it, validate access, remind.
type Onboard struct {
	AWS
	Settings OnboardingConfig
	// Reseller keeps each payer's onboarding status (RecordPayerStatus).
	Reseller *reseller.Store
}

// OnboardingConfig is what the worker needs to onboard payers.
type OnboardingConfig struct {
	// PrincipalARN is costlake's AWS principal that customers' roles trust.
	PrincipalARN string
	// Templates is where customer stack templates are published
	// (s3://bucket/prefix, or a local folder for development).
	Templates string
	// ReminderWebhook, when set, receives a JSON POST for each reminder.
	ReminderWebhook string
	// OwnAccountIDs are costlake's own AWS accounts besides PrincipalARN's:
	// a tenant that registered one of them would have costlake read (and
	// bill) costlake itself, so none is ever onboarded.
	OwnAccountIDs []string
}

// ownAccounts are the accounts that are costlake's own: PrincipalARN's and
// OwnAccountIDs.
func (c OnboardingConfig) ownAccounts() []string {
	own := slices.Clone(c.OwnAccountIDs)
	// arn:aws:iam::<account>:role/<name> (or :root, :user/<name>)
	if f := strings.Split(c.PrincipalARN, ":"); len(f) >= 6 && payer.ValidAccountID(f[4]) {
		own = append(own, f[4])
	}
	return own
}

// DescribeCustomerStack reads the customer stack through the payer's role.
// Until the stack has created the role, the role cannot be assumed: that
// is reported as Unreachable, not as a failure, since waiting is normal.
func (a *Onboard) DescribeCustomerStack(ctx context.Context, in onboard.DescribeCustomerStackInput) (onboard.DescribeCustomerStackResult, error) {
	var res onboard.DescribeCustomerStackResult
	if in.Access.Mode == payer.Local {
		res.Unreachable = localStackNote
		return res, nil
	}
	access := in.Access
	access.Region = cmp.Or(in.Region, billingRegion)
	cfg, err := a.payerConfig(ctx, access, awsauth.Session{Purpose: "onboarding", Payer: in.PayerAccountID, Customer: in.CustomerID})
	if err != nil {
		return res, err
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		code, msg := awsError(err)
		res.Unreachable = strings.TrimSpace(fmt.Sprintf("cannot use %s yet: %s %s", describeAccess(in.Access), code, msg))
		return res, nil
	}
	client := cloudformation.NewFromConfig(cfg)
	out, err := client.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(in.StackName)})
	if err != nil {
		code, msg := awsError(err)
		if code == "ValidationError" && strings.Contains(msg, "does not exist") {
			return res, nil
		}
		if code == "AccessDenied" || code == "AccessDeniedException" {
			res.Unreachable = fmt.Sprintf("may not describe stack %s: %s", in.StackName, msg)
			return res, nil
		}
		return res, fmt.Errorf("describe stack %s: %w", in.StackName, err)
	}
	if len(out.Stacks) == 0 {
		return res, nil
	}
	st := out.Stacks[0]
	res.Found = true
	res.Status = string(st.StackStatus)
	res.Reason = aws.ToString(st.StackStatusReason)
	res.UpdatedAt = aws.ToTime(st.CreationTime)
	if st.LastUpdatedTime != nil {
		res.UpdatedAt = *st.LastUpdatedTime
	}
	res.Outputs = map[string]string{}
	for _, o := range st.Outputs {
		res.Outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	if res.Failed() {
		if reason := firstFailure(ctx, client, in.StackName); reason != "" {
			res.Reason = reason
		}
	}
	return res, nil
}

// firstFailure returns the reason of the first resource that failed, which
// says more than the stack's own "rollback requested" reason.
func firstFailure(ctx context.Context, client *cloudformation.Client, stack string) string {
	var first string
	p := cloudformation.NewDescribeStackEventsPaginator(client, &cloudformation.DescribeStackEventsInput{StackName: aws.String(stack)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return first
		}
		// Events come newest first; the last failure seen is the first one.
		for _, e := range page.StackEvents {
			if strings.HasSuffix(string(e.ResourceStatus), "_FAILED") && aws.ToString(e.ResourceStatusReason) != "" {
				first = fmt.Sprintf("%s (%s): %s", aws.ToString(e.LogicalResourceId), aws.ToString(e.ResourceType), aws.ToString(e.ResourceStatusReason))
			}
		}
	}
	return first
}

func describeAccess(a payer.Access) string {
	switch a.Mode {
	case payer.AssumeRole:
		return "role " + a.RoleARN + " (assumed with the external ID)"
	case payer.WebIdentity:
		return "role " + a.RoleARN + " (web identity)"
	case payer.Local:
		return "a local payer's folder (costlake dev)"
	default:
		return "the keys of " + a.SecretRef
	}
}

// ValidateAccess runs every access check against the payer's account and
// records each as passed, failed or skipped, with a message a person can
// act on. Failing checks are results, not errors: the workflow shows them
// to the operator.
func (a *Onboard) ValidateAccess(ctx context.Context, in onboard.ValidateAccessInput) (onboard.ValidateAccessResult, error) {
	reg := in.Registration
	if reg.Access.Mode == payer.Local {
		return a.validateLocal(ctx, in), nil
	}
	res := onboard.ValidateAccessResult{Source: reg.Export.Source()}
	add := func(name, result, msg string) {
		res.Checks = append(res.Checks, onboard.Check{Name: name, Result: result, Message: msg})
		activity.RecordHeartbeat(ctx, name)
	}
	skipRest := func(names ...string) {
		for _, n := range names {
			add(n, onboard.Skipped, "not run: an earlier check failed")
		}
	}
	access := reg.Access
	access.Region = billingRegion
	session := awsauth.Session{Purpose: "onboarding", Payer: reg.PayerAccountID, Customer: reg.CustomerID}
	cfg, err := awsauth.Config(ctx, access, a.Base, session)
	if err == nil {
		_, err = cfg.Credentials.Retrieve(ctx)
	}
	if err != nil {
		add(onboard.CheckCredentials, onboard.Failed, credentialsAdvice(reg, a.Settings.PrincipalARN, err))
		skipRest(onboard.CheckOrganization, onboard.CheckBucket, onboard.CheckExport, onboard.CheckDelivery)
		return res, nil
	}
	if msg := a.externalIDEnforced(ctx, access, session); msg != "" {
		add(onboard.CheckCredentials, onboard.Failed, msg)
		skipRest(onboard.CheckOrganization, onboard.CheckBucket, onboard.CheckExport, onboard.CheckDelivery)
		return res, nil
	}
	add(onboard.CheckCredentials, onboard.Passed, "authenticated with "+describeAccess(reg.Access))

	accounts, management, msg, result := a.checkOrganization(ctx, cfg, reg.PayerAccountID)
	res.Accounts, res.BillPayerAccountID = accounts, management
	add(onboard.CheckOrganization, result, msg)

	if reg.Export.Type == payer.CostExplorer {
		result := onboard.Passed
		msg, ok := checkCostExplorer(ctx, cfg, in.AsOf)
		if !ok {
			result = onboard.Failed
		}
		add(onboard.CheckCostExplorer, result, msg)
		return res, nil
	}

	bucketCfg := cfg.Copy()
	bucketCfg.Region = reg.Export.Region
	store, msg, ok := a.checkBucket(ctx, bucketCfg, reg.Export)
	if !ok {
		add(onboard.CheckBucket, onboard.Failed, msg)
	} else {
		add(onboard.CheckBucket, onboard.Passed, msg)
	}

	exportKnown, msg, result := checkExport(ctx, cfg, reg.Export)
	add(onboard.CheckExport, result, msg)

	if store == nil {
		skipRest(onboard.CheckDelivery)
		return res, nil
	}
	latest, msg, ok := findLatestDelivery(ctx, store, reg.Export, in.AsOf, exportKnown)
	res.LatestPeriod = latest
	if ok {
		add(onboard.CheckDelivery, onboard.Passed, msg)
	} else {
		add(onboard.CheckDelivery, onboard.Failed, msg)
	}
	return res, nil
}

// wrongExternalID is what the credentials check sends as an external ID
// that the role must refuse.
const wrongExternalID = "costlake-probe-not-the-external-id"

// externalIDEnforced proves an assume_role role refuses callers without its
// external ID: AssumeRole without one, and with a wrong one, must both be
// denied. Without that check, anyone who learns the role's ARN and trusts
// costlake's principal could have costlake read this account for them
// (the confused deputy). It returns "" when the role enforces it.
func (a *Onboard) externalIDEnforced(ctx context.Context, access payer.Access, session awsauth.Session) string {
	if access.Mode != payer.AssumeRole {
		return ""
	}
	for _, probe := range []struct {
		id   *string
		what string
	}{{nil, "without an external ID"}, {aws.String(wrongExternalID), "with a wrong external ID"}} {
		err := awsauth.AssumeRoleWith(ctx, access, a.Base, session, probe.id)
		if err == nil {
			return fmt.Sprintf("role does not enforce sts:ExternalId: costlake could assume %s %s. Its trust policy must allow sts:AssumeRole only on the condition StringEquals sts:ExternalId %q, as the costlake stack's role does: redeploy the stack.",
				access.RoleARN, probe.what, access.ExternalID)
		}
		if code, msg := awsError(err); code != "AccessDenied" {
			return strings.TrimSpace(fmt.Sprintf("could not check that %s enforces sts:ExternalId (assuming it %s): %s %s", access.RoleARN, probe.what, code, msg))
		}
		// refused, as it must be
	}
	return ""
}

func credentialsAdvice(reg payer.Registration, principal string, err error) string {
	code, msg := awsError(err)
	detail := strings.TrimSpace(code + " " + msg)
	switch reg.Access.Mode {
	case payer.AssumeRole:
		return fmt.Sprintf("costlake could not assume %s: %s. Check that the costlake stack is deployed in account %s, that the role trusts %s, and that its sts:ExternalId condition is %q.",
			reg.Access.RoleARN, detail, reg.PayerAccountID, cmp.Or(principal, "costlake's principal"), reg.Access.ExternalID)
	case payer.WebIdentity:
		return fmt.Sprintf("costlake could not assume %s with its web identity token (%s): %s. Check that the stack's OIDC provider and the role's aud and sub conditions match costlake's tokens.",
			reg.Access.RoleARN, reg.Access.TokenFile, detail)
	default:
		return fmt.Sprintf("costlake could not use the keys of %s: %s. Set them on every worker.", reg.Access.SecretRef, detail)
	}
}

// checkOrganization lists the payer's organization. A standalone account
// (no organization) and a member account (which may not list the
// organization) are onboarded as that one account: the check does not
// apply, and says so. A member's management account is returned: AWS
// writes it as the bill payer of the member's rows.
func (a *Onboard) checkOrganization(ctx context.Context, cfg aws.Config, payerID string) (active []string, management, msg, result string) {
	client := organizations.NewFromConfig(cfg)
	scope, err := organizationScope(ctx, client, payerID)
	if err != nil {
		return nil, "", organizationAdvice(payerID, err), onboard.Failed
	}
	if scope.single {
		return []string{payerID}, scope.management, scope.why, onboard.NotApplicable
	}
	accounts, err := listAccounts(ctx, client)
	if err != nil {
		return nil, "", organizationAdvice(payerID, err), onboard.Failed
	}
	total := len(accounts)
	for _, acct := range accounts {
		if accountStatus(acct) == string(orgtypes.AccountStateActive) {
			active = append(active, aws.ToString(acct.Id))
		}
	}
	slices.Sort(active)
	return active, "", fmt.Sprintf("organization %s: %d accounts, %d active", scope.org, total, len(active)), onboard.Passed
}

// payerScope is what the payer's bill covers: its organization, or its
// own account alone (single), with the reason; management is set for a
// member account onboarded alone.
type payerScope struct {
	single     bool
	org        string
	management string
	why        string
}

// organizationScope asks Organizations whether the payer manages an
// organization. Standalone accounts answer AWSOrganizationsNotInUseException;
// a member account reads its organization but is not its management
// account, and AWS gives it only its own usage.
func organizationScope(ctx context.Context, client *organizations.Client, payerID string) (payerScope, error) {
	org, err := client.DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{})
	if err != nil {
		if code, _ := awsError(err); code == "AWSOrganizationsNotInUseException" {
			return payerScope{single: true, why: fmt.Sprintf("not applicable: account %s is a standalone account (not in an AWS Organization), so its bill covers that account alone; connected accounts: %s", payerID, payerID)}, nil
		}
		return payerScope{}, err
	}
	id, m := aws.ToString(org.Organization.Id), aws.ToString(org.Organization.MasterAccountId)
	if m != payerID {
		return payerScope{single: true, org: id, management: m, why: fmt.Sprintf("not applicable: account %s is a member of organization %s (management account %s) and is onboarded alone, with its own costs only; connected accounts: %s. Its report names %s as the bill payer; its rows are kept under %s. To take in the whole organization's bill, register %s instead.",
			payerID, id, m, payerID, m, payerID, m)}, nil
	}
	return payerScope{org: id}, nil
}

func organizationAdvice(payerID string, err error) string {
	code, msg := awsError(err)
	switch code {
	case "AccessDeniedException", "AccessDenied":
		return fmt.Sprintf("the role may not read the organization (%s): redeploy the costlake stack, whose policy grants organizations:ListAccounts and organizations:DescribeOrganization.", msg)
	}
	return fmt.Sprintf("could not list the organization's accounts of %s: %s %s", payerID, code, msg)
}

// checkExport looks the export definition up when the registration asks
// to detect or create it (the stack creates it); known reports whether an
// export is known to exist.
func checkExport(ctx context.Context, cfg aws.Config, e payer.Export) (known bool, msg, result string) {
	if !e.DetectExisting && !e.Create {
		return false, "not looked up (detect_existing is off): the delivery check looks for manifests under the prefix", onboard.Passed
	}
	var ok bool
	var h exportHealth
	switch e.Type {
	case payer.LegacyCUR:
		known, msg, ok, h = checkReportDefinition(ctx, curapi.NewFromConfig(cfg), e)
	case payer.CUR2, payer.FOCUS:
		known, msg, ok, h = checkDataExport(ctx, bcmdataexports.NewFromConfig(cfg), e)
	default:
		return false, "the partner layout has no export definition to look up", onboard.Passed
	}
	if !ok {
		return known, msg, onboard.Failed
	}
	return known, h.report(msg), h.result()
}

// exportHealth is what an export's own definition and status say is
// wrong: failures stop it delivering, warnings cost data quality.
type exportHealth struct {
	failures, warnings []string
}

func (h exportHealth) result() string {
	switch {
	case len(h.failures) > 0:
		return onboard.Failed
	case len(h.warnings) > 0:
		return onboard.Warning
	}
	return onboard.Passed
}

// report puts the problems first, then what was found.
func (h exportHealth) report(found string) string {
	parts := append(append([]string{}, h.failures...), h.warnings...)
	return strings.Join(append(parts, found), "; ")
}

// exportStatusAdvice explains a Data Exports status reason.
func exportStatusAdvice(name, reason string, e payer.Export) string {
	where := "s3://" + e.Bucket + "/" + e.Prefix
	switch reason {
	case "INSUFFICIENT_PERMISSION":
		return fmt.Sprintf("export %s is UNHEALTHY (INSUFFICIENT_PERMISSION): AWS may not write to %s. The bucket policy must allow bcm-data-exports.amazonaws.com and billingreports.amazonaws.com s3:PutObject and s3:GetBucketPolicy (the costlake stack writes it with CreateBucket=true); fix it and AWS delivers at the next refresh", name, where)
	case "BILL_OWNER_CHANGED":
		return fmt.Sprintf("export %s is UNHEALTHY (BILL_OWNER_CHANGED): the account's bill owner changed (it joined or left an organization), so AWS stopped the export; register the account that pays the bill now, or recreate the export there", name)
	case "INTERNAL_FAILURE":
		return fmt.Sprintf("export %s is UNHEALTHY (INTERNAL_FAILURE): AWS failed to produce it; it usually recovers at the next refresh, otherwise open an AWS Support case", name)
	}
	return fmt.Sprintf("export %s is UNHEALTHY (%s): see the export in the AWS Billing console", name, cmp.Or(reason, "no reason given"))
}

func checkReportDefinition(ctx context.Context, client *curapi.Client, e payer.Export) (bool, string, bool, exportHealth) {
	var h exportHealth
	p := curapi.NewDescribeReportDefinitionsPaginator(client, &curapi.DescribeReportDefinitionsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			code, msg := awsError(err)
			return false, fmt.Sprintf("could not list Cost and Usage Reports (%s %s): the stack's policy grants cur:DescribeReportDefinitions.", code, msg), false, h
		}
		for _, d := range page.ReportDefinitions {
			if aws.ToString(d.ReportName) != e.Name {
				continue
			}
			got := "s3://" + aws.ToString(d.S3Bucket) + "/" + strings.Trim(aws.ToString(d.S3Prefix), "/")
			want := "s3://" + e.Bucket + "/" + e.Prefix
			if got != want {
				return true, fmt.Sprintf("report %s delivers to %s, not %s: fix export.bucket and export.prefix, or the report.", e.Name, got, want), false, h
			}
			if st := d.ReportStatus; st != nil {
				switch st.LastStatus {
				case "ERROR_PERMISSIONS":
					h.failures = append(h.failures, fmt.Sprintf("AWS's last delivery of report %s failed (ERROR_PERMISSIONS): the bucket policy of %s must allow billingreports.amazonaws.com s3:PutObject and s3:GetBucketPolicy", e.Name, e.Bucket))
				case "ERROR_NO_BUCKET":
					h.failures = append(h.failures, fmt.Sprintf("AWS's last delivery of report %s failed (ERROR_NO_BUCKET): bucket %s is gone; recreate it or point the report at another", e.Name, e.Bucket))
				}
			}
			if !slices.Contains(d.AdditionalSchemaElements, curtypes.SchemaElementResources) {
				h.warnings = append(h.warnings, fmt.Sprintf("report %s has no resource IDs: costs cannot be split by resource; edit the report and include resource IDs (RESOURCES)", e.Name))
			}
			if !aws.ToBool(d.RefreshClosedReports) {
				h.warnings = append(h.warnings, fmt.Sprintf("report %s is not refreshed automatically: refunds, credits and fees AWS adds after a month closes never arrive; edit the report and turn on automatic refresh", e.Name))
			}
			return true, fmt.Sprintf("found report %s (%s, %s, %s) delivering to %s", e.Name, d.Format, d.Compression, d.TimeUnit, got), true, h
		}
	}
	return false, missingExport("Cost and Usage Report", e), false, h
}

// missingExport explains an export that is not there. costlake never
// creates one itself (its role may only read): the customer stack does,
// when the registration asks.
func missingExport(kind string, e payer.Export) string {
	if e.Create {
		return fmt.Sprintf("no %s named %s in this account, though the stack was asked to create it: check the stack's ExportName and ExportArn outputs, or redeploy it with CreateExport=true.", kind, e.Name)
	}
	return fmt.Sprintf("no %s named %s in this account: fix export.name, or register with export.create so the stack creates it.", kind, e.Name)
}

// checkCostExplorer asks Cost Explorer for yesterday's cost: one paid call
// ($0.01) that proves the role may read it.
func checkCostExplorer(ctx context.Context, cfg aws.Config, asOf time.Time) (string, bool) {
	day := time.Date(asOf.Year(), asOf.Month(), asOf.Day(), 0, 0, 0, 0, time.UTC)
	out, err := costexplorer.NewFromConfig(cfg).GetCostAndUsage(ctx, &costexplorer.GetCostAndUsageInput{
		TimePeriod:  &cetypes.DateInterval{Start: aws.String(day.AddDate(0, 0, -1).Format(time.DateOnly)), End: aws.String(day.Format(time.DateOnly))},
		Granularity: cetypes.GranularityDaily,
		Metrics:     []string{"UnblendedCost"},
	})
	if err != nil {
		code, msg := awsError(err)
		if code == "AccessDeniedException" || code == "AccessDenied" {
			return fmt.Sprintf("the role may not call ce:GetCostAndUsage (%s): redeploy the costlake stack, whose policy grants it.", msg), false
		}
		return fmt.Sprintf("Cost Explorer refused the request: %s %s", code, msg), false
	}
	total := "no cost"
	for _, r := range out.ResultsByTime {
		if m, ok := r.Total["UnblendedCost"]; ok {
			total = aws.ToString(m.Amount) + " " + aws.ToString(m.Unit)
		}
	}
	return fmt.Sprintf("Cost Explorer answers: %s on %s (each call costs $0.01)", total, day.AddDate(0, 0, -1).Format(time.DateOnly)), true
}

// tableOf is the Data Exports table an export type queries.
func tableOf(t payer.ExportType) string {
	if t == payer.FOCUS {
		return "FOCUS_1_0_AWS"
	}
	return "COST_AND_USAGE_REPORT"
}

func checkDataExport(ctx context.Context, client *bcmdataexports.Client, e payer.Export) (bool, string, bool, exportHealth) {
	var h exportHealth
	p := bcmdataexports.NewListExportsPaginator(client, &bcmdataexports.ListExportsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			code, msg := awsError(err)
			return false, fmt.Sprintf("could not list Data Exports (%s %s): the stack's policy grants bcm-data-exports:ListExports.", code, msg), false, h
		}
		for _, ref := range page.Exports {
			if aws.ToString(ref.ExportName) != e.Name {
				continue
			}
			out, err := client.GetExport(ctx, &bcmdataexports.GetExportInput{ExportArn: ref.ExportArn})
			if err != nil {
				code, msg := awsError(err)
				return true, fmt.Sprintf("could not read export %s (%s %s): the stack's policy grants bcm-data-exports:GetExport.", e.Name, code, msg), false, h
			}
			want := "s3://" + e.Bucket + "/" + e.Prefix
			got := ""
			if out.Export == nil {
				return true, fmt.Sprintf("export %s has no definition in GetExport's answer", e.Name), false, h
			}
			if d := out.Export.DestinationConfigurations; d != nil && d.S3Destination != nil {
				got = "s3://" + aws.ToString(d.S3Destination.S3Bucket) + "/" + strings.Trim(aws.ToString(d.S3Destination.S3Prefix), "/")
			}
			if got != want {
				return true, fmt.Sprintf("export %s delivers to %s, not %s: fix export.bucket and export.prefix, or the export.", e.Name, got, want), false, h
			}
			q := ""
			if out.Export != nil && out.Export.DataQuery != nil {
				q = aws.ToString(out.Export.DataQuery.QueryStatement)
			}
			if !strings.Contains(strings.ToUpper(q), tableOf(e.Type)) {
				return true, fmt.Sprintf("export %s does not query %s (its query is %q): export.type is %s.", e.Name, tableOf(e.Type), q, e.Type), false, h
			}
			if st := out.ExportStatus; st != nil && st.StatusCode == bcmtypes.ExportStatusCodeUnhealthy {
				h.failures = append(h.failures, exportStatusAdvice(e.Name, string(st.StatusReason), e))
			}
			if e.Type == payer.CUR2 && !strings.EqualFold(out.Export.DataQuery.TableConfigurations[tableOf(e.Type)]["INCLUDE_RESOURCES"], "TRUE") {
				h.warnings = append(h.warnings, fmt.Sprintf("export %s has no resource IDs: costs cannot be split by resource; edit the export and include resource IDs (INCLUDE_RESOURCES)", e.Name))
			}
			return true, fmt.Sprintf("found export %s of %s delivering to %s", e.Name, tableOf(e.Type), got), true, h
		}
	}
	return false, missingExport("Data Export", e), false, h
}

// findLatestDelivery looks for a delivery of the month of asOf, then of
// the month before. With no delivery, a known export passes (AWS writes
// the first one within a day); otherwise the export is not where the
// registration says.
func findLatestDelivery(ctx context.Context, store blob.Store, e payer.Export, asOf time.Time, exportKnown bool) (latest period.Period, msg string, ok bool) {
	src, err := blob.ParseLocation(e.Source())
	if err != nil {
		return period.Period{}, err.Error(), false
	}
	var tried []string
	for _, m := range []period.Period{period.Of(asOf), period.Of(asOf).Prev()} {
		p := m.String()
		tried = append(tried, p)
		d, err := cur.Locate(ctx, store, src, p)
		if errors.Is(err, cur.ErrManifestNotFound) {
			continue
		}
		if err != nil {
			return period.Period{}, fmt.Sprintf("the delivery of %s under %s cannot be read: %v", p, src, err), false
		}
		return m, fmt.Sprintf("latest delivery: %s, %s, assembly %s, %d files", p, d.Format, d.AssemblyID, len(d.ChunkKeys)), true
	}
	if exportKnown {
		return period.Period{}, fmt.Sprintf("no delivery yet under %s (looked for %s); AWS writes the first within 24 hours of creating the export", src, strings.Join(tried, " and ")), true
	}
	return period.Period{}, fmt.Sprintf("export not found under %s: no manifest for %s; check export.bucket, export.prefix and export.name", src, strings.Join(tried, " or ")), false
}

// RemindCustomer logs a reminder that the customer's stack is still
// missing and, when a webhook is configured, posts it there.
func (a *Onboard) RemindCustomer(ctx context.Context, in onboard.RemindCustomerInput) error {
	// Not the link: it carries the ExternalId, which stays out of logs
	// (GET the payer shows it to the operator).
	activity.GetLogger(ctx).Warn("waiting for the customer's stack", "customer", in.CustomerID, "payer", in.PayerAccountID,
		"stack", in.StackName, "waiting", in.Waiting.String(), "reminder", in.Reminder)
	if a.Settings.ReminderWebhook == "" {
		return nil
	}
	body, err := json.Marshal(map[string]any{
		"event": "stack_reminder", "customer_id": in.CustomerID, "payer_account_id": in.PayerAccountID,
		"stack_name": in.StackName, "quick_create_url": in.QuickCreateURL, "waiting_seconds": int64(in.Waiting.Seconds()), "reminder": in.Reminder,
	})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.Settings.ReminderWebhook, bytes.NewReader(body))
	if err != nil {
		return temporal.NewNonRetryableApplicationError("reminder webhook: "+err.Error(), onboard.ErrTypeInvalidSetup, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reminder webhook: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("reminder webhook answered %s", resp.Status)
	}
	return nil
}
