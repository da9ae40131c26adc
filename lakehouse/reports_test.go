package lakehouse_test

import (
	"context"
	"database/sql"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	"github.com/apache/iceberg-go/table"
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/lakehouse"
)

// writeReport writes one data file of a report of payer's period: rows
// of (account, cost), tagged with the report as the converter tags them.
func writeReport(t *testing.T, lake *lakehouse.Lake, payer, period, report, name string, rows ...[2]string) lakehouse.ReportFiles {
	t.Helper()
	ctx := context.Background()
	bs := billing.LineItems
	tbl, err := lake.LineItems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := lakehouse.ReportDataFilePath(lakehouse.DataFilePath(tbl, bs, payer, billingPeriod(period), name), report)
	w, err := lakehouse.NewDataFileWriter(ctx, tbl, bs, p)
	if err != nil {
		t.Fatal(err)
	}
	rec := bs.NewRecord()
	for i, r := range rows {
		rec.Reset()
		rec.Values[bs.MustIndex(bs.Payer)] = payer
		rec.Values[bs.MustIndex(bs.Period)] = period
		rec.Values[bs.MustIndex(bs.Report)] = report
		rec.Values[bs.MustIndex(bs.Account)] = r[0]
		rec.Values[bs.MustIndex(bs.ChargeType)] = "Usage"
		rec.Values[bs.MustIndex(bs.Cost)] = r[1]
		rec.Values[bs.MustIndex(billing.ColLineItemID)] = fmt.Sprintf("%s-%d", name, i)
		if err := w.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return lakehouse.ReportFiles{Report: report, DataFiles: []string{p}, Rows: int64(len(rows))}
}

// reportSums is "report: account=cost …" per report, sorted, from the table.
func reportSums(t *testing.T, lake *lakehouse.Lake, payer, period string) string {
	t.Helper()
	byReport, err := lake.PeriodReportTotals(context.Background(), billing.LineItems, payer, billingPeriod(period), 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range slices.Sorted(func(yield func(string) bool) {
		for k := range byReport {
			if !yield(k) {
				return
			}
		}
	}) {
		s := r + ":"
		for _, a := range billing.ByAccount(byReport[r]) {
			s += fmt.Sprintf(" %s=%s/%d", a.Account, a.UnblendedCost, a.Rows)
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

func periodFiles(t *testing.T, lake *lakehouse.Lake, payer, period string) []string {
	t.Helper()
	tbl, err := lake.LineItems(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := tbl.Scan(table.WithRowFilter(iceberg.EqualTo(iceberg.Reference(billing.ColPayerAccountID), payer))).PlanFiles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, task := range tasks {
		out = append(out, path.Base(path.Dir(task.File.FilePath()))+"/"+path.Base(task.File.FilePath()))
	}
	slices.Sort(out)
	return out
}

// Several reports in one period: each commit replaces the rows of the
// reports it carries whose assembly changed, and only those; the
// period's rows are the union of every report's newest assembly; a
// retry, a replay and a late delivery change nothing.
func TestReplacePeriodPerReport(t *testing.T) {
	ctx := context.Background()
	lake := openLake(t)
	bs := billing.LineItems
	const period = "2026-09"
	t0 := time.Date(2026, 10, 2, 0, 0, 0, 0, time.UTC)
	commit := func(run string, reports ...lakehouse.ReportFiles) lakehouse.PeriodReplaced {
		t.Helper()
		res, err := lake.ReplacePeriod(ctx, bs, lakehouse.PeriodReplacement{Payer: payerA, Period: billingPeriod(period), RunID: run, Reports: reports})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	at := func(r lakehouse.ReportFiles, assembly string, day int) lakehouse.ReportFiles {
		r.AssemblyID, r.DeliveredAt = assembly, t0.AddDate(0, 0, day)
		return r
	}
	actions := func(res lakehouse.PeriodReplaced) string {
		var s []string
		for _, o := range res.Reports {
			s = append(s, o.Report+"="+o.Action)
		}
		return strings.Join(s, " ")
	}

	// Before reports: a single-report commit (report ""), as earlier
	// versions wrote it.
	legacy := writeReport(t, lake, payerA, period, "", "old", [2]string{"222222222222", "9"})
	commit("old", at(legacy, "x0", 0))
	if got := reportSums(t, lake, payerA, period); got != ": 222222222222=9/1" {
		t.Fatalf("legacy: %s", got)
	}

	// Two reports: they replace the single-report rows.
	a1 := at(writeReport(t, lake, payerA, period, "acct-a", "r1-a", [2]string{"222222222222", "1.5"}, [2]string{"222222222222", "0.000000000000000001"}), "a1", 1)
	b1 := at(writeReport(t, lake, payerA, period, "acct-b", "r1-b", [2]string{"333333333333", "2"}), "b1", 1)
	res := commit("r1", a1, b1)
	if actions(res) != "acct-a=replaced acct-b=replaced" || res.PeriodAssembly != "acct-a=a1,acct-b=b1" {
		t.Fatalf("two reports: %s, %s", actions(res), res.PeriodAssembly)
	}
	if got := reportSums(t, lake, payerA, period); got != "acct-a: 222222222222=1.500000000000000001/2; acct-b: 333333333333=2/1" {
		t.Fatalf("two reports: %s", got)
	}
	// The commit retried by its run: nothing new.
	if again := commit("r1", a1, b1); again.SnapshotID != res.SnapshotID || again.Unchanged || again.Superseded {
		t.Fatalf("retry: %+v", again)
	}

	// A third report; the other two delivered again, unchanged.
	a2 := at(writeReport(t, lake, payerA, period, "acct-a", "r2-a", [2]string{"222222222222", "1.5"}, [2]string{"222222222222", "0.000000000000000001"}), "a1", 1)
	b2 := at(writeReport(t, lake, payerA, period, "acct-b", "r2-b", [2]string{"333333333333", "2"}), "b1", 1)
	c2 := at(writeReport(t, lake, payerA, period, "acct-c", "r2-c", [2]string{"444444444444", "-0.25"}), "c1", 2)
	filesBefore := periodFiles(t, lake, payerA, period)
	res = commit("r2", a2, b2, c2)
	if actions(res) != "acct-a=unchanged acct-b=unchanged acct-c=replaced" || res.PeriodAssembly != "acct-a=a1,acct-b=b1,acct-c=c1" {
		t.Fatalf("three reports: %s, %s", actions(res), res.PeriodAssembly)
	}
	files := periodFiles(t, lake, payerA, period)
	if want := append(slices.Clone(filesBefore), "costlake_report=acct-c/r2-c.parquet"); !slices.Equal(files, slices.Sorted(slices.Values(want))) {
		t.Fatalf("files %v, want the earlier ones and acct-c's", files)
	}

	// acct-b is restated: only its rows change.
	b3 := at(writeReport(t, lake, payerA, period, "acct-b", "r3-b", [2]string{"333333333333", "2.75"}, [2]string{"555555555555", "1"}), "b2", 3)
	a3 := at(writeReport(t, lake, payerA, period, "acct-a", "r3-a", [2]string{"222222222222", "1.5"}, [2]string{"222222222222", "0.000000000000000001"}), "a1", 1)
	res = commit("r3", a3, b3)
	if actions(res) != "acct-a=unchanged acct-b=replaced" || res.PeriodAssembly != "acct-a=a1,acct-b=b2,acct-c=c1" {
		t.Fatalf("restatement: %s, %s", actions(res), res.PeriodAssembly)
	}
	want := "acct-a: 222222222222=1.500000000000000001/2; acct-b: 333333333333=2.75/1 555555555555=1/1; acct-c: 444444444444=-0.25/1"
	if got := reportSums(t, lake, payerA, period); got != want {
		t.Fatalf("restatement: %s", got)
	}
	if got := periodFiles(t, lake, payerA, period); !slices.Equal(got, []string{
		"costlake_report=acct-a/r1-a.parquet", "costlake_report=acct-b/r3-b.parquet", "costlake_report=acct-c/r2-c.parquet"}) {
		t.Fatalf("files %v", got)
	}
	// acct-b's old assembly shows up again: it is late and dropped.
	late := at(writeReport(t, lake, payerA, period, "acct-b", "r4-b", [2]string{"333333333333", "2"}), "b1", 1)
	restated := res.SnapshotID
	if res = commit("r4", late); !res.Superseded || actions(res) != "acct-b=superseded" || res.SnapshotID != restated {
		t.Fatalf("late: %+v, want the restatement's snapshot %d", res, restated)
	}
	if got := reportSums(t, lake, payerA, period); got != want {
		t.Fatalf("after a late delivery: %s", got)
	}

	held, err := lake.PeriodReports(ctx, bs, payerA, billingPeriod(period))
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 3 || held["acct-b"].AssemblyID != "b2" || held["acct-b"].Rows != 2 || held["acct-c"].AssemblyID != "c1" {
		t.Fatalf("records %+v", held)
	}
	// Another payer's period is not touched by any of it.
	if got := reportSums(t, lake, payerB, period); got != "" {
		t.Fatalf("payer B: %s", got)
	}
}

// A table created before costlake_report existed gains it on Open and
// keeps working.
func TestOpenAddsReportColumnToOlderTable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	catalogPath, warehouse := filepath.Join(dir, "catalog.db"), "file://"+filepath.Join(dir, "warehouse")
	db, err := sql.Open(sqliteshim.ShimName, "file:"+catalogPath)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := sqlcat.NewCatalog("costlake", db, sqlcat.SQLite, iceberg.Properties{"warehouse": warehouse})
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.CreateNamespace(ctx, table.Identifier{lakehouse.Namespace}, nil); err != nil {
		t.Fatal(err)
	}
	full := lakehouse.IcebergSchema(billing.LineItems)
	var fields []iceberg.NestedField
	for _, f := range full.Fields() {
		if f.Name != billing.ColReport {
			fields = append(fields, f)
		}
	}
	old := iceberg.NewSchema(0, fields...)
	spec, err := iceberg.NewPartitionSpecOpts(
		iceberg.AddPartitionFieldByName(billing.ColPayerAccountID, billing.ColPayerAccountID, iceberg.IdentityTransform{}, old, nil),
		iceberg.AddPartitionFieldByName(billing.ColBillingPeriod, billing.ColBillingPeriod, iceberg.IdentityTransform{}, old, nil),
	)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cat.CreateTable(ctx, lakehouse.TableID(billing.LineItems), old, catalog.WithPartitionSpec(&spec)); err != nil {
		t.Fatal(err)
	}
	db.Close()

	lake, err := lakehouse.Open(ctx, lakehouse.Config{Catalog: catalogPath, Warehouse: warehouse})
	if err != nil {
		t.Fatal(err)
	}
	defer lake.Close()
	tbl, err := lake.LineItems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tbl.Schema().FindFieldByName(billing.ColReport); !ok {
		t.Fatal("no costlake_report after Open")
	}
	r := writeReport(t, lake, payerA, "2026-09", "acct-a", "r1", [2]string{"222222222222", "3"})
	r.AssemblyID = "a1"
	if _, err := lake.ReplacePeriod(ctx, billing.LineItems, lakehouse.PeriodReplacement{Payer: payerA, Period: billingPeriod("2026-09"), RunID: "r1", Reports: []lakehouse.ReportFiles{r}}); err != nil {
		t.Fatal(err)
	}
	if got := reportSums(t, lake, payerA, "2026-09"); got != "acct-a: 222222222222=3/1" {
		t.Fatalf("after evolution: %s", got)
	}
}

// billingPeriod is period.MustParse under a name that test variables
// called period do not shadow.
func billingPeriod(s string) period.Period { return period.MustParse(s) }

// A payer's export cut over to another source (legacy CUR to CUR 2.0):
// the new source's delivery replaces the period whole even when AWS wrote
// it before the old source's newest assembly, since two exports' delivery
// times say nothing about each other; within one source a late assembly
// is still dropped. Either way the period holds one export's rows.
func TestReplacePeriodFromAnotherSource(t *testing.T) {
	ctx := context.Background()
	lake := openLake(t)
	bs := billing.LineItems
	const period = "2026-10"
	t0 := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	commit := func(source, run, assembly string, at time.Time, r lakehouse.ReportFiles) lakehouse.PeriodReplaced {
		t.Helper()
		r.AssemblyID, r.DeliveredAt = assembly, at
		res, err := lake.ReplacePeriod(ctx, bs, lakehouse.PeriodReplacement{Payer: payerA, Period: billingPeriod(period), Source: source, RunID: run, Reports: []lakehouse.ReportFiles{r}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	const legacy, cur2 = "s3://acme/cur/legacy", "s3://acme/cur2/acme"
	commit(legacy, "l1", "legacy-2", t0.Add(8*time.Hour), writeReport(t, lake, payerA, period, "", "l1", [2]string{"222222222222", "10.25"}))
	// Written by CUR 2.0 at 06:00, before the legacy CUR's 08:00 assembly.
	res := commit(cur2, "c1", "exec-1", t0.Add(6*time.Hour), writeReport(t, lake, payerA, period, "", "c1", [2]string{"222222222222", "10.5"}))
	if res.Superseded || res.Unchanged || res.ReplacedFiles != 1 {
		t.Fatalf("the cut-over's delivery: %+v", res)
	}
	if got := reportSums(t, lake, payerA, period); got != ": 222222222222=10.5/1" {
		t.Fatalf("after the cut-over: %s", got)
	}
	// An older CUR 2.0 execution arrives late: dropped as before.
	if res = commit(cur2, "c0", "exec-0", t0.Add(time.Hour), writeReport(t, lake, payerA, period, "", "c0", [2]string{"222222222222", "99"})); !res.Superseded {
		t.Fatalf("a late execution of the same source: %+v", res)
	}
	if got := reportSums(t, lake, payerA, period); got != ": 222222222222=10.5/1" {
		t.Fatalf("after a late execution: %s", got)
	}
}

// A period held under another account policy (the payer's connected
// accounts changed) is replaced even by the assembly it holds; under the
// same policy, or when the held commit recorded none (older commits),
// that assembly changes nothing.
func TestReplacePeriodUnderAnotherAccountPolicy(t *testing.T) {
	ctx := context.Background()
	lake := openLake(t)
	bs := billing.LineItems
	const period = "2026-08"
	at := time.Date(2026, 9, 2, 0, 0, 0, 0, time.UTC)
	assembly := "asm-0"
	commit := func(run, accounts string, rows ...[2]string) lakehouse.PeriodReplaced {
		t.Helper()
		r := writeReport(t, lake, payerA, period, "", run, rows...)
		r.AssemblyID, r.DeliveredAt = assembly, at
		res, err := lake.ReplacePeriod(ctx, bs, lakehouse.PeriodReplacement{Payer: payerA, Period: billingPeriod(period), Source: "s3://acme/cur/billing",
			RunID: run, Accounts: accounts, Reports: []lakehouse.ReportFiles{r}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	both := [][2]string{{"222222222222", "1.25"}, {"333333333333", "2"}}
	commit("r0", "", both...) // as before policies were recorded
	if res := commit("r1", "all", both...); !res.Unchanged {
		t.Fatalf("no policy recorded: %+v", res)
	}
	// AWS restates the period: the commit records its policy.
	assembly, at = "asm-1", at.Add(time.Hour)
	if res := commit("r1b", "all", both...); res.Unchanged {
		t.Fatalf("a restatement: %+v", res)
	}
	if res := commit("r2", "connected:1:x", both[0]); res.Unchanged || res.ReplacedFiles != 1 {
		t.Fatalf("another policy: %+v", res)
	}
	if got := reportSums(t, lake, payerA, period); got != ": 222222222222=1.25/1" {
		t.Fatalf("connected: %s", got)
	}
	c, ok, err := lake.LatestPeriodCommit(ctx, bs, payerA, billingPeriod(period))
	if err != nil || !ok || c.Accounts != "connected:1:x" {
		t.Fatalf("latest commit %+v %v %v", c, ok, err)
	}
	if res := commit("r3", "connected:1:x", both[0]); !res.Unchanged {
		t.Fatalf("the same policy: %+v", res)
	}
}
