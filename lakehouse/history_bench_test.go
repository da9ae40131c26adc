package lakehouse_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/lakehouse"
)

// BenchmarkCommitHistory ingests many payers' small periods, one commit
// each, into one line_items table, as a crawl of hundreds of payers does,
// and reports whether a commit costs more once the table has a long
// history: the median commit time of the first and of the last 30
// commits, their ratio, the manifests of the final snapshot (what a scan
// may open) and the size of the final metadata.json. Run it once:
//
//	go test -run '^$' -bench CommitHistory -benchtime 1x ./lakehouse
//
// COSTLAKE_BENCH_PAYERS sets the payers (default 300);
// COSTLAKE_BENCH_MAINTAIN_EVERY runs table maintenance every that many
// commits, as the MaintainTables schedule does, a retention window then
// holding that many commits (default 30; 0: never).
func BenchmarkCommitHistory(b *testing.B) {
	payers := envInt(b, "COSTLAKE_BENCH_PAYERS", 300)
	every := envInt(b, "COSTLAKE_BENCH_MAINTAIN_EVERY", 30)
	for b.Loop() {
		b.StopTimer()
		r := commitHistory(b, payers, every)
		b.StartTimer()
		b.ReportMetric(r.first.Seconds()*1000, "first30-ms")
		b.ReportMetric(r.last.Seconds()*1000, "last30-ms")
		b.ReportMetric(r.last.Seconds()/r.first.Seconds(), "last/first")
		b.ReportMetric(float64(r.manifests), "manifests")
		b.ReportMetric(float64(r.metadataBytes)/1024, "metadata-KiB")
		b.ReportMetric(float64(r.snapshots), "snapshots")
	}
}

type historyResult struct {
	first, last          time.Duration
	manifests, snapshots int
	metadataBytes        int64
}

func commitHistory(tb testing.TB, payers, maintainEvery int) historyResult {
	ctx := context.Background()
	lake := openTestLake(tb)
	bs := billing.LineItems
	p := billingPeriod("2026-09")
	var times []time.Duration
	for i := range payers {
		payer := fmt.Sprintf("%012d", 100000000000+i)
		tbl, err := lake.LineItems(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		path := lakehouse.DataFilePath(tbl, bs, payer, p, "asm")
		w, err := lakehouse.NewDataFileWriter(ctx, tbl, bs, path)
		if err != nil {
			tb.Fatal(err)
		}
		rec := bs.NewRecord()
		for j := range 20 {
			rec.Reset()
			rec.Values[bs.MustIndex(bs.Payer)] = payer
			rec.Values[bs.MustIndex(billing.ColBillingPeriod)] = p.String()
			rec.Values[bs.MustIndex(bs.Account)] = payer
			rec.Values[bs.MustIndex(bs.ChargeType)] = "Usage"
			rec.Values[bs.MustIndex(bs.Cost)] = strconv.Itoa(j) + ".25"
			rec.Values[bs.MustIndex(billing.ColLineItemID)] = fmt.Sprintf("li-%d", j)
			rec.Values[bs.MustIndex(billing.ColUsageStartDate)] = "2026-09-01T00:00:00Z"
			if err := w.Append(rec); err != nil {
				tb.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			tb.Fatal(err)
		}
		start := time.Now()
		_, err = lake.ReplacePeriod(ctx, bs, lakehouse.PeriodReplacement{Payer: payer, Period: p, RunID: "run-" + payer,
			Reports: []lakehouse.ReportFiles{{AssemblyID: "asm-" + payer, DataFiles: []string{path}, Rows: 20, DeliveredAt: p.End()}}})
		if err != nil {
			tb.Fatal(err)
		}
		times = append(times, time.Since(start))
		if maintainEvery > 0 && (i+1)%maintainEvery == 0 {
			if _, err := lake.MaintainTable(ctx, lakehouse.TableID(bs), lakehouse.MaintainOptions{Retention: time.Nanosecond}); err != nil {
				tb.Fatal(err)
			}
		}
	}
	tbl, err := lake.LineItems(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	r := historyResult{first: median(times[:min(30, len(times))]), last: median(times[max(0, len(times)-30):]), snapshots: len(tbl.Metadata().Snapshots())}
	fs, err := tbl.FS(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	manifests, err := tbl.CurrentSnapshot().Manifests(fs)
	if err != nil {
		tb.Fatal(err)
	}
	r.manifests = len(manifests)
	info, err := os.Stat(strings.TrimPrefix(tbl.MetadataLocation(), "file://"))
	if err != nil {
		tb.Fatal(err)
	}
	r.metadataBytes = info.Size()
	return r
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func envInt(tb testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		tb.Fatalf("%s=%q: want a whole number", name, v)
	}
	return n
}
