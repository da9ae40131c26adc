package harness

import (
	"context"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/costlake/costlake/internal/blob"
)

// GCSServer is a fake-gcs-server running inside the test process on a
// loopback HTTP port. It keeps objects in memory.
type GCSServer struct {
	// URL is the server's base URL, e.g. "http://127.0.0.1:PORT".
	URL string
	// Server gives direct access to the fake's state, e.g. to seed objects.
	Server *fakestorage.Server
}

// FakeGCS starts a fake-gcs-server for the duration of the test.
func FakeGCS(t testing.TB) *GCSServer {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http",
		Host:   "127.0.0.1",
		// Port 0 lets httptest pick a free loopback port itself, which
		// avoids the race a separately probed port would have.
		Port:       0,
		NoListener: false,
	})
	if err != nil {
		t.Fatalf("harness: start fake-gcs-server: %v", err)
	}
	t.Cleanup(srv.Stop)
	return &GCSServer{URL: srv.URL(), Server: srv}
}

// GCSOptions points blob.NewGCS at this server.
func (g *GCSServer) GCSOptions() blob.GCSOptions {
	return blob.GCSOptions{Endpoint: g.URL + "/storage/v1/"}
}

// CreateBucket creates an empty bucket and returns a store on it. The store
// is closed when the test ends.
func (g *GCSServer) CreateBucket(t testing.TB, name string) blob.Store {
	t.Helper()
	g.Server.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: name})
	s, err := blob.NewGCS(context.Background(), name, g.GCSOptions())
	if err != nil {
		t.Fatalf("harness: open gs://%s: %v", name, err)
	}
	if c, ok := s.(interface{ Close() error }); ok {
		t.Cleanup(func() { _ = c.Close() })
	}
	return s
}
