package activities

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/costlake/costlake/internal/awsauth"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/payer"
)

// AWS is how activities reach customers' AWS accounts and buckets:
// costlake's own identity assumes each payer's role.
type AWS struct {
	// Base is costlake's own AWS identity, which assumes customers'
	// roles; nil uses the SDK's default chain (environment, instance role).
	Base aws.CredentialsProvider
	// Blobs opens S3, GCS and local stores (local ones only under its
	// file roots).
	Blobs blob.Opener
	// LocalBuckets holds local payers' buckets as folders (see
	// Config.LocalBuckets); empty refuses local payers.
	LocalBuckets string
}

// billingRegion is where AWS's billing APIs and billing resources live.
const billingRegion = "us-east-1"

// payerConfig returns an aws.Config with the payer's credentials.
func (w AWS) payerConfig(ctx context.Context, access payer.Access, session awsauth.Session) (aws.Config, error) {
	if access.Mode == payer.Local {
		return aws.Config{}, errLocalNoAWS
	}
	cfg, err := awsauth.Config(ctx, access, w.Base, session)
	if err != nil {
		return cfg, classify(err)
	}
	return cfg, nil
}

// openSource opens a delivery's store, with the payer's credentials when
// access is given; session names the role session.
func (w AWS) openSource(ctx context.Context, source string, access *payer.Access, session awsauth.Session) (blob.Store, blob.Location, error) {
	loc, err := blob.ParseLocation(source)
	if err != nil {
		return nil, loc, classify(err)
	}
	if access != nil && access.Mode == payer.Local && loc.Scheme == "s3" {
		store, _, err := w.openLocalBucket(loc.Bucket)
		return store, loc, err
	}
	opener := w.Blobs
	if access != nil && loc.Scheme == "s3" {
		// Messages name the role, so an operator knows whose policy to fix.
		opener.S3.Identity = describeAccess(*access)
		cfg, err := w.payerConfig(ctx, *access, session)
		if err != nil {
			return nil, loc, err
		}
		opener.S3.Credentials = cfg.Credentials
		if access.Region != "" {
			opener.S3.Region = access.Region
		}
	}
	store, err := opener.Open(ctx, loc)
	if err != nil {
		return nil, loc, classify(err)
	}
	return store, loc, nil
}

// checkBucket lists the export prefix with the payer's credentials.
func (w AWS) checkBucket(ctx context.Context, cfg aws.Config, e payer.Export) (blob.Store, string, bool) {
	o := w.Blobs.S3
	o.Credentials = cfg.Credentials
	o.Region = cfg.Region
	store, err := blob.NewS3(ctx, e.Bucket, o)
	if err != nil {
		return nil, fmt.Sprintf("could not build an S3 client: %v", err), false
	}
	url := "s3://" + e.Bucket + "/" + e.Prefix
	_, err = store.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(e.Bucket), Prefix: aws.String(e.Prefix), MaxKeys: aws.Int32(1)})
	if err != nil {
		code, msg := awsError(err)
		switch code {
		case "NoSuchBucket":
			return nil, fmt.Sprintf("bucket %s does not exist: check export.bucket, or let the stack create it (export.create_bucket).", e.Bucket), false
		case "AccessDenied":
			return nil, fmt.Sprintf("the role may not list %s (%s): the stack's policy grants s3:ListBucket on the export bucket; check the bucket name and any bucket policy that denies it.", url, msg), false
		case "PermanentRedirect", "AuthorizationHeaderMalformed":
			return nil, fmt.Sprintf("bucket %s is not in region %s (%s): set export.region to the bucket's region.", e.Bucket, cfg.Region, msg), false
		}
		return nil, fmt.Sprintf("could not list %s: %s %s", url, code, msg), false
	}
	return store, "can list " + url, true
}

// awsError names an AWS error by its code and message, for people.
func awsError(err error) (code, msg string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorMessage()
	}
	return "", err.Error()
}

// apiErrorCode is an AWS error's code; "" for nil or a non-AWS error.
func apiErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
