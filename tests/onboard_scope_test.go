package tests

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/activities"
	"github.com/costlake/costlake/gateway"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/clock"
	"github.com/costlake/costlake/internal/contract/onboard"
	"github.com/costlake/costlake/internal/devtools/synth"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/tests/awsemu"
	"github.com/costlake/costlake/workflows"
)

// Onboardings whose scope or setup differs from the usual organization:
// a worker that cannot onboard, a standalone or member account, and a
// delivery at the bucket's root.

// TestRegistrationRefusedWithoutPrincipal: on a worker without costlake's
// principal (as `costlake dev` runs unless told), registering an
// assume_role payer is refused with the setting named; the payer's record
// says failed, why and what to fix, never an empty status; and since the
// record has ended, registering again after the fix is not a conflict.
func TestRegistrationRefusedWithoutPrincipal(t *testing.T) {
	e := newOnboardEnvWith(t, fastTiming, func(c *activities.OnboardingConfig) { c.PrincipalARN = "" })
	const payerID = "710987654321"
	var body apiErrorBody
	require.Equal(t, http.StatusServiceUnavailable, e.operator.do("POST", "/v1/payers", registration("acme", payerID, "acme-cur"), &body))
	require.Equal(t, "setup_incomplete", body.Error.Code)
	require.Contains(t, body.Error.Message, "--aws-principal-arn (COSTLAKE_AWS_PRINCIPAL_ARN)")
	require.Contains(t, body.Error.Fields, "--aws-principal-arn")
	require.NotContains(t, body.Error.Fields, "--templates", "the templates location is set")

	code, p := e.state(e.operator, payerID)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, workflows.StatusFailed, p.Status)
	require.NotNil(t, p.Failure)
	require.Equal(t, workflows.FailedAtSetup, p.Failure.Step)
	require.Equal(t, []string{"--aws-principal-arn"}, p.Failure.Settings)
	require.Contains(t, p.Failure.Fix, "set --aws-principal-arn on every worker")
	require.Empty(t, p.Stack.TemplateURL, "nothing was published")

	body = apiErrorBody{}
	require.Equal(t, http.StatusServiceUnavailable, e.operator.do("POST", "/v1/payers", registration("acme", payerID, "acme-cur"), &body),
		"a failed record does not block a new registration; this worker still refuses it")
	require.Equal(t, "setup_incomplete", body.Error.Code)

	// Static keys need no principal: the same worker onboards them.
	keys := `{"customer_id":"acme","payer_account_id":"720987654321","access":{"mode":"access_keys","secret_ref":"env:ACME"},
		"export":{"type":"legacy_cur","bucket":"acme-cur","prefix":"cur","name":"billing"}}`
	var created map[string]string
	require.Equal(t, http.StatusCreated, e.operator.do("POST", "/v1/payers", keys, &created))
	require.Equal(t, workflows.StatusAwaitingStack, created["status"])
}

// TestOnboardingFailsAtPublishing: a templates location the worker cannot
// write (its bucket does not exist) fails the onboarding at publishing:
// the registration is refused with the reason, and the payer's state is
// failed with the step, the reason and the fix.
func TestOnboardingFailsAtPublishing(t *testing.T) {
	e := newOnboardEnvWith(t, fastTiming, func(c *activities.OnboardingConfig) { c.Templates = "s3://no-such-templates/stacks" })
	const payerID = "730987654321"
	var body apiErrorBody
	require.Equal(t, http.StatusServiceUnavailable, e.operator.do("POST", "/v1/payers", registration("acme", payerID, "acme-cur"), &body))
	require.Equal(t, "onboarding_failed", body.Error.Code)
	require.Contains(t, body.Error.Message, "s3://no-such-templates/stacks/")

	_, p := e.state(e.operator, payerID)
	require.Equal(t, workflows.StatusFailed, p.Status)
	require.Equal(t, workflows.FailedAtPublish, p.Failure.Step)
	require.Contains(t, p.Failure.Reason, "NoSuchBucket")
	require.Contains(t, p.Failure.Reason, "--templates")
	require.Contains(t, p.Failure.Fix, "register the payer again")
	require.Contains(t, eventTexts(p), "the onboarding cannot go on: "+p.Failure.Reason+"; to fix: "+p.Failure.Fix)
}

