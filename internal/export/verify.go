package export

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strings"

	"cloud.google.com/go/storage"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"google.golang.org/api/googleapi"

	"github.com/costlake/costlake/internal/blob"
)

// Reason classifies why a destination failed verification.
type Reason string

const (
	// ReasonPermission: the credentials may not do one step; Missing names
	// the permission (s3:PutObject, storage.objects.create, …).
	ReasonPermission Reason = "permission_denied"
	// ReasonBucketNotFound: the bucket does not exist (S3 NoSuchBucket,
	// GCS 404 on the bucket).
	ReasonBucketNotFound Reason = "bucket_not_found"
	// ReasonCredentials: the credentials themselves do not work: unknown
	// or expired keys, or a role that cannot be assumed (Missing is then
	// sts:AssumeRole when STS denied it).
	ReasonCredentials Reason = "invalid_credentials"
	// ReasonError: anything else (network, server errors, a probe that
	// read back wrong); Message says what.
	ReasonError Reason = "error"
)

// Steps of a verification, in order.
const (
	StepPut    = "put"
	StepList   = "list"
	StepGet    = "get"
	StepDelete = "delete"
)

// Permissions each step needs, per store kind.
var (
	S3Permissions = map[string]string{
		StepPut: "s3:PutObject", StepList: "s3:ListBucket", StepGet: "s3:GetObject", StepDelete: "s3:DeleteObject",
	}
	GCSPermissions = map[string]string{
		StepPut: "storage.objects.create", StepList: "storage.objects.list", StepGet: "storage.objects.get", StepDelete: "storage.objects.delete",
	}
)

// VerifyError is a failed verification: which step, why, and for a denied
// step the exact permission missing.
type VerifyError struct {
	Store   string // "s3://bucket", "gs://bucket", "file:///"
	Key     string // the probe object's key
	Step    string // StepPut, StepList, StepGet or StepDelete
	Reason  Reason
	Missing string // the permission missing when Reason is ReasonPermission (or sts:AssumeRole)
	Code    string // the provider's error code: "AccessDenied", "NoSuchBucket", "403", …
	// ProbeLeft is set when the probe object was written but could not be
	// removed.
	ProbeLeft bool
	Err       error
}

