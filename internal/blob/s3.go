package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3Options configure S3 access. An empty Endpoint means AWS itself; with
// empty keys the SDK's default credential chain applies (environment,
// shared config, instance role).
type S3Options struct {
	Endpoint        string // e.g. http://127.0.0.1:9000 for MinIO
	Region          string // default us-east-1
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// Credentials, when set, wins over the keys: e.g. a payer's assumed
	// role from awsauth.
	Credentials aws.CredentialsProvider
	// Identity names who the requests are made as, for error messages:
	// e.g. "role arn:aws:iam::…:role/…". Never a key or a token. Empty
	// means costlake's own credentials.
	Identity string
}

// S3 is a Store on one S3 bucket.
type S3 struct {
	bucket   string
	identity string
	client   *s3.Client
}

// NewS3 returns a store for bucket. Custom endpoints use path-style
// addressing, which every S3-compatible server accepts.
func NewS3(ctx context.Context, bucket string, o S3Options) (*S3, error) {
	region := o.Region
	if region == "" {
		region = "us-east-1"
	}
	loadOpts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region)}
	switch {
	case o.Credentials != nil:
		loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(o.Credentials))
	case o.AccessKeyID != "":
		loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, o.SessionToken)))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
			so.UsePathStyle = true
		}
	})
	identity := o.Identity
	if identity == "" {
		identity = defaultIdentity
	}
	return &S3{bucket: bucket, identity: identity, client: client}, nil
}

// Client returns the underlying SDK client.
func (s *S3) Client() *s3.Client { return s.client }

func (s *S3) String() string { return "s3://" + s.bucket }

// accessDeniedCodes are the S3 (and STS, when a role cannot be assumed)
// error codes that mean the credentials may not do this; a HEAD has no
// body, so its 403 only says Forbidden.
var accessDeniedCodes = map[string]bool{
	"AccessDenied": true, "Forbidden": true, "AllAccessDisabled": true, "AccountProblem": true,
	"InvalidAccessKeyId": true, "SignatureDoesNotMatch": true, "InvalidClientTokenId": true,
}

// wrap names an S3 failure by what it means for the caller: a missing key
// (ErrNotFound), a missing bucket, refused credentials, or a failed
// precondition (ErrChanged). The URL and the identity used go into the
// message; the SDK's messages never carry keys.
func (s *S3) wrap(err error, op, key string) error {
	url := "s3://" + s.bucket + "/" + key
	code, msg := "", ""
	var api smithy.APIError
	if errors.As(err, &api) {
		code, msg = api.ErrorCode(), api.ErrorMessage()
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var nsb *types.NoSuchBucket
	switch {
	case errors.As(err, &nsb) || code == "NoSuchBucket":
		return named(ErrBucketNotFound, err, "%s %s as %s: %s", op, url, s.identity, code)
	case accessDeniedCodes[code] && fromSTS(err):
		return named(ErrAccessDenied, err, "%s %s as %s: the role could not be assumed: %s: %s", op, url, s.identity, code, msg)
	case accessDeniedCodes[code]:
		return named(ErrAccessDenied, err, "%s %s as %s: %s: %s", op, url, s.identity, code, msg)
	case errors.As(err, &nsk) || errors.As(err, &nf) || code == "NoSuchKey" || code == "NotFound":
		return named(ErrNotFound, err, "%s as %s", url, s.identity)
	case code == "PreconditionFailed":
		return named(ErrChanged, err, "%s", url)
	}
	return fmt.Errorf("%s %s: %w", op, url, err)
}

// fromSTS reports whether an error came from STS, not S3: the credentials
// of an assumed role could not be had.
func fromSTS(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if op, ok := e.(*smithy.OperationError); ok && op.ServiceID == "STS" {
			return true
		}
	}
	return false
}

func (s *S3) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	return s.OpenPinned(ctx, key, Pin{})
}

func (s *S3) OpenPinned(ctx context.Context, key string, pin Pin) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: &s.bucket, Key: &key}
	if pin.ETag != "" {
		in.IfMatch = aws.String(`"` + pin.ETag + `"`)
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		werr := s.wrap(err, "get", key)
		if !pin.IsZero() && errors.Is(werr, ErrNotFound) {
			return nil, named(ErrChanged, err, "s3://%s/%s is gone", s.bucket, key)
		}
		return nil, werr
	}
	if !pin.IsZero() && aws.ToInt64(out.ContentLength) != pin.Size {
		out.Body.Close()
		return nil, fmt.Errorf("%w: s3://%s/%s has %d bytes, pinned %d", ErrChanged, s.bucket, key, aws.ToInt64(out.ContentLength), pin.Size)
	}
	return out.Body, nil
}

func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return Info{}, s.wrap(err, "stat", key)
	}
	return Info{
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         strings.Trim(aws.ToString(out.ETag), `"`),
		LastModified: aws.ToTime(out.LastModified).UTC(),
	}, nil
}

func (s *S3) Put(ctx context.Context, key string, r io.Reader) error {
	// The upload manager streams in parts, so memory stays bounded for
	// readers of unknown length. Its successor, feature/s3/transfermanager,
	// is still a v0 preview.
	//lint:ignore SA1019 move to transfermanager once it is stable
	_, err := manager.NewUploader(s.client).Upload(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: &key, Body: r})
	if err != nil {
		return s.wrap(err, "put", key)
	}
	return nil
}

func (s *S3) List(ctx context.Context, prefix string) ([]Info, error) {
	var out []Info
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.wrap(err, "list", prefix)
		}
		for _, o := range page.Contents {
			out = append(out, Info{
				Key:          aws.ToString(o.Key),
				Size:         aws.ToInt64(o.Size),
				ETag:         strings.Trim(aws.ToString(o.ETag), `"`),
				LastModified: aws.ToTime(o.LastModified).UTC(),
			})
		}
	}
	return out, nil
}

func (s *S3) Folders(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix, Delimiter: aws.String("/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.wrap(err, "list", prefix)
		}
		for _, cp := range page.CommonPrefixes {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/"))
		}
	}
	sort.Strings(out)
	return out, nil
}

func (s *S3) Delete(ctx context.Context, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return s.wrap(err, "delete", key)
	}
	return nil
}