func eventTexts(p gateway.PayerResponse) []string {
	var out []string
	for _, ev := range p.Events {
		out = append(out, ev.What)
	}
	return out
}

// singleAccountDelivery writes last month's legacy CUR of a payer whose
// bill covers its own account only.
func (e *onboardEnv) singleAccountDelivery(bucket, payerID string) (string, *synth.Result) {
	e.t.Helper()
	_, gen := e.deliveryOf(bucket, synth.Options{Payer: payerID, LinkedAccounts: 1})
	require.Len(e.t, gen.Accounts, 1)
	return clock.Period(e.today, 1), gen
}

// deliveryOf creates bucket and writes last month's legacy CUR into it as
// o says (payer, member, accounts), defining the report as the stack
// found it.
func (e *onboardEnv) deliveryOf(bucket string, o synth.Options) (blob.Store, *synth.Result) {
	e.t.Helper()
	store := e.minio.CreateBucket(e.t, bucket)
	o.Prefix, o.Report, o.Bucket, o.Period, o.Rows, o.Files, o.Seed = "cur", "billing", bucket, clock.Period(e.today, 1), 1200, 2, 23
	gen, err := synth.Generate(context.Background(), store, o)
	require.NoError(e.t, err)
	e.emu.AddReportDefinition(awsemu.ReportDefinition{ReportName: "billing", TimeUnit: "HOURLY", Format: "textORcsv", Compression: "GZIP", S3Bucket: bucket, S3Prefix: "cur", S3Region: "us-east-1",
		AdditionalSchemaElements: []string{"RESOURCES"}, RefreshClosedReports: aws.Bool(true)})
	return store, gen
}

// approveAndIngest approves a payer awaiting approval and checks that its
// first ingestion reconciles with the delivery, account by account.
func (e *onboardEnv) approveAndIngest(payerID, period string, gen *synth.Result) gateway.PayerResponse {
	e.t.Helper()
	require.Equal(e.t, http.StatusAccepted, e.operator.do("POST", "/v1/payers/"+payerID+"/approve", "", nil))
	p := e.waitActive(payerID)
	require.Equal(e.t, "ingest/"+payerID+"/"+period, p.FirstIngestion.WorkflowID)
	var res workflows.IngestBillingPeriodResult
	e.waitWorkflow(p.FirstIngestion.WorkflowID, &res)
	require.Equal(e.t, int64(gen.Rows), res.Rows)
	require.Len(e.t, res.Accounts, len(gen.Accounts))
	for _, a := range res.Accounts {
		require.Equal(e.t, gen.Accounts[a.Account].UnblendedCost, a.UnblendedCost.String(), "account %s", a.Account)
	}
	return p
}

func checkNamed(t *testing.T, p gateway.PayerResponse, name string) onboard.Check {
	t.Helper()
	for _, c := range p.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %s in %+v", name, p.Checks)
	return onboard.Check{}
}

