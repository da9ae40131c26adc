package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/activities"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/ingest"
	"github.com/costlake/costlake/internal/devtools/synth"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/workflows"
)

const samplePayer = "123412340534"

// sampleDelivery is the public legacy CUR sample laid out as a real
// delivery in three gzip chunks.
func sampleDelivery(t *testing.T, report, assembly string) (delivery, [][]string) {
	records := readCSV(t, sharedData(t, "aws-legacy-cur-sample/sample-anonymous-aws-export-dataset.csv"))
	return delivery{
		prefix: "cur", report: report, period: "2023-11", assembly: assembly, payer: samplePayer,
		header: records[0], chunks: csvChunks(t, records, 3),
	}, records
}

// sourceTotals sums the CSV itself: rows and lineItem/UnblendedCost per
// lineItem/UsageAccountId, with shopspring/decimal.
func sourceTotals(t *testing.T, records [][]string) (map[string]int, map[string]decimal.Decimal) {
	acct := column(t, records[0], "lineItem/UsageAccountId")
	cost := column(t, records[0], "lineItem/UnblendedCost")
	rows, costs := map[string]int{}, map[string]decimal.Decimal{}
	for _, r := range records[1:] {
		rows[r[acct]]++
		if r[cost] != "" {
			costs[r[acct]] = costs[r[acct]].Add(decimal.RequireFromString(r[cost]))
		}
	}
	return rows, costs
}

func requireSameTotals(t *testing.T, wantRows map[string]int, wantCosts map[string]decimal.Decimal, gotRows map[string]int, gotCosts map[string]decimal.Decimal) {
	t.Helper()
	require.Equal(t, wantRows, gotRows, "rows per usage account")
	require.Equal(t, len(wantCosts), len(gotCosts), "accounts with cost")
	for a, want := range wantCosts {
		require.Truef(t, want.Equal(gotCosts[a]), "account %s: table %s, source %s", a, gotCosts[a], want)
	}
}

// TestIngestSampleFromMinIO is the foundation's end-to-end acceptance: the
// public sample, uploaded to MinIO as a real delivery, ingested through
// the real Temporal server, read back through the catalog, reconciled
// exactly with the source CSV.
func TestIngestSampleFromMinIO(t *testing.T) {
	s := newStack(t, true)
	bucket := s.minio.CreateBucket(t, "customer-cur")
	d, records := sampleDelivery(t, "sample", "20231203T041213Z")
	d.upload(t, bucket, "customer-cur")

	res, err := s.ingest("s3://customer-cur/cur/sample", "2023-11")
	require.NoError(t, err)
	require.Equal(t, samplePayer, res.PayerAccountID)
	require.Equal(t, int64(len(records)-1), res.Rows)
	require.Equal(t, 3, res.Chunks)
	require.False(t, res.Unchanged)

	wantRows, wantCosts := sourceTotals(t, records)
	gotRows, gotCosts := s.tableTotals(samplePayer, "2023-11")
	requireSameTotals(t, wantRows, wantCosts, gotRows, gotCosts)
	for _, a := range res.Accounts { // the workflow's own summary agrees too
		require.Truef(t, wantCosts[a.Account].Equal(decimal.RequireFromString(a.UnblendedCost.String())), "summary of %s", a.Account)
	}

	// The same assembly again changes nothing.
	snap := s.currentSnapshot()
	again, err := s.ingest("s3://customer-cur/cur/sample", "2023-11")
	require.NoError(t, err)
	require.True(t, again.Unchanged)
	require.Equal(t, snap, s.currentSnapshot())
	require.Len(t, s.dataFiles(), 3, "a re-run must not leave extra files")
	gotRows, gotCosts = s.tableTotals(samplePayer, "2023-11")
	requireSameTotals(t, wantRows, wantCosts, gotRows, gotCosts)
}

