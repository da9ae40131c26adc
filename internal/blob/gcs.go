package blob

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"

	"cloud.google.com/go/storage"
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
}

// GCS is a Store on one Google Cloud Storage bucket.
type GCS struct {
	bucket string
	client *storage.Client
	handle *storage.BucketHandle
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
	return &GCS{bucket: bucket, client: client, handle: client.Bucket(bucket)}, nil
}

// Client returns the underlying SDK client.
func (g *GCS) Client() *storage.Client { return g.client }

// Close releases the client's connections; the store is unusable afterwards.
func (g *GCS) Close() error { return g.client.Close() }

func (g *GCS) String() string { return "gs://" + g.bucket }

func (g *GCS) wrap(err error, op, key string) error {
	if errors.Is(err, storage.ErrObjectNotExist) {
		return fmt.Errorf("%w: gs://%s/%s", ErrNotFound, g.bucket, key)
	}
	return fmt.Errorf("%s gs://%s/%s: %w", op, g.bucket, key, err)
}

func (g *GCS) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	r, err := g.handle.Object(key).NewReader(ctx)
	if err != nil {
		return nil, g.wrap(err, "open", key)
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
	return Info{Key: a.Name, Size: a.Size, ETag: etag, LastModified: a.Updated.UTC()}
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
		return fmt.Errorf("put gs://%s/%s: %w", g.bucket, key, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("put gs://%s/%s: %w", g.bucket, key, err)
	}
	return nil
}

func (g *GCS) List(ctx context.Context, prefix string) ([]Info, error) {
	q := &storage.Query{Prefix: prefix}
	if err := q.SetAttrSelection([]string{"Name", "Size", "Etag", "MD5", "Updated"}); err != nil {
		return nil, err
	}
	var out []Info
	it := g.handle.Objects(ctx, q)
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list gs://%s/%s: %w", g.bucket, prefix, err)
		}
		out = append(out, gcsInfo(a))
	}
	// GCS lists in key order already; sorting keeps the contract for
	// emulators that do not.
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (g *GCS) Delete(ctx context.Context, key string) error {
	err := g.handle.Object(key).Delete(ctx)
	if err == nil || errors.Is(err, storage.ErrObjectNotExist) {
		return nil
	}
	return fmt.Errorf("delete gs://%s/%s: %w", g.bucket, key, err)
}