// TestOnboardingStandaloneAccount: a payer in no AWS Organization (the
// emulator answers AWSOrganizationsNotInUseException, as AWS does) is
// onboarded as its own only account: the organization check is
// not_applicable with the reason, approval works, the first ingestion
// reconciles exactly, and the crawl's account refresh records that one
// account instead of failing. A member account whose owner controls only
// that account is onboarded the same way.
func TestOnboardingStandaloneAccount(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	const payerID = "810987654321"
	period, gen := e.singleAccountDelivery("solo-cur", payerID)
	e.completeStack(payerID)
	var created map[string]string
	require.Equal(t, http.StatusCreated, e.operator.do("POST", "/v1/payers", registration("solo", payerID, "solo-cur"), &created))
	require.Equal(t, workflows.StatusAwaitingStack, created["status"])

	p := e.waitStatus(payerID, workflows.StatusAwaitingApproval)
	org := checkNamed(t, p, onboard.CheckOrganization)
	require.Equal(t, onboard.NotApplicable, org.Result)
	require.Contains(t, org.Message, "standalone account (not in an AWS Organization)")
	require.Equal(t, []string{payerID}, p.Accounts)
	for _, c := range p.Checks {
		if c.Name != onboard.CheckOrganization {
			require.Equal(t, onboard.Passed, c.Result, "%s: %s", c.Name, c.Message)
		}
	}
	require.Equal(t, period, p.LatestPeriod.String())
	e.approveAndIngest(payerID, period, gen)

	require.Eventually(t, func() bool { _, p = e.state(e.operator, payerID); return p.Schedule != nil }, 30*time.Second, 100*time.Millisecond)
	r := e.crawlNow(payerID)
	require.Empty(t, r.AccountsError)
	require.NotNil(t, r.Accounts)
	require.Equal(t, 1, r.Accounts.Accounts)
	require.Equal(t, workflows.ActionUnchanged, outcome(t, r, period).Action, "the crawl finds the ingested delivery")

	// A member account: it reads its organization but may not list it,
	// and its own report names the management account as bill payer. Its
	// bucket also holds another account's usage, which is not its own.
	const member, management = "820987654321", "830987654321"
	e.emu.SetMemberAccount(member, management)
	mstore, mgen := e.deliveryOf("member-cur", synth.Options{Payer: management, Member: member, LinkedAccounts: 2})
	require.Len(t, mgen.Accounts, 2)
	e.emu.PutStack(awsemu.Stack{StackName: workflows.DefaultStackName, StackStatus: "CREATE_COMPLETE", Outputs: []awsemu.Output{
		{OutputKey: "RoleArn", OutputValue: "arn:aws:iam::" + member + ":role/costlake-billing-read"},
	}})
	require.Equal(t, http.StatusCreated, e.operator.do("POST", "/v1/payers", registration("solo", member, "member-cur"), nil))
	p = e.waitStatus(member, workflows.StatusAwaitingApproval)
	org = checkNamed(t, p, onboard.CheckOrganization)
	require.Equal(t, onboard.NotApplicable, org.Result)
	require.Contains(t, org.Message, "member of organization")
	require.Contains(t, org.Message, "register "+management+" instead")
	require.Contains(t, org.Message, "names "+management+" as the bill payer")
	require.Equal(t, []string{member}, p.Accounts)
	require.Equal(t, management, p.BillPayerAccountID)

	require.Equal(t, http.StatusAccepted, e.operator.do("POST", "/v1/payers/"+member+"/approve", "", nil))
	p = e.waitActive(member)
	var res workflows.IngestBillingPeriodResult
	e.waitWorkflow(p.FirstIngestion.WorkflowID, &res)
	e.requireMemberPeriod(res, member, management, period, mgen)

	require.Eventually(t, func() bool { _, p = e.state(e.operator, member); return p.Schedule != nil }, 30*time.Second, 100*time.Millisecond)
	r = e.crawlNow(member)
	require.Empty(t, r.AccountsError)
	require.Equal(t, 1, r.Accounts.Accounts)
	require.Equal(t, workflows.ActionUnchanged, outcome(t, r, period).Action, "the crawl finds the period under the member")

	// AWS restates the month: the scheduled crawl carries the bill payer
	// to its ingestion, which replaces the member's rows.
	restated, err := synth.Generate(context.Background(), mstore, synth.Options{Prefix: "cur", Report: "billing", Bucket: "member-cur", Period: period,
		Rows: 900, Files: 1, Seed: 24, Payer: management, Member: member, LinkedAccounts: 2, AssemblyID: "20261104T010203Z"})
	require.NoError(t, err)
	r = e.crawlNow(member)
	o := outcome(t, r, period)
	require.Equal(t, workflows.ActionIngested, o.Action, "%+v", o)
	e.waitWorkflow(o.IngestionID, &res)
	e.requireMemberPeriod(res, member, management, period, restated)
}

