package tests

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/internal/awsauth"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/tests/harness"
)

// TestAssumeRoleThroughMinIOSTS assumes a role through MinIO's STS, the
// real AssumeRole wire protocol, and reads a bucket with the temporary
// credentials.
func TestAssumeRoleThroughMinIOSTS(t *testing.T) {
	m := harness.MinIO(t)
	m.CreateBucket(t, "customer-cur")
	t.Setenv("AWS_ENDPOINT_URL_STS", m.Endpoint)
	ctx := context.Background()
	base := credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, "")
	cfg, err := awsauth.Config(ctx, payer.Access{Mode: payer.AssumeRole, RoleARN: "arn:aws:iam::123456789012:role/costlake-billing-read", ExternalID: "costlake-ext-1234"}, base, awsauth.Session{Purpose: "test"})
	require.NoError(t, err)
	creds, err := cfg.Credentials.Retrieve(ctx)
	require.NoError(t, err)
	require.NotEqual(t, m.AccessKey, creds.AccessKeyID)
	require.NotEmpty(t, creds.SessionToken)
	o := m.S3Options()
	o.Credentials = cfg.Credentials
	s, err := blob.NewS3(ctx, "customer-cur", o)
	require.NoError(t, err)
	_, err = s.List(ctx, "")
	require.NoError(t, err)
	_ = aws.String
}
