package tests

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/internal/awsauth"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/tests/harness"
)

// webIdentityRoleARN is an AWS-shaped role ARN, as payer.Access requires.
// MinIO runs in claim-based mode (the token's policy claim picks the
// policy) and ignores a RoleArn that is not one of its own role-policy
// ARNs; those look like arn:minio:iam:::role/<id>, which payer.Access
// rightly rejects, so MinIO's role-policy mode cannot be used here.
const webIdentityRoleARN = "arn:aws:iam::123456789012:role/costlake-billing-read"

// writeToken writes an ID token where the worker's token file would be.
func writeToken(t *testing.T, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(p, []byte(token), 0o600))
	return p
}

// TestWebIdentityThroughMinIOSTS federates an OIDC token into temporary
// credentials through MinIO's AssumeRoleWithWebIdentity, the real wire
// protocol, and reads a bucket with them; tokens that are expired, signed
// by a key the issuer does not publish, meant for another audience or
// without a policy claim are refused by STS with the reason.
func TestWebIdentityThroughMinIOSTS(t *testing.T) {
	issuer := harness.OIDC(t)
	m := harness.MinIOWithOIDC(t, issuer)
	ctx := context.Background()
	root := m.CreateBucket(t, "customer-cur")
	const key, body = "cur/costlake/manifest.json", `{"assemblyId":"1"}`
	require.NoError(t, root.Put(ctx, key, strings.NewReader(body)))
	t.Setenv("AWS_ENDPOINT_URL_STS", m.Endpoint)

	t.Run("valid token", func(t *testing.T) {
		tokenFile := writeToken(t, issuer.Token(t, harness.IDToken{
			Claims: map[string]any{harness.OIDCPolicyClaim: "readwrite"},
		}))
		cfg, err := awsauth.Config(ctx, payer.Access{Mode: payer.WebIdentity, RoleARN: webIdentityRoleARN, TokenFile: tokenFile}, nil, awsauth.Session{Purpose: "test"})
		require.NoError(t, err)
		creds, err := cfg.Credentials.Retrieve(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, creds.AccessKeyID)
		require.NotEqual(t, m.AccessKey, creds.AccessKeyID)
		require.NotEmpty(t, creds.SessionToken)
		require.True(t, creds.CanExpire)
		require.True(t, creds.Expires.After(time.Now()), "expires %v", creds.Expires)

		o := m.S3Options()
		o.AccessKeyID, o.SecretAccessKey = "", ""
		o.Credentials = cfg.Credentials
		s, err := blob.NewS3(ctx, "customer-cur", o)
		require.NoError(t, err)
		infos, err := s.List(ctx, "cur/")
		require.NoError(t, err)
		require.Len(t, infos, 1)
		require.Equal(t, key, infos[0].Key)
		rc, err := s.Open(ctx, key)
		require.NoError(t, err)
		defer rc.Close()
		got, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.Equal(t, body, string(got))
	})

	forger, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	policy := map[string]any{harness.OIDCPolicyClaim: "readwrite"}
	for _, tc := range []struct {
		name  string
		token harness.IDToken
		want  string // in STS's error message, case-insensitive
	}{
		{"expired token", harness.IDToken{IssuedAt: time.Now().Add(-2 * time.Hour), ExpiresAt: time.Now().Add(-time.Hour), Claims: policy}, "expired"},
		{"wrongly signed token", harness.IDToken{SignWith: forger, Claims: policy}, "verification error"},
		{"token for another audience", harness.IDToken{Audience: "someone-else", Claims: policy}, "must match configured openid client id"},
		{"token without policy claim", harness.IDToken{}, "policy claim missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tokenFile := writeToken(t, issuer.Token(t, tc.token))
			cfg, err := awsauth.Config(ctx, payer.Access{Mode: payer.WebIdentity, RoleARN: webIdentityRoleARN, TokenFile: tokenFile}, nil, awsauth.Session{Purpose: "test"})
			require.NoError(t, err)
			_, err = cfg.Credentials.Retrieve(ctx)
			require.Error(t, err)
			t.Logf("STS said: %v", err)
			var apiErr smithy.APIError
			require.True(t, errors.As(err, &apiErr), "not an STS API error: %v", err)
			require.Equal(t, "InvalidParameterValue", apiErr.ErrorCode())
			require.Contains(t, strings.ToLower(apiErr.ErrorMessage()), tc.want)
		})
	}
}