// TestIngestBadInputKeepsTable runs each bad delivery for a period that
// already holds good data: the workflow fails with a named, non-retryable
// error saying which file, and the table and its files stay as they were.
func TestIngestBadInputKeepsTable(t *testing.T) {
	s := newStack(t, true)
	bucket, keepsTable := s.goodPeriod(t, "bad-cur")

	cases := []struct {
		name     string
		setup    func(t *testing.T) string // returns the source URL
		wantType string
		wantIn   []string
		notIn    []string
	}{{
		name:     "missing manifest",
		setup:    func(t *testing.T) string { return "s3://bad-cur/cur/nothing-here" },
		wantType: ingest.ErrTypeManifestNotFound,
		wantIn:   []string{"s3://bad-cur/cur/nothing-here/20231101-20231201/nothing-here-Manifest.json"},
	}, {
		name: "manifest names a missing key",
		setup: func(t *testing.T) string {
			d, _ := sampleDelivery(t, "missing-key", "20231204T000000Z")
			m := d.upload(t, bucket, "bad-cur")
			require.NoError(t, bucket.Delete(context.Background(), m.ReportKeys[2]))
			return "s3://bad-cur/cur/missing-key"
		},
		wantType: ingest.ErrTypeChunkNotFound,
		wantIn:   []string{"s3://bad-cur/cur/missing-key/20231101-20231201/20231204T000000Z/missing-key-3.csv.gz"},
	}, {
		name: "corrupt gzip",
		setup: func(t *testing.T) string {
			d, _ := sampleDelivery(t, "corrupt", "20231205T000000Z")
			c := d.chunks[1]
			d.chunks[1] = append(bytes.Clone(c[:len(c)/2]), []byte("not gzip at all")...)
			d.upload(t, bucket, "bad-cur")
			return "s3://bad-cur/cur/corrupt"
		},
		wantType: ingest.ErrTypeCorruptChunk,
		wantIn:   []string{"s3://bad-cur/cur/corrupt/20231101-20231201/20231205T000000Z/corrupt-2.csv.gz"},
	}, {
		name: "non-numeric amount",
		setup: func(t *testing.T) string {
			recs := readCSV(t, sharedData(t, "aws-legacy-cur-sample/sample-anonymous-aws-export-dataset.csv"))
			recs[7][column(t, recs[0], "lineItem/UnblendedCost")] = "12,50"
			d := delivery{prefix: "cur", report: "nan", period: "2023-11", assembly: "20231206T000000Z", payer: samplePayer, header: recs[0], chunks: csvChunks(t, recs, 1)}
			d.upload(t, bucket, "bad-cur")
			return "s3://bad-cur/cur/nan"
		},
		wantType: ingest.ErrTypeBadValue,
		wantIn:   []string{"nan-1.csv.gz line 8", "line_item_unblended_cost", "12,50"},
	}, {
		// An amount a cost measure is computed from is named by its
		// column, its value never quoted.
		name: "non-numeric commitment",
		setup: func(t *testing.T) string {
			recs := readCSV(t, sharedData(t, "aws-legacy-cur-sample/sample-anonymous-aws-export-dataset.csv"))
			recs[9][column(t, recs[0], "lineItem/LineItemType")] = "SavingsPlanRecurringFee"
			recs[9][column(t, recs[0], "savingsPlan/TotalCommitmentToDate")] = "1"
			recs[9][column(t, recs[0], "savingsPlan/UsedCommitment")] = "0.5 of acme-secret"
			d := delivery{prefix: "cur", report: "commit", period: "2023-11", assembly: "20231206T000000Z", payer: samplePayer, header: recs[0], chunks: csvChunks(t, recs, 1)}
			d.upload(t, bucket, "bad-cur")
			return "s3://bad-cur/cur/commit"
		},
		wantType: ingest.ErrTypeBadValue,
		wantIn:   []string{"commit-1.csv.gz line 10", "savings_plan_used_commitment", "not a decimal number"},
		notIn:    []string{"acme-secret"},
	}, {
		name: "row of another payer",
		setup: func(t *testing.T) string {
			recs := readCSV(t, sharedData(t, "aws-legacy-cur-sample/sample-anonymous-aws-export-dataset.csv"))
			recs[100][column(t, recs[0], "bill/PayerAccountId")] = "999999999999"
			d := delivery{prefix: "cur", report: "payer", period: "2023-11", assembly: "20231207T000000Z", payer: samplePayer, header: recs[0], chunks: csvChunks(t, recs, 1)}
			d.upload(t, bucket, "bad-cur")
			return "s3://bad-cur/cur/payer"
		},
		wantType: ingest.ErrTypePayerMismatch,
		wantIn:   []string{"payer-1.csv.gz line 101", "999999999999"},
	}, {
		name: "manifest of another period",
		setup: func(t *testing.T) string {
			d, _ := sampleDelivery(t, "period", "20231208T000000Z")
			m := d.manifest(t, "bad-cur")
			m.BillingPeriod.Start, m.BillingPeriod.End = "20231001T000000.000Z", "20231101T000000.000Z"
			putManifest(t, bucket, d.folder(t)+"/period-Manifest.json", m)
			return "s3://bad-cur/cur/period"
		},
		wantType: ingest.ErrTypeInvalidManifest,
		wantIn:   []string{"period-Manifest.json", "billingPeriod is 2023-10"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.ingest(c.setup(t), "2023-11")
			require.Error(t, err)
			typ, msg := failureType(t, err)
			require.Equal(t, c.wantType, typ, msg)
			for _, w := range c.wantIn {
				require.Contains(t, msg, w)
			}
			for _, w := range c.notIn {
				require.NotContains(t, err.Error(), w)
			}
			keepsTable(t)
		})
	}
}

