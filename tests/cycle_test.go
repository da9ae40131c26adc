package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/costlake/costlake/activities"
	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/clock"
	"github.com/costlake/costlake/internal/contract/cycle"
	"github.com/costlake/costlake/internal/devtools/synth"
	"github.com/costlake/costlake/internal/export"
	"github.com/costlake/costlake/internal/pricing"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/lakehouse"
	"github.com/costlake/costlake/tests/harness"
	"github.com/costlake/costlake/worker"
	"github.com/costlake/costlake/workflows"
)

// cycleStack is a stack (real Temporal server, worker, SQLite catalog,
// local warehouse, MinIO) whose worker also has the reseller records and
// reaches fake-gcs-server.
// cycleToday is the business date of the cycle stand.
var cycleToday = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

type cycleStack struct {
	*stack
	gcs      *harness.GCSServer
	reseller *reseller.Store
	acts     *activities.Set
}

func newCycleStack(t *testing.T) *cycleStack {
	t.Helper()
	s := &stack{t: t, dir: t.TempDir()}
	s.minio = harness.MinIO(t)
	gcs := harness.FakeGCS(t)
	ctx := context.Background()
	lake, err := lakehouse.Open(ctx, lakehouse.Config{Catalog: testCatalog(s.t, s.dir), Warehouse: "file://" + filepath.Join(s.dir, "warehouse")})
	require.NoError(t, err)
	t.Cleanup(func() { lake.Close() })
	s.lake = lake
	db, postgres := lake.DB()
	store, err := reseller.Open(ctx, db, postgres)
	require.NoError(t, err)

	ts := newTemporal(t)
	s.client = ts.GetDefaultClient()
	// The business date is pinned: 2026-08 to 2026-10 are final by date,
	// 2026-11 is not until 2026-12-11, whatever day the test runs.
	acts := activities.New(activities.Config{Lake: lake, Blobs: blob.Opener{S3: s.minio.S3Options(), GCS: gcs.GCSOptions(), FileRoots: testFileRoots}, Temporal: s.client, Reseller: store, TempDir: t.TempDir(),
		Clock: clock.Fixed(cycleToday)})
	ts.NewWorkerWithOptions(workflows.TaskQueue, func(r sdkworker.Registry) { worker.Register(r, acts) },
		sdkworker.Options{MaxConcurrentActivityExecutionSize: 4})
	return &cycleStack{stack: s, gcs: gcs, reseller: store, acts: acts}
}

func (s *cycleStack) close(customer, period string) *workflows.CloseBillingCycleResult {
	s.t.Helper()
	res, err := s.tryClose(customer, period)
	require.NoError(s.t, err)
	return res
}

// tryClose runs CloseBillingCycle to its end; safe from any goroutine.
func (s *cycleStack) tryClose(customer, period string) (*workflows.CloseBillingCycleResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run, err := workflows.StartCycleClose(ctx, s.client, workflows.CloseBillingCycleInput{CustomerID: customer, Period: billingPeriod(period)})
	if err != nil {
		return nil, err
	}
	var res workflows.CloseBillingCycleResult
	if err := run.Get(ctx, &res); err != nil {
		return nil, fmt.Errorf("close %s %s: %w", customer, period, err)
	}
	return &res, nil
}

func (s *cycleStack) resellerExport(in workflows.ExportResellerPeriodInput) (*cycle.ResellerExportResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run, err := workflows.StartResellerExport(ctx, s.client, in)
	require.NoError(s.t, err)
	var res cycle.ResellerExportResult
	return &res, run.Get(ctx, &res)
}

// lineRow is one line item as the test reads it, with shopspring/decimal.
type lineRow struct {
	account, typ string
	cost         decimal.Decimal
}

