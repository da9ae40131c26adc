package rebilling

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/export"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/pricing"
	"github.com/costlake/costlake/internal/reseller"
)

const (
	payerID = "210987654321"
	acct1   = "111111111111" // acme
	acct2   = "222222222222" // acme
	acct3   = "333333333333" // globex
	acct4   = "444444444444" // nobody's
	period  = "2026-09"
)

// stand is a reseller with two customers on one payer: acme owns acct1
// and acct2, globex owns acct3, acct4 is unassigned.
type stand struct {
	t    *testing.T
	lake *memLake
	recs *reseller.Store
	dir  string
	r    *Rebiller
	seen []Progress
}

func newStand(t *testing.T) *stand {
	t.Helper()
	ctx := context.Background()
	s := &stand{t: t, lake: newMemLake(), recs: records(t), dir: t.TempDir()}
	s.must(s.recs.SetAccounts(ctx, "acme", period, []reseller.Assignment{{PayerAccountID: payerID, Accounts: []string{acct1, acct2}}}, "op"))
	s.must(s.recs.SetAccounts(ctx, "globex", period, []reseller.Assignment{{PayerAccountID: payerID, Accounts: []string{acct3}}}, "op"))
	// 10% on everything, 20% off S3, 5% on acct2; tax passes at cost.
	acme := `{"effective_from":"2026-09","global_percent":"10","rules":[{"service":"AmazonS3","percent":"-20"},{"account":"222222222222","percent":"5"}]}`
	_, err := s.recs.PutPricebook(ctx, "acme", period, json.RawMessage(acme), "op")
	s.must(err)
	_, err = s.recs.PutPricebook(ctx, "globex", period, json.RawMessage(`{"effective_from":"2026-09","global_percent":"-3"}`), "op")
	s.must(err)
	s.r = &Rebiller{Lake: s.lake, Records: s.recs, TempDir: t.TempDir(), ReportEvery: 2,
		Progress: func(p Progress) { s.seen = append(s.seen, p) }}
	return s
}

func (s *stand) must(err error) {
	s.t.Helper()
	if err != nil {
		s.t.Fatal(err)
	}
}

// september commits the payer's period: 163.00 of acme's, 40.00 of
// globex's, 7.77 unassigned.
func (s *stand) september() int64 {
	return s.lake.commit(payerID, period,
		item(payerID, acct1, "li-1", "Usage", "AmazonEC2", "BoxUsage:m5.large", "100.00"),  // 10% → 110
		item(payerID, acct1, "li-2", "Usage", "AmazonS3", "TimedStorage-ByteHrs", "50.00"), // -20% → 40
		item(payerID, acct2, "li-3", "Usage", "AmazonEC2", "BoxUsage:m5.large", "10.00"),   // 5% → 10.5
		item(payerID, acct2, "li-4", "Tax", "AmazonEC2", "", "3.00"),                       // at cost
		item(payerID, acct3, "li-5", "Usage", "AmazonEC2", "BoxUsage:m5.large", "40.00"),   // globex's
		item(payerID, acct4, "li-6", "Usage", "AmazonEC2", "BoxUsage:t3.micro", "7.77"),    // unassigned
	)
}

func (s *stand) close(customer string, snaps map[string]int64) {
	s.t.Helper()
	ctx := context.Background()
	pv, err := s.recs.PricebookFor(ctx, customer, period)
	s.must(err)
	s.must(s.recs.CloseCycle(ctx, reseller.Cycle{CustomerID: customer, Period: period, PricebookVersion: pv.Version, Snapshots: snaps}))
}

func (s *stand) dest(prefix string) Destination {
	return Destination{Store: blob.NewLocal(s.dir), Loc: blob.Location{Scheme: "file", Prefix: prefix}}
}

func (s *stand) targets(mode export.Mode) func(context.Context) ([]Target, func(), error) {
	return func(context.Context) ([]Target, func(), error) {
		d := s.dest("acme")
		return []Target{{Dest: d, Prefix: d.Loc.Key(ModeFolder(mode)), Mode: mode, Customer: "acme"}}, d.Close, nil
	}
}