// goodPeriod creates bucket and ingests the sample delivery into it as
// 2023-11's good data; keepsTable checks that the table still holds
// exactly that: its snapshot, its files, and the source's totals.
func (s *stack) goodPeriod(t *testing.T, bucket string) (store *blob.S3, keepsTable func(t *testing.T)) {
	t.Helper()
	store = s.minio.CreateBucket(t, bucket)
	good, records := sampleDelivery(t, "good", "20231203T000000Z")
	good.upload(t, store, bucket)
	_, err := s.ingest("s3://"+bucket+"/cur/good", "2023-11")
	require.NoError(t, err)
	snap, files := s.currentSnapshot(), s.dataFiles()
	wantRows, wantCosts := sourceTotals(t, records)
	return store, func(t *testing.T) {
		t.Helper()
		require.Equal(t, snap, s.currentSnapshot(), "the table must keep its last good snapshot")
		require.ElementsMatch(t, files, s.dataFiles(), "no files may be left behind")
		gotRows, gotCosts := s.tableTotals(samplePayer, "2023-11")
		requireSameTotals(t, wantRows, wantCosts, gotRows, gotCosts)
	}
}

// TestIngestLocalFolderRestatement ingests generated deliveries from a
// local folder: a first assembly, then a restated one (new assembly, other
// rows) that replaces the whole period.
func TestIngestLocalFolderRestatement(t *testing.T) {
	s := newStack(t, false)
	root := filepath.Join(t.TempDir(), "bucket")
	store := blob.NewLocal(root)
	ctx := context.Background()
	source := "file://" + filepath.Join(root, "cur", "demo")

	first, err := synth.Generate(ctx, store, synth.Options{Prefix: "cur", Report: "demo", Period: "2026-10", Rows: 3000, Files: 3, Seed: 1, AssemblyID: "20261102T000000Z"})
	require.NoError(t, err)
	res, err := s.ingest(source, "2026-10")
	require.NoError(t, err)
	requireSynthTotals(t, s, first, res.PayerAccountID)

	restated, err := synth.Generate(ctx, store, synth.Options{Prefix: "cur", Report: "demo", Period: "2026-10", Rows: 4000, Files: 2, Seed: 2, AssemblyID: "20261103T000000Z"})
	require.NoError(t, err)
	res, err = s.ingest(source, "2026-10")
	require.NoError(t, err)
	require.Equal(t, "20261103T000000Z", res.AssemblyID)
	require.Equal(t, int64(4000), res.Rows)
	requireSynthTotals(t, s, restated, res.PayerAccountID)
	require.Len(t, s.dataFiles(), 5, "old files stay on disk for time travel; only the new ones are current")
}

