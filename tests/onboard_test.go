package tests

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/server/temporaltest"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/costlake/costlake/activities"
	"github.com/costlake/costlake/deploy/cloudformation"
	"github.com/costlake/costlake/gateway"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/clock"
	"github.com/costlake/costlake/internal/contract/onboard"
	"github.com/costlake/costlake/internal/devtools/synth"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/lakehouse"
	"github.com/costlake/costlake/tests/awsemu"
	"github.com/costlake/costlake/tests/harness"
	"github.com/costlake/costlake/worker"
	"github.com/costlake/costlake/workflows"
)

// onboardEnv is everything an onboarding touches, for real: Temporal, the
// worker, the gateway with API keys, MinIO (S3 and STS), and the AWS
// wire-protocol emulator for STS, Organizations, CloudFormation, CUR and
// Data Exports. Credentials flow as in production: the worker's own keys
// assume the customer's role through the emulator's STS, which enforces
// the role's trust policy as the published template renders it (principal,
// sts:ExternalId) and hands out MinIO credentials limited to the
// template's S3 statements, so MinIO denies what the role does not grant.
type onboardEnv struct {
	t                        *testing.T
	client                   client.Client
	minio                    *harness.MinIOServer
	emu                      *awsemu.Server
	lake                     *lakehouse.Lake
	operator, viewer, globex apiClient
	gatewayConfig            gateway.Config
	// worker is the stand's worker; newWorker starts another like it.
	worker    sdkworker.Worker
	newWorker func() sdkworker.Worker
	// today is the worker's business date: the periods the stand's
	// deliveries are for, and finality, follow it, never the wall clock.
	today time.Time
}

// onboardToday is the business date of every onboarding stand: mid-month,
// so "last month" (2026-09) is final by date and the current month is open.
var onboardToday = time.Date(2026, 10, 15, 9, 30, 0, 0, time.UTC)

const testPrincipal = "arn:aws:iam::999999999999:role/costlake-worker"

func newOnboardEnv(t *testing.T, timing workflows.OnboardTiming) *onboardEnv {
	t.Helper()
	return newOnboardEnvWith(t, timing, nil)
}

// newOnboardEnvWith is newOnboardEnv with the worker's onboarding settings
// changed by setup.
func newOnboardEnvWith(t *testing.T, timing workflows.OnboardTiming, setup func(*activities.OnboardingConfig)) *onboardEnv {
	t.Helper()
	return newOnboardEnvLogging(t, timing, setup, io.Discard)
}

// newOnboardEnvLogging is newOnboardEnvWith with every log line of the
// gateway, the worker, its workflows and activities written to logs.
func newOnboardEnvLogging(t *testing.T, timing workflows.OnboardTiming, setup func(*activities.OnboardingConfig), logs io.Writer) *onboardEnv {
	t.Helper()
	e := &onboardEnv{t: t, emu: awsemu.Start(t), minio: harness.MinIO(t), today: onboardToday}
	e.emu.Setenv(t)
	t.Setenv("AWS_ENDPOINT_URL_STS", e.emu.URL)
	e.emu.SetCaller(e.minio.AccessKey, testPrincipal)
	e.emu.UseMinIO(e.minio.Endpoint, e.minio.AccessKey, e.minio.SecretKey)
	e.minio.CreateBucket(t, "costlake-templates")

	dir := t.TempDir()
	lake, err := lakehouse.Open(context.Background(), lakehouse.Config{Catalog: testCatalog(t, dir), Warehouse: "file://" + filepath.Join(dir, "warehouse")})
	require.NoError(t, err)
	t.Cleanup(func() { lake.Close() })
	e.lake = lake
	acts := &activities.Config{
		Lake:    lake,
		Clock:   clock.Fixed(e.today),
		AWSBase: credentials.NewStaticCredentialsProvider(e.minio.AccessKey, e.minio.SecretKey, ""),
		Onboarding: activities.OnboardingConfig{
			PrincipalARN: testPrincipal,
			Templates:    "s3://costlake-templates/stacks",
		},
	}
	if setup != nil {
		setup(&acts.Onboarding)
	}
	acts.Blobs.S3 = e.minio.S3Options()
	db, postgres := lake.DB()
	acts.Reseller, err = reseller.Open(context.Background(), db, postgres)
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts := newTemporal(t, temporaltest.WithBaseClientOptions(client.Options{Logger: tlog.NewStructuredLogger(log)}))
	e.client = ts.GetDefaultClient()
	e.emu.SetRoleSource(e.deployedRole)
	acts.Temporal = e.client
	e.newWorker = func() sdkworker.Worker {
		return ts.NewWorkerWithOptions(workflows.TaskQueue, func(r sdkworker.Registry) { worker.Register(r, activities.New(*acts)) }, sdkworker.Options{})
	}
	e.worker = e.newWorker()

	// The gateway reads customers and pricebooks over its own read-only
	// connection to the catalog, as `costlake gateway --catalog` does.
	rodb, ropg, err := lakehouse.OpenCatalogReadOnly(testCatalog(t, dir))
	require.NoError(t, err)
	t.Cleanup(func() { rodb.Close() })
	keys, operator, viewer, globex := testKeys()
	e.gatewayConfig = gateway.Config{Keys: keys, OnboardTiming: timing, Clock: clock.Fixed(e.today), Records: reseller.ReadOnly(rodb, ropg)}
	srv := httptest.NewServer(validatingGateway(t, gateway.New(e.client, log, e.gatewayConfig)))
	t.Cleanup(srv.Close)
	e.operator = apiClient{t: t, base: srv.URL, key: operator}
	e.viewer = apiClient{t: t, base: srv.URL, key: viewer}
	e.globex = apiClient{t: t, base: srv.URL, key: globex}
	return e
}