// snapshotRows reads a payer's period at a snapshot through iceberg-go's
// own scan, independently of costlake's readers.
func (s *cycleStack) snapshotRows(payer, period string, snapshot int64) []lineRow {
	s.t.Helper()
	ctx := context.Background()
	tbl, err := s.lake.Catalog().LoadTable(ctx, lakehouse.TableID(billing.LineItems))
	require.NoError(s.t, err)
	at, err := tbl.Scan(table.WithSnapshotID(snapshot),
		table.WithSelectedFields(billing.ColPayerAccountID, billing.ColBillingPeriod, billing.ColUsageAccountID, billing.ColLineItemType, billing.ColUnblendedCost)).ToArrowTable(ctx)
	require.NoError(s.t, err)
	defer at.Release()
	tr := array.NewTableReader(at, 4096)
	defer tr.Release()
	var out []lineRow
	for tr.Next() {
		rec := tr.RecordBatch()
		col := func(name string) int { return rec.Schema().FieldIndices(name)[0] }
		payers := rec.Column(col(billing.ColPayerAccountID)).(*array.String)
		periods := rec.Column(col(billing.ColBillingPeriod)).(*array.String)
		accts := rec.Column(col(billing.ColUsageAccountID)).(*array.String)
		types := rec.Column(col(billing.ColLineItemType)).(*array.String)
		costs := rec.Column(col(billing.ColUnblendedCost)).(*array.Decimal128)
		for i := 0; i < int(rec.NumRows()); i++ {
			if payers.Value(i) != payer || periods.Value(i) != period {
				continue
			}
			r := lineRow{account: accts.Value(i), typ: types.Value(i)}
			if costs.IsValid(i) {
				r.cost = decimal.NewFromBigInt(costs.Value(i).BigInt(), -18)
			}
			out = append(out, r)
		}
	}
	require.NoError(s.t, tr.Err())
	return out
}

// resaleTableSums sums a customer's period in billing.resale_line_items
// through iceberg-go: cost and resale.
func (s *cycleStack) resaleTableSums(customer, period string) (rows int, cost, resale decimal.Decimal, snapshot int64) {
	s.t.Helper()
	ctx := context.Background()
	tbl, err := s.lake.Catalog().LoadTable(ctx, lakehouse.ResaleTableID())
	require.NoError(s.t, err)
	snapshot = tbl.CurrentSnapshot().SnapshotID
	at, err := tbl.Scan().ToArrowTable(ctx)
	require.NoError(s.t, err)
	defer at.Release()
	tr := array.NewTableReader(at, 4096)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		col := func(name string) int { return rec.Schema().FieldIndices(name)[0] }
		customers := rec.Column(col(lakehouse.ColResaleCustomer)).(*array.String)
		periods := rec.Column(col(lakehouse.ColResalePeriod)).(*array.String)
		costs := rec.Column(col(lakehouse.ColResaleCost)).(*array.Decimal128)
		resales := rec.Column(col(lakehouse.ColResaleResale)).(*array.Decimal128)
		for i := 0; i < int(rec.NumRows()); i++ {
			if customers.Value(i) != customer || periods.Value(i) != period {
				continue
			}
			rows++
			cost = cost.Add(decimal.NewFromBigInt(costs.Value(i).BigInt(), -18))
			resale = resale.Add(decimal.NewFromBigInt(resales.Value(i).BigInt(), -18))
		}
	}
	require.NoError(s.t, tr.Err())
	return rows, cost, resale, snapshot
}

// exportSum reads an export (readExport) and sums its UnBlendedCost
// column with shopspring/decimal.
func exportSum(t *testing.T, store blob.Store, manifestKey string) (rows int, sum decimal.Decimal, m export.Manifest) {
	t.Helper()
	header, records, m := readExport(t, store, manifestKey)
	col := column(t, header, "UnBlendedCost")
	for _, rec := range records {
		sum = sum.Add(decimal.RequireFromString(rec[col]))
	}
	return len(records), sum, m
}

// priceIndependently prices rows the way the test's pricebooks say, with
// shopspring/decimal: Tax, Credit and Refund at cost; an account rule
// beats the global percent.
func priceIndependently(rows []lineRow, global string, accountRules map[string]string) decimal.Decimal {
	hundred := decimal.NewFromInt(100)
	var sum decimal.Decimal
	for _, r := range rows {
		switch r.typ {
		case "Tax", "Credit", "Refund":
			sum = sum.Add(r.cost)
			continue
		}
		pct := global
		if p, ok := accountRules[r.account]; ok {
			pct = p
		}
		sum = sum.Add(r.cost.Mul(decimal.NewFromInt(1).Add(decimal.RequireFromString(pct).Div(hundred))))
	}
	return sum
}

func sumOf(rows []lineRow, keep func(account string) bool) decimal.Decimal {
	var s decimal.Decimal
	for _, r := range rows {
		if keep(r.account) {
			s = s.Add(r.cost)
		}
	}
	return s
}

func dec(t *testing.T, s string) decimal.Decimal {
	t.Helper()
	d, err := decimal.NewFromString(s)
	require.NoError(t, err)
	return d
}

