package tests

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"

	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/ingest"
	"github.com/costlake/costlake/tests/harness"
	"github.com/costlake/costlake/workflows"
)

// holdChunk holds the first conversion of one chunk until the test
// releases it, so the test can act in the middle of an ingestion.
type holdChunk struct {
	interceptor.WorkerInterceptorBase
	index   int
	reached chan struct{} // closed when the conversion is held
	release chan struct{} // closed by the test to let it go on
	once    sync.Once
}

func newHoldChunk(index int) *holdChunk {
	return &holdChunk{index: index, reached: make(chan struct{}), release: make(chan struct{})}
}

func (h *holdChunk) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	a := &holdActivity{h: h}
	a.Next = next
	return a
}

type holdActivity struct {
	interceptor.ActivityInboundInterceptorBase
	h *holdChunk
}

func (a *holdActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	if activity.GetInfo(ctx).ActivityType.Name == ingest.ConvertChunkActivity && len(in.Args) == 1 {
		if c, ok := in.Args[0].(ingest.ConvertChunkInput); ok && c.ChunkIndex == a.h.index {
			held := false
			a.h.once.Do(func() { held = true })
			if held {
				close(a.h.reached)
				<-a.h.release
			}
		}
	}
	return a.Next.ExecuteActivity(ctx, in)
}

// uploadOverwrite lays a delivery out the way overwrite mode does: the
// chunks and the manifest straight in the period folder, at the same keys
// for every delivery. It returns the manifest and the chunk keys.
func (d delivery) uploadOverwrite(t *testing.T, store blob.Store, bucket string, withManifest bool) []string {
	t.Helper()
	ctx := context.Background()
	m := d.manifest(t, bucket)
	m.ReportKeys = nil
	for i, c := range d.chunks {
		key := fmt.Sprintf("%s/%s-%d.csv.gz", d.folder(t), d.report, i+1)
		m.ReportKeys = append(m.ReportKeys, key)
		require.NoError(t, store.Put(ctx, key, bytes.NewReader(c)))
	}
	if withManifest {
		putManifest(t, store, fmt.Sprintf("%s/%s-Manifest.json", d.folder(t), d.report), m)
	}
	return m.ReportKeys
}

// TestDeliveryRewrittenMidIngestion rewrites an overwrite-mode delivery
// in the middle of an ingestion: chunk 1 is held after chunk 0 of delivery
// A was converted, and AWS's next delivery B replaces the chunks at the
// same keys (and, in the second case, the manifest too). The held
// conversion finds its chunk is not the version pinned when A was located
// (or the manifest names another assembly) and fails with
// DeliveryChanged; the workflow locates the delivery again. With B's
// manifest there it converts B from scratch, and the period equals B
// exactly, with no row of A and no file of the first attempt. Without it,
// B's chunks are newer than A's manifest: a delivery being written, which
// no attempt commits; the ingestion fails with DeliveryChanged and the
// next one, once the manifest lands, commits B.
func TestDeliveryRewrittenMidIngestion(t *testing.T) {
	for _, c := range []struct {
		name         string
		withManifest bool // B's manifest lands before the held conversion goes on
	}{
		{"chunks rewritten, manifest not yet", false},
		{"chunks and manifest rewritten", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			hold := newHoldChunk(1)
			s := newStackOpts(t, stackOptions{minio: harness.MinIO(t), interceptors: []interceptor.WorkerInterceptor{hold}})
			bucket := s.minio.CreateBucket(t, "overwrite")
			a, recordsA := sampleDelivery(t, "cur", "20231203T000000Z")
			a.uploadOverwrite(t, bucket, "overwrite", true)
			// B restates the month: 200 rows fewer, the rest as before.
			recordsB := recordsA[:len(recordsA)-200]
			b := a
			b.assembly, b.chunks = "20231205T000000Z", csvChunks(t, recordsB, 3)

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			run, err := workflows.StartIngestion(ctx, s.client, workflows.IngestBillingPeriodInput{
				Source: "s3://overwrite/cur/cur", Period: billingPeriod("2023-11"), Concurrency: 1,
			})
			require.NoError(t, err)
			select {
			case <-hold.reached:
			case <-ctx.Done():
				t.Fatal("the conversion of chunk 1 never started")
			}
			// AWS writes the data files first and the manifest last, some
			// time after the delivery before (S3 times have whole seconds).
			time.Sleep(1100 * time.Millisecond)
			b.uploadOverwrite(t, bucket, "overwrite", c.withManifest)
			close(hold.release)

			wantRows, wantCosts := sourceTotals(t, recordsB)
			rowsA, _ := sourceTotals(t, recordsA)
			var res workflows.IngestBillingPeriodResult
			if !c.withManifest {
				// B's chunks are newer than A's manifest: every attempt
				// finds a delivery being written and none is committed.
				typ, msg := failureType(t, run.Get(ctx, &res))
				require.Equal(t, ingest.ErrTypeDeliveryChanged, typ)
				require.Contains(t, msg, "written after the manifest")
				gotRows, _ := s.tableTotals(samplePayer, "2023-11")
				require.Empty(t, gotRows, "nothing of A, nothing of B, never a mix")
				require.Empty(t, s.dataFiles(), "every attempt's files are removed")

				// The manifest lands; the next ingestion commits B under
				// its own name.
				b.uploadOverwrite(t, bucket, "overwrite", true)
				res2, err := s.ingest("s3://overwrite/cur/cur", "2023-11")
				require.NoError(t, err)
				require.Equal(t, b.assembly, res2.AssemblyID)
				require.Zero(t, res2.DeliveryChanges)
				gotRows, gotCosts := s.tableTotals(samplePayer, "2023-11")
				requireSameTotals(t, wantRows, wantCosts, gotRows, gotCosts)
				return
			}
			require.NoError(t, run.Get(ctx, &res))
			require.Equal(t, 1, res.DeliveryChanges, "one restart from the new delivery")
			require.Equal(t, int64(len(recordsB)-1), res.Rows)
			gotRows, gotCosts := s.tableTotals(samplePayer, "2023-11")
			requireSameTotals(t, wantRows, wantCosts, gotRows, gotCosts)
			require.NotEqual(t, rowsA, gotRows, "the table must not be delivery A")
			require.Len(t, s.dataFiles(), 3, "the first attempt's files are removed")
			require.Equal(t, b.assembly, res.AssemblyID)
		})
	}
}
