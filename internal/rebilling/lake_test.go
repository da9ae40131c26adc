package rebilling

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"

	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/reseller"
)

// memLake keeps line items and resale rows in memory. It stands for the
// lakehouse here because internal packages may not import it; the
// activities' tests run the same passes over the real lakehouse (SQLite
// catalog, local warehouse). It keeps Lake's contract: snapshots are
// immutable, a scan of an unknown snapshot is SnapshotGone, scans keep
// the commit's order.
type memLake struct {
	next   int64
	snaps  map[int64]memSnap
	latest map[[2]string]int64 // payer, period → snapshot
	resale map[[2]string]memResale
	// invoices are billing.invoices' lines per customer and period.
	invoices map[[2]string][]InvoiceLine
	// files are the resale writers' checkpointed files.
	files map[string][]ResaleRow
	// failScan, when set, fails the scans it returns an error for (a
	// worker lost mid-pass); scans counts every scan by payer.
	failScan func(Scan) error
	scans    map[string]int
	// drop, when set, loses the line items it returns true for from
	// every scan (a broken reader).
	drop func(*billing.Record) bool
}

type memSnap struct {
	payer, period string
	recs          []*billing.Record
}

type memResale struct {
	snap int64
	pins string
	rows []ResaleRow
}

func newMemLake() *memLake {
	return &memLake{next: 100, snaps: map[int64]memSnap{}, latest: map[[2]string]int64{}, resale: map[[2]string]memResale{}, invoices: map[[2]string][]InvoiceLine{},
		files: map[string][]ResaleRow{}, scans: map[string]int{}}
}

func (l *memLake) ReplaceInvoice(_ context.Context, customer, period string, lines []InvoiceLine) error {
	l.invoices[[2]string{customer, period}] = slices.Clone(lines)
	return nil
}

// commit replaces payer's period with recs in a new snapshot.
func (l *memLake) commit(payer, period string, recs ...*billing.Record) int64 {
	l.next++
	l.snaps[l.next] = memSnap{payer: payer, period: period, recs: recs}
	l.latest[[2]string{payer, period}] = l.next
	return l.next
}

func (l *memLake) PayersOfPeriod(_ context.Context, period string) ([]string, error) {
	var out []string
	for k := range l.latest {
		if k[1] == period {
			out = append(out, k[0])
		}
	}
	slices.Sort(out)
	return out, nil
}

func (l *memLake) LatestSnapshot(_ context.Context, payer, period string) (int64, error) {
	return l.latest[[2]string{payer, period}], nil
}

func (l *memLake) AccountCosts(_ context.Context, payer, period string, snapshot int64) ([]billing.AccountTotal, error) {
	s, ok := l.snaps[snapshot]
	if !ok || s.payer != payer || s.period != period {
		return nil, nil
	}
	byAccount := map[string]billing.AccountTotal{}
	for _, r := range s.recs {
		item, err := lineItemOf(r)
		if err != nil {
			return nil, err
		}
		t := byAccount[item.AccountID]
		t.Account, t.Rows, t.UnblendedCost = item.AccountID, t.Rows+1, t.UnblendedCost.Add(item.UnblendedCost)
		byAccount[item.AccountID] = t
	}
	var out []billing.AccountTotal
	for _, a := range slices.Sorted(maps.Keys(byAccount)) {
		out = append(out, byAccount[a])
	}
	return out, nil
}

func (l *memLake) TagKeys(ctx context.Context, s Scan) ([]string, error) {
	seen := map[string]bool{}
	err := l.ScanLineItems(ctx, s, func(r *billing.Record) error {
		for _, e := range r.Entries[billing.LineItems.MustIndex(billing.ColResourceTags)] {
			seen[e.Key] = true
		}
		return nil
	})
	var keys []string
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, err
}

