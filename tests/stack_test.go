package tests

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/costlake/costlake/activities"
	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/cur"
	"github.com/costlake/costlake/lakehouse"
	"github.com/costlake/costlake/tests/harness"
	"github.com/costlake/costlake/worker"
	"github.com/costlake/costlake/workflows"
)

// stack is a real Temporal server, a worker with the real activities, a
// SQLite Iceberg catalog with a local warehouse, and optionally MinIO.
type stack struct {
	t      *testing.T
	client client.Client
	lake   *lakehouse.Lake
	minio  *harness.MinIOServer
	dir    string
}

// testFileRoots are the local folders a test worker may read and write
// through file:// URLs: the tests' temporary folders.
var testFileRoots = []string{os.TempDir()}

func newStack(t *testing.T, withMinIO bool) *stack {
	t.Helper()
	return newStackWith(t, withMinIO, func(s *stack) lakehouse.Config {
		return lakehouse.Config{Catalog: testCatalog(s.t, s.dir), Warehouse: "file://" + filepath.Join(s.dir, "warehouse")}
	})
}

// newStackWith lets a test choose the lakehouse configuration, e.g. a
// warehouse on MinIO.
func newStackWith(t *testing.T, withMinIO bool, lakeConfig func(*stack) lakehouse.Config) *stack {
	t.Helper()
	o := stackOptions{lakeConfig: lakeConfig}
	if withMinIO {
		o.minio = harness.MinIO(t)
	}
	return newStackOpts(t, o)
}

// stackOptions are the parts a test may choose.
type stackOptions struct {
	minio      *harness.MinIOServer // the worker's S3; nil for none
	gcs        *harness.GCSServer   // the worker's GCS; nil for none
	lakeConfig func(*stack) lakehouse.Config
	// interceptors wrap the worker's activities, e.g. to hold one at a
	// point the test controls.
	interceptors []interceptor.WorkerInterceptor
	// limits bound each data file the worker reads; zero: the defaults.
	limits cur.Limits
	// fileRoots are the folders file:// URLs may name; nil: testFileRoots.
	fileRoots []string
	// workers is how many workers poll the task queue, each with a lake
	// of its own on the same catalog and warehouse (as worker processes
	// have); 0 means 1. They are named worker-1, worker-2, ….
	workers int
}

func newStackOpts(t *testing.T, o stackOptions) *stack {
	t.Helper()
	s := &stack{t: t, dir: t.TempDir(), minio: o.minio}
	opener := blob.Opener{FileRoots: testFileRoots}
	if o.fileRoots != nil {
		opener.FileRoots = o.fileRoots
	}
	if o.minio != nil {
		opener.S3 = o.minio.S3Options()
	}
	if o.gcs != nil {
		opener.GCS = o.gcs.GCSOptions()
	}
	if o.lakeConfig == nil {
		o.lakeConfig = func(s *stack) lakehouse.Config {
			return lakehouse.Config{Catalog: testCatalog(s.t, s.dir), Warehouse: "file://" + filepath.Join(s.dir, "warehouse")}
		}
	}
	ctx := context.Background()
	lake, err := lakehouse.Open(ctx, o.lakeConfig(s))
	require.NoError(t, err)
	t.Cleanup(func() { lake.Close() })
	s.lake = lake

	ts := newTemporal(t)
	s.client = ts.GetDefaultClient()
	for i := 1; i <= max(o.workers, 1); i++ {
		wlake := lake
		if i > 1 {
			wlake, err = lakehouse.Open(ctx, o.lakeConfig(s))
			require.NoError(t, err)
			t.Cleanup(func() { wlake.Close() })
		}
		acts := activities.New(activities.Config{Lake: wlake, Blobs: opener, Limits: o.limits, Temporal: s.client})
		ts.NewWorkerWithOptions(workflows.TaskQueue, func(r sdkworker.Registry) { worker.Register(r, acts) },
			sdkworker.Options{MaxConcurrentActivityExecutionSize: 4, Interceptors: o.interceptors, Identity: fmt.Sprintf("worker-%d", i)})
	}
	return s
}

