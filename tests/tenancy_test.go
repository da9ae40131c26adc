package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/costlake/costlake/activities"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/clock"
	"github.com/costlake/costlake/internal/contract/customerops"
	"github.com/costlake/costlake/internal/contract/cycle"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/lakehouse"
	"github.com/costlake/costlake/tests/harness"
	"github.com/costlake/costlake/workflows"
)

// destinationStand is a worker's activities with the warehouse in a MinIO
// bucket, the stack templates in a fake-gcs-server bucket and customers'
// buckets beside them.
type destinationStand struct {
	acts  *activities.Set
	minio *harness.MinIOServer
	gcs   *harness.GCSServer
	env   *testsuite.TestActivityEnvironment
	// templates is the bucket the worker publishes stack templates to.
	templates blob.Store
}

func newDestinationStand(t *testing.T) *destinationStand {
	t.Helper()
	m := harness.MinIO(t)
	g := harness.FakeGCS(t)
	t.Setenv("AWS_ENDPOINT_URL_STS", m.Endpoint)
	m.CreateBucket(t, "lake")
	templates := g.CreateBucket(t, "costlake-templates")
	ctx := context.Background()
	lake, err := lakehouse.Open(ctx, lakehouse.Config{Catalog: testCatalog(t, t.TempDir()), Warehouse: "s3://lake/warehouse", S3: m.S3Options()})
	require.NoError(t, err)
	t.Cleanup(func() { lake.Close() })
	db, postgres := lake.DB()
	store, err := reseller.Open(ctx, db, postgres)
	require.NoError(t, err)
	acts := activities.New(activities.Config{Lake: lake, Reseller: store, TempDir: t.TempDir(), Clock: clock.Fixed(cycleToday),
		Blobs:      blob.Opener{S3: m.S3Options(), GCS: g.GCSOptions()},
		AWSBase:    credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
		Onboarding: activities.OnboardingConfig{Templates: "gs://costlake-templates/stacks"}})
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(acts.Customers)
	env.RegisterActivity(acts.Cycle)
	return &destinationStand{acts: acts, minio: m, gcs: g, env: env, templates: templates}
}

// putCustomer saves a customer the way the gateway's CustomerRequest does;
// it returns the failure type and message of a refusal. (The gateway
// refuses unknown fields before; TestCustomersThroughTheGateway shows it.)
func (s *destinationStand) putCustomer(t *testing.T, id, body string) (string, string) {
	t.Helper()
	var c reseller.Customer
	require.NoError(t, json.Unmarshal([]byte(body), &c))
	_, err := s.acts.Customers.ApplyCustomerOperation(context.Background(), customerops.Request{PutCustomer: &c, CustomerID: id, By: "test"})
	if err == nil {
		return "", ""
	}
	var app *temporal.ApplicationError
	require.ErrorAs(t, err, &app)
	return app.Type(), app.Message()
}