func (e *VerifyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "verify %s: %s %s: ", e.Store, e.Step, e.Key)
	switch e.Reason {
	case ReasonPermission:
		fmt.Fprintf(&b, "permission %s is missing", e.Missing)
	case ReasonBucketNotFound:
		fmt.Fprintf(&b, "bucket %s does not exist", bucketOf(e.Store))
	case ReasonCredentials:
		b.WriteString("the credentials are not valid")
		if e.Missing != "" {
			fmt.Fprintf(&b, " (permission %s is missing)", e.Missing)
		}
	default:
		b.WriteString("failed")
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.ProbeLeft {
		fmt.Fprintf(&b, "; the probe object %s could not be removed", e.Key)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *VerifyError) Unwrap() error { return e.Err }

func bucketOf(store string) string {
	_, rest, ok := strings.Cut(store, "://")
	if !ok {
		return store
	}
	return strings.TrimSuffix(rest, "/")
}

// VerifyResult is what POST /v1/exports/verify answers.
type VerifyResult struct {
	OK      bool   `json:"ok"`
	Reason  Reason `json:"reason,omitempty"`
	Step    string `json:"step,omitempty"`
	Missing string `json:"missing,omitempty"`
	Message string `json:"message"`
}

// Result turns Verify's error into a VerifyResult.
func Result(err error) VerifyResult {
	if err == nil {
		return VerifyResult{OK: true, Message: "the destination accepts exports: a probe object was written, listed and removed"}
	}
	var ve *VerifyError
	if errors.As(err, &ve) {
		return VerifyResult{Reason: ve.Reason, Step: ve.Step, Missing: ve.Missing, Message: ve.Error()}
	}
	return VerifyResult{Reason: ReasonError, Message: err.Error()}
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// ReadBack also reads the probe back (needs s3:GetObject /
	// storage.objects.get, which exports themselves do not need).
	ReadBack bool
}

// Verify checks that an export can be written under prefix in store: it
// writes a small probe object, lists it (exports list to remove stale
// parts), optionally reads it back, and deletes it (exports overwrite and
// remove files). A failure is a *VerifyError naming the step and, when
// the store denied it, the exact permission missing.
func Verify(ctx context.Context, store blob.Store, prefix string, opts ...VerifyOptions) error {
	var o VerifyOptions
	for _, x := range opts {
		o.ReadBack = o.ReadBack || x.ReadBack
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	key := strings.TrimPrefix(path.Join(strings.Trim(prefix, "/"), "costlake-verify-"+hex.EncodeToString(rnd[:])+".txt"), "/")
	body := "costlake export destination check; safe to delete\n"
	kind := storeKind(store)
	fail := func(step string, err error) *VerifyError {
		return classify(kind, store.String(), key, step, err)
	}

	if err := store.Put(ctx, key, strings.NewReader(body)); err != nil {
		return fail(StepPut, err)
	}
	// From here on the probe exists: whatever fails, try to remove it.
	var verr *VerifyError
	infos, err := store.List(ctx, key)
	switch {
	case err != nil:
		verr = fail(StepList, err)
	case len(infos) != 1 || infos[0].Key != key:
		verr = fail(StepList, fmt.Errorf("listing %s did not return the probe just written", key))
	}
	if verr == nil && o.ReadBack {
		if got, err := readProbe(ctx, store, key); err != nil {
			verr = fail(StepGet, err)
		} else if got != body {
			verr = fail(StepGet, fmt.Errorf("the probe read back differs from what was written"))
		}
	}
	if err := store.Delete(ctx, key); err != nil {
		if verr != nil {
			verr.ProbeLeft = true
			return verr
		}
		e := fail(StepDelete, err)
		e.ProbeLeft = true
		return e
	}
	if verr != nil {
		return verr
	}
	return nil
}

func readProbe(ctx context.Context, store blob.Store, key string) (string, error) {
	rc, err := store.Open(ctx, key)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	return string(b), err
}

type kind int

const (
	kindOther kind = iota
	kindS3
	kindGCS
	kindFile
)

func storeKind(s blob.Store) kind {
	switch s.(type) {
	case *blob.S3:
		return kindS3
	case *blob.GCS:
		return kindGCS
	case *blob.Local:
		return kindFile
	}
	switch name := s.String(); {
	case strings.HasPrefix(name, "s3://"):
		return kindS3
	case strings.HasPrefix(name, "gs://"):
		return kindGCS
	case strings.HasPrefix(name, "file://"):
		return kindFile
	}
	return kindOther
}

var (
	s3ActionInMessage  = regexp.MustCompile(`\b((?:s3|kms):[A-Za-z]+)\b`)
	gcsPermInMessage   = regexp.MustCompile(`\bstorage\.(?:objects|buckets)\.[a-zA-Z]+\b`)
	s3CredentialCodes  = map[string]bool{"InvalidAccessKeyId": true, "SignatureDoesNotMatch": true, "ExpiredToken": true, "InvalidToken": true, "TokenRefreshRequired": true, "InvalidClientTokenId": true}
	s3PermissionCodes  = map[string]bool{"AccessDenied": true, "Forbidden": true, "AllAccessDisabled": true, "AccountProblem": true}
	s3BucketCodes      = map[string]bool{"NoSuchBucket": true}
	permissionForFiles = map[string]string{StepPut: "write permission on the folder", StepList: "read permission on the folder", StepGet: "read permission on the file", StepDelete: "write permission on the folder"}
)

// classify maps an SDK error to a VerifyError.
func classify(k kind, store, key, step string, err error) *VerifyError {
	e := &VerifyError{Store: store, Key: key, Step: step, Reason: ReasonError, Err: err}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return e
	}
	// A role that cannot be assumed fails inside the S3 call's credential
	// retrieval with STS's own AccessDenied: not an S3 permission.
	if sts := operationError(err, "STS"); sts != nil {
		e.Reason = ReasonCredentials
		var api smithy.APIError
		if errors.As(sts, &api) {
			e.Code = api.ErrorCode()
			if s3PermissionCodes[e.Code] {
				e.Missing = "sts:" + sts.OperationName
			}
		}
		return e
	}
	switch k {
	case kindS3:
		classifyS3(e, err)
	case kindGCS:
		classifyGCS(e, err)
	case kindFile:
		if errors.Is(err, fs.ErrPermission) {
			e.Reason, e.Missing = ReasonPermission, permissionForFiles[step]
		}
	}
	return e
}

func classifyS3(e *VerifyError, err error) {
	var api smithy.APIError
	code, msg := "", ""
	if errors.As(err, &api) {
		code, msg = api.ErrorCode(), api.ErrorMessage()
	}
	status := 0
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	if code == "" && status != 0 {
		code = http.StatusText(status)
	}
	e.Code = code
	switch {
	case s3BucketCodes[code] || (status == http.StatusNotFound && e.Step != StepGet):
		e.Reason = ReasonBucketNotFound
	case s3CredentialCodes[code]:
		e.Reason = ReasonCredentials
	case s3PermissionCodes[code] || status == http.StatusForbidden:
		e.Reason = ReasonPermission
		e.Missing = S3Permissions[e.Step]
		// AWS names the denied action ("… not authorized to perform:
		// s3:PutObject …", or kms:GenerateDataKey for an SSE-KMS bucket).
		if m := s3ActionInMessage.FindStringSubmatch(msg); m != nil {
			e.Missing = m[1]
		}
	}
}

func classifyGCS(e *VerifyError, err error) {
	if errors.Is(err, storage.ErrBucketNotExist) {
		e.Reason, e.Code = ReasonBucketNotFound, "404"
		return
	}
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) {
		return
	}
	e.Code = fmt.Sprint(gerr.Code)
	msg := gerr.Message
	for _, it := range gerr.Errors {
		msg += " " + it.Message + " " + it.Reason
	}
	switch gerr.Code {
	case http.StatusUnauthorized:
		e.Reason = ReasonCredentials
	case http.StatusForbidden:
		e.Reason = ReasonPermission
		e.Missing = GCSPermissions[e.Step]
		// GCS names it: "… does not have storage.objects.create access to …".
		if m := gcsPermInMessage.FindString(msg); m != "" {
			e.Missing = m
		}
	case http.StatusNotFound:
		// A 404 on writing or listing can only be the bucket; on reading
		// or deleting the probe just written, the same holds.
		e.Reason = ReasonBucketNotFound
	}
}

// operationError finds, anywhere in err's chain, the SDK operation error of
// a service (e.g. "STS"); errors.As would stop at the outermost (S3) one.
func operationError(err error, service string) *smithy.OperationError {
	var found *smithy.OperationError
	var walk func(error) bool
	walk = func(err error) bool {
		for err != nil {
			if oe, ok := err.(*smithy.OperationError); ok && oe.ServiceID == service {
				found = oe
				return true
			}
			if m, ok := err.(interface{ Unwrap() []error }); ok {
				for _, e := range m.Unwrap() {
					if walk(e) {
						return true
					}
				}
				return false
			}
			err = errors.Unwrap(err)
		}
		return false
	}
	walk(err)
	return found
}