func equal(t *testing.T, what string, got money.Amount, want string) {
	t.Helper()
	if got.Cmp(amount(t, want)) != 0 {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}

func TestPriceCycleWithAPricebook(t *testing.T) {
	ctx := context.Background()
	s := newStand(t)
	pinned := s.september()
	s.close("acme", map[string]int64{payerID: pinned})
	// A restatement after the close is not the cycle's: it prices the pin.
	s.lake.commit(payerID, period, item(payerID, acct1, "li-1", "Usage", "AmazonEC2", "BoxUsage:m5.large", "1000.00"))

	res, err := s.r.PriceCycle(ctx, CycleJob{CustomerID: "acme", Period: period, Targets: s.targets(export.AtResale)})
	s.must(err)
	if res.Rows != 4 || res.Replayed {
		t.Fatalf("priced %d rows (replayed %v), want 4 fresh", res.Rows, res.Replayed)
	}
	want := map[string]struct {
		resale string
		rule   pricing.RuleRef
	}{
		"li-1": {"110", pricing.RefGlobal},
		"li-2": {"40", pricing.RuleRefOf(0)},
		"li-3": {"10.5", pricing.RuleRefOf(1)},
		"li-4": {"3", pricing.RefAtCost},
	}
	stored := s.lake.resale[[2]string{"acme", period}]
	if stored.snap != res.ResaleSnapshotID || stored.pins != Pins(1, map[string]int64{payerID: pinned}) || len(stored.rows) != len(want) {
		t.Fatalf("resale table: snapshot %d pins %q, %d rows; want snapshot %d, %d rows", stored.snap, stored.pins, len(stored.rows), res.ResaleSnapshotID, len(want))
	}
	for _, r := range stored.rows {
		w, ok := want[r.LineItemID]
		if !ok {
			t.Errorf("resale row of %s (account %s) is not acme's", r.LineItemID, r.UsageAccountID)
			continue
		}
		equal(t, r.LineItemID+" resale", r.ResaleCost, w.resale)
		if pricing.RuleRef(r.Rule) != w.rule || r.SourceSnapshotID != pinned || r.PricebookVersion != 1 || r.CustomerID != "acme" {
			t.Errorf("%s: rule %s snapshot %d version %d customer %s; want %s, %d, 1, acme", r.LineItemID, r.Rule, r.SourceSnapshotID, r.PricebookVersion, r.CustomerID, w.rule, pinned)
		}
	}
	equal(t, "bill cost", res.Bill.Cost, "163.00")
	equal(t, "bill total", res.Bill.Total, "163.50")
	equal(t, "bill due", res.Bill.Due, "163.50")
	if len(res.Exports) != 1 || res.Exports[0].Rows != 4 || res.Exports[0].Mode != string(export.AtResale) {
		t.Fatalf("exports %+v, want one at_resale export of 4 rows", res.Exports)
	}
	equal(t, "export's printed cost", res.Exports[0].UnblendedCost, "163.50")
	if _, err := os.Stat(filepath.Join(s.dir, res.Exports[0].ManifestKey)); err != nil {
		t.Errorf("manifest: %v", err)
	}
	if n := len(s.seen); n == 0 || s.seen[n-1].Stage != "committing" || s.seen[n-2].Rows != 4 {
		t.Errorf("progress %+v: want reports up to 4 rows, then committing", s.seen)
	}

	// Again: the table and the export are there, so nothing is written and
	// the bill is read back.
	next := s.lake.next
	again, err := s.r.PriceCycle(ctx, CycleJob{CustomerID: "acme", Period: period, Targets: s.targets(export.AtResale)})
	s.must(err)
	if !again.Replayed || again.Rows != 4 || again.ResaleSnapshotID != res.ResaleSnapshotID || s.lake.next != next {
		t.Errorf("second run: replayed %v, %d rows, snapshot %d (lake %d→%d)", again.Replayed, again.Rows, again.ResaleSnapshotID, next, s.lake.next)
	}
	equal(t, "replayed bill total", again.Bill.Total, "163.50")
}

func TestPriceCycleCarriesAdjustments(t *testing.T) {
	ctx := context.Background()
	s := newStand(t)
	s.close("acme", map[string]int64{payerID: s.september()})
	// A restatement of September after it closed is October's.
	_, _, err := s.recs.RecordAdjustment(ctx, reseller.Adjustment{CustomerID: "acme", OriginPeriod: period, PayerAccountID: payerID,
		Amount: amount(t, "-2.25"), AssemblyID: "asm-2", SnapshotID: 999})
	s.must(err)
	oct := s.lake.commit(payerID, "2026-10", item(payerID, acct1, "li-9", "Usage", "AmazonS3", "Requests-Tier1", "20.00"))
	pv, err := s.recs.PricebookFor(ctx, "acme", "2026-10")
	s.must(err)
	s.must(s.recs.CloseCycle(ctx, reseller.Cycle{CustomerID: "acme", Period: "2026-10", PricebookVersion: pv.Version, Snapshots: map[string]int64{payerID: oct}}))

	res, err := s.r.PriceCycle(ctx, CycleJob{CustomerID: "acme", Period: "2026-10"})
	s.must(err)
	equal(t, "cost", res.Bill.Cost, "17.75")   // 20 - 2.25
	equal(t, "total", res.Bill.Total, "13.75") // 16 - 2.25: the adjustment at cost
	last := res.Bill.Lines[len(res.Bill.Lines)-1]
	if last.Kind != pricing.LineAdjustment {
		t.Errorf("last line %+v, want the adjustment", last)
	}
	if len(res.Exports) != 0 {
		t.Errorf("exports %+v without a destination", res.Exports)
	}
}

func TestPriceCycleNamedFailures(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		setup func(s *stand)
		want  error
	}{
		{"never closed", func(s *stand) { s.september() }, ErrNotClosed},
		{"pinned snapshot expired", func(s *stand) { s.close("acme", map[string]int64{payerID: 4242}) }, ErrSnapshotGone},
		{"unreadable cost", func(s *stand) {
			s.close("acme", map[string]int64{payerID: s.lake.commit(payerID, period, item(payerID, acct1, "li-1", "Usage", "AmazonEC2", "", "12,5"))})
		}, ErrBadLineItem},
		{"pinned pricebook missing", func(s *stand) {
			s.must(s.recs.CloseCycle(ctx, reseller.Cycle{CustomerID: "acme", Period: period, PricebookVersion: 9, Snapshots: map[string]int64{payerID: s.september()}}))
		}, ErrNoPricebook},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStand(t)
			tc.setup(s)
			_, err := s.r.PriceCycle(ctx, CycleJob{CustomerID: "acme", Period: period, Targets: s.targets(export.AtCost)})
			var named *Error
			if !errors.Is(err, tc.want) || !errors.As(err, &named) {
				t.Fatalf("err = %v, want a named %v", err, tc.want)
			}
			if _, ok := s.lake.resale[[2]string{"acme", period}]; ok {
				t.Error("a failed run committed resale rows")
			}
		})
	}
}