// TestCycleCloseThreeCustomersAndReseller is the billing cycle end to
// end on real servers: one payer's synthetic delivery is ingested from
// MinIO through the real workflow; three customers own some of its linked
// accounts (the rest are nobody's) and close September concurrently.
// It proves that the customers' at-cost totals plus the unassigned usage
// equal the payer's table total exactly; that resale exports (MinIO and
// fake-gcs-server) equal the table's rows priced independently; that the
// reseller-wide export covers every customer and reconciles the payer;
// that closing twice changes nothing; that a closed cycle refuses a new
// pricebook; and that a restated delivery of the closed month becomes
// adjustments of October equal to the difference, while the closed
// cycles' pins and resale rows stay as they were.
func TestCycleCloseThreeCustomersAndReseller(t *testing.T) {
	s := newCycleStack(t)
	ctx := context.Background()
	const (
		payerID  = "444455556666"
		period   = "2026-09" // final by date: its month ended more than 5 days ago
		next     = "2026-10"
		seed     = 17
		assembly = "20261003T000000Z"
	)
	src := s.minio.CreateBucket(t, "cycle-cur")
	gen, err := synth.Generate(ctx, src, synth.Options{Prefix: "cur", Report: "billing", Bucket: "cycle-cur", Period: period,
		Rows: 3000, Files: 2, Seed: seed, Payer: payerID, LinkedAccounts: 7, AssemblyID: assembly})
	require.NoError(t, err)
	ing, err := s.ingest("s3://cycle-cur/cur/billing", period)
	require.NoError(t, err)
	require.Equal(t, payerID, ing.PayerAccountID)
	pinned := ing.SnapshotID

	var linked []string
	for a := range gen.Accounts {
		if a != payerID {
			linked = append(linked, a)
		}
	}
	slices.Sort(linked)
	require.Len(t, linked, 6, "every linked account has usage")
	owned := map[string][]string{
		"acme":    {linked[0], linked[1]},
		"globex":  {linked[2]},
		"initech": {linked[3], linked[4]},
	} // linked[5] and the payer's own usage are nobody's
	owner := func(acct string) string {
		for c, accts := range owned {
			if slices.Contains(accts, acct) {
				return c
			}
		}
		return ""
	}

	// Customers: acme exports at resale to MinIO, globex at resale (gzip)
	// to fake-gcs-server, initech at cost to a local folder.
	s.minio.CreateBucket(t, "acme-bills")
	globexBucket := s.gcs.CreateBucket(t, "globex-bills")
	initechDir := t.TempDir()
	// globex proves the GCS bucket is its own; the others are vouched for
	// by the operator (the worker's own credentials, a local folder).
	require.NoError(t, globexBucket.Put(ctx, "aws/"+reseller.OwnershipFile, strings.NewReader("globex\n")))
	dests := map[string]*reseller.Destination{
		"acme":    {URL: "s3://acme-bills/costlake", Mode: "at_resale", OperatorOverride: true},
		"globex":  {URL: "gs://globex-bills/aws", Mode: "at_resale", Gzip: true},
		"initech": {URL: "file://" + initechDir, Mode: "at_cost", OperatorOverride: true},
	}
	pricebooks := map[string]string{
		"acme":    `{"effective_from":"` + period + `","global_percent":"10","rules":[{"account":"` + linked[1] + `","percent":"-12.5"}]}`,
		"globex":  `{"effective_from":"` + period + `","global_percent":"-3.5"}`,
		"initech": `{"effective_from":"` + period + `","global_percent":"7.25"}`,
	}
	for _, c := range slices.Sorted(maps.Keys(owned)) {
		require.NoError(t, s.reseller.PutCustomer(ctx, reseller.Customer{ID: c, Export: dests[c]}, "test"))
		require.NoError(t, s.reseller.SetAccounts(ctx, c, period, []reseller.Assignment{{PayerAccountID: payerID, Accounts: owned[c]}}, "test"))
		_, err := s.reseller.PutPricebook(ctx, c, period, json.RawMessage(pricebooks[c]), "test")
		require.NoError(t, err)
	}

	// Close the three cycles at once.
	results := map[string]*workflows.CloseBillingCycleResult{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for _, c := range slices.Sorted(maps.Keys(owned)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.tryClose(c, period)
			mu.Lock()
			defer mu.Unlock()
			results[c] = res
			errs = append(errs, err)
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))

	rows := s.snapshotRows(payerID, period, pinned)
	_, tableCosts := s.tableTotals(payerID, period)
	var payerTotal decimal.Decimal
	for _, c := range tableCosts {
		payerTotal = payerTotal.Add(c)
	}
	require.True(t, payerTotal.Equal(sumOf(rows, func(string) bool { return true })))

	// Pins, bills and resale rows: exact, from the pinned snapshot.
	customersAtCost := decimal.Zero
	for c, res := range results {
		require.Equal(t, map[string]int64{payerID: pinned}, res.Snapshots, c)
		require.Equal(t, 1, res.PricebookVersion, c)
		require.False(t, res.AlreadyClosed, c)
		mine := func(a string) bool { return owner(a) == c }
		wantCost := sumOf(rows, mine)
		require.Truef(t, dec(t, res.Bill.Cost.String()).Equal(wantCost), "%s: bill cost %s, table %s", c, res.Bill.Cost, wantCost)
		n, cost, resale, _ := s.resaleTableSums(c, period)
		require.Equal(t, int64(n), res.Rows, c)
		require.Truef(t, cost.Equal(wantCost), "%s: resale table cost %s, line items %s", c, cost, wantCost)
		require.Truef(t, dec(t, res.Bill.Total.String()).Equal(resale), "%s: bill total %s, resale rows %s", c, res.Bill.Total, resale)
		customersAtCost = customersAtCost.Add(cost)
	}
	unassigned := sumOf(rows, func(a string) bool { return owner(a) == "" })
	require.Truef(t, customersAtCost.Add(unassigned).Equal(payerTotal), "customers %s + unassigned %s != payer %s", customersAtCost, unassigned, payerTotal)

	// Exports: each customer's in its mode, equal to the rows priced independently.
	acmeResale := priceIndependently(filterRows(rows, owned["acme"]), "10", map[string]string{linked[1]: "-12.5"})
	globexResale := priceIndependently(filterRows(rows, owned["globex"]), "-3.5", nil)
	acmeStore, err := blob.NewS3(ctx, "acme-bills", s.minio.S3Options())
	require.NoError(t, err)
	require.Len(t, results["acme"].Exports, 1)
	require.Equal(t, "costlake/at-resale/"+payerID+"-aws-billing-detailed-line-items-with-resources-and-tags-"+period+"-manifest.json", results["acme"].Exports[0].ManifestKey)
	n, sum, m := exportSum(t, acmeStore, results["acme"].Exports[0].ManifestKey)
	require.Equal(t, export.AtResale, m.Mode)
	require.Equal(t, int64(n), results["acme"].Rows)
	require.Truef(t, sum.Equal(acmeResale), "acme export %s, independent price %s", sum, acmeResale)
	require.Truef(t, dec(t, results["acme"].Bill.Total.String()).Equal(acmeResale), "acme bill %s", results["acme"].Bill.Total)
	require.Equal(t, []string{"s3://acme-bills/" + results["acme"].Exports[0].ManifestKey}, results["acme"].ExportKeys)

	require.Len(t, results["globex"].Exports, 1)
	n, sum, m = exportSum(t, globexBucket, results["globex"].Exports[0].ManifestKey)
	require.Equal(t, "gzip", m.Compression)
	require.True(t, strings.HasPrefix(results["globex"].ExportKeys[0], "gs://globex-bills/aws/at-resale/"))
	require.Equal(t, int64(n), results["globex"].Rows)
	require.Truef(t, sum.Equal(globexResale), "globex export on GCS %s, independent price %s", sum, globexResale)

	_, sum, m = exportSum(t, blob.NewLocal("/"), results["initech"].Exports[0].ManifestKey)
	require.Equal(t, export.AtCost, m.Mode)
	require.True(t, sum.Equal(sumOf(rows, func(a string) bool { return owner(a) == "initech" })), "initech at-cost export %s", sum)

	// The reseller's own export: every customer at cost and at resale,
	// the unassigned usage, and a payer that reconciles exactly.
	s.minio.CreateBucket(t, "reseller")
	resellerStore, err := blob.NewS3(ctx, "reseller", s.minio.S3Options())
	require.NoError(t, err)
	rx, err := s.resellerExport(workflows.ExportResellerPeriodInput{Period: billingPeriod(period), URL: "s3://reseller/billing"})
	require.NoError(t, err)
	require.Equal(t, []string{"acme", "globex", "initech"}, rx.Customers)
	require.Empty(t, rx.OpenCycles)
	require.Len(t, rx.Payers, 1)
	rec := rx.Payers[0]
	require.True(t, dec(t, rec.Total.String()).Equal(payerTotal))
	require.True(t, rec.Restated.IsZero())
	require.True(t, rec.Open.IsZero())
	exported := decimal.Zero
	seen := map[string]bool{}
	for _, e := range rx.Exports {
		n, sum, _ := exportSum(t, resellerStore, e.ManifestKey)
		require.Equal(t, e.Rows, int64(n))
		switch {
		case e.CustomerID == "" && e.Mode == "at_cost":
			require.True(t, sum.Equal(unassigned), "unassigned export %s, want %s", sum, unassigned)
			require.True(t, dec(t, rec.Unassigned.String()).Equal(unassigned))
			exported = exported.Add(sum)
		case e.Mode == "at_cost":
			want := sumOf(rows, func(a string) bool { return owner(a) == e.CustomerID })
			require.Truef(t, sum.Equal(want), "%s at cost: %s, want %s", e.CustomerID, sum, want)
			require.True(t, dec(t, rec.Customers[e.CustomerID].String()).Equal(want))
			exported = exported.Add(sum)
		case e.CustomerID == "acme":
			require.True(t, sum.Equal(acmeResale), "acme at resale in the reseller export: %s", sum)
		}
		seen[e.CustomerID+"/"+e.Mode] = true
	}
	require.Len(t, seen, 7, "three customers in two modes and the unassigned report: %v", seen)
	require.Truef(t, exported.Equal(payerTotal), "customers' at-cost exports + unassigned = %s, payer %s", exported, payerTotal)
	_, err = resellerStore.Stat(ctx, rx.SummaryKey)
	require.NoError(t, err)

	// Closing again changes nothing: same pins, same bill, no new resale
	// snapshot, the export untouched.
	_, _, _, resaleSnap := s.resaleTableSums("acme", period)
	before, err := acmeStore.Stat(ctx, results["acme"].Exports[0].ManifestKey)
	require.NoError(t, err)
	again := s.close("acme", period)
	require.True(t, again.AlreadyClosed)
	require.True(t, again.Replayed)
	require.Equal(t, results["acme"].Snapshots, again.Snapshots)
	require.Equal(t, results["acme"].Bill, again.Bill)
	require.Equal(t, results["acme"].ResaleSnapshotID, again.ResaleSnapshotID)
	_, _, _, resaleSnapAgain := s.resaleTableSums("acme", period)
	require.Equal(t, resaleSnap, resaleSnapAgain)
	after, err := acmeStore.Stat(ctx, results["acme"].Exports[0].ManifestKey)
	require.NoError(t, err)
	require.Equal(t, before.ETag, after.ETag)
	require.Equal(t, before.LastModified, after.LastModified)

	// Closed means closed: no new pricebook, no new accounts for September.
	_, err = s.reseller.PutPricebook(ctx, "acme", period, json.RawMessage(`{"effective_from":"`+period+`","global_percent":"50"}`), "test")
	require.True(t, errors.Is(err, reseller.ErrClosed), "PutPricebook after close: %v", err)
	require.ErrorIs(t, s.reseller.SetAccounts(ctx, "acme", period, []reseller.Assignment{{PayerAccountID: payerID, Accounts: owned["acme"][:1]}}, "test"), reseller.ErrClosed)

	// AWS restates September: more rows, a new assembly. The closed
	// cycles keep their pins and rows; each customer's difference is an
	// adjustment of October.
	time.Sleep(1100 * time.Millisecond) // S3 times have one-second resolution
	restated, err := synth.Generate(ctx, src, synth.Options{Prefix: "cur", Report: "billing", Bucket: "cycle-cur", Period: period,
		Rows: 3600, Files: 2, Seed: seed, Payer: payerID, LinkedAccounts: 7, AssemblyID: "20261010T000000Z"})
	require.NoError(t, err)
	ing2, err := s.ingest("s3://cycle-cur/cur/billing", period)
	require.NoError(t, err)
	require.Equal(t, "20261010T000000Z", ing2.AssemblyID)
	require.NotEqual(t, pinned, ing2.SnapshotID)
	for c, accts := range owned {
		var oldCost, newCost decimal.Decimal
		for _, a := range accts {
			oldCost = oldCost.Add(dec(t, gen.Accounts[a].UnblendedCost))
			newCost = newCost.Add(dec(t, restated.Accounts[a].UnblendedCost))
		}
		adjs, err := s.reseller.Adjustments(ctx, c, next)
		require.NoError(t, err)
		require.Len(t, adjs, 1, c)
		require.Equal(t, period, adjs[0].OriginPeriod)
		require.Equal(t, "20261010T000000Z", adjs[0].AssemblyID)
		require.Truef(t, dec(t, adjs[0].Amount.String()).Equal(newCost.Sub(oldCost)), "%s: adjustment %s, want %s", c, adjs[0].Amount, newCost.Sub(oldCost))
		// Priced like the lines it adjusts, at the closed cycle's pricebook.
		globalPct, rules := map[string]string{"acme": "10", "globex": "-3.5", "initech": "7.25"}[c], map[string]string{}
		if c == "acme" {
			rules[linked[1]] = "-12.5"
		}
		wantResale := priceIndependently(filterRows(s.snapshotRows(payerID, period, ing2.SnapshotID), accts), globalPct, rules).
			Sub(priceIndependently(filterRows(rows, accts), globalPct, rules))
		require.NotNil(t, adjs[0].Resale, c)
		require.Equal(t, 1, adjs[0].PricebookVersion, c)
		require.Truef(t, dec(t, adjs[0].Resale.String()).Equal(wantResale), "%s: adjustment resale %s, priced independently %s", c, adjs[0].Resale, wantResale)

		cyc, err := s.reseller.CycleOf(ctx, c, period)
		require.NoError(t, err)
		require.Equal(t, map[string]int64{payerID: pinned}, cyc.Snapshots, "the closed cycle's pins")
		_, cost, _, _ := s.resaleTableSums(c, period)
		require.Truef(t, cost.Equal(oldCost), "%s: resale rows now cost %s, closed at %s", c, cost, oldCost)
	}
	_, _, _, resaleSnapAfter := s.resaleTableSums("acme", period)
	require.Equal(t, resaleSnap, resaleSnapAfter, "a restatement never touches the resale table")

	// The reseller export now shows the restatement, still exactly.
	rx2, err := s.resellerExport(workflows.ExportResellerPeriodInput{Period: billingPeriod(period), URL: "s3://reseller/billing-restated"})
	require.NoError(t, err)
	var adjusted decimal.Decimal
	for c := range owned {
		adjs, err := s.reseller.Adjustments(ctx, c, next)
		require.NoError(t, err)
		adjusted = adjusted.Add(dec(t, adjs[0].Amount.String()))
	}
	require.Truef(t, dec(t, rx2.Payers[0].Restated.String()).Equal(adjusted), "restated %s, adjustments %s", rx2.Payers[0].Restated, adjusted)
	var restatedTotal decimal.Decimal
	for _, a := range restated.Accounts {
		restatedTotal = restatedTotal.Add(dec(t, a.UnblendedCost))
	}
	require.True(t, dec(t, rx2.Payers[0].Total.String()).Equal(restatedTotal))

	// An adjustment the ingestion could not record (simulated by removing
	// acme's) is caught up when the next cycle closes.
	lost, err := s.reseller.Adjustments(ctx, "acme", next)
	require.NoError(t, err)
	db, _ := s.lake.DB()
	for _, tbl := range []string{"costlake_adjustments", "costlake_adjustment_resale"} {
		_, err = db.ExecContext(ctx, `DELETE FROM `+tbl+` WHERE customer_id = 'acme'`)
		require.NoError(t, err)
	}

	// October closes with nothing ingested yet: its bill carries the
	// adjustment as a line, priced at September's pricebook, naming the
	// period it corrects.
	oct := s.close("acme", next)
	adjs, err := s.reseller.Adjustments(ctx, "acme", next)
	require.NoError(t, err)
	require.Len(t, adjs, 1)
	require.Equal(t, lost[0].Amount, adjs[0].Amount, "caught up at the close")
	require.Equal(t, lost[0].Resale.String(), adjs[0].Resale.String(), "caught up at the close")
	require.Equal(t, lost[0].AssemblyID, adjs[0].AssemblyID)
	var line *pricing.BillLine
	for _, l := range oct.Bill.Lines {
		if l.Kind == pricing.LineAdjustment {
			line = &l
		}
	}
	require.NotNil(t, line, "October's bill has no adjustment line: %+v", oct.Bill.Lines)
	require.Equal(t, adjs[0].Resale.String(), line.Amount.String())
	require.Equal(t, adjs[0].Amount.String(), line.Cost.String())
	require.Equal(t, period, line.CorrectsPeriod)
	require.Equal(t, adjs[0].Resale.String(), oct.Bill.Total.String())
}

