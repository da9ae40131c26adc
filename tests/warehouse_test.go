package tests

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/devtools/synth"
	"github.com/costlake/costlake/lakehouse"
	"github.com/costlake/costlake/tests/harness"
)

// TestWarehouseOnObjectStores runs an ingestion with the warehouse on S3
// (MinIO) and on GCS (fake-gcs-server), the production layouts, and
// reconciles the table with the generator's totals.
func TestWarehouseOnObjectStores(t *testing.T) {
	cases := map[string]func(t *testing.T, s *stack) lakehouse.Config{
		"s3": func(t *testing.T, s *stack) lakehouse.Config {
			s.minio.CreateBucket(t, "warehouse")
			return lakehouse.Config{Catalog: testCatalog(s.t, s.dir), Warehouse: "s3://warehouse/costlake", S3: s.minio.S3Options()}
		},
		"gcs": func(t *testing.T, s *stack) lakehouse.Config {
			gcs := harness.FakeGCS(t)
			gcs.CreateBucket(t, "warehouse")
			return lakehouse.Config{Catalog: testCatalog(s.t, s.dir), Warehouse: "gs://warehouse/costlake", GCSEndpoint: gcs.GCSOptions().Endpoint}
		},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			s := newStackWith(t, name == "s3", func(s *stack) lakehouse.Config { return cfg(t, s) })
			root := filepath.Join(t.TempDir(), "bucket")
			gen, err := synth.Generate(context.Background(), blob.NewLocal(root), synth.Options{Prefix: "cur", Report: "wh", Period: "2026-10", Rows: 2000, Files: 2, Seed: 5})
			require.NoError(t, err)
			res, err := s.ingest("file://"+filepath.Join(root, "cur", "wh"), "2026-10")
			require.NoError(t, err)
			requireSynthTotals(t, s, gen, res.PayerAccountID)
		})
	}
}
