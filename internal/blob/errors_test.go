package blob

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"cloud.google.com/go/storage"
	"github.com/aws/smithy-go"
	"google.golang.org/api/googleapi"
)

// TestErrorsAreNamed checks how provider errors are named: the emulators
// cannot produce every one (fake-gcs-server checks no permissions), so
// the providers' own error values are classified here.
func TestErrorsAreNamed(t *testing.T) {
	s3 := &S3{bucket: "b", identity: "role arn:aws:iam::123456789012:role/r (web identity)"}
	gcs := &GCS{bucket: "g", identity: "costlake's own credentials"}
	sts := &smithy.OperationError{ServiceID: "STS", OperationName: "AssumeRole", Err: &smithy.GenericAPIError{Code: "AccessDenied", Message: "not authorized to perform sts:AssumeRole"}}
	for _, c := range []struct {
		name   string
		err    error
		want   error
		wantIn []string
	}{
		{"S3 AccessDenied", s3.wrap(&smithy.GenericAPIError{Code: "AccessDenied", Message: "Access Denied"}, "get", "k"), ErrAccessDenied, []string{"get s3://b/k", "role arn:aws:iam::123456789012:role/r", "AccessDenied"}},
		{"S3 HEAD 403", s3.wrap(&smithy.GenericAPIError{Code: "Forbidden"}, "stat", "k"), ErrAccessDenied, []string{"stat s3://b/k", "role arn:"}},
		{"S3 wrong secret", s3.wrap(&smithy.GenericAPIError{Code: "SignatureDoesNotMatch"}, "list", "p/"), ErrAccessDenied, []string{"list s3://b/p/"}},
		{"STS refuses the role", s3.wrap(fmt.Errorf("operation error S3: GetObject: failed to refresh cached credentials, %w", sts), "get", "k"), ErrAccessDenied, []string{"the role could not be assumed", "sts:AssumeRole"}},
		{"S3 NoSuchBucket", s3.wrap(&smithy.GenericAPIError{Code: "NoSuchBucket"}, "list", "p/"), ErrBucketNotFound, []string{"s3://b/p/", "role arn:"}},
		{"S3 NoSuchKey", s3.wrap(&smithy.GenericAPIError{Code: "NoSuchKey"}, "get", "k"), ErrNotFound, []string{"s3://b/k"}},
		{"S3 If-Match failed", s3.wrap(&smithy.GenericAPIError{Code: "PreconditionFailed"}, "get", "k"), ErrChanged, []string{"s3://b/k"}},
		{"GCS 403", gcs.wrap(&googleapi.Error{Code: 403, Message: "caller does not have storage.objects.get access"}, "get", "k"), ErrAccessDenied, []string{"get gs://g/k", "costlake's own credentials", "storage.objects.get"}},
		{"GCS 401", gcs.wrap(&googleapi.Error{Code: 401, Message: "Invalid Credentials"}, "list", "p/"), ErrAccessDenied, []string{"list gs://g/p/"}},
		{"GCS missing bucket", gcs.wrap(fmt.Errorf("%w: 404", storage.ErrBucketNotExist), "list", "p/"), ErrBucketNotFound, []string{"gs://g/p/"}},
		{"GCS missing object", gcs.wrap(storage.ErrObjectNotExist, "get", "k"), ErrNotFound, []string{"gs://g/k"}},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v is not %v", c.name, c.err, c.want)
		}
		for _, w := range c.wantIn {
			if !strings.Contains(c.err.Error(), w) {
				t.Errorf("%s: %q does not say %q", c.name, c.err, w)
			}
		}
	}
	// The provider's error stays in the chain.
	var api smithy.APIError
	if err := s3.wrap(&smithy.GenericAPIError{Code: "AccessDenied"}, "get", "k"); !errors.As(err, &api) || api.ErrorCode() != "AccessDenied" {
		t.Errorf("the S3 error is lost: %v", err)
	}
}
