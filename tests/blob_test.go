package tests

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/tests/harness"
)

// backend is one Store implementation under the conformance suite.
type backend struct {
	name string
	open func(t *testing.T) blob.Store
	// multipartParts, when non-zero, is the part count the big object must
	// be uploaded in, checked through the S3 multipart ETag suffix "-N".
	multipartParts int
}

// bigSize is larger than both the S3 upload manager's 5 MiB part size and
// the GCS writer's 16 MiB chunk size, so both upload in several pieces.
const bigSize = 17 << 20

func TestBlobConformance(t *testing.T) {
	backends := []backend{
		{name: "local", open: func(t *testing.T) blob.Store { return blob.NewLocal(t.TempDir()) }},
		{name: "s3-minio", multipartParts: 4, open: func(t *testing.T) blob.Store {
			return harness.MinIO(t).CreateBucket(t, "conformance")
		}},
		{name: "s3-minio-container", multipartParts: 4, open: func(t *testing.T) blob.Store {
			return harness.MinIOContainer(t).CreateBucket(t, "conformance")
		}},
		{name: "gcs-fake", open: func(t *testing.T) blob.Store {
			return harness.FakeGCS(t).CreateBucket(t, "conformance")
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			s := b.open(t)
			t.Logf("%s ready in %v", s, time.Since(start).Round(time.Millisecond))
			runConformance(t, s, b.multipartParts)
		})
	}
}

// runConformance checks the Store contract. Subtests share the store and
// keep to their own key prefixes, so they do not see each other's objects.
func runConformance(t *testing.T, s blob.Store, multipartParts int) {
	ctx := context.Background()

	t.Run("PutOpenRoundTrip", func(t *testing.T) {
		for _, tc := range []struct{ key, body string }{
			{"roundtrip/hello.txt", "hello, costlake\n"},
			{"roundtrip/empty", ""},
			{"roundtrip/deep/nested/key with spaces.csv", "a,b\n1,2\n"},
		} {
			require.NoError(t, s.Put(ctx, tc.key, strings.NewReader(tc.body)), tc.key)
			assert.Equal(t, tc.body, readAll(t, s, tc.key), tc.key)
		}
		// Put replaces.
		require.NoError(t, s.Put(ctx, "roundtrip/hello.txt", strings.NewReader("v2")))
		assert.Equal(t, "v2", readAll(t, s, "roundtrip/hello.txt"))
	})

	t.Run("PutBigStreamed", func(t *testing.T) {
		const key = "big/object.bin"
		// onlyReader hides Seek/Len, so stores cannot learn the size up
		// front and must stream (for S3: a multipart upload).
		src := io.LimitReader(rand.NewChaCha8([32]byte{1}), bigSize)
		h := sha256.New()
		start := time.Now()
		require.NoError(t, s.Put(ctx, key, onlyReader{io.TeeReader(src, h)}))
		t.Logf("put %d MiB in %v", bigSize>>20, time.Since(start).Round(time.Millisecond))
		want := h.Sum(nil)

		rc, err := s.Open(ctx, key)
		require.NoError(t, err)
		defer rc.Close()
		h.Reset()
		n, err := io.Copy(h, rc)
		require.NoError(t, err)
		assert.EqualValues(t, bigSize, n)
		assert.True(t, bytes.Equal(want, h.Sum(nil)), "content differs after round trip")

		info, err := s.Stat(ctx, key)
		require.NoError(t, err)
		assert.EqualValues(t, bigSize, info.Size)
		if multipartParts > 0 {
			// S3 ETags of multipart objects end in "-<parts>".
			assert.True(t, strings.HasSuffix(info.ETag, "-"+strconv.Itoa(multipartParts)),
				"ETag %q: want a %d-part multipart upload", info.ETag, multipartParts)
		}
	})

	t.Run("Stat", func(t *testing.T) {
		const key = "stat/file.txt"
		require.NoError(t, s.Put(ctx, key, strings.NewReader("12345")))
		info, err := s.Stat(ctx, key)
		require.NoError(t, err)
		assert.Equal(t, key, info.Key)
		assert.EqualValues(t, 5, info.Size)
		assert.NotEmpty(t, info.ETag)
		assert.False(t, info.LastModified.IsZero())
	})

	t.Run("ListByPrefix", func(t *testing.T) {
		// Written out of order; "10" sorts between "1" and "2".
		for _, k := range []string{"list/a/2", "list/b/1", "list/a/10", "list/ab", "list/a/1", "lists/x"} {
			require.NoError(t, s.Put(ctx, k, strings.NewReader(k)))
		}
		for _, tc := range []struct {
			prefix string
			want   []string
		}{
			{"list/a/", []string{"list/a/1", "list/a/10", "list/a/2"}},
			{"list/a", []string{"list/a/1", "list/a/10", "list/a/2", "list/ab"}},
			{"list/", []string{"list/a/1", "list/a/10", "list/a/2", "list/ab", "list/b/1"}},
			{"list/nothing/", nil},
			{"nothing", nil},
		} {
			infos, err := s.List(ctx, tc.prefix)
			require.NoError(t, err, tc.prefix)
			var got []string
			for _, in := range infos {
				got = append(got, in.Key)
				assert.EqualValues(t, len(in.Key), in.Size, in.Key)
			}
			assert.Equal(t, tc.want, got, "List(%q)", tc.prefix)
		}
		// Folders: one level, the objects directly under it left out.
		require.NoError(t, s.Put(ctx, "list/a/deep/er/x", strings.NewReader("x")))
		for _, tc := range []struct {
			prefix string
			want   []string
		}{
			{"list/", []string{"a", "b"}},
			{"list/a/", []string{"deep"}},
			{"list/b/", nil},
			{"nothing/", nil},
		} {
			folders, err := s.Folders(ctx, tc.prefix)
			require.NoError(t, err, tc.prefix)
			assert.Equal(t, tc.want, folders, "Folders(%q)", tc.prefix)
		}
	})

	t.Run("MissingIsNotFound", func(t *testing.T) {
		_, err := s.Open(ctx, "missing/nope")
		assert.True(t, errors.Is(err, blob.ErrNotFound), "Open: %v", err)
		_, err = s.Stat(ctx, "missing/nope")
		assert.True(t, errors.Is(err, blob.ErrNotFound), "Stat: %v", err)
	})

	t.Run("OpenPinned", func(t *testing.T) {
		const key = "pinned/chunk.csv"
		require.NoError(t, s.Put(ctx, key, strings.NewReader("version 1")))
		info, err := s.Stat(ctx, key)
		require.NoError(t, err)
		pin := info.Pin()
		assert.Equal(t, "version 1", readPinned(t, s, key, pin))

		// Rewritten between the Stat and the read, to the same size: the
		// read itself must notice.
		require.NoError(t, s.Put(ctx, key, strings.NewReader("version 2")))
		_, err = s.OpenPinned(ctx, key, pin)
		assert.True(t, errors.Is(err, blob.ErrChanged), "OpenPinned of a rewritten object: %v", err)

		// A listing pins the same way.
		infos, err := s.List(ctx, "pinned/")
		require.NoError(t, err)
		require.Len(t, infos, 1)
		assert.Equal(t, "version 2", readPinned(t, s, key, infos[0].Pin()))

		require.NoError(t, s.Delete(ctx, key))
		_, err = s.OpenPinned(ctx, key, infos[0].Pin())
		assert.True(t, errors.Is(err, blob.ErrChanged), "OpenPinned of a removed object: %v", err)
		assert.False(t, errors.Is(err, blob.ErrNotFound), "a pinned object that went is a change, not a missing key: %v", err)
		_, err = s.OpenPinned(ctx, key, blob.Pin{})
		assert.True(t, errors.Is(err, blob.ErrNotFound), "OpenPinned without a pin: %v", err)
	})

	t.Run("Delete", func(t *testing.T) {
		const key = "delete/me"
		require.NoError(t, s.Put(ctx, key, strings.NewReader("x")))
		require.NoError(t, s.Delete(ctx, key))
		_, err := s.Stat(ctx, key)
		assert.True(t, errors.Is(err, blob.ErrNotFound), "Stat after Delete: %v", err)
		assert.NoError(t, s.Delete(ctx, key), "deleting again")
		assert.NoError(t, s.Delete(ctx, "delete/never-existed"))
	})
}