// TestExportDestinationsNeedOwnership: a customer's export goes only to
// a bucket it proved is its own, never to costlake's own storage: an S3
// destination needs the customer's role, a GCS one the customer's
// ownership file, unless an operator overrides; the warehouse and
// templates buckets are refused when saved, before a cycle's export and
// for the reseller's own export, whatever the record says.
func TestExportDestinationsNeedOwnership(t *testing.T) {
	s := newDestinationStand(t)
	ctx := context.Background()
	s.minio.CreateBucket(t, "acme-exports")
	globex := s.gcs.CreateBucket(t, "globex-exports")
	const role = `"access":{"mode":"assume_role","role_arn":"arn:aws:iam::123456789012:role/costlake-export","external_id":"acme-export"}`

	// The warehouse's and the templates' buckets, at any prefix, even with
	// a role or the operator's override.
	for _, body := range []string{
		`{"export":{"url":"s3://lake/warehouse",` + role + `}}`,
		`{"export":{"url":"s3://lake/exports/acme",` + role + `}}`,
		`{"export":{"url":"s3://lake","operator_override":true}}`,
		`{"export":{"url":"gs://costlake-templates/acme","operator_override":true}}`,
	} {
		typ, msg := s.putCustomer(t, "acme", body)
		require.Equal(t, customerops.ErrTypeInvalid, typ, body)
		require.Contains(t, msg, "costlake's own storage", body)
	}
	_, err := s.acts.Cycle.Reseller.CustomerOf(ctx, "acme")
	require.ErrorIs(t, err, reseller.ErrNotFound, "nothing was saved")

	// S3: the customer's role, not the worker's own credentials; its
	// access settings are checked as they are saved.
	typ, msg := s.putCustomer(t, "acme", `{"export":{"url":"s3://acme-exports/aws"}}`)
	require.Equal(t, customerops.ErrTypeInvalid, typ)
	require.Contains(t, msg, "export.access: required for s3://")
	typ, msg = s.putCustomer(t, "acme", `{"export":{"url":"s3://acme-exports/aws","access":{"mode":"assume_role","role_arn":"not-a-role"}}}`)
	require.Equal(t, customerops.ErrTypeInvalid, typ)
	require.Contains(t, msg, "export.access.role_arn")
	typ, msg = s.putCustomer(t, "acme", `{"export":{"url":"s3://acme-exports/aws","access":{"mode":"access_keys","secret_ref":"env:ACME"}}}`)
	require.Equal(t, customerops.ErrTypeInvalid, typ)
	require.Contains(t, msg, "export.access.mode")
	typ, msg = s.putCustomer(t, "acme", `{"export":{"url":"file:///tmp/acme"}}`)
	require.Equal(t, customerops.ErrTypeInvalid, typ)
	require.Contains(t, msg, "operator_override")
	typ, msg = s.putCustomer(t, "acme", `{"export":{"url":"s3://acme-exports/aws",`+role+`}}`)
	require.Empty(t, typ, msg)
	typ, msg = s.putCustomer(t, "initech", `{"export":{"url":"s3://acme-exports/initech","operator_override":true}}`)
	require.Empty(t, typ, msg)

	// GCS: the worker's Google identity writes, so the customer proves the
	// bucket is its own with an ownership file naming it.
	typ, msg = s.putCustomer(t, "globex", `{"export":{"url":"gs://globex-exports/aws"}}`)
	require.Equal(t, customerops.ErrTypeInvalid, typ)
	require.Contains(t, msg, "no ownership file")
	require.Contains(t, msg, "gs://globex-exports/aws/"+reseller.OwnershipFile)
	require.NoError(t, globex.Put(ctx, "aws/"+reseller.OwnershipFile, strings.NewReader("initech\n")))
	typ, msg = s.putCustomer(t, "globex", `{"export":{"url":"gs://globex-exports/aws"}}`)
	require.Equal(t, customerops.ErrTypeInvalid, typ)
	require.Contains(t, msg, "names another customer")
	require.NotContains(t, msg, "initech", "the file's text is never echoed")
	typ, msg = s.putCustomer(t, "globex", `{"export":{"url":"gs://globex-exports/aws","access":{"mode":"assume_role","role_arn":"arn:aws:iam::123456789012:role/x"}}}`)
	require.Equal(t, customerops.ErrTypeInvalid, typ)
	require.Contains(t, msg, "export.access: S3 only")
	require.NoError(t, globex.Put(ctx, "aws/"+reseller.OwnershipFile, strings.NewReader("globex\nwritten by globex's admin\n")))
	typ, msg = s.putCustomer(t, "globex", `{"export":{"url":"gs://globex-exports/aws"}}`)
	require.Empty(t, typ, msg)

	// A record saved before these rules (or straight into the catalog
	// database) naming the warehouse is refused before anything is written.
	const period = "2026-10"
	require.NoError(t, s.acts.Cycle.Reseller.PutCustomer(ctx, reseller.Customer{ID: "umbrella",
		Export: &reseller.Destination{URL: "s3://lake/warehouse/billing", OperatorOverride: true}}, "test"))
	_, err = s.acts.Cycle.Reseller.PutPricebook(ctx, "umbrella", period, json.RawMessage(`{"effective_from":"`+period+`"}`), "test")
	require.NoError(t, err)
	require.NoError(t, s.acts.Cycle.Reseller.CloseCycle(ctx, reseller.Cycle{CustomerID: "umbrella", Period: period, PricebookVersion: 1,
		Snapshots: map[string]int64{}, Totals: json.RawMessage(`{}`), ClosedAt: "2026-11-06T00:00:00Z"}))
	_, err = s.env.ExecuteActivity(s.acts.Cycle.PriceAndExportCycle, cycle.PriceInput{CustomerID: "umbrella", Period: billingPeriod(period)})
	requireAppError(t, err, cycle.ErrTypeDestination, "warehouse")
	// The ownership file gone, globex's next export is refused too.
	require.NoError(t, globex.Delete(ctx, "aws/"+reseller.OwnershipFile))
	_, err = s.acts.Cycle.Reseller.PutPricebook(ctx, "globex", period, json.RawMessage(`{"effective_from":"`+period+`"}`), "test")
	require.NoError(t, err)
	require.NoError(t, s.acts.Cycle.Reseller.CloseCycle(ctx, reseller.Cycle{CustomerID: "globex", Period: period, PricebookVersion: 1, Snapshots: map[string]int64{}, Totals: json.RawMessage(`{}`), ClosedAt: "2026-11-06T00:00:00Z"}))
	_, err = s.env.ExecuteActivity(s.acts.Cycle.PriceAndExportCycle, cycle.PriceInput{CustomerID: "globex", Period: billingPeriod(period)})
	requireAppError(t, err, cycle.ErrTypeDestination, "no ownership file")

	// The reseller's own export and a probe never write there either.
	_, err = s.env.ExecuteActivity(s.acts.Cycle.ExportResellerPeriod, cycle.ResellerExportInput{Period: billingPeriod(period), URL: "s3://lake/reseller"})
	requireAppError(t, err, cycle.ErrTypeDestination, "warehouse")
	_, err = s.acts.Customers.ApplyCustomerOperation(ctx, customerops.Request{CustomerID: "verify", VerifyExport: &reseller.Destination{URL: "gs://costlake-templates/x"}})
	requireAppError(t, err, customerops.ErrTypeInvalid, "templates")
	infos, err := s.templates.List(ctx, "")
	require.NoError(t, err)
	require.Empty(t, infos, "no probe was written into the templates bucket")
}