// ingest runs IngestBillingPeriod to its end.
func (s *stack) ingest(source, period string) (*workflows.IngestBillingPeriodResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run, err := workflows.StartIngestion(ctx, s.client, workflows.IngestBillingPeriodInput{Source: source, Period: billingPeriod(period)})
	require.NoError(s.t, err)
	var res workflows.IngestBillingPeriodResult
	if err := run.Get(ctx, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// tableTotals reads billing.line_items through the catalog, with
// iceberg-go's own scan, and sums unblended cost per usage account with
// shopspring/decimal: code independent of costlake's money package.
func (s *stack) tableTotals(payer, period string) (rows map[string]int, costs map[string]decimal.Decimal) {
	s.t.Helper()
	return s.tableSums(billing.LineItems, payer, period)
}

// tableSums is tableTotals for any billing table: rows and cost per
// account of one payer's period.
func (s *stack) tableSums(bs *billing.Schema, payer, period string) (rows map[string]int, costs map[string]decimal.Decimal) {
	s.t.Helper()
	ctx := context.Background()
	tbl, err := s.lake.Catalog().LoadTable(ctx, lakehouse.TableID(bs))
	require.NoError(s.t, err)
	rows, costs = map[string]int{}, map[string]decimal.Decimal{}
	if tbl.CurrentSnapshot() == nil {
		return rows, costs
	}
	arrowTbl, err := tbl.Scan(table.WithSelectedFields(bs.Payer, bs.Period, bs.Account, bs.Cost)).ToArrowTable(ctx)
	require.NoError(s.t, err)
	defer arrowTbl.Release()
	tr := array.NewTableReader(arrowTbl, 4096)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		col := func(name string) int { return rec.Schema().FieldIndices(name)[0] }
		payers := rec.Column(col(bs.Payer)).(*array.String)
		periods := rec.Column(col(bs.Period)).(*array.String)
		accts := rec.Column(col(bs.Account)).(*array.String)
		cost := rec.Column(col(bs.Cost)).(*array.Decimal128)
		for i := 0; i < int(rec.NumRows()); i++ {
			if payers.Value(i) != payer || periods.Value(i) != period {
				continue
			}
			a := accts.Value(i)
			rows[a]++
			if cost.IsValid(i) {
				costs[a] = costs[a].Add(decimal.NewFromBigInt(cost.Value(i).BigInt(), -18))
			}
		}
	}
	require.NoError(s.t, tr.Err())
	return rows, costs
}

func (s *stack) currentSnapshot() int64 {
	tbl, err := s.lake.LineItems(context.Background())
	require.NoError(s.t, err)
	if snap := tbl.CurrentSnapshot(); snap != nil {
		return snap.SnapshotID
	}
	return 0
}

// dataFiles lists the Parquet files on disk under the warehouse.
func (s *stack) dataFiles() []string {
	var out []string
	filepath.WalkDir(filepath.Join(s.dir, "warehouse"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") && strings.Contains(p, "/data/") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// sharedData finds ../shared/data beside the checkout.
func sharedData(t *testing.T, rel string) string {
	t.Helper()
	if d := os.Getenv("COSTLAKE_SHARED_DATA"); d != "" {
		return filepath.Join(d, rel)
	}
	dir, err := os.Getwd()
	require.NoError(t, err)
	for ; dir != "/"; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, "shared", "data", rel)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("shared/data/%s not found above the checkout; set COSTLAKE_SHARED_DATA", rel)
	return ""
}

// delivery lays a CSV out the way AWS delivers legacy CUR: the period
// manifest, an assembly folder with the same manifest and gzip chunks.
type delivery struct {
	prefix, report, period, assembly, payer string
	header                                  []string
	chunks                                  [][]byte // gzip files
}

// csvChunks splits records (header first) into n gzip CSV files.
func csvChunks(t *testing.T, records [][]string, n int) [][]byte {
	t.Helper()
	header, rows := records[0], records[1:]
	per := (len(rows) + n - 1) / n
	var out [][]byte
	for i := 0; i < n; i++ {
		lo, hi := i*per, min((i+1)*per, len(rows))
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		w := csv.NewWriter(gz)
		require.NoError(t, w.Write(header))
		require.NoError(t, w.WriteAll(rows[lo:hi]))
		require.NoError(t, gz.Close())
		out = append(out, buf.Bytes())
	}
	return out
}

func (d delivery) folder(t *testing.T) string {
	f, err := cur.PeriodFolder(d.period)
	require.NoError(t, err)
	return d.prefix + "/" + d.report + "/" + f
}

func (d delivery) manifest(t *testing.T, bucket string) cur.Manifest {
	bp, err := cur.ManifestPeriodFor(d.period)
	require.NoError(t, err)
	m := cur.Manifest{
		AssemblyID: d.assembly, Account: d.payer, Charset: "UTF-8", Compression: "GZIP",
		ContentType: "text/csv", ReportID: "test-report", ReportName: d.report, BillingPeriod: bp, Bucket: bucket,
	}
	for _, h := range d.header {
		cat, name, _ := strings.Cut(h, "/")
		m.Columns = append(m.Columns, cur.ManifestColumn{Category: cat, Name: name})
	}
	for i := range d.chunks {
		m.ReportKeys = append(m.ReportKeys, fmt.Sprintf("%s/%s/%s-%d.csv.gz", d.folder(t), d.assembly, d.report, i+1))
	}
	return m
}

// upload writes the delivery into store; it returns the manifest written.
func (d delivery) upload(t *testing.T, store blob.Store, bucket string) cur.Manifest {
	t.Helper()
	ctx := context.Background()
	m := d.manifest(t, bucket)
	for i, c := range d.chunks {
		require.NoError(t, store.Put(ctx, m.ReportKeys[i], bytes.NewReader(c)))
	}
	js, err := json.MarshalIndent(m, "", "  ")
	require.NoError(t, err)
	require.NoError(t, store.Put(ctx, fmt.Sprintf("%s/%s/%s-Manifest.json", d.folder(t), d.assembly, d.report), bytes.NewReader(js)))
	require.NoError(t, store.Put(ctx, fmt.Sprintf("%s/%s-Manifest.json", d.folder(t), d.report), bytes.NewReader(js)))
	return m
}

// failureType returns the application error type of a failed workflow.
func failureType(t *testing.T, err error) (string, string) {
	t.Helper()
	var app *temporal.ApplicationError
	require.Truef(t, errors.As(err, &app), "want an application error, got %v", err)
	return app.Type(), app.Message()
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	return records
}

func column(t *testing.T, header []string, name string) int {
	for i, h := range header {
		if h == name {
			return i
		}
	}
	t.Fatalf("no column %s", name)
	return -1
}
