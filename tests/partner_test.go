package tests

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/activities"
	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/crawl"
	"github.com/costlake/costlake/internal/contract/ingest"
	"github.com/costlake/costlake/internal/cur"
	"github.com/costlake/costlake/internal/devtools/synth"
	"github.com/costlake/costlake/workflows"
)

// athenaHeader renames a legacy header the way CUR's Athena integration
// (and partner generators) name columns: "lineItem/UnblendedCost" →
// "line_item_unblended_cost", "resourceTags/user:Name" → "resource_tags_user_name".
func athenaHeader(h string) string {
	cat, name, _ := strings.Cut(h, "/")
	return snake(cat) + "_" + snake(name)
}

// TestIngestPartnerLayoutFromMinIO ingests the sample laid out as a
// partner's CUR generator writes it (the Eco seed):
// RawCURReports/cur/<account>/<yyyymmdd-yyyymmdd>/<assembly>/<files> and
// manifests/<yyyymmdd-yyyymmdd>/<report_id>-Manifest.json, with Athena
// snake_case headers; once with reportKeys in the manifest, once without
// (the files are listed).
func TestIngestPartnerLayoutFromMinIO(t *testing.T) {
	s := newStack(t, true)
	records := readCSV(t, sharedData(t, "aws-legacy-cur-sample/sample-anonymous-aws-export-dataset.csv"))
	athena := [][]string{make([]string, len(records[0]))}
	for i, h := range records[0] {
		athena[0][i] = athenaHeader(h)
	}
	athena = append(athena, records[1:]...)
	chunks := csvChunks(t, athena, 2)
	wantRows, wantCosts := sourceTotals(t, records)

	for _, withKeys := range []bool{true, false} {
		t.Run(fmt.Sprintf("reportKeys=%v", withKeys), func(t *testing.T) {
			name := fmt.Sprintf("eco-%v", withKeys)
			bucket := s.minio.CreateBucket(t, name)
			ctx := context.Background()
			assembly := "a1b2c3d4-" + name
			var keys []string
			for i, c := range chunks {
				key := fmt.Sprintf("RawCURReports/cur/%s/20231101-20231201/%s/cur-%05d.csv.gz", samplePayer, assembly, i+1)
				require.NoError(t, bucket.Put(ctx, key, bytes.NewReader(c)))
				keys = append(keys, key)
			}
			var cols []map[string]string
			for _, h := range athena[0] {
				cols = append(cols, map[string]string{"column_name": h, "data_type": "string"})
			}
			manifest := map[string]any{"assemblyId": assembly, "columns": cols}
			if withKeys {
				manifest["reportKeys"] = keys
			}
			js, err := json.Marshal(manifest)
			require.NoError(t, err)
			require.NoError(t, bucket.Put(ctx, "manifests/20231101-20231201/report-42-Manifest.json", bytes.NewReader(js)))

			res, err := s.ingest("s3://"+name, "2023-11")
			require.NoError(t, err)
			require.Equal(t, samplePayer, res.PayerAccountID)
			require.Equal(t, "report-42="+assembly, res.AssemblyID, "a partner period names its reports' assemblies")
			require.Equal(t, []ingest.ReportOutcome{{Report: "report-42", AssemblyID: assembly, Action: ingest.ReportReplaced}}, res.Reports)
			require.Equal(t, 2, res.Chunks)
			gotRows, gotCosts := s.tableTotals(samplePayer, "2023-11")
			requireSameTotals(t, wantRows, wantCosts, gotRows, gotCosts)
		})
	}
}

// partnerReports writes reports in the partner layout of one bucket:
// per report, its rows (legacy headers, renamed the Athena way) in two
// csv.gz files under RawCURReports/cur/<account>/<period folder>/<assembly>/
// and its manifest at manifests/<period folder>/<report>-Manifest.json,
// which a restatement overwrites.
type partnerReports struct {
	t      *testing.T
	bucket blob.Store
	folder string
	header []string
}