func requireAppError(t *testing.T, err error, typ, contains string) {
	t.Helper()
	var app *temporal.ApplicationError
	require.ErrorAs(t, err, &app)
	require.Equal(t, typ, app.Type(), app.Message())
	require.Contains(t, app.Message(), contains)
}

// TestScopedKeyCannotTakeAnotherCustomersPayer: a customer-scoped key
// registering a payer another customer holds hears exactly what it hears
// of a payer that does not exist, while the onboarding runs, after it
// was terminated, and after its history is deleted (as retention does):
// ownership is a record in the catalog database, not Temporal history.
func TestScopedKeyCannotTakeAnotherCustomersPayer(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	ctx := context.Background()
	const held, fresh, never = "510987654321", "520987654321", "530987654321"
	e.delivery("initech-cur", held)
	require.Equal(t, http.StatusCreated, e.operator.do("POST", "/v1/payers", registration("initech", held, "initech-cur"), nil))
	e.waitStatus(held, workflows.StatusAwaitingStack)
	db, postgres := e.lake.DB()
	store, err := reseller.Open(ctx, db, postgres)
	require.NoError(t, err)
	owner, err := store.PayerOwner(ctx, held)
	require.NoError(t, err)
	require.Equal(t, "initech", owner, "the operator's registration is recorded")

	// What a payer that does not exist answers, with its ID swapped.
	var absent json.RawMessage
	require.Equal(t, http.StatusNotFound, e.globex.do("GET", "/v1/payers/"+never, "", &absent))
	wantBody := strings.ReplaceAll(string(absent), never, held)
	attempt := func(when string) {
		t.Helper()
		var got json.RawMessage
		require.Equal(t, http.StatusNotFound, e.globex.do("POST", "/v1/payers", registration("globex", held, "initech-cur"), &got), when)
		require.JSONEq(t, wantBody, string(got), when)
		require.Equal(t, http.StatusNotFound, e.globex.do("GET", "/v1/payers/"+held, "", &got), when)
		require.JSONEq(t, wantBody, string(got), when)
		owner, err := store.PayerOwner(ctx, held)
		require.NoError(t, err)
		require.Equal(t, "initech", owner, when)
	}
	attempt("while initech's onboarding runs")

	wid := workflows.OnboardingWorkflowID(held)
	require.NoError(t, e.client.TerminateWorkflow(ctx, wid, "", "test: gone"))
	attempt("after the onboarding was terminated")

	deleteHistory(t, e.client, wid)
	attempt("after the history is gone")
	_, err = e.client.DescribeWorkflowExecution(ctx, wid, "")
	var nf *serviceerror.NotFound
	require.ErrorAs(t, err, &nf, "the scoped key started nothing")

	// The scoped key's own new payer is recorded as its customer's; an
	// unscoped operator may move a held payer to another customer.
	e.delivery("globex-cur", fresh)
	require.Equal(t, http.StatusCreated, e.globex.do("POST", "/v1/payers", registration("globex", fresh, "globex-cur"), nil))
	owner, err = store.PayerOwner(ctx, fresh)
	require.NoError(t, err)
	require.Equal(t, "globex", owner)
	require.Equal(t, http.StatusCreated, e.operator.do("POST", "/v1/payers", registration("globex", held, "initech-cur"), nil))
	owner, err = store.PayerOwner(ctx, held)
	require.NoError(t, err)
	require.Equal(t, "globex", owner, "the operator's registration takes the payer over")
	require.Equal(t, http.StatusOK, e.globex.do("GET", "/v1/payers/"+held, "", nil))
}
