// Package awsauth turns a payer's access settings (payer.Access) into AWS
// credentials: an assumed role with an external ID, web-identity
// federation, or static keys named by a secret reference. Credentials are
// resolved here, inside activities, and never leave the worker.
package awsauth

import (
	"cmp"
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
	"github.com/aws/smithy-go"

	"github.com/costlake/costlake/internal/payer"
)

// Session says who a role session acts for. It becomes the session's
// RoleSessionName and SourceIdentity, so the customer's CloudTrail names
// the payer and customer behind every call costlake makes.
type Session struct {
	Purpose  string // what the session does: onboarding, crawl, ingest, export
	Payer    string // the payer account ID
	Customer string // the customer ID; may be empty where a step does not know it
}

// STS allows 2 to 64 characters of [\w+=,.@-] in RoleSessionName and
// SourceIdentity.
const maxSessionName = 64

// Name is the RoleSessionName: costlake-<purpose>-<payer>-<customer>,
// without empty parts, cut to STS's 64 characters.
func (s Session) Name() string {
	return sessionString("costlake", s.Purpose, s.Payer, s.Customer)
}

// SourceIdentity is costlake-<payer>-<customer>: it stays on the session
// and on any session chained from it, whatever the purpose.
func (s Session) SourceIdentity() string {
	return sessionString("costlake", s.Payer, s.Customer)
}

func sessionString(parts ...string) string {
	var kept []string
	for _, p := range parts {
		p = strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("_+=,.@-", r):
				return r
			}
			return '-'
		}, p)
		if p != "" {
			kept = append(kept, p)
		}
	}
	out := strings.Join(kept, "-")
	if len(out) > maxSessionName {
		out = out[:maxSessionName]
	}
	return out
}

// Config returns an aws.Config whose credentials are the payer's. Service
// endpoints follow the SDK's standard settings (AWS_ENDPOINT_URL_STS and
// the like), which is how tests point STS at the emulator. base, when not
// nil, replaces costlake's own credentials (the default chain) for
// AssumeRole.
func Config(ctx context.Context, a payer.Access, base aws.CredentialsProvider, session Session) (aws.Config, error) {
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
	sessionName := session.Name()
	if len(sessionName) < 2 {
		sessionName = "costlake"
	}
	switch a.Mode {
	case payer.AssumeRole:
		client := sts.NewFromConfig(cfg)
		assume := func(source string) aws.CredentialsProvider {
			return stscreds.NewAssumeRoleProvider(client, a.RoleARN, func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = sessionName
				if a.ExternalID != "" {
					o.ExternalID = aws.String(a.ExternalID)
				}
				if source != "" {
					o.SourceIdentity = aws.String(source)
				}
				o.Duration = time.Hour
			})
		}
		var p aws.CredentialsProvider = assume("")
		// A source identity names someone: a payer, or the customer of an
		// export (which reaches no payer); "costlake" alone would not.
		if si := session.SourceIdentity(); (session.Payer != "" || session.Customer != "") && len(si) >= 2 {
			p = sourceIdentityProvider{with: assume(si), without: p}
		}
		cfg.Credentials = aws.NewCredentialsCache(p)
	case payer.WebIdentity:
		// A web identity session's source identity comes from the token's
		// claims, not from the caller: the session name carries the payer.
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

// sourceIdentityProvider assumes the role with a source identity, which
// the customer stack's trust policy allows (sts:SetSourceIdentity), and
// without one when the role's trust does not allow it (a stack deployed
// before it did), so such a role keeps working, named by its session
// name alone.
type sourceIdentityProvider struct {
	with, without aws.CredentialsProvider
}

func (p sourceIdentityProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := p.with.Retrieve(ctx)
	var ae smithy.APIError
	if err != nil && errors.As(err, &ae) && ae.ErrorCode() == "AccessDenied" && strings.Contains(ae.ErrorMessage(), "sts:SetSourceIdentity") {
		return p.without.Retrieve(ctx)
	}
	return c, err
}

// AssumeRoleWith assumes the role of an assume_role access with the given
// external ID instead of its own (nil: none at all), and returns STS's
// answer. The credentials check uses it to prove the role refuses a
// caller without the right external ID.
func AssumeRoleWith(ctx context.Context, a payer.Access, base aws.CredentialsProvider, session Session, externalID *string) error {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(cmp.Or(a.Region, "us-east-1"))}
	if base != nil {
		opts = append(opts, awsconfig.WithCredentialsProvider(base))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return fmt.Errorf("load AWS config: %w", err)
	}
	// No source identity: a trust that does not allow sts:SetSourceIdentity
	// would refuse for that reason and hide a missing external ID check.
	in := &sts.AssumeRoleInput{RoleArn: aws.String(a.RoleARN), RoleSessionName: aws.String(cmp.Or(session.Name(), "costlake")), ExternalId: externalID}
	_, err = sts.NewFromConfig(cfg).AssumeRole(ctx, in)
	return err
}

// ErrMissingSecret reports a secret reference the worker cannot resolve.
var ErrMissingSecret = errors.New("secret not found")