func requireSynthTotals(t *testing.T, s *stack, r *synth.Result, payer string) {
	t.Helper()
	requireSynthTotalsFor(t, s, r, payer, "2026-10")
}

func requireSynthTotalsFor(t *testing.T, s *stack, r *synth.Result, payer, period string) {
	t.Helper()
	wantRows, wantCosts := map[string]int{}, map[string]decimal.Decimal{}
	for a, tot := range r.Accounts {
		wantRows[a] = tot.Rows
		wantCosts[a] = decimal.RequireFromString(tot.UnblendedCost)
	}
	gotRows, gotCosts := s.tableTotals(payer, period)
	requireSameTotals(t, wantRows, wantCosts, gotRows, gotCosts)
	require.NotEmpty(t, gotRows, fmt.Sprintf("no rows for %s", payer))
}

// TestIngestRestatementOrder ingests assembly A, then B (a restatement of
// the same period with other rows), then A again: A was delivered first,
// so it must not replace B, and the table equals B.
func TestIngestRestatementOrder(t *testing.T) {
	s := newStack(t, true)
	bucket := s.minio.CreateBucket(t, "restated")
	a, recordsA := sampleDelivery(t, "cur", "20231203T000000Z")
	recordsB := recordsA[:len(recordsA)-200] // B drops 200 rows
	b := a
	b.assembly, b.chunks = "20231205T000000Z", csvChunks(t, recordsB, 2)
	source := "s3://restated/cur/cur"

	manifestA := a.upload(t, bucket, "restated")
	res, err := s.ingest(source, "2023-11")
	require.NoError(t, err)
	require.Equal(t, a.assembly, res.AssemblyID)

	time.Sleep(1100 * time.Millisecond) // S3 times have one-second resolution
	b.upload(t, bucket, "restated")
	res, err = s.ingest(source, "2023-11")
	require.NoError(t, err)
	require.Equal(t, b.assembly, res.AssemblyID)
	snapB := s.currentSnapshot()

	// A's period manifest shows up again (a late or replayed delivery).
	js, err := json.Marshal(manifestA)
	require.NoError(t, err)
	require.NoError(t, bucket.Put(context.Background(), a.folder(t)+"/cur-Manifest.json", bytes.NewReader(js)))
	res, err = s.ingest(source, "2023-11")
	require.NoError(t, err)
	require.True(t, res.Superseded, "an older assembly must not replace a newer one")
	require.Equal(t, snapB, s.currentSnapshot())

	wantRows, wantCosts := sourceTotals(t, recordsB)
	gotRows, gotCosts := s.tableTotals(samplePayer, "2023-11")
	requireSameTotals(t, wantRows, wantCosts, gotRows, gotCosts)
}

