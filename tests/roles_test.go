package tests

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/activities"
	"github.com/costlake/costlake/deploy/cloudformation"
	"github.com/costlake/costlake/internal/awsauth"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/onboard"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/tests/awsemu"
	"github.com/costlake/costlake/workflows"
)

// renderedRole is the role the published stack of payerID creates.
func (e *onboardEnv) renderedRole(payerID string) cloudformation.Role {
	e.t.Helper()
	_, p := e.state(e.operator, payerID)
	roles, err := cloudformation.RenderRoles(p.Stack.Parameters, payerID, "us-east-1", p.Stack.Name)
	require.NoError(e.t, err)
	require.Len(e.t, roles, 1)
	return roles[0]
}

// TestRoleWithoutExternalIDFailsOnboarding: a role that trusts costlake's
// principal but not on the sts:ExternalId condition fails the credentials
// check, and nothing past it runs; the stack's own role passes it.
func TestRoleWithoutExternalIDFailsOnboarding(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	const payerID = "710987654321"
	e.delivery("umbrella-cur", payerID)
	require.Equal(t, http.StatusCreated, e.operator.do("POST", "/v1/payers", registration("umbrella", payerID, "umbrella-cur"), nil))
	e.waitStatus(payerID, workflows.StatusAwaitingStack)

	// The customer edits the role: the same trust, minus the condition.
	role := e.renderedRole(payerID)
	var trust map[string]any
	require.NoError(t, json.Unmarshal([]byte(role.TrustPolicy), &trust))
	st := trust["Statement"].([]any)[0].(map[string]any)
	require.Contains(t, st, "Condition", "the template's trust policy has the ExternalId condition")
	delete(st, "Condition")
	loose, err := json.Marshal(trust)
	require.NoError(t, err)
	e.emu.PutRole(awsemu.Role{ARN: role.ARN, TrustPolicy: string(loose), Policies: role.Policies})
	e.completeStack(payerID)

	p := e.waitStatus(payerID, workflows.StatusChecksFailed)
	creds := checkNamed(t, p, onboard.CheckCredentials)
	require.Equal(t, onboard.Failed, creds.Result)
	require.Contains(t, creds.Message, "role does not enforce sts:ExternalId")
	require.Contains(t, creds.Message, "without an external ID")
	require.Equal(t, onboard.Skipped, checkNamed(t, p, onboard.CheckOrganization).Result)
	require.Empty(t, e.emu.Calls("ListAccounts"), "nothing is read through a role that does not enforce the external ID")
	var body apiErrorBody
	require.Equal(t, http.StatusConflict, e.operator.do("POST", "/v1/payers/"+payerID+"/approve", "", &body))

	// The customer redeploys the stack: its role passes.
	e.emu.DeleteRole(role.ARN)
	require.Equal(t, http.StatusAccepted, e.operator.do("POST", "/v1/payers/"+payerID+"/stack-deployed", "", nil))
	p = e.waitStatus(payerID, workflows.StatusAwaitingApproval)
	require.Equal(t, onboard.Passed, checkNamed(t, p, onboard.CheckCredentials).Result)

	// Every session names the payer and the customer, so the customer's
	// CloudTrail shows whom each call was for.
	sessions := e.emu.Sessions()
	require.NotEmpty(t, sessions)
	for _, s := range sessions {
		require.Contains(t, s.RoleSessionName, payerID+"-umbrella", s)
	}
	calls := e.emu.Calls("ListAccounts")
	require.NotEmpty(t, calls)
	s, ok := e.emu.SessionOf(calls[len(calls)-1].AccessKeyID)
	require.True(t, ok, "ListAccounts is signed with a role session's keys")
	require.Equal(t, "costlake-onboarding-"+payerID+"-umbrella", s.RoleSessionName)
	require.Equal(t, "costlake-"+payerID+"-umbrella", s.SourceIdentity)
}