// requireMemberPeriod checks the ingestion of a member account onboarded
// alone: its own usage only, reconciled exactly, kept under the member
// with the management account as delivered in other_columns, and nothing
// under the management account.
func (e *onboardEnv) requireMemberPeriod(res workflows.IngestBillingPeriodResult, member, management, period string, gen *synth.Result) {
	t := e.t
	t.Helper()
	own := gen.Accounts[member]
	require.Equal(t, member, res.PayerAccountID)
	require.Equal(t, int64(own.Rows), res.Rows)
	require.Len(t, res.Accounts, 1)
	require.Equal(t, member, res.Accounts[0].Account)
	require.Equal(t, own.UnblendedCost, res.Accounts[0].UnblendedCost.String())
	require.Len(t, res.Excluded, 1, "the other account's usage is counted, not kept")
	other := gen.Accounts[res.Excluded[0].Account]
	require.NotEqual(t, member, res.Excluded[0].Account)
	require.Equal(t, int64(other.Rows), res.ExcludedRows)
	require.Equal(t, other.UnblendedCost, res.ExcludedCost.String())

	rows := readTableRows(t, e.lake, member, period)
	require.Len(t, rows, own.Rows)
	var sum money.Amount
	for _, r := range rows {
		require.Equal(t, member, r.Account)
		require.Equal(t, management, r.Other[activities.DeliveredBillPayerKey])
		sum = sum.Add(money.MustParse(r.Cost))
	}
	require.Equal(t, own.UnblendedCost, sum.String())
	require.Empty(t, readTableRows(t, e.lake, management, period), "nothing is kept under the management account")
}

// partnerDelivery lays last month's delivery out as a partner's generator
// writes it at the root of bucket (the Eco seed's layout):
// RawCURReports/cur/<payer>/<range>/<assembly>/<files> with Athena
// snake_case headers, and manifests/<range>/<report>-Manifest.json.
func (e *onboardEnv) partnerDelivery(bucket, payerID string) (string, *synth.Result) {
	e.t.Helper()
	ctx := context.Background()
	scratch := e.minio.CreateBucket(e.t, bucket+"-scratch")
	dst := e.minio.CreateBucket(e.t, bucket)
	period := clock.Period(e.today, 1)
	gen, err := synth.Generate(ctx, scratch, synth.Options{Report: "billing", Bucket: bucket, Period: period, Rows: 1500, Files: 2, Seed: 31, Payer: payerID})
	require.NoError(e.t, err)
	start, err := time.Parse("2006-01", period)
	require.NoError(e.t, err)
	folder := start.Format("20060102") + "-" + start.AddDate(0, 1, 0).Format("20060102")
	var header []string
	var keys []string
	for i, k := range gen.ReportKeys {
		h, body := athenaChunk(e.t, scratch, k)
		header = h
		key := fmt.Sprintf("RawCURReports/cur/%s/%s/%s/billing-%05d.csv.gz", payerID, folder, gen.AssemblyID, i+1)
		require.NoError(e.t, dst.Put(ctx, key, bytes.NewReader(body)))
		keys = append(keys, key)
	}
	var cols []map[string]string
	for _, h := range header {
		cols = append(cols, map[string]string{"column_name": h, "data_type": "string"})
	}
	js, err := json.Marshal(map[string]any{"assemblyId": gen.AssemblyID, "account": payerID, "columns": cols, "reportKeys": keys})
	require.NoError(e.t, err)
	require.NoError(e.t, dst.Put(ctx, "manifests/"+folder+"/report-7-Manifest.json", bytes.NewReader(js)))
	return period, gen
}

