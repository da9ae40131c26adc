// Package awsauth turns a payer's access settings (payer.Access) into AWS
// credentials: an assumed role with an external ID, web-identity
// federation, or static keys named by a secret reference. Credentials are
// resolved here, inside activities, and never leave the worker.
package awsauth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/costlake/costlake/internal/payer"
)

// Config returns an aws.Config whose credentials are the payer's. Service
// endpoints follow the SDK's standard settings (AWS_ENDPOINT_URL_STS and
// the like), which is how tests point STS at MinIO. base, when not nil,
// replaces costlake's own credentials (the default chain) for AssumeRole.
func Config(ctx context.Context, a payer.Access, base aws.CredentialsProvider, sessionName string) (aws.Config, error) {
	if err := a.Validate(); err != nil {
		return aws.Config{}, err
	}
	region := a.Region
	if region == "" {
		region = "us-east-1"
	}
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region)}
	if base != nil {
		opts = append(opts, awsconfig.WithCredentialsProvider(base))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	if sessionName == "" {
		sessionName = "costlake"
	}
	switch a.Mode {
	case payer.AssumeRole:
		p := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), a.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = sessionName
			if a.ExternalID != "" {
				o.ExternalID = aws.String(a.ExternalID)
			}
			o.Duration = time.Hour
		})
		cfg.Credentials = aws.NewCredentialsCache(p)
	case payer.WebIdentity:
		p := stscreds.NewWebIdentityRoleProvider(sts.NewFromConfig(cfg), a.RoleARN, stscreds.IdentityTokenFile(a.TokenFile),
			func(o *stscreds.WebIdentityRoleOptions) { o.RoleSessionName = sessionName })
		cfg.Credentials = aws.NewCredentialsCache(p)
	case payer.AccessKeys:
		prefix := strings.TrimPrefix(a.SecretRef, "env:")
		id, secret := os.Getenv(prefix+"_AWS_ACCESS_KEY_ID"), os.Getenv(prefix+"_AWS_SECRET_ACCESS_KEY")
		if id == "" || secret == "" {
			return aws.Config{}, fmt.Errorf("%w: secret %s: %s_AWS_ACCESS_KEY_ID and %s_AWS_SECRET_ACCESS_KEY are not both set on this worker", ErrMissingSecret, a.SecretRef, prefix, prefix)
		}
		cfg.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(id, secret, os.Getenv(prefix+"_AWS_SESSION_TOKEN")))
	}
	return cfg, nil
}

// ErrMissingSecret reports a secret reference the worker cannot resolve.
var ErrMissingSecret = errors.New("secret not found")