// TestIngestConnectedAccountsOnly keeps only two connected usage accounts:
// the table holds exactly their rows, the others are counted in the
// result, and kept plus left out equals the source to the last digit.
func TestIngestConnectedAccountsOnly(t *testing.T) {
	s := newStack(t, false)
	root := filepath.Join(t.TempDir(), "bucket")
	gen, err := synth.Generate(context.Background(), blob.NewLocal(root), synth.Options{Prefix: "cur", Report: "linked", Period: "2026-10", Rows: 3000, Files: 2, Seed: 9})
	require.NoError(t, err)
	var accounts []string
	for a := range gen.Accounts {
		accounts = append(accounts, a)
	}
	slices.Sort(accounts)
	require.GreaterOrEqual(t, len(accounts), 3)
	connected := accounts[:2]

	ctx := context.Background()
	run, err := workflows.StartIngestion(ctx, s.client, workflows.IngestBillingPeriodInput{
		Source: "file://" + filepath.Join(root, "cur", "linked"), Period: billingPeriod("2026-10"),
		Accounts: payer.AccountPolicy{ConnectedOnly: true, Connected: connected},
	})
	require.NoError(t, err)
	var res workflows.IngestBillingPeriodResult
	require.NoError(t, run.Get(ctx, &res))

	gotRows, gotCosts := s.tableTotals(res.PayerAccountID, "2026-10")
	require.ElementsMatch(t, connected, slices.Collect(maps.Keys(gotRows)), "only connected accounts in the table")
	source := decimal.Zero
	for a, tot := range gen.Accounts {
		want := decimal.RequireFromString(tot.UnblendedCost)
		source = source.Add(want)
		if slices.Contains(connected, a) {
			require.Equal(t, tot.Rows, gotRows[a])
			require.Truef(t, want.Equal(gotCosts[a]), "account %s: table %s, source %s", a, gotCosts[a], want)
		}
	}
	for _, ex := range res.Excluded {
		require.NotContains(t, connected, ex.Account)
		require.Equal(t, int64(gen.Accounts[ex.Account].Rows), ex.Rows)
		require.Equal(t, gen.Accounts[ex.Account].UnblendedCost, ex.UnblendedCost.String())
	}
	require.Len(t, res.Excluded, len(accounts)-2)
	kept := decimal.RequireFromString(res.UnblendedCost.String())
	left := decimal.RequireFromString(res.ExcludedCost.String())
	require.True(t, kept.Add(left).Equal(source), "kept %s + left out %s != source %s", kept, left, source)
	require.Equal(t, int64(gen.Rows), res.Rows+res.ExcludedRows)
}

// TestOrphansOfDeadRunsAreRemoved leaves files in a period's folder as a
// run that died would, then commits the period again: files no snapshot
// references and older than the orphan age go; a fresh one (a run that may
// still be writing) and the replaced files of older snapshots stay.
func TestOrphansOfDeadRunsAreRemoved(t *testing.T) {
	s := newStack(t, false)
	root := filepath.Join(t.TempDir(), "bucket")
	ctx := context.Background()
	source := "file://" + filepath.Join(root, "cur", "orphans")
	_, err := synth.Generate(ctx, blob.NewLocal(root), synth.Options{Prefix: "cur", Report: "orphans", Period: "2026-10", Rows: 1000, Files: 2, Seed: 31, AssemblyID: "20261102T000000Z"})
	require.NoError(t, err)
	res, err := s.ingest(source, "2026-10")
	require.NoError(t, err)
	committed := s.dataFiles()
	require.Len(t, committed, 2)

	dir := filepath.Dir(committed[0])
	old, fresh := filepath.Join(dir, "dead-run-00000.parquet"), filepath.Join(dir, "live-run-00000.parquet")
	for _, f := range []string{old, fresh} {
		require.NoError(t, os.WriteFile(f, []byte("partial parquet of a run that died"), 0o644))
	}
	longAgo := time.Now().Add(-2 * activities.DefaultOrphanAge)
	require.NoError(t, os.Chtimes(old, longAgo, longAgo))

	_, err = synth.Generate(ctx, blob.NewLocal(root), synth.Options{Prefix: "cur", Report: "orphans", Period: "2026-10", Rows: 1200, Files: 1, Seed: 32, AssemblyID: "20261103T000000Z"})
	require.NoError(t, err)
	_, err = s.ingest(source, "2026-10")
	require.NoError(t, err)

	files := s.dataFiles()
	require.NotContains(t, files, old, "an old unreferenced file must be removed")
	require.Contains(t, files, fresh, "a fresh file may belong to a running ingestion")
	for _, f := range committed {
		require.Contains(t, files, f, "files of older snapshots stay for time travel")
	}
	rows, _ := s.tableTotals(res.PayerAccountID, "2026-10")
	total := 0
	for _, n := range rows {
		total += n
	}
	require.Equal(t, 1200, total)
}