// deployedRole is the role of the stack the customer deployed from the
// quick-create link: the template rendered with the parameters costlake
// published for the role's account.
func (e *onboardEnv) deployedRole(arn string) (awsemu.Role, bool) {
	f := strings.Split(arn, ":")
	if len(f) < 6 {
		return awsemu.Role{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := e.client.QueryWorkflow(ctx, workflows.OnboardingWorkflowID(f[4]), "", workflows.OnboardingStateQuery)
	var st workflows.OnboardingState
	if err != nil || v.Get(&st) != nil || len(st.Stack.Parameters) == 0 {
		return awsemu.Role{}, false
	}
	roles, err := cloudformation.RenderRoles(st.Stack.Parameters, f[4], "us-east-1", st.Stack.Name)
	if err != nil {
		e.t.Errorf("render the customer stack of %s: %v", f[4], err)
		return awsemu.Role{}, false
	}
	for _, r := range roles {
		if r.ARN == arn {
			return awsemu.Role{ARN: r.ARN, TrustPolicy: r.TrustPolicy, Policies: r.Policies}, true
		}
	}
	return awsemu.Role{}, false
}

// deployRole puts the role a stack deployed with p creates in account, for
// tests that assume a role without an onboarding that published its stack.
func (e *onboardEnv) deployRole(account string, p cloudformation.Params) string {
	e.t.Helper()
	p.AuthMode, p.CostlakePrincipalArn = cloudformation.AuthAssumeRole, testPrincipal
	p.StackName = cmp.Or(p.StackName, workflows.DefaultStackName)
	roles, err := cloudformation.RenderRoles(p.StackParameters(), account, "us-east-1", p.StackName)
	require.NoError(e.t, err)
	require.Len(e.t, roles, 1)
	r := roles[0]
	e.emu.PutRole(awsemu.Role{ARN: r.ARN, TrustPolicy: r.TrustPolicy, Policies: r.Policies})
	return r.ARN
}

var fastTiming = workflows.OnboardTiming{StackPoll: 200 * time.Millisecond, StackTimeout: 5 * time.Minute, RemindEvery: time.Hour}

// delivery writes last month's legacy CUR delivery for payer into bucket
// and makes the emulated organization and report definition match it.
func (e *onboardEnv) delivery(bucket, payerID string) (string, *synth.Result) {
	e.t.Helper()
	store := e.minio.CreateBucket(e.t, bucket)
	period := clock.Period(e.today, 1)
	gen, err := synth.Generate(context.Background(), store, synth.Options{Prefix: "cur", Report: "billing", Bucket: bucket, Period: period, Rows: 3000, Files: 2, Seed: 11, Payer: payerID})
	require.NoError(e.t, err)
	var accounts []awsemu.Account
	for id := range gen.Accounts {
		accounts = append(accounts, awsemu.Account{Id: id})
	}
	e.emu.SetOrganization(payerID, accounts)
	e.emu.AddReportDefinition(awsemu.ReportDefinition{ReportName: "billing", TimeUnit: "HOURLY", Format: "textORcsv", Compression: "GZIP", S3Bucket: bucket, S3Prefix: "cur", S3Region: "us-east-1",
		AdditionalSchemaElements: []string{"RESOURCES"}, RefreshClosedReports: aws.Bool(true)})
	return period, gen
}

func registration(customer, payerID, bucket string) string {
	return fmt.Sprintf(`{"customer_id":%q,"payer_account_id":%q,"access":{"mode":"assume_role"},
		"export":{"type":"legacy_cur","bucket":%q,"prefix":"cur","name":"billing","detect_existing":true}}`, customer, payerID, bucket)
}

// state reads a payer through the gateway.
func (e *onboardEnv) state(api apiClient, payerID string) (int, gateway.PayerResponse) {
	e.t.Helper()
	var p gateway.PayerResponse
	code := api.do("GET", "/v1/payers/"+payerID, "", &p)
	return code, p
}

// waitStatus polls the payer until it reaches status.
func (e *onboardEnv) waitStatus(payerID, status string) gateway.PayerResponse {
	e.t.Helper()
	var p gateway.PayerResponse
	require.Eventuallyf(e.t, func() bool {
		_, p = e.state(e.operator, payerID)
		return p.Status == status
	}, 90*time.Second, 100*time.Millisecond, "payer %s never reached %s", payerID, status)
	return p
}

// waitActive waits until the payer is active and its first ingestion has
// started.
func (e *onboardEnv) waitActive(payerID string) gateway.PayerResponse {
	e.t.Helper()
	var p gateway.PayerResponse
	require.Eventuallyf(e.t, func() bool {
		_, p = e.state(e.operator, payerID)
		return p.Status == workflows.StatusActive && p.FirstIngestion != nil
	}, 90*time.Second, 100*time.Millisecond, "payer %s never became active", payerID)
	return p
}

type apiErrorBody struct {
	Error gateway.Error `json:"error"`
}

func (e *onboardEnv) completeStack(payerID string) {
	e.emu.PutStack(awsemu.Stack{StackName: workflows.DefaultStackName, StackStatus: "CREATE_COMPLETE", Outputs: []awsemu.Output{
		{OutputKey: "RoleArn", OutputValue: "arn:aws:iam::" + payerID + ":role/costlake-billing-read"},
	}})
}

// TestOnboardingEndToEnd drives an onboarding through the gateway: register,
// the stack completes (emulated CloudFormation, seen by polling), the checks
// pass against MinIO's STS and S3 and the emulator, the operator approves,
// and the first ingestion lands the delivery, reconciled to the cent. Keys
// without the right role or customer are refused, a second registration is
// a conflict, and no credential appears in any workflow history.
func TestOnboardingEndToEnd(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	const payerID = "210987654321"
	period, gen := e.delivery("acme-cur", payerID)

	var created map[string]string
	require.Equal(t, http.StatusCreated, e.operator.do("POST", "/v1/payers", registration("acme", payerID, "acme-cur"), &created))
	require.Equal(t, "onboarding/"+payerID, created["workflow_id"])

	p := e.waitStatus(payerID, workflows.StatusAwaitingStack)
	require.True(t, strings.HasPrefix(p.Registration.Access.ExternalID, "costlake-"), p.Registration.Access.ExternalID)
	require.Contains(t, p.Stack.QuickCreateURL, "#/stacks/quickcreate?")
	require.Contains(t, p.Stack.QuickCreateURL, "param_ExternalId="+p.Registration.Access.ExternalID)
	require.Equal(t, testPrincipal, p.Stack.Parameters["CostlakePrincipalArn"])
	key := p.Stack.TemplateURL[strings.Index(p.Stack.TemplateURL, "/stacks/")+1:]
	templates, err := blob.NewS3(context.Background(), "costlake-templates", e.minio.S3Options())
	require.NoError(t, err)
	_, err = templates.Stat(context.Background(), key)
	require.NoError(t, err, "the template is published at %s", p.Stack.TemplateURL)
	require.Eventually(t, func() bool { _, p = e.state(e.operator, payerID); return p.Stack.Polls >= 2 }, 30*time.Second, 100*time.Millisecond)
	require.Equal(t, workflows.StatusAwaitingStack, p.Status, "no stack yet: still waiting")

	e.completeStack(payerID)
	p = e.waitStatus(payerID, workflows.StatusAwaitingApproval)
	require.Len(t, p.Checks, 5)
	for _, c := range p.Checks {
		require.Equal(t, onboard.Passed, c.Result, "%s: %s", c.Name, c.Message)
	}
	require.Equal(t, period, p.LatestPeriod.String())
	require.Len(t, p.Accounts, len(gen.Accounts))

	// Keys: a viewer may look but not approve; another customer's key
	// sees nothing.
	var denied apiErrorBody
	require.Equal(t, http.StatusOK, e.viewer.do("GET", "/v1/payers/"+payerID, "", nil))
	require.Equal(t, http.StatusForbidden, e.viewer.do("POST", "/v1/payers/"+payerID+"/approve", "", &denied))
	require.Equal(t, "forbidden", denied.Error.Code)
	require.Equal(t, http.StatusNotFound, e.globex.do("GET", "/v1/payers/"+payerID, "", &denied))
	// A scoped key never decides, whoever's payer it names: 403 before
	// any lookup, so it learns nothing about other customers' payers.
	require.Equal(t, http.StatusForbidden, e.globex.do("POST", "/v1/payers/"+payerID+"/approve", "", &denied))
	require.Equal(t, workflows.StatusAwaitingApproval, e.waitStatus(payerID, workflows.StatusAwaitingApproval).Status)

	require.Equal(t, http.StatusAccepted, e.operator.do("POST", "/v1/payers/"+payerID+"/approve", "", nil))
	p = e.waitActive(payerID)
	require.Equal(t, "test-operator", p.ApprovedBy)
	require.NotNil(t, p.FirstIngestion)
	require.Equal(t, "ingest/"+payerID+"/"+period, p.FirstIngestion.WorkflowID)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var res workflows.IngestBillingPeriodResult
	require.NoError(t, e.client.GetWorkflow(ctx, p.FirstIngestion.WorkflowID, "").Get(ctx, &res))
	require.Equal(t, int64(gen.Rows), res.Rows)
	require.Len(t, res.Accounts, len(gen.Accounts))
	for _, a := range res.Accounts {
		require.Equal(t, gen.Accounts[a.Account].UnblendedCost, a.UnblendedCost.String(), "account %s", a.Account)
	}

	// A second registration of the payer meets the first.
	require.Equal(t, http.StatusConflict, e.operator.do("POST", "/v1/payers", registration("acme", payerID, "acme-cur"), &denied))
	require.Contains(t, denied.Error.Message, "already registered for customer acme (status active)")

	// Customer APIs were called with the assumed role's temporary keys,
	// never with costlake's own.
	calls := e.emu.Calls("ListAccounts")
	require.NotEmpty(t, calls)
	tempKeys := map[string]bool{}
	for _, c := range append(calls, e.emu.Calls("DescribeStacks")...) {
		require.NotEqual(t, e.minio.AccessKey, c.AccessKeyID)
		require.NotEmpty(t, c.AccessKeyID)
		tempKeys[c.AccessKeyID] = true
	}

	// No secrets in history: neither costlake's secret key nor any
	// temporary key, session token or signature appears in the onboarding's
	// or the ingestion's history.
	history := e.history(workflows.OnboardingWorkflowID(payerID)) + e.history(p.FirstIngestion.WorkflowID)
	require.Contains(t, history, p.Registration.Access.ExternalID, "the history is readable")
	require.NotContains(t, history, e.minio.SecretKey)
	for k := range tempKeys {
		require.NotContains(t, history, k)
	}
	for _, marker := range []string{"SessionToken", "SecretAccessKey", "secret_access_key", "X-Amz-Security-Token", "AWS4-HMAC-SHA256", "eyJ"} {
		require.NotContains(t, history, marker)
	}
}

var payloadData = regexp.MustCompile(`"data":"([A-Za-z0-9+/=]*)"`)

// history returns every event of a workflow's history as JSON text, with
// payloads decoded.
func (e *onboardEnv) history(workflowID string) string {
	e.t.Helper()
	var b strings.Builder
	it := e.client.GetWorkflowHistory(context.Background(), workflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(e.t, err)
		js, err := protojson.Marshal(ev)
		require.NoError(e.t, err)
		// Payloads are base64 in JSON: decode them, or a secret in one
		// would go unseen.
		b.WriteString(payloadData.ReplaceAllStringFunc(string(js), func(m string) string {
			raw, err := base64.StdEncoding.DecodeString(payloadData.FindStringSubmatch(m)[1])
			require.NoError(e.t, err)
			return string(raw)
		}))
		n++
	}
	require.Greater(e.t, n, 3, "history of %s", workflowID)
	return b.String()
}

// TestOnboardingFailedStack: a stack that rolls back is reported with the
// failed resource's reason; approving is refused; the operator rejects with
// a reason, and the payer may then be registered again.
func TestOnboardingFailedStack(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	const payerID = "310987654321"
	e.delivery("initech-cur", payerID)
	require.Equal(t, http.StatusCreated, e.operator.do("POST", "/v1/payers", registration("initech", payerID, "initech-cur"), nil))
	e.waitStatus(payerID, workflows.StatusAwaitingStack)

	e.emu.PutStack(awsemu.Stack{StackName: workflows.DefaultStackName, StackStatus: "CREATE_IN_PROGRESS"})
	e.emu.AddStackEvents(workflows.DefaultStackName, awsemu.StackEvent{
		LogicalResourceId: "BillingReadRole", ResourceType: "AWS::IAM::Role", ResourceStatus: "CREATE_FAILED",
		ResourceStatusReason: "costlake-billing-read already exists in stack arn:aws:cloudformation:us-east-1:310987654321:stack/old/1",
	})
	e.emu.SetStackStatus(workflows.DefaultStackName, "ROLLBACK_COMPLETE", "The following resource(s) failed to create: [BillingReadRole]. Rollback requested by user.")
	p := e.waitStatus(payerID, workflows.StatusStackFailed)
	require.Equal(t, "ROLLBACK_COMPLETE", p.Stack.Status)
	require.Contains(t, p.Stack.Reason, "BillingReadRole (AWS::IAM::Role): costlake-billing-read already exists")

	var body apiErrorBody
	require.Equal(t, http.StatusConflict, e.operator.do("POST", "/v1/payers/"+payerID+"/approve", "", &body))
	require.Contains(t, body.Error.Message, "stack_failed")
	require.Equal(t, http.StatusBadRequest, e.operator.do("POST", "/v1/payers/"+payerID+"/reject", `{}`, &body))
	require.Contains(t, body.Error.Fields, "reason")
	require.Equal(t, http.StatusAccepted, e.operator.do("POST", "/v1/payers/"+payerID+"/reject", `{"reason":"customer chose another reseller"}`, nil))
	p = e.waitStatus(payerID, workflows.StatusRejected)
	require.Equal(t, "customer chose another reseller", p.RejectReason)
	// The rejection went as a Workflow Update (accepted by its validator),
	// not as a signal.
	h := e.history(workflows.OnboardingWorkflowID(payerID))
	require.Contains(t, h, `"eventType":"EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED"`)
	require.Contains(t, h, `"name":"reject"`)
	require.NotContains(t, h, `"signalName":"reject"`)

	require.Equal(t, http.StatusNotFound, e.globex.do("POST", "/v1/payers", registration("globex", payerID, "initech-cur"), &body),
		"a scoped key never takes over a payer another customer held, and hears of it what it hears of a payer that does not exist")
	require.Equal(t, fmt.Sprintf("no payer %q", payerID), body.Error.Message)
	require.Equal(t, http.StatusCreated, e.operator.do("POST", "/v1/payers", registration("initech", payerID, "initech-cur"), nil), "a rejected payer can be registered again")
}

// TestOnboardingChecksFailThenChanges: an access check fails with a message
// the operator can act on; approval is refused; the operator requests
// changes; once the customer fixes the bucket and reports the stack
// deployed, the checks run again, pass, and the operator approves.
func TestOnboardingChecksFailThenChanges(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	const payerID = "410987654321"
	e.emu.SetOrganization(payerID, []awsemu.Account{{Id: payerID}})
	e.completeStack(payerID)
	require.Equal(t, http.StatusCreated, e.operator.do("POST", "/v1/payers", registration("hooli", payerID, "hooli-cur"), nil))

	p := e.waitStatus(payerID, workflows.StatusChecksFailed)
	byName := map[string]onboard.Check{}
	for _, c := range p.Checks {
		byName[c.Name] = c
	}
	require.Equal(t, onboard.Passed, byName[onboard.CheckCredentials].Result)
	require.Equal(t, onboard.Passed, byName[onboard.CheckOrganization].Result)
	require.Equal(t, onboard.Failed, byName[onboard.CheckBucket].Result)
	require.Contains(t, byName[onboard.CheckBucket].Message, "bucket hooli-cur does not exist")
	require.Equal(t, onboard.Failed, byName[onboard.CheckExport].Result)
	require.Contains(t, byName[onboard.CheckExport].Message, "no Cost and Usage Report named billing in this account")
	require.Equal(t, onboard.Skipped, byName[onboard.CheckDelivery].Result)

	var body apiErrorBody
	require.Equal(t, http.StatusConflict, e.operator.do("POST", "/v1/payers/"+payerID+"/approve", "", &body))
	require.Equal(t, http.StatusBadRequest, e.operator.do("POST", "/v1/payers/"+payerID+"/request-changes", `{"issues":[]}`, &body))
	require.Contains(t, body.Error.Fields, "issues")
	require.Equal(t, http.StatusAccepted, e.operator.do("POST", "/v1/payers/"+payerID+"/request-changes", `{"issues":["create the hooli-cur bucket and the billing report"]}`, nil))
	p = e.waitStatus(payerID, workflows.StatusChangesRequested)
	require.Equal(t, []string{"create the hooli-cur bucket and the billing report"}, p.RequestedChanges)

	period, gen := e.delivery("hooli-cur", payerID)
	require.Equal(t, http.StatusAccepted, e.operator.do("POST", "/v1/payers/"+payerID+"/stack-deployed", "", nil))
	p = e.waitStatus(payerID, workflows.StatusAwaitingApproval)
	require.Equal(t, period, p.LatestPeriod.String())
	require.Equal(t, http.StatusAccepted, e.operator.do("POST", "/v1/payers/"+payerID+"/approve", "", nil))
	p = e.waitActive(payerID)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var res workflows.IngestBillingPeriodResult
	require.NoError(t, e.client.GetWorkflow(ctx, p.FirstIngestion.WorkflowID, "").Get(ctx, &res))
	require.Equal(t, int64(gen.Rows), res.Rows)
}

// TestOnboardingStackTimeout: a stack that never comes is reminded about,
// then reported as timed out.
func TestOnboardingStackTimeout(t *testing.T) {
	e := newOnboardEnv(t, workflows.OnboardTiming{StackPoll: 200 * time.Millisecond, StackTimeout: 3 * time.Second, RemindEvery: time.Second})
	const payerID = "510987654321"
	require.Equal(t, http.StatusCreated, e.operator.do("POST", "/v1/payers", registration("umbrella", payerID, "umbrella-cur"), nil))
	p := e.waitStatus(payerID, workflows.StatusStackFailed)
	require.Contains(t, p.Stack.Reason, "no complete stack costlake-billing-access after 3s")
	require.GreaterOrEqual(t, p.Stack.Reminders, 1)
}

// TestRegisterPayerBadInput: malformed registrations get 400 with an error
// per field, and start nothing.
func TestRegisterPayerBadInput(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	var body apiErrorBody
	code := e.operator.do("POST", "/v1/payers", `{"customer_id":"ACME!","payer_account_id":"12","access":{"mode":"root"},"export":{"type":"s3","bucket":"No_Such"},"linked_accounts":"some"}`, &body)
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, "invalid_request", body.Error.Code)
	for _, f := range []string{"customer_id", "payer_account_id", "access.mode", "export.type", "export.bucket", "linked_accounts"} {
		require.Contains(t, body.Error.Fields, f)
	}

	body = apiErrorBody{}
	require.Equal(t, http.StatusBadRequest, e.operator.do("POST", "/v1/payers", `{"customer_id":"acme","secret_access_key":"x"}`, &body))
	require.Equal(t, "unknown field", body.Error.Fields["secret_access_key"])

	body = apiErrorBody{}
	reg := strings.Replace(registration("acme", "610987654321", "acme-cur"), `"mode":"assume_role"`, `"mode":"assume_role","external_id":"mine-1234"`, 1)
	require.Equal(t, http.StatusBadRequest, e.operator.do("POST", "/v1/payers", reg, &body))
	require.Contains(t, body.Error.Fields, "access.external_id")

	body = apiErrorBody{}
	keys := `{"customer_id":"globex","payer_account_id":"610987654321","access":{"mode":"access_keys","secret_ref":"env:ACME"},"export":{"type":"legacy_cur","bucket":"globex-cur","name":"billing"}}`
	require.Equal(t, http.StatusForbidden, e.globex.do("POST", "/v1/payers", keys, &body), "scoped keys may not use secrets on the worker")
	require.Contains(t, body.Error.Message, "assume_role payers only")

	body = apiErrorBody{}
	require.Equal(t, http.StatusBadRequest, e.operator.do("POST", "/v1/payers",
		`{"customer_id":"acme","payer_account_id":"610987654321","access":{"mode":"assume_role"},"export":{"type":"legacy_cur","bucket":"acme-cur","name":"billing"},"schedule":{"cron":"61 * * * *"}}`, &body))
	require.Contains(t, body.Error.Fields, "schedule.cron")

	body = apiErrorBody{}
	require.Equal(t, http.StatusForbidden, e.globex.do("POST", "/v1/payers", registration("acme", "610987654321", "acme-cur"), &body))
	require.Equal(t, http.StatusNotFound, e.operator.do("GET", "/v1/payers/610987654321", "", &body), "nothing was started")
	require.Equal(t, http.StatusNotFound, e.operator.do("GET", "/v1/payers/not-a-payer", "", &body))
}

// While no worker runs (an outage, a deploy) a payer's state and an
// operator's action cannot be had: the gateway answers 503 after
// WorkerWait, naming why, and the same call succeeds once a worker is
// back.
func TestPayerCallsWithoutAWorker(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	const payerID = "710987654322"
	e.delivery("acme-cur", payerID)
	e.completeStack(payerID)
	require.Equal(t, http.StatusCreated, e.operator.do("POST", "/v1/payers", registration("acme", payerID, "acme-cur"), nil))
	e.waitStatus(payerID, workflows.StatusAwaitingApproval)

	e.worker.Stop()
	api := e.gatewayWith(func(c *gateway.Config) { c.WorkerWait = time.Second })
	var body apiErrorBody
	require.Equal(t, http.StatusServiceUnavailable, api.do("GET", "/v1/payers/"+payerID, "", &body))
	require.Equal(t, "unavailable", body.Error.Code)
	require.Contains(t, body.Error.Message, "no worker answered for payer "+payerID)
	require.Equal(t, http.StatusServiceUnavailable, api.do("POST", "/v1/payers/"+payerID+"/approve", "", &body))

	e.worker = e.newWorker()
	require.Equal(t, http.StatusAccepted, api.do("POST", "/v1/payers/"+payerID+"/approve", "", nil))
	p := e.waitActive(payerID)
	require.Equal(t, "test-operator", p.ApprovedBy)
}

// TestLocalPayerRefusedOutsideDev: a worker that is not `costlake dev`'s
// has no local buckets, so a local registration (the dev demo's mode) is
// refused on its access mode, and the payer is not onboarded.
func TestLocalPayerRefusedOutsideDev(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	const payerID = "730987654322"
	reg := `{"customer_id": "acme", "payer_account_id": "` + payerID + `", "access": {"mode": "local"},
		"export": {"type": "legacy_cur", "bucket": "acme-cur", "prefix": "cur", "name": "billing"}}`
	var body apiErrorBody
	require.Equal(t, http.StatusBadRequest, e.operator.do("POST", "/v1/payers", reg, &body))
	require.Contains(t, body.Error.Fields["access.mode"], "costlake dev only", "refused: %+v", body.Error)
}