// reconciles checks the identity total = customers + restated + open +
// unassigned on a payer's reconciliation, to the last digit.
func reconciles(t *testing.T, rec PayerReconciliation) {
	t.Helper()
	sum := rec.Restated.Add(rec.Open).Add(rec.Unassigned)
	for _, c := range rec.Customers {
		sum = sum.Add(c)
	}
	if sum.Cmp(rec.Total) != 0 {
		t.Errorf("customers + restated + open + unassigned = %s, total %s", sum, rec.Total)
	}
}

func TestResellerExportReconciles(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		setup     func(s *stand)
		allowOpen bool
		customers map[string]string
		total     string
		restated  string
		open      string
		unassign  string
		openNames []string
	}{
		{
			name: "an unassigned account",
			setup: func(s *stand) {
				snap := s.september()
				s.close("acme", map[string]int64{payerID: snap})
				s.close("globex", map[string]int64{payerID: snap})
			},
			customers: map[string]string{"acme": "163.00", "globex": "40.00"},
			total:     "210.77", restated: "0", open: "0", unassign: "7.77",
		},
		{
			name: "a closed period restated",
			setup: func(s *stand) {
				snap := s.september()
				s.close("acme", map[string]int64{payerID: snap})
				s.close("globex", map[string]int64{payerID: snap})
				// AWS restates: acme's li-1 costs 7.25 more, globex gains a line, the
				// unassigned line is gone.
				s.lake.commit(payerID, period,
					item(payerID, acct1, "li-1", "Usage", "AmazonEC2", "BoxUsage:m5.large", "107.25"),
					item(payerID, acct1, "li-2", "Usage", "AmazonS3", "TimedStorage-ByteHrs", "50.00"),
					item(payerID, acct2, "li-3", "Usage", "AmazonEC2", "BoxUsage:m5.large", "10.00"),
					item(payerID, acct2, "li-4", "Tax", "AmazonEC2", "", "3.00"),
					item(payerID, acct3, "li-5", "Usage", "AmazonEC2", "BoxUsage:m5.large", "40.00"),
					item(payerID, acct3, "li-7", "Credit", "AmazonEC2", "", "-0.000001"),
				)
			},
			customers: map[string]string{"acme": "163.00", "globex": "40.00"},
			total:     "210.249999", restated: "7.249999", open: "0", unassign: "0",
		},
		{
			name: "an open customer",
			setup: func(s *stand) {
				s.close("acme", map[string]int64{payerID: s.september()})
			},
			allowOpen: true,
			customers: map[string]string{"acme": "163.00"},
			total:     "210.77", restated: "0", open: "40.00", unassign: "7.77",
			openNames: []string{"globex"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStand(t)
			tc.setup(s)
			res, err := s.r.ExportReseller(ctx, ResellerJob{Period: period, AllowOpenCycles: tc.allowOpen,
				Open: func(context.Context) (Destination, error) { return s.dest("reseller"), nil }})
			s.must(err)
			if len(res.Payers) != 1 {
				t.Fatalf("payers %+v, want one", res.Payers)
			}
			rec := res.Payers[0]
			if rec.SnapshotID != s.lake.latest[[2]string{payerID, period}] {
				t.Errorf("reconciled snapshot %d, want the current one", rec.SnapshotID)
			}
			equal(t, "total", rec.Total, tc.total)
			equal(t, "restated", rec.Restated, tc.restated)
			equal(t, "open", rec.Open, tc.open)
			equal(t, "unassigned", rec.Unassigned, tc.unassign)
			if len(rec.Customers) != len(tc.customers) {
				t.Errorf("customers %v, want %v", rec.Customers, tc.customers)
			}
			var customerSum money.Amount
			for c, want := range tc.customers {
				equal(t, c, rec.Customers[c], want)
				customerSum = customerSum.Add(rec.Customers[c])
			}
			equal(t, "customer sum", res.CustomerSum, customerSum.String())
			reconciles(t, rec)
			if len(res.OpenCycles) != len(tc.openNames) || (len(tc.openNames) > 0 && res.OpenCycles[0] != tc.openNames[0]) {
				t.Errorf("open cycles %v, want %v", res.OpenCycles, tc.openNames)
			}
			body, err := os.ReadFile(filepath.Join(s.dir, res.SummaryKey))
			s.must(err)
			var summary ResellerExportResult
			s.must(json.Unmarshal(body, &summary))
			if summary.Payers[0].Total.Cmp(rec.Total) != 0 {
				t.Errorf("summary total %s, want %s", summary.Payers[0].Total, rec.Total)
			}
		})
	}
}