func filterRows(rows []lineRow, accounts []string) []lineRow {
	var out []lineRow
	for _, r := range rows {
		if slices.Contains(accounts, r.account) {
			out = append(out, r)
		}
	}
	return out
}

// TestResellerExportRefusesOpenCycles: a customer who owns accounts but
// has not closed the period blocks the reseller export, unless open
// cycles are allowed; then its usage is counted as open and the payer
// still reconciles exactly. A cycle of a month not final yet waits, and
// its status query says until when; one without a pricebook fails with a
// named error.
func TestResellerExportRefusesOpenCycles(t *testing.T) {
	s := newCycleStack(t)
	ctx := context.Background()
	const payerID, period = "777788889999", "2026-08"
	root := t.TempDir()
	gen, err := synth.Generate(ctx, blob.NewLocal(root), synth.Options{Prefix: "cur", Report: "open", Period: period, Rows: 800, Files: 1, Seed: 3, Payer: payerID, LinkedAccounts: 3})
	require.NoError(t, err)
	_, err = s.ingest("file://"+filepath.Join(root, "cur", "open"), period)
	require.NoError(t, err)
	var linked []string
	for a := range gen.Accounts {
		if a != payerID {
			linked = append(linked, a)
		}
	}
	slices.Sort(linked)
	require.NoError(t, s.reseller.SetAccounts(ctx, "hooli", period, []reseller.Assignment{{PayerAccountID: payerID, Accounts: linked[:1]}}, "test"))

	_, err = s.resellerExport(workflows.ExportResellerPeriodInput{Period: billingPeriod(period), URL: "file://" + t.TempDir()})
	typ, msg := failureType(t, err)
	require.Equal(t, cycle.ErrTypeOpenCycles, typ)
	require.Contains(t, msg, "hooli")

	rx, err := s.resellerExport(workflows.ExportResellerPeriodInput{Period: billingPeriod(period), URL: "file://" + t.TempDir(), AllowOpenCycles: true})
	require.NoError(t, err)
	require.Equal(t, []string{"hooli"}, rx.OpenCycles)
	want := dec(t, gen.Accounts[linked[0]].UnblendedCost)
	require.Truef(t, dec(t, rx.Payers[0].Open.String()).Equal(want), "open %s, want %s", rx.Payers[0].Open, want)
	var total decimal.Decimal
	for _, a := range gen.Accounts {
		total = total.Add(dec(t, a.UnblendedCost))
	}
	require.True(t, dec(t, rx.Payers[0].Open.Add(rx.Payers[0].Unassigned).String()).Equal(total))

	// A period that is not final yet: the workflow waits and says why.
	const current = "2026-11"
	waiting, err := workflows.StartCycleClose(ctx, s.client, workflows.CloseBillingCycleInput{CustomerID: "hooli", Period: billingPeriod(current)})
	require.NoError(t, err)
	var st cycle.Status
	require.Eventually(t, func() bool {
		v, err := s.client.QueryWorkflow(ctx, waiting.GetID(), "", workflows.CycleStatusQuery)
		return err == nil && v.Get(&st) == nil && st.Checks > 0
	}, time.Minute, 100*time.Millisecond)
	require.Equal(t, cycle.StatusWaiting, st.Stage)
	require.Equal(t, time.Date(2026, 12, 11, 0, 0, 0, 0, time.UTC), st.FinalAt) // once the 10th has passed
	require.False(t, st.NextCheck.IsZero())
	require.Contains(t, st.Reason, "final on 2026-12-11")
	require.Equal(t, workflows.CycleWorkflowID("hooli", billingPeriod(current)), waiting.GetID())
	require.NoError(t, s.client.TerminateWorkflow(ctx, waiting.GetID(), "", "test done"))

	// Closing without a pricebook fails with a named error.
	run, err := workflows.StartCycleClose(ctx, s.client, workflows.CloseBillingCycleInput{CustomerID: "hooli", Period: billingPeriod(period)})
	require.NoError(t, err)
	typ, _ = failureType(t, run.Get(ctx, nil))
	require.Equal(t, cycle.ErrTypeNoPricebook, typ)
}