func TestParseLocation(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		want    blob.Location
		wantErr bool
	}{
		{raw: "s3://bucket/a/b", want: blob.Location{Scheme: "s3", Bucket: "bucket", Prefix: "a/b"}},
		{raw: "s3://bucket/a/b/", want: blob.Location{Scheme: "s3", Bucket: "bucket", Prefix: "a/b"}},
		{raw: "s3://bucket", want: blob.Location{Scheme: "s3", Bucket: "bucket"}},
		{raw: "gs://bucket/p", want: blob.Location{Scheme: "gs", Bucket: "bucket", Prefix: "p"}},
		{raw: "file:///a/b", want: blob.Location{Scheme: "file", Prefix: "a/b"}},
		{raw: "file://localhost/a/b", want: blob.Location{Scheme: "file", Prefix: "a/b"}},
		{raw: "/a/b", want: blob.Location{Scheme: "file", Prefix: "a/b"}},
		{raw: "/a/../b/", want: blob.Location{Scheme: "file", Prefix: "b"}},
		{raw: "http://example.com/a", wantErr: true},
		{raw: "azure://container/a", wantErr: true},
		{raw: "relative/path", wantErr: true},
		{raw: "s3:///no-bucket", wantErr: true},
		{raw: "gs://", wantErr: true},
		{raw: "file://host/a", wantErr: true},
		{raw: "", wantErr: true},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := blob.ParseLocation(tc.raw)
			if tc.wantErr {
				assert.True(t, errors.Is(err, blob.ErrUnsupportedURL), "err = %v, location = %+v", err, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// readAll returns the whole object at key.
func readAll(t *testing.T, s blob.Store, key string) string {
	t.Helper()
	rc, err := s.Open(context.Background(), key)
	require.NoError(t, err, key)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err, key)
	return string(b)
}

func readPinned(t *testing.T, s blob.Store, key string, pin blob.Pin) string {
	t.Helper()
	rc, err := s.OpenPinned(context.Background(), key, pin)
	require.NoError(t, err, key)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err, key)
	return string(b)
}

// onlyReader strips every method but Read from a reader.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }
