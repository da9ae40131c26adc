package tests

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/contract/ingest"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/tests/harness"
	"github.com/costlake/costlake/workflows"
)

// ingestAs runs an ingestion with the payer's access settings and returns
// its error and the most attempts any of its activities took.
func (s *stack) ingestAs(source, period string, access *payer.Access) (*workflows.IngestBillingPeriodResult, int32, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run, err := workflows.StartIngestion(ctx, s.client, workflows.IngestBillingPeriodInput{Source: source, Period: billingPeriod(period), Access: access})
	require.NoError(s.t, err)
	var res workflows.IngestBillingPeriodResult
	err = run.Get(ctx, &res)
	var attempts int32
	it := s.client.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, herr := it.Next()
		require.NoError(s.t, herr)
		if st := e.GetActivityTaskStartedEventAttributes(); st != nil {
			attempts = max(attempts, st.GetAttempt())
		}
	}
	return &res, attempts, err
}

// requireNamedFailure checks a failed ingestion: its type, that it was not
// retried (non-retryable, and no activity ran a second attempt), and what
// its message says and must not say.
func requireNamedFailure(t *testing.T, err error, attempts int32, wantType string, wantIn, notIn []string) {
	t.Helper()
	require.Error(t, err)
	typ, msg := failureType(t, err)
	require.Equal(t, wantType, typ, msg)
	var app *temporal.ApplicationError
	require.ErrorAs(t, err, &app)
	require.True(t, app.NonRetryable(), "a %s is final", typ)
	require.Equal(t, int32(1), attempts, "a %s must not be retried", typ)
	for _, w := range wantIn {
		require.Contains(t, msg, w)
	}
	for _, n := range notIn {
		require.NotContains(t, msg, n)
	}
}

// TestS3SourceErrorsAreNamed reads deliveries through MinIO with the
// identities a payer can be reached by: a role whose temporary
// credentials may not read the bucket (MinIO's writeonly policy, through
// AssumeRoleWithWebIdentity), keys MinIO does not accept, a bucket that
// does not exist and a manifest naming a key that does not. Each fails
// the ingestion at once with its named type, the URL and the identity,
// never a secret.
func TestS3SourceErrorsAreNamed(t *testing.T) {
	issuer := harness.OIDC(t)
	m := harness.MinIOWithOIDC(t, issuer)
	t.Setenv("AWS_ENDPOINT_URL_STS", m.Endpoint)
	s := newStackOpts(t, stackOptions{minio: m})
	bucket := m.CreateBucket(t, "customer-cur")
	good, _ := sampleDelivery(t, "sample", "20231203T041213Z")
	good.upload(t, bucket, "customer-cur")
	missing, _ := sampleDelivery(t, "missing-key", "20231204T000000Z")
	manifest := missing.upload(t, bucket, "customer-cur")
	require.NoError(t, bucket.Delete(context.Background(), manifest.ReportKeys[1]))

	roleWith := func(policy string) *payer.Access {
		token := issuer.Token(t, harness.IDToken{Claims: map[string]any{harness.OIDCPolicyClaim: policy}})
		return &payer.Access{Mode: payer.WebIdentity, RoleARN: webIdentityRoleARN, TokenFile: writeToken(t, token)}
	}
	const wrongSecret = "not-the-secret-of-costlake-0123456789"
	t.Setenv("BADKEYS_AWS_ACCESS_KEY_ID", m.AccessKey)
	t.Setenv("BADKEYS_AWS_SECRET_ACCESS_KEY", wrongSecret)
	secrets := []string{m.SecretKey, wrongSecret}

	t.Run("role may not read the bucket", func(t *testing.T) {
		access := roleWith("writeonly")
		_, attempts, err := s.ingestAs("s3://customer-cur/cur/sample", "2023-11", access)
		token, rerr := readFile(access.TokenFile)
		require.NoError(t, rerr)
		requireNamedFailure(t, err, attempts, ingest.ErrTypeAccessDenied,
			[]string{"s3://customer-cur/cur/sample/", webIdentityRoleARN},
			append(secrets, token))
	})
	t.Run("keys the store does not accept", func(t *testing.T) {
		_, attempts, err := s.ingestAs("s3://customer-cur/cur/sample", "2023-11", &payer.Access{Mode: payer.AccessKeys, SecretRef: "env:BADKEYS"})
		requireNamedFailure(t, err, attempts, ingest.ErrTypeAccessDenied,
			[]string{"s3://customer-cur/cur/sample/", "env:BADKEYS"}, secrets)
	})
	t.Run("role that cannot be assumed", func(t *testing.T) {
		// costlake's own keys, which assume the role, are wrong: STS refuses.
		t.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", wrongSecret)
		const role = "arn:aws:iam::123456789012:role/costlake-billing-read"
		_, attempts, err := s.ingestAs("s3://customer-cur/cur/sample", "2023-11", &payer.Access{Mode: payer.AssumeRole, RoleARN: role, ExternalID: "costlake-ext-1234"})
		requireNamedFailure(t, err, attempts, ingest.ErrTypeAccessDenied,
			[]string{"s3://customer-cur/cur/sample/", "role " + role, "the role could not be assumed"}, secrets)
	})
	t.Run("bucket does not exist", func(t *testing.T) {
		_, attempts, err := s.ingestAs("s3://no-such-bucket/cur/sample", "2023-11", roleWith("readwrite"))
		requireNamedFailure(t, err, attempts, ingest.ErrTypeBucketNotFound,
			[]string{"s3://no-such-bucket/cur/sample/", webIdentityRoleARN}, secrets)
	})
	t.Run("manifest names a missing key", func(t *testing.T) {
		_, attempts, err := s.ingestAs("s3://customer-cur/cur/missing-key", "2023-11", roleWith("readwrite"))
		requireNamedFailure(t, err, attempts, ingest.ErrTypeChunkNotFound,
			[]string{"s3://customer-cur/" + manifest.ReportKeys[1], "missing-key-Manifest.json", webIdentityRoleARN}, secrets)
	})
	t.Run("the same role with read access ingests", func(t *testing.T) {
		res, _, err := s.ingestAs("s3://customer-cur/cur/sample", "2023-11", roleWith("readwrite"))
		require.NoError(t, err)
		require.Equal(t, samplePayer, res.PayerAccountID)
	})
	require.NotZero(t, s.currentSnapshot(), "the good ingestion committed")
}

// TestGCSSourceErrorsAreNamed ingests from fake-gcs-server: a good
// delivery reconciles exactly (its chunks read pinned to their
// generations), a missing bucket and a key the manifest names that does
// not exist fail at once with their named types and URLs. (The emulator
// does not check permissions, so AccessDenied cannot be produced here.)
func TestGCSSourceErrorsAreNamed(t *testing.T) {
	g := harness.FakeGCS(t)
	s := newStackOpts(t, stackOptions{gcs: g})
	bucket := g.CreateBucket(t, "customer-cur")
	good, records := sampleDelivery(t, "sample", "20231203T041213Z")
	good.upload(t, bucket, "customer-cur")
	missing, _ := sampleDelivery(t, "missing-key", "20231204T000000Z")
	manifest := missing.upload(t, bucket, "customer-cur")
	require.NoError(t, bucket.Delete(context.Background(), manifest.ReportKeys[2]))

	res, _, err := s.ingestAs("gs://customer-cur/cur/sample", "2023-11", nil)
	require.NoError(t, err)
	wantRows, wantCosts := sourceTotals(t, records)
	gotRows, gotCosts := s.tableTotals(res.PayerAccountID, "2023-11")
	requireSameTotals(t, wantRows, wantCosts, gotRows, gotCosts)

	_, attempts, err := s.ingestAs("gs://no-such-bucket/cur/sample", "2023-11", nil)
	requireNamedFailure(t, err, attempts, ingest.ErrTypeBucketNotFound, []string{"gs://no-such-bucket/cur/sample/"}, nil)
	_, attempts, err = s.ingestAs("gs://customer-cur/cur/missing-key", "2023-11", nil)
	requireNamedFailure(t, err, attempts, ingest.ErrTypeChunkNotFound, []string{"gs://customer-cur/" + manifest.ReportKeys[2]}, nil)
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}