func (p partnerReports) put(report, account, assembly, manifestAccount string, rows [][]string) {
	p.t.Helper()
	ctx := context.Background()
	athena := make([]string, len(p.header))
	for i, h := range p.header {
		athena[i] = athenaHeader(h)
	}
	var keys []string
	for i, c := range csvChunks(p.t, append([][]string{athena}, rows...), 2) {
		key := fmt.Sprintf("RawCURReports/cur/%s/%s/%s/%s-%05d.csv.gz", account, p.folder, assembly, report, i+1)
		require.NoError(p.t, p.bucket.Put(ctx, key, bytes.NewReader(c)))
		keys = append(keys, key)
	}
	var cols []map[string]string
	for _, h := range athena {
		cols = append(cols, map[string]string{"column_name": h, "data_type": "string"})
	}
	js, err := json.Marshal(map[string]any{"assemblyId": assembly, "account": manifestAccount, "columns": cols, "reportKeys": keys})
	require.NoError(p.t, err)
	require.NoError(p.t, p.bucket.Put(ctx, "manifests/"+p.folder+"/"+report+"-Manifest.json", bytes.NewReader(js)))
}

// committedFiles lists the data files the current snapshot holds for
// payer's period, by report folder and name.
func (s *stack) committedFiles(payer string) map[string][]string {
	s.t.Helper()
	tbl, err := s.lake.LineItems(context.Background())
	require.NoError(s.t, err)
	tasks, err := tbl.Scan(table.WithRowFilter(iceberg.EqualTo(iceberg.Reference(billing.ColPayerAccountID), payer))).PlanFiles(context.Background())
	require.NoError(s.t, err)
	out := map[string][]string{}
	for _, task := range tasks {
		dir, name := path.Split(task.File.FilePath())
		report := path.Base(dir)
		out[report] = append(out[report], name)
	}
	for _, names := range out {
		slices.Sort(names)
	}
	return out
}

