package tests

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/costlake/costlake/activities"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/ingest"
	"github.com/costlake/costlake/internal/devtools/synth"
	"github.com/costlake/costlake/lakehouse"
)

// BenchmarkConvertChunk measures the ConvertChunk activity alone: one
// generated csv.gz chunk of 100,000 rows × 141 legacy columns, read from a
// local folder, typed and written as zstd Parquet into the warehouse.
//
//	go test -run '^$' -bench ConvertChunk -benchtime 3x ./tests/
func BenchmarkConvertChunk(b *testing.B) {
	const rows = 100_000
	ctx := context.Background()
	dir := b.TempDir()
	root := filepath.Join(dir, "bucket")
	gen, err := synth.Generate(ctx, blob.NewLocal(root), synth.Options{Prefix: "cur", Report: "bench", Period: "2026-10", Rows: rows, Files: 1, Seed: 3})
	if err != nil {
		b.Fatal(err)
	}
	lake, err := lakehouse.Open(ctx, lakehouse.Config{Catalog: testCatalog(b, dir), Warehouse: "file://" + filepath.Join(dir, "warehouse")})
	if err != nil {
		b.Fatal(err)
	}
	defer lake.Close()
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(&activities.Ingest{Lake: lake, AWS: activities.AWS{Blobs: blob.Opener{FileRoots: testFileRoots}}})
	source := "file://" + filepath.Join(root, "cur", "bench")
	loc, err := env.ExecuteActivity(ingest.LocateDeliveryActivity, ingest.LocateDeliveryInput{Source: source, Period: billingPeriod("2026-10")})
	if err != nil {
		b.Fatal(err)
	}
	var located ingest.LocateDeliveryResult
	if err := loc.Get(&located); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		_, err := env.ExecuteActivity(ingest.ConvertChunkActivity, ingest.ConvertChunkInput{
			Source: source, Period: billingPeriod("2026-10"), Format: located.Format, ManifestKey: located.ManifestKey, AssemblyID: gen.AssemblyID,
			ChunkKey: located.ChunkKeys[0], PayerAccountID: located.PayerAccountID, FilePrefix: "bench",
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/time.Since(start).Seconds(), "rows/s")
}
