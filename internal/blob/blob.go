// Package blob is the small object-store interface costlake reads billing
// deliveries from and writes exports to: a local folder, S3 (or any
// S3-compatible store such as MinIO) and GCS behind one API.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
	"time"
)

// ErrNotFound reports a key that does not exist.
var ErrNotFound = errors.New("object not found")

// ErrUnsupportedURL reports a location URL whose scheme costlake cannot open.
var ErrUnsupportedURL = errors.New("unsupported location URL")

// ErrAccessDenied reports a store that refused the credentials used: no
// permission, or credentials it does not accept. Retrying does not help.
var ErrAccessDenied = errors.New("access denied")

// ErrBucketNotFound reports a bucket that does not exist.
var ErrBucketNotFound = errors.New("bucket not found")

// ErrOutsideRoot reports a file:// location, or a key of a local store,
// outside the local folders the worker is configured to use.
var ErrOutsideRoot = errors.New("outside the local folders costlake may use")

// ErrChanged reports an object that is no longer the version a reader
// pinned: it was rewritten or removed since.
var ErrChanged = errors.New("object changed since it was pinned")

// storeError is a store failure named by kind (ErrNotFound,
// ErrAccessDenied, …) with a short message for people; the provider's own
// error stays in the chain for callers that look closer (export checks).
type storeError struct {
	kind  error
	msg   string
	cause error
}

func (e *storeError) Error() string   { return e.kind.Error() + ": " + e.msg }
func (e *storeError) Unwrap() []error { return []error{e.kind, e.cause} }

func named(kind, cause error, format string, args ...any) error {
	return &storeError{kind: kind, msg: fmt.Sprintf(format, args...), cause: cause}
}

// defaultIdentity names the worker's own credentials in messages.
const defaultIdentity = "costlake's own credentials"

// Info describes one object.
type Info struct {
	Key          string
	Size         int64
	ETag         string
	LastModified time.Time
	Generation   int64 // GCS only: the object's generation
}

// Pin is one version of an object, as a reader holds on to it: the ETag and
// size a listing or Stat reported, and on GCS the generation.
type Pin struct {
	ETag       string
	Size       int64
	Generation int64
}

// Pin returns the version the info describes.
func (i Info) Pin() Pin { return Pin{ETag: i.ETag, Size: i.Size, Generation: i.Generation} }

// IsZero reports a pin that pins nothing.
func (p Pin) IsZero() bool { return p == Pin{} }

// Store is a flat key space (a bucket, or a folder on disk). Keys use "/"
// and never start with one. Implementations are safe for concurrent use.
type Store interface {
	// Open streams an object; a missing key returns an error wrapping ErrNotFound.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// OpenPinned streams an object only if it is still the version pinned,
	// checked by the read itself (a conditional GET, or the generation), so
	// a rewrite between a Stat and this read is caught too: another version,
	// or no object, returns an error wrapping ErrChanged. A zero pin opens
	// whatever is there, like Open.
	OpenPinned(ctx context.Context, key string, pin Pin) (io.ReadCloser, error)
	// Stat describes an object; a missing key returns an error wrapping ErrNotFound.
	Stat(ctx context.Context, key string) (Info, error)
	// Put writes an object from r, replacing any object at key.
	Put(ctx context.Context, key string, r io.Reader) error
	// List returns every object whose key starts with prefix, in key order.
	List(ctx context.Context, prefix string) ([]Info, error)
	// Folders returns the names of the folders directly under prefix
	// (empty, or ending in "/"), sorted: one level, however many objects
	// lie below, so a lookup costs what the folders cost, not the history.
	Folders(ctx context.Context, prefix string) ([]string, error)
	// Delete removes an object; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// String names the store for messages, e.g. "s3://bucket".
	String() string
}

// Location is a URL split into the store that holds it and the key prefix
// inside that store: s3://bucket/a/b is bucket "bucket", prefix "a/b";
// file:///srv/cur/a/b is the root folder "/", prefix "srv/cur/a/b".
type Location struct {
	Scheme string // "s3", "gs" or "file"
	Bucket string // empty for "file"
	Prefix string // no leading or trailing slash
}

// ParseLocation parses s3://, gs:// and file:// URLs. A bare absolute path
// is taken as file://.
func ParseLocation(raw string) (Location, error) {
	if strings.HasPrefix(raw, "/") {
		raw = "file://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Location{}, fmt.Errorf("%w %q: %v", ErrUnsupportedURL, raw, err)
	}
	switch u.Scheme {
	case "s3", "gs":
		if u.Host == "" {
			return Location{}, fmt.Errorf("%w %q: no bucket", ErrUnsupportedURL, raw)
		}
		return Location{Scheme: u.Scheme, Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}, nil
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return Location{}, fmt.Errorf("%w %q: file URLs need an absolute path (file:///path)", ErrUnsupportedURL, raw)
		}
		p := path.Clean(u.Path)
		if !path.IsAbs(p) {
			return Location{}, fmt.Errorf("%w %q: file URLs need an absolute path (file:///path)", ErrUnsupportedURL, raw)
		}
		return Location{Scheme: "file", Prefix: strings.Trim(p, "/")}, nil
	default:
		return Location{}, fmt.Errorf("%w %q: want s3://, gs:// or file://", ErrUnsupportedURL, raw)
	}
}

// String returns the location as a URL.
func (l Location) String() string {
	if l.Scheme == "file" {
		return "file:///" + l.Prefix
	}
	return l.Scheme + "://" + l.Bucket + "/" + l.Prefix
}

// Key joins the location's prefix with a relative key.
func (l Location) Key(rel ...string) string {
	parts := append([]string{l.Prefix}, rel...)
	return strings.TrimPrefix(path.Join(parts...), "/")
}

// Opener opens the store behind a location; the worker holds one configured
// with its S3 endpoint and credentials.
type Opener struct {
	S3  S3Options
	GCS GCSOptions
	// FileRoots are the local folders (absolute paths) that file://
	// locations may name; none refuses every file:// location. A source
	// or destination is a customer's input, and a worker's disk holds its
	// credentials and other customers' data.
	FileRoots []string
}

// Open returns the store that holds loc.
func (o Opener) Open(ctx context.Context, loc Location) (Store, error) {
	switch loc.Scheme {
	case "file":
		l := NewLocalUnder(o.FileRoots)
		if _, err := l.resolveReal(loc.Prefix, false); err != nil {
			return nil, err
		}
		return l, nil
	case "s3":
		return NewS3(ctx, loc.Bucket, o.S3)
	case "gs":
		return NewGCS(ctx, loc.Bucket, o.GCS)
	default:
		return nil, fmt.Errorf("%w: scheme %q", ErrUnsupportedURL, loc.Scheme)
	}
}

// URLOf returns the URL of a key in the location's store (not relative to
// the prefix): s3://bucket/key or file:///key.
func (l Location) URLOf(key string) string {
	return l.Scheme + "://" + l.Bucket + "/" + key
}