func TestResellerExportRefusesOpenCycles(t *testing.T) {
	s := newStand(t)
	s.close("acme", map[string]int64{payerID: s.september()})
	opened := false
	_, err := s.r.ExportReseller(context.Background(), ResellerJob{Period: period,
		Open: func(context.Context) (Destination, error) { opened = true; return s.dest("reseller"), nil }})
	if !errors.Is(err, ErrOpenCycles) || opened {
		t.Fatalf("err = %v (destination opened %v), want ErrOpenCycles before opening it", err, opened)
	}
}

func TestResellerExportFailsWhenARowIsLost(t *testing.T) {
	s := newStand(t)
	snap := s.september()
	s.close("acme", map[string]int64{payerID: snap})
	s.close("globex", map[string]int64{payerID: snap})
	// The scan loses the unassigned line; the table's totals still have it.
	s.lake.drop = func(r *billing.Record) bool { return r.Values[ciLineItemID] == "li-6" }
	res, err := s.r.ExportReseller(context.Background(), ResellerJob{Period: period,
		Open: func(context.Context) (Destination, error) { return s.dest("reseller"), nil }})
	if !errors.Is(err, ErrNotReconciled) {
		t.Fatalf("err = %v, want ErrNotReconciled", err)
	}
	if _, statErr := os.Stat(filepath.Join(s.dir, "reseller", "costlake-reseller-"+period+"-summary.json")); !os.IsNotExist(statErr) || res.SummaryKey != "" {
		t.Errorf("a summary was written for a period that does not reconcile (%v)", statErr)
	}
}