func (l *memLake) ScanLineItems(_ context.Context, s Scan, fn func(*billing.Record) error) error {
	l.scans[s.Payer]++
	if l.failScan != nil {
		if err := l.failScan(s); err != nil {
			return err
		}
	}
	snap, ok := l.snaps[s.SnapshotID]
	if !ok {
		return SnapshotGone(fmt.Errorf("billing.line_items has no snapshot %d (expired?)", s.SnapshotID))
	}
	if snap.payer != s.Payer || snap.period != s.Period {
		return nil
	}
	for _, r := range snap.recs {
		if s.Accounts != nil && !slices.Contains(s.Accounts, r.Values[ciAccount]) {
			continue
		}
		if l.drop != nil && l.drop(r) {
			continue
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (l *memLake) LatestResale(_ context.Context, customer, period string) (int64, string, bool, error) {
	r, ok := l.resale[[2]string{customer, period}]
	return r.snap, r.pins, ok, nil
}

func (l *memLake) ScanResale(_ context.Context, customer, period string, snapshot int64, fn func(*ResaleRow) error) error {
	r := l.resale[[2]string{customer, period}]
	if r.snap != snapshot {
		return fmt.Errorf("resale snapshot %d is not the latest", snapshot)
	}
	for i := range r.rows {
		if err := fn(&r.rows[i]); err != nil {
			return err
		}
	}
	return nil
}

func (l *memLake) NewResaleWriter(_ context.Context, customer, period, _ string) (ResaleWriter, error) {
	return &memResaleWriter{lake: l, key: [2]string{customer, period}}, nil
}

type memResaleWriter struct {
	lake  *memLake
	key   [2]string
	rows  []ResaleRow
	files []string
}

func (w *memResaleWriter) Checkpoint() ([]string, int64, error) {
	name := fmt.Sprintf("%s-%s-%05d", w.key[0], w.key[1], len(w.files)+1)
	w.lake.files[name] = w.rows
	w.files = append(w.files, name)
	w.rows = nil
	var n int64
	for _, f := range w.files {
		n += int64(len(w.lake.files[f]))
	}
	return slices.Clone(w.files), n, nil
}

func (w *memResaleWriter) Resume(files []string, _ int64) { w.files = slices.Clone(files) }

func (w *memResaleWriter) Append(r *ResaleRow) error { w.rows = append(w.rows, *r); return nil }
func (w *memResaleWriter) Abort()                    {}

func (w *memResaleWriter) Commit(_ context.Context, pins string) (int64, error) {
	var rows []ResaleRow
	for _, f := range w.files {
		rows = append(rows, w.lake.files[f]...)
	}
	rows = append(rows, w.rows...)
	w.lake.next++
	w.lake.resale[w.key] = memResale{snap: w.lake.next, pins: pins, rows: rows}
	return w.lake.next, nil
}

// item is one line item of payer's period as the lake's scans return it.
func item(payer, account, id, typ, service, usageType, cost string) *billing.Record {
	r := billing.LineItems.NewRecord()
	set := func(col, v string) { r.Values[billing.LineItems.MustIndex(col)] = v }
	set(billing.ColPayerAccountID, payer)
	set(billing.ColUsageAccountID, account)
	set(billing.ColLineItemID, id)
	set(billing.ColLineItemType, typ)
	set(billing.ColProductCode, service)
	set("product_servicecode", service)
	set("line_item_usage_type", usageType)
	set(billing.ColUnblendedCost, cost)
	set(billing.ColUsageStartDate, "2026-09-01T00:00:00Z")
	set("line_item_usage_end_date", "2026-09-01T01:00:00Z")
	return r
}

// records opens the reseller's records on a SQLite catalog database.
func records(t *testing.T) *reseller.Store {
	t.Helper()
	db, err := sql.Open(sqliteshim.ShimName, "file:"+filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	s, err := reseller.Open(context.Background(), db, false)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func amount(t *testing.T, s string) money.Amount {
	t.Helper()
	a, err := money.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