// TestRoleReadsOnlyItsPrefix: the role's credentials are limited by MinIO
// itself to what the template grants: the export's prefix of the export's
// bucket. The external ID is required to get them at all.
func TestRoleReadsOnlyItsPrefix(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	const payerID = "720987654321"
	e.delivery("wayne-cur", payerID)
	other := e.minio.CreateBucket(t, "wayne-private")
	require.NoError(t, other.Put(context.Background(), "payroll.csv", strings.NewReader("secret")))
	root, err := blob.NewS3(context.Background(), "wayne-cur", e.minio.S3Options())
	require.NoError(t, err)
	require.NoError(t, root.Put(context.Background(), "private/notes.txt", strings.NewReader("not billing")))
	require.Equal(t, http.StatusCreated, e.operator.do("POST", "/v1/payers", registration("wayne", payerID, "wayne-cur"), nil))
	e.completeStack(payerID)
	p := e.waitStatus(payerID, workflows.StatusAwaitingApproval)
	require.Equal(t, onboard.Passed, checkNamed(t, p, onboard.CheckBucket).Result)
	role := e.renderedRole(payerID)

	ctx := context.Background()
	base := credentials.NewStaticCredentialsProvider(e.minio.AccessKey, e.minio.SecretKey, "")
	access := payer.Access{Mode: payer.AssumeRole, RoleARN: role.ARN, ExternalID: p.Registration.Access.ExternalID}
	session := awsauth.Session{Purpose: "test", Payer: payerID, Customer: "wayne"}
	cfg, err := awsauth.Config(ctx, access, base, session)
	require.NoError(t, err)
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint, o.UsePathStyle = aws.String(e.minio.Endpoint), true
	})
	denied := func(err error) bool {
		var ae smithy.APIError
		return errors.As(err, &ae) && ae.ErrorCode() == "AccessDenied"
	}

	list, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("wayne-cur"), Prefix: aws.String("cur/")})
	require.NoError(t, err, "the export's prefix is granted")
	require.NotEmpty(t, list.Contents)
	obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("wayne-cur"), Key: list.Contents[0].Key})
	require.NoError(t, err)
	obj.Body.Close()

	_, err = client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("wayne-cur"), Key: aws.String("private/notes.txt")})
	require.True(t, denied(err), "a read outside the granted prefix: %v", err)
	_, err = client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("wayne-cur")})
	require.True(t, denied(err), "a listing of the whole bucket: %v", err)
	_, err = client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("wayne-private"), Key: aws.String("payroll.csv")})
	require.True(t, denied(err), "another bucket: %v", err)
	_, err = client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("wayne-cur"), Key: aws.String("cur/planted.csv"), Body: strings.NewReader("x")})
	require.True(t, denied(err), "a write, even under the prefix: %v", err)

	for _, id := range []*string{nil, aws.String("costlake-guessed")} {
		err := awsauth.AssumeRoleWith(ctx, access, base, session, id)
		require.True(t, denied(err), "AssumeRole without the right external ID: %v", err)
	}
}

// TestScopedKeyNeverDecides: a customer-scoped operator key registers its
// own customer's payer and reads it, but every decision about it is 403,
// before and after activation; an unscoped operator key decides.
func TestScopedKeyNeverDecides(t *testing.T) {
	e := newOnboardEnv(t, fastTiming)
	const payerID = "730987654321"
	e.delivery("globex-cur", payerID)
	e.completeStack(payerID)
	require.Equal(t, http.StatusCreated, e.globex.do("POST", "/v1/payers", registration("globex", payerID, "globex-cur"), nil))
	e.waitStatus(payerID, workflows.StatusAwaitingApproval)
	require.Equal(t, http.StatusOK, e.globex.do("GET", "/v1/payers/"+payerID, "", nil))

	forbidden := func(method, path, body string) {
		t.Helper()
		var b apiErrorBody
		require.Equal(t, http.StatusForbidden, e.globex.do(method, path, body, &b), "%s %s", method, path)
		require.Equal(t, "forbidden", b.Error.Code)
		require.Contains(t, b.Error.Message, "unscoped operator key")
	}
	for _, action := range []string{"stack-deployed", "approve", "request-changes", "reject"} {
		forbidden("POST", "/v1/payers/"+payerID+"/"+action, `{"reason":"r","issues":["i"]}`)
	}
	forbidden("DELETE", "/v1/payers/"+payerID, "")
	require.Equal(t, workflows.StatusAwaitingApproval, e.waitStatus(payerID, workflows.StatusAwaitingApproval).Status, "nothing changed")

	require.Equal(t, http.StatusAccepted, e.operator.do("POST", "/v1/payers/"+payerID+"/approve", "", nil))
	e.waitActive(payerID)
	forbidden("POST", "/v1/payers/"+payerID+"/pause", "")
	forbidden("POST", "/v1/payers/"+payerID+"/resume", "")
	forbidden("DELETE", "/v1/payers/"+payerID, `{"reason":"leaving"}`)
	require.Equal(t, workflows.StatusActive, e.waitStatus(payerID, workflows.StatusActive).Status)
	require.Equal(t, http.StatusOK, e.operator.do("POST", "/v1/payers/"+payerID+"/pause", "", nil))
	require.Equal(t, http.StatusAccepted, e.operator.do("DELETE", "/v1/payers/"+payerID, `{"reason":"leaving"}`, nil))
	e.waitStatus(payerID, workflows.StatusOffboarded)
}