// TestPartnerSeveralReportsInOnePeriod: a partner bucket with one CUR
// per linked account of one payer. Two reports, then a third, then a
// restatement of one: every report is ingested, each ingestion replaces
// only the reports whose assembly changed, the other reports' files stay
// as they were, and the table equals, per usage account and to the last
// digit, the union of every report's newest assembly. The crawl's
// comparison is per report.
func TestPartnerSeveralReportsInOnePeriod(t *testing.T) {
	s := newStack(t, true)
	ctx := context.Background()
	const payer, period = "210987654321", "2026-08"
	root := t.TempDir()
	gen, err := synth.Generate(ctx, blob.NewLocal(root), synth.Options{Period: period, Rows: 900, Files: 1, Seed: 44, Payer: payer, LinkedAccounts: 4})
	require.NoError(t, err)
	records := readGzipCSV(t, filepath.Join(root, gen.ReportKeys[0]))
	acct := column(t, records[0], "lineItem/UsageAccountId")
	byAccount := map[string][][]string{}
	for _, r := range records[1:] {
		byAccount[r[acct]] = append(byAccount[r[acct]], r)
	}
	accounts := slices.Sorted(maps.Keys(byAccount))
	require.Len(t, accounts, 4)

	bucket := s.minio.CreateBucket(t, "partner-multi")
	folder, err := cur.PeriodFolder(period)
	require.NoError(t, err)
	p := partnerReports{t: t, bucket: bucket, folder: folder, header: records[0]}
	source := "s3://partner-multi"
	// newest holds every report's newest rows; the table must equal their union.
	newest := map[string][][]string{}
	put := func(report, account, assembly, manifestAccount string, rows [][]string) {
		p.put(report, account, assembly, manifestAccount, rows)
		newest[report] = rows
	}
	// requireUnion checks the table, and the ingestion's result, against
	// the union of every report's newest rows: the result is the whole
	// period, also when only some reports were read.
	requireUnion := func(res *workflows.IngestBillingPeriodResult) {
		t.Helper()
		union := [][]string{records[0]}
		for _, rows := range newest {
			union = append(union, rows...)
		}
		wantRows, wantCosts := sourceTotals(t, union)
		gotRows, gotCosts := s.tableTotals(payer, period)
		requireSameTotals(t, wantRows, wantCosts, gotRows, gotCosts)
		resRows, resCosts := map[string]int{}, map[string]decimal.Decimal{}
		for _, a := range res.Accounts {
			resRows[a.Account], resCosts[a.Account] = int(a.Rows), decimal.RequireFromString(a.UnblendedCost.String())
		}
		requireSameTotals(t, wantRows, wantCosts, resRows, resCosts)
	}
	actions := func(res *workflows.IngestBillingPeriodResult) map[string]string {
		out := map[string]string{}
		for _, o := range res.Reports {
			out[o.Report] = o.Action
		}
		return out
	}
	discover := func() crawl.Delivery {
		t.Helper()
		acts := &activities.Crawl{Lake: s.lake, AWS: activities.AWS{Blobs: blob.Opener{S3: s.minio.S3Options(), FileRoots: testFileRoots}}}
		found, err := acts.DiscoverDeliveries(ctx, crawl.DiscoverDeliveriesInput{PayerAccountID: payer, Source: source, Periods: billingPeriods(period)})
		require.NoError(t, err)
		require.Len(t, found.Deliveries, 1)
		return found.Deliveries[0]
	}

	// Two reports; one manifest names the linked account, not the payer:
	// the rows tell the payer.
	put("cur-a", accounts[0], "20260901T010000Z", payer, byAccount[accounts[0]])
	put("cur-b", accounts[1], "20260901T020000Z", accounts[1], byAccount[accounts[1]])
	require.True(t, discover().Changed())
	res, err := s.ingest(source, period)
	require.NoError(t, err)
	require.Equal(t, payer, res.PayerAccountID)
	require.Equal(t, map[string]string{"cur-a": "replaced", "cur-b": "replaced"}, actions(res))
	require.Equal(t, "cur-a=20260901T010000Z,cur-b=20260901T020000Z", res.AssemblyID)
	require.Equal(t, 4, res.Chunks)
	requireUnion(res)
	require.False(t, discover().Changed())

	// A third report joins the period.
	put("cur-c", accounts[2], "20260902T010000Z", payer, byAccount[accounts[2]])
	d := discover()
	require.True(t, d.Changed())
	require.Len(t, d.Reports, 3)
	before := s.committedFiles(payer)
	res, err = s.ingest(source, period)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"cur-a": "unchanged", "cur-b": "unchanged", "cur-c": "replaced"}, actions(res))
	requireUnion(res)
	after := s.committedFiles(payer)
	require.Equal(t, before["costlake_report=cur-a"], after["costlake_report=cur-a"], "cur-a's files are untouched")
	require.Equal(t, before["costlake_report=cur-b"], after["costlake_report=cur-b"], "cur-b's files are untouched")
	require.Len(t, after["costlake_report=cur-c"], 2)
	require.Len(t, after, 3)

	// cur-b is restated: fewer rows of its account, and the fourth
	// account's rows. Only cur-b's rows are replaced.
	time.Sleep(1100 * time.Millisecond) // S3 times have one-second resolution
	restated := append(slices.Clone(byAccount[accounts[1]][20:]), byAccount[accounts[3]]...)
	put("cur-b", accounts[1], "20260903T010000Z", payer, restated)
	d = discover()
	require.True(t, d.Changed())
	for _, r := range d.Reports {
		require.Equal(t, r.Report == "cur-b", r.AssemblyID != r.Committed, "report %s: delivered %s, committed %s", r.Report, r.AssemblyID, r.Committed)
	}
	before = after
	snapBefore := s.currentSnapshot()
	res, err = s.ingest(source, period)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"cur-a": "unchanged", "cur-b": "replaced", "cur-c": "unchanged"}, actions(res))
	require.Equal(t, "cur-a=20260901T010000Z,cur-b=20260903T010000Z,cur-c=20260902T010000Z", res.AssemblyID)
	requireUnion(res)
	after = s.committedFiles(payer)
	require.Equal(t, before["costlake_report=cur-a"], after["costlake_report=cur-a"])
	require.Equal(t, before["costlake_report=cur-c"], after["costlake_report=cur-c"])
	require.NotEqual(t, before["costlake_report=cur-b"], after["costlake_report=cur-b"])
	require.Len(t, after["costlake_report=cur-b"], 2)
	// The snapshot before the restatement still holds cur-b's first assembly.
	old, err := s.lake.PeriodReportTotals(ctx, billing.LineItems, payer, billingPeriod(period), snapBefore)
	require.NoError(t, err)
	require.Equal(t, int64(len(byAccount[accounts[1]])), billing.ByAccount(old["cur-b"])[0].Rows)
	require.False(t, discover().Changed())

	// Nothing new: nothing committed.
	snap := s.currentSnapshot()
	res, err = s.ingest(source, period)
	require.NoError(t, err)
	require.True(t, res.Unchanged)
	require.Equal(t, snap, s.currentSnapshot())
	requireUnion(res)

	// cur-c's manifest goes and cur-a is restated: cur-c's rows stay,
	// counted in the result, and the result says cur-c was not delivered.
	require.NoError(t, bucket.Delete(ctx, "manifests/"+folder+"/cur-c-Manifest.json"))
	time.Sleep(1100 * time.Millisecond) // S3 times have one-second resolution
	put("cur-a", accounts[0], "20260904T010000Z", payer, byAccount[accounts[0]][10:])
	res, err = s.ingest(source, period)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"cur-a": "replaced", "cur-b": "unchanged", "cur-c": ingest.ReportNotDelivered}, actions(res))
	requireUnion(res)
}