func TestReconcile(t *testing.T) {
	owners := map[[2]string]string{{payerID, acct1}: "acme", {payerID, acct3}: "globex"}
	in := PayerPeriod{PayerAccountID: payerID, Period: period, SnapshotID: 7, Owners: owners, Open: map[string]bool{"globex": true},
		Accounts: []billing.AccountTotal{
			{Account: acct1, UnblendedCost: amount(t, "100.000001")},
			{Account: acct3, UnblendedCost: amount(t, "40")},
			{Account: acct4, UnblendedCost: amount(t, "0.10")},
		},
		Pinned: map[string]money.Amount{"acme": amount(t, "99")}, Unassigned: amount(t, "0.10"), UnassignedRows: 1}
	rec, err := Reconcile(in)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "total", rec.Total, "140.100001")
	equal(t, "restated", rec.Restated, "1.000001")
	equal(t, "open", rec.Open, "40")
	reconciles(t, rec)

	// One cent of unassigned usage missing from the export.
	in.Unassigned = amount(t, "0.09")
	if _, err := Reconcile(in); !errors.Is(err, ErrNotReconciled) {
		t.Fatalf("a lost cent: err = %v, want ErrNotReconciled", err)
	}
}

// A customer owning a whole payer is scanned unfiltered; the accounts
// another customer owns in it stay that customer's, row by row.
func TestPriceCycleWholePayerLeavesOthersAccounts(t *testing.T) {
	ctx := context.Background()
	s := newStand(t)
	const payer2 = "299999999999"
	s.must(s.recs.SetAccounts(ctx, "acme", period, []reseller.Assignment{
		{PayerAccountID: payerID, Accounts: []string{acct1, acct2}}, {PayerAccountID: payer2, Accounts: []string{reseller.AllAccounts}}}, "op"))
	s.must(s.recs.SetAccounts(ctx, "globex", period, []reseller.Assignment{
		{PayerAccountID: payerID, Accounts: []string{acct3}}, {PayerAccountID: payer2, Accounts: []string{"555555555555"}}}, "op"))
	snap := s.lake.commit(payer2, period,
		item(payer2, "666666666666", "p2-1", "Usage", "AmazonEC2", "BoxUsage:m5.large", "10.00"),
		item(payer2, "555555555555", "p2-2", "Usage", "AmazonEC2", "BoxUsage:m5.large", "99.00"), // globex's
	)
	s.close("acme", map[string]int64{payer2: snap})
	res, err := s.r.PriceCycle(ctx, CycleJob{CustomerID: "acme", Period: period})
	s.must(err)
	if res.Rows != 1 {
		t.Fatalf("priced %d rows, want acme's one", res.Rows)
	}
	equal(t, "bill cost", res.Bill.Cost, "10.00")
}