// TestOwnAccountIsNoPayer: costlake's own accounts (its principal's, and
// those listed) are refused at registration, naming the field, and the
// onboarding records why.
func TestOwnAccountIsNoPayer(t *testing.T) {
	e := newOnboardEnvWith(t, fastTiming, func(c *activities.OnboardingConfig) { c.OwnAccountIDs = []string{"888888888888"} })
	for _, own := range []string{"999999999999", "888888888888"} { // testPrincipal's account, the listed one
		var body apiErrorBody
		require.Equal(t, http.StatusBadRequest, e.operator.do("POST", "/v1/payers", registration("acme", own, "acme-cur"), &body), own)
		require.Equal(t, "invalid_request", body.Error.Code)
		require.Contains(t, body.Error.Fields["payer_account_id"], "costlake's own AWS account", own)
		_, p := e.state(e.operator, own)
		require.Equal(t, workflows.StatusFailed, p.Status)
		require.Equal(t, workflows.FailedAtRegistration, p.Failure.Step)
	}
	require.Equal(t, http.StatusCreated, e.operator.do("POST", "/v1/payers", registration("acme", "740987654321", "acme-cur"), nil), "a customer's account is accepted")
}

// TestRoleFromBeforeSourceIdentity: a role whose trust predates
// sts:SetSourceIdentity is still assumed, without a source identity and
// named by its session name; the stack's current role gets both.
func TestRoleFromBeforeSourceIdentity(t *testing.T) {
	emu := awsemu.Start(t)
	t.Setenv("AWS_ENDPOINT_URL_STS", emu.URL)
	base := credentials.NewStaticCredentialsProvider(awsemu.AccessKeyID, awsemu.SecretAccessKey, "")
	emu.SetCaller(awsemu.AccessKeyID, testPrincipal)
	const payerID = "750987654321"
	p := cloudformation.Params{StackName: workflows.DefaultStackName, AuthMode: cloudformation.AuthAssumeRole, CostlakePrincipalArn: testPrincipal, ExternalID: "costlake-ext-old",
		ExportBucket: "old-cur", ExportPrefix: "cur", ExportType: cloudformation.ExportLegacyCUR, ExportName: "billing", RoleName: "costlake-billing-read"}
	roles, err := cloudformation.RenderRoles(p.StackParameters(), payerID, "us-east-1", p.StackName)
	require.NoError(t, err)
	role := roles[0]
	session := awsauth.Session{Purpose: "crawl", Payer: payerID, Customer: "oldco"}
	access := payer.Access{Mode: payer.AssumeRole, RoleARN: role.ARN, ExternalID: p.ExternalID}
	assume := func() awsemu.Session {
		t.Helper()
		cfg, err := awsauth.Config(context.Background(), access, base, session)
		require.NoError(t, err)
		c, err := cfg.Credentials.Retrieve(context.Background())
		require.NoError(t, err)
		s, ok := emu.SessionOf(c.AccessKeyID)
		require.True(t, ok)
		return s
	}

	emu.PutRole(awsemu.Role{ARN: role.ARN, TrustPolicy: role.TrustPolicy, Policies: role.Policies})
	s := assume()
	require.Equal(t, "costlake-crawl-"+payerID+"-oldco", s.RoleSessionName)
	require.Equal(t, "costlake-"+payerID+"-oldco", s.SourceIdentity)

	old := strings.Replace(role.TrustPolicy, `["sts:AssumeRole","sts:SetSourceIdentity"]`, `"sts:AssumeRole"`, 1)
	require.NotEqual(t, role.TrustPolicy, old)
	emu.PutRole(awsemu.Role{ARN: role.ARN, TrustPolicy: old, Policies: role.Policies})
	s = assume()
	require.Equal(t, "costlake-crawl-"+payerID+"-oldco", s.RoleSessionName)
	require.Empty(t, s.SourceIdentity)
}