// readGzipCSV reads a csv.gz file.
func readGzipCSV(t *testing.T, file string) [][]string {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	gz, err := gzip.NewReader(f)
	require.NoError(t, err)
	records, err := csv.NewReader(gz).ReadAll()
	require.NoError(t, err)
	return records
}

// TestLegacyCURPerLinkedAccount: a local folder holding one legacy CUR
// report per linked account of one payer, "<prefix>/<report>/…", ingested
// from the prefix. Every report counts; restating one replaces its rows
// only; the table equals the union per account to the last digit.
func TestLegacyCURPerLinkedAccount(t *testing.T) {
	s := newStack(t, false)
	ctx := context.Background()
	const payer, period = "310987654321", "2026-07"
	root := filepath.Join(t.TempDir(), "bucket")
	store := blob.NewLocal(root)
	newest := map[string]*synth.Result{}
	gen := func(report string, seed int64, assembly string) {
		t.Helper()
		r, err := synth.Generate(ctx, store, synth.Options{Prefix: "cur", Report: report, Period: period, Rows: 300, Files: 2,
			Seed: seed, Payer: payer, LinkedAccounts: 2, AssemblyID: assembly})
		require.NoError(t, err)
		newest[report] = r
	}
	requireUnion := func() {
		t.Helper()
		wantRows, wantCosts := map[string]int{}, map[string]decimal.Decimal{}
		for _, r := range newest {
			for a, tot := range r.Accounts {
				wantRows[a] += tot.Rows
				wantCosts[a] = wantCosts[a].Add(decimal.RequireFromString(tot.UnblendedCost))
			}
		}
		gotRows, gotCosts := s.tableTotals(payer, period)
		requireSameTotals(t, wantRows, wantCosts, gotRows, gotCosts)
	}
	source := "file://" + filepath.Join(root, "cur")

	gen("linked-a", 1, "20260801T000000Z")
	gen("linked-b", 2, "20260801T000100Z")
	gen("linked-c", 3, "20260801T000200Z")
	res, err := s.ingest(source, period)
	require.NoError(t, err)
	require.Equal(t, payer, res.PayerAccountID)
	require.Len(t, res.Reports, 3)
	requireUnion()
	before := s.committedFiles(payer)
	require.Len(t, before, 3)

	time.Sleep(10 * time.Millisecond) // a later modification time for the restated manifest
	gen("linked-b", 22, "20260803T000000Z")
	res, err = s.ingest(source, period)
	require.NoError(t, err)
	got := map[string]string{}
	for _, o := range res.Reports {
		got[o.Report] = o.Action
	}
	require.Equal(t, map[string]string{"linked-a": "unchanged", "linked-b": "replaced", "linked-c": "unchanged"}, got)
	requireUnion()
	after := s.committedFiles(payer)
	require.Equal(t, before["costlake_report=linked-a"], after["costlake_report=linked-a"])
	require.Equal(t, before["costlake_report=linked-c"], after["costlake_report=linked-c"])
	require.NotEqual(t, before["costlake_report=linked-b"], after["costlake_report=linked-b"])

	// A report of another payer in the folder: the ingestion fails with a
	// named, non-retryable error and the table keeps its snapshot.
	snap, files := s.currentSnapshot(), s.dataFiles()
	_, err = synth.Generate(ctx, store, synth.Options{Prefix: "cur", Report: "linked-x", Period: period, Rows: 10, Seed: 9, Payer: "999988887777"})
	require.NoError(t, err)
	_, err = s.ingest(source, period)
	require.Error(t, err)
	typ, msg := failureType(t, err)
	require.Equal(t, ingest.ErrTypePayerMismatch, typ, msg)
	require.Contains(t, msg, "linked-x")
	require.Equal(t, snap, s.currentSnapshot())
	require.ElementsMatch(t, files, s.dataFiles())
	requireUnion()
}
