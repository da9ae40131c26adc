package blob

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
)

// GCSOptions configure Google Cloud Storage access. An empty Endpoint means
// Google itself with Application Default Credentials.
type GCSOptions struct {
	// Endpoint is the JSON API base URL of an emulator, e.g.
	// http://127.0.0.1:4443/storage/v1/ for fake-gcs-server. When set, requests
	// are sent unauthenticated.
	Endpoint string
	// Identity names who the requests are made as, for error messages;
	// empty means costlake's own credentials.
	Identity string
}

// GCS is a Store on one Google Cloud Storage bucket.
type GCS struct {
	bucket   string
	identity string
	client   *storage.Client
	handle   *storage.BucketHandle
}

// NewGCS returns a store for a GCS bucket. It does not contact GCS, so a
// missing bucket or bad credentials surface on the first call.
func NewGCS(ctx context.Context, bucket string, o GCSOptions) (Store, error) {
	var opts []option.ClientOption
	if o.Endpoint != "" {
		opts = append(opts,
			option.WithEndpoint(o.Endpoint),
			option.WithoutAuthentication(),
			// Reads default to the XML API at the endpoint's host root
			// (/bucket/object), which emulators such as fake-gcs-server only
			// route for their public host name; the JSON API works everywhere.
			storage.WithJSONReads(),
		)
	}
	client, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gs://%s: %w", bucket, err)
	}
	identity := o.Identity
	if identity == "" {
		identity = defaultIdentity
	}
	return &GCS{bucket: bucket, identity: identity, client: client, handle: client.Bucket(bucket)}, nil
}

// Client returns the underlying SDK client.
func (g *GCS) Client() *storage.Client { return g.client }

// Close releases the client's connections; the store is unusable afterwards.
func (g *GCS) Close() error { return g.client.Close() }

func (g *GCS) String() string { return "gs://" + g.bucket }

// wrap names a GCS failure the way S3.wrap does.
func (g *GCS) wrap(err error, op, key string) error {
	url := "gs://" + g.bucket + "/" + key
	var api *googleapi.Error
	status := 0
	if errors.As(err, &api) {
		status = api.Code
	}
	switch {
	case errors.Is(err, storage.ErrBucketNotExist):
		return named(ErrBucketNotFound, err, "%s %s as %s", op, url, g.identity)
	case errors.Is(err, storage.ErrObjectNotExist):
		return named(ErrNotFound, err, "%s as %s", url, g.identity)
	case status == http.StatusForbidden || status == http.StatusUnauthorized:
		return named(ErrAccessDenied, err, "%s %s as %s: %d %s", op, url, g.identity, status, api.Message)
	case status == http.StatusPreconditionFailed:
		return named(ErrChanged, err, "%s", url)
	}
	return fmt.Errorf("%s %s: %w", op, url, err)
}

func (g *GCS) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	return g.OpenPinned(ctx, key, Pin{})
}

// OpenPinned reads the pinned generation: once an object is rewritten its
// old generation is gone (without versioning) or no longer current, and
// the reader's attributes say which generation it reads either way.
func (g *GCS) OpenPinned(ctx context.Context, key string, pin Pin) (io.ReadCloser, error) {
	obj := g.handle.Object(key)
	if pin.Generation != 0 {
		obj = obj.Generation(pin.Generation)
	}
	r, err := obj.NewReader(ctx)
	if err != nil {
		werr := g.wrap(err, "get", key)
		if !pin.IsZero() && errors.Is(werr, ErrNotFound) {
			return nil, named(ErrChanged, err, "gs://%s/%s generation %d is gone", g.bucket, key, pin.Generation)
		}
		return nil, werr
	}
	if pin.IsZero() {
		return r, nil
	}
	if (pin.Generation != 0 && r.Attrs.Generation != pin.Generation) || r.Attrs.Size != pin.Size {
		r.Close()
		return nil, fmt.Errorf("%w: gs://%s/%s is generation %d of %d bytes, pinned %d of %d", ErrChanged, g.bucket, key, r.Attrs.Generation, r.Attrs.Size, pin.Generation, pin.Size)
	}
	return r, nil
}

func (g *GCS) Stat(ctx context.Context, key string) (Info, error) {
	a, err := g.handle.Object(key).Attrs(ctx)
	if err != nil {
		return Info{}, g.wrap(err, "stat", key)
	}
	return gcsInfo(a), nil
}

// gcsInfo converts object attributes. The ETag falls back to the MD5 so that
// callers comparing ETags for change detection always get a value.
func gcsInfo(a *storage.ObjectAttrs) Info {
	etag := a.Etag
	if etag == "" && len(a.MD5) > 0 {
		etag = hex.EncodeToString(a.MD5)
	}
	return Info{Key: a.Name, Size: a.Size, ETag: etag, LastModified: a.Updated.UTC(), Generation: a.Generation}
}

func (g *GCS) Put(ctx context.Context, key string, r io.Reader) error {
	// Cancelling the writer's context is the only way to abort an upload;
	// otherwise Close would commit a truncated object after a read error.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := g.handle.Object(key).NewWriter(ctx)
	if _, err := io.Copy(w, r); err != nil {
		cancel()
		_ = w.Close()
		return g.wrap(err, "put", key)
	}
	if err := w.Close(); err != nil {
		return g.wrap(err, "put", key)
	}
	return nil
}

func (g *GCS) List(ctx context.Context, prefix string) ([]Info, error) {
	var out []Info
	err := g.objects(ctx, &storage.Query{Prefix: prefix}, []string{"Name", "Size", "Etag", "MD5", "Updated", "Generation"},
		func(a *storage.ObjectAttrs) { out = append(out, gcsInfo(a)) })
	if err != nil {
		return nil, err
	}
	// GCS lists in key order already; sorting keeps the contract for
	// emulators that do not.
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (g *GCS) Folders(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	err := g.objects(ctx, &storage.Query{Prefix: prefix, Delimiter: "/"}, []string{"Name"}, func(a *storage.ObjectAttrs) {
		if a.Prefix != "" { // a folder; objects directly under prefix have Name
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(a.Prefix, prefix), "/"))
		}
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(out)
	return out, nil
}

// objects runs fn on every entry q lists, reading only attrs.
func (g *GCS) objects(ctx context.Context, q *storage.Query, attrs []string, fn func(*storage.ObjectAttrs)) error {
	if err := q.SetAttrSelection(attrs); err != nil {
		return err
	}
	it := g.handle.Objects(ctx, q)
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return nil
		}
		if err != nil {
			return g.wrap(err, "list", q.Prefix)
		}
		fn(a)
	}
}

func (g *GCS) Delete(ctx context.Context, key string) error {
	err := g.handle.Object(key).Delete(ctx)
	if err == nil || errors.Is(err, storage.ErrObjectNotExist) {
		return nil
	}
	return g.wrap(err, "delete", key)
}