// athenaChunk reads a legacy csv.gz chunk and returns it with its header
// renamed the way partner generators name columns.
func athenaChunk(t *testing.T, store blob.Store, key string) ([]string, []byte) {
	t.Helper()
	rc, err := store.Open(context.Background(), key)
	require.NoError(t, err)
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	require.NoError(t, err)
	br := bufio.NewReader(zr)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	var header []string
	for _, h := range strings.Split(strings.TrimRight(line, "\r\n"), ",") {
		header = append(header, athenaHeader(strings.Trim(h, `"`)))
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	_, err = zw.Write([]byte(strings.Join(header, ",") + "\n"))
	require.NoError(t, err)
	_, err = io.Copy(zw, br)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return header, out.Bytes()
}

// TestOnboardingBucketRoot: a partner's layout at the root of the bucket
// (no export prefix) goes through registration, the stack template
// (whose policy then covers the bucket), the checks, approval, a
// reconciled first ingestion and a crawl.
func TestOnboardingBucketRoot(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	const payerID = "910987654321"
	period, gen := e.partnerDelivery("eco-root", payerID)
	var accounts []awsemu.Account
	for id := range gen.Accounts {
		accounts = append(accounts, awsemu.Account{Id: id})
	}
	e.emu.SetOrganization(payerID, accounts)
	e.completeStack(payerID)
	reg := fmt.Sprintf(`{"customer_id":"eco","payer_account_id":%q,"access":{"mode":"assume_role"},"export":{"type":"partner","bucket":"eco-root"}}`, payerID)
	var created map[string]string
	require.Equal(t, http.StatusCreated, e.operator.do("POST", "/v1/payers", reg, &created))
	require.Equal(t, workflows.StatusAwaitingStack, created["status"])

	p := e.waitStatus(payerID, workflows.StatusAwaitingApproval)
	require.Equal(t, "", p.Registration.Export.Prefix)
	require.Equal(t, "", p.Stack.Parameters["ExportPrefix"], "the stack is told the export is at the root")
	require.Contains(t, p.Stack.QuickCreateURL, "param_ExportPrefix=&")
	for _, c := range p.Checks {
		require.Equal(t, onboard.Passed, c.Result, "%s: %s", c.Name, c.Message)
	}
	require.Contains(t, checkNamed(t, p, onboard.CheckBucket).Message, "can list s3://eco-root/")
	require.Equal(t, period, p.LatestPeriod.String())
	e.approveAndIngest(payerID, period, gen)

	require.Eventually(t, func() bool { _, p = e.state(e.operator, payerID); return p.Schedule != nil }, 30*time.Second, 100*time.Millisecond)
	r := e.crawlNow(payerID)
	require.Equal(t, workflows.ActionUnchanged, outcome(t, r, period).Action)
}

// TestOnboardingExportHealth: the checks read the export's own state. A
// CUR 2.0 export that AWS reports UNHEALTHY (INSUFFICIENT_PERMISSION)
// fails the export check with what to fix, and passes once the customer
// has fixed it and the checks run again; a legacy report without resource
// IDs or automatic refresh passes with a warning that says so.
func TestOnboardingExportHealth(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	const payerID = "940987654321"
	e.minio.CreateBucket(t, "health-cur")
	e.emu.SetOrganization(payerID, []awsemu.Account{{Id: payerID}})
	e.completeStack(payerID)
	x := e.emu.AddExport(awsemu.Export{Name: "billing2",
		DataQuery: awsemu.DataQuery{QueryStatement: "SELECT identity_line_item_id, line_item_unblended_cost FROM COST_AND_USAGE_REPORT",
			TableConfigurations: map[string]map[string]string{"COST_AND_USAGE_REPORT": {"INCLUDE_RESOURCES": "TRUE", "TIME_GRANULARITY": "HOURLY"}}},
		DestinationConfigurations: awsemu.DestinationConfigurations{S3Destination: awsemu.S3Destination{S3Bucket: "health-cur", S3Prefix: "cur", S3Region: "us-east-1",
			S3OutputConfigurations: awsemu.S3OutputConfigurations{Compression: "GZIP", Format: "TEXT_OR_CSV", OutputType: "CUSTOM", Overwrite: "OVERWRITE_REPORT"}}},
		RefreshCadence: awsemu.RefreshCadence{Frequency: "SYNCHRONOUS"},
	})
	e.emu.SetExportStatus(x.ExportArn, "UNHEALTHY", "INSUFFICIENT_PERMISSION")
	reg := fmt.Sprintf(`{"customer_id":"health","payer_account_id":%q,"access":{"mode":"assume_role"},
		"export":{"type":"cur2","bucket":"health-cur","prefix":"cur","name":"billing2","detect_existing":true}}`, payerID)
	require.Equal(t, http.StatusCreated, e.operator.do("POST", "/v1/payers", reg, nil))

	p := e.waitStatus(payerID, workflows.StatusChecksFailed)
	c := checkNamed(t, p, onboard.CheckExport)
	require.Equal(t, onboard.Failed, c.Result)
	require.Contains(t, c.Message, "export billing2 is UNHEALTHY (INSUFFICIENT_PERMISSION): AWS may not write to s3://health-cur/cur")
	require.Contains(t, c.Message, "bcm-data-exports.amazonaws.com")
	require.Contains(t, eventTexts(p), "check export failed: "+c.Message)

	e.emu.SetExportStatus(x.ExportArn, "HEALTHY", "")
	require.Equal(t, http.StatusAccepted, e.operator.do("POST", "/v1/payers/"+payerID+"/stack-deployed", "", nil))
	p = e.waitStatus(payerID, workflows.StatusAwaitingApproval)
	require.Equal(t, onboard.Passed, checkNamed(t, p, onboard.CheckExport).Result, checkNamed(t, p, onboard.CheckExport).Message)

	// Every crawl reads the export's state too: one AWS stopped after the
	// payer went active is reported in the crawl's result.
	require.Equal(t, http.StatusAccepted, e.operator.do("POST", "/v1/payers/"+payerID+"/approve", "", nil))
	require.Eventually(t, func() bool { _, p = e.state(e.operator, payerID); return p.Schedule != nil }, 30*time.Second, 100*time.Millisecond)
	r := e.crawlNow(payerID)
	require.NotNil(t, r.Export)
	require.Equal(t, onboard.Passed, r.Export.Result, r.Export.Message)
	e.emu.SetExportStatus(x.ExportArn, "UNHEALTHY", "BILL_OWNER_CHANGED")
	r = e.crawlNow(payerID)
	require.Equal(t, onboard.Failed, r.Export.Result)
	require.Contains(t, r.Export.Message, "export billing2 is UNHEALTHY (BILL_OWNER_CHANGED)")

	// A legacy report that AWS delivers, but without resource IDs and
	// without refreshing closed months.
	const legacyID = "950987654321"
	e.emu.SetOrganization(legacyID, []awsemu.Account{{Id: legacyID}})
	e.emu.PutStack(awsemu.Stack{StackName: workflows.DefaultStackName, StackStatus: "CREATE_COMPLETE", Outputs: []awsemu.Output{
		{OutputKey: "RoleArn", OutputValue: "arn:aws:iam::" + legacyID + ":role/costlake-billing-read"},
	}})
	store := e.minio.CreateBucket(t, "bare-cur")
	period := clock.Period(e.today, 1)
	_, err := synth.Generate(context.Background(), store, synth.Options{Prefix: "cur", Report: "billing", Bucket: "bare-cur", Period: period, Rows: 100, Seed: 5, Payer: legacyID, LinkedAccounts: 1})
	require.NoError(t, err)
	e.emu.AddReportDefinition(awsemu.ReportDefinition{ReportName: "billing", TimeUnit: "HOURLY", Format: "textORcsv", Compression: "GZIP", S3Bucket: "bare-cur", S3Prefix: "cur", S3Region: "us-east-1"})
	require.Equal(t, http.StatusCreated, e.operator.do("POST", "/v1/payers", registration("health", legacyID, "bare-cur"), nil))
	p = e.waitStatus(legacyID, workflows.StatusAwaitingApproval)
	c = checkNamed(t, p, onboard.CheckExport)
	require.Equal(t, onboard.Warning, c.Result)
	require.Contains(t, c.Message, "report billing has no resource IDs")
	require.Contains(t, c.Message, "report billing is not refreshed automatically")
	require.Equal(t, http.StatusAccepted, e.operator.do("POST", "/v1/payers/"+legacyID+"/approve", "", nil), "a warning does not block approval")
}
