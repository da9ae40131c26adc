package lakehouse

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

// AccountsTable is billing.accounts: each payer's organization as its
// latest crawl saw it, for joins with the line items (account names).
const AccountsTable = "accounts"

// Account is one row of billing.accounts.
type Account struct {
	PayerAccountID string
	AccountID      string
	Name           string
	Email          string
	Status         string // ACTIVE, SUSPENDED, CLOSED, …
	JoinedMethod   string
	JoinedAt       time.Time
	FirstSeen      time.Time // first crawl that listed it
	LastSeen       time.Time // latest crawl that wrote the payer's accounts (one that finds the organization unchanged writes nothing)
}

var accountsSchema = iceberg.NewSchema(0,
	iceberg.NestedField{ID: 1, Name: "payer_account_id", Type: iceberg.PrimitiveTypes.String, Required: true},
	iceberg.NestedField{ID: 2, Name: "account_id", Type: iceberg.PrimitiveTypes.String, Required: true},
	iceberg.NestedField{ID: 3, Name: "name", Type: iceberg.PrimitiveTypes.String},
	iceberg.NestedField{ID: 4, Name: "email", Type: iceberg.PrimitiveTypes.String},
	iceberg.NestedField{ID: 5, Name: "status", Type: iceberg.PrimitiveTypes.String},
	iceberg.NestedField{ID: 6, Name: "joined_method", Type: iceberg.PrimitiveTypes.String},
	iceberg.NestedField{ID: 7, Name: "joined_at", Type: iceberg.PrimitiveTypes.TimestampTz},
	iceberg.NestedField{ID: 8, Name: "first_seen", Type: iceberg.PrimitiveTypes.TimestampTz},
	iceberg.NestedField{ID: 9, Name: "last_seen", Type: iceberg.PrimitiveTypes.TimestampTz},
)

// accountsTable loads billing.accounts, creating it on first use.
// AccountsIcebergTable is billing.accounts as an Iceberg table (created
// when missing), for readers of its snapshots.
func (l *Lake) AccountsIcebergTable(ctx context.Context) (*table.Table, error) {
	return l.accountsTable(ctx)
}

func (l *Lake) accountsTable(ctx context.Context) (*table.Table, error) {
	id := table.Identifier{Namespace, AccountsTable}
	tbl, err := l.cat.LoadTable(ctx, id)
	if err == nil || !errors.Is(err, catalog.ErrNoSuchTable) {
		return tbl, err
	}
	spec := iceberg.NewPartitionSpec(iceberg.PartitionField{SourceIDs: []int{1}, FieldID: 1000, Name: "payer_account_id", Transform: iceberg.IdentityTransform{}})
	_, err = l.cat.CreateTable(ctx, id, accountsSchema, catalog.WithPartitionSpec(&spec), catalog.WithProperties(iceberg.Properties{
		"format-version": "2",
		"comment":        "each payer's AWS Organization accounts, as the latest crawl saw them",
	}))
	if err != nil && !errors.Is(err, catalog.ErrTableAlreadyExists) {
		return nil, fmt.Errorf("create table %s: %w", id, err)
	}
	return l.cat.LoadTable(ctx, id)
}

// Accounts returns a payer's accounts as last recorded, by account ID.
func (l *Lake) Accounts(ctx context.Context, payer string) ([]Account, error) {
	tbl, err := l.accountsTable(ctx)
	if err != nil {
		return nil, err
	}
	if tbl.CurrentSnapshot() == nil {
		return nil, nil
	}
	at, err := tbl.Scan(table.WithRowFilter(iceberg.EqualTo(iceberg.Reference("payer_account_id"), payer))).ToArrowTable(ctx)
	if err != nil {
		return nil, fmt.Errorf("read billing.accounts of %s: %w", payer, err)
	}
	defer at.Release()
	tr := array.NewTableReader(at, 1024)
	defer tr.Release()
	var out []Account
	for tr.Next() {
		rec := tr.RecordBatch()
		str := func(i int) *array.String { return rec.Column(i).(*array.String) }
		ts := func(i int) *array.Timestamp { return rec.Column(i).(*array.Timestamp) }
		for r := 0; r < int(rec.NumRows()); r++ {
			out = append(out, Account{
				PayerAccountID: str(0).Value(r), AccountID: str(1).Value(r), Name: str(2).Value(r), Email: str(3).Value(r),
				Status: str(4).Value(r), JoinedMethod: str(5).Value(r),
				JoinedAt: timeOrZero(ts(6), r), FirstSeen: ts(7).Value(r).ToTime(arrow.Microsecond),
				LastSeen: ts(8).Value(r).ToTime(arrow.Microsecond),
			})
		}
	}
	slices.SortFunc(out, func(a, b Account) int { return cmp.Compare(a.AccountID, b.AccountID) })
	return out, nil
}

// ReplaceAccounts makes rows the whole of payer's accounts, in one
// snapshot; a commit that loses a race with another payer's is redone.
func (l *Lake) ReplaceAccounts(ctx context.Context, payer string, rows []Account) error {
	_, err := retryLostRace(ctx, func() (struct{}, error) { return struct{}{}, l.replaceAccountsOnce(ctx, payer, rows) })
	return err
}

func (l *Lake) replaceAccountsOnce(ctx context.Context, payer string, rows []Account) error {
	tbl, err := l.accountsTable(ctx)
	if err != nil {
		return err
	}
	sc, err := table.SchemaToArrowSchema(accountsSchema, nil, false, false)
	if err != nil {
		return err
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for _, a := range rows {
		for i, v := range []string{payer, a.AccountID, a.Name, a.Email, a.Status, a.JoinedMethod} {
			b.Field(i).(*array.StringBuilder).Append(v)
		}
		for i, t := range []time.Time{a.JoinedAt, a.FirstSeen, a.LastSeen} {
			if t.IsZero() {
				// Organizations gives no join date for the management
				// account of some organizations: null, not year 1.
				b.Field(6 + i).(*array.TimestampBuilder).AppendNull()
				continue
			}
			ts, _ := arrow.TimestampFromTime(t.UTC(), arrow.Microsecond)
			b.Field(6 + i).(*array.TimestampBuilder).Append(ts)
		}
	}
	return l.overwriteRows(ctx, tbl, sc, b, iceberg.Properties{PropPayer: payer},
		iceberg.EqualTo(iceberg.Reference("payer_account_id"), payer), "billing.accounts of "+payer)
}

// overwriteRows makes the rows b holds the whole of filter's rows in tbl,
// in one snapshot with props; what names them in errors.
func (l *Lake) overwriteRows(ctx context.Context, tbl *table.Table, sc *arrow.Schema, b *array.RecordBuilder, props iceberg.Properties, filter iceberg.BooleanExpression, what string) error {
	rec := b.NewRecordBatch()
	defer rec.Release()
	at := array.NewTableFromRecords(sc, []arrow.RecordBatch{rec})
	defer at.Release()
	tx := tbl.NewTransaction()
	if err := tx.OverwriteTable(ctx, at, 1024, props, table.WithOverwriteFilter(filter)); err != nil {
		return fmt.Errorf("stage %s: %w", what, err)
	}
	if _, err := l.commit(ctx, tx, tbl); err != nil {
		return fmt.Errorf("commit %s: %w", what, err)
	}
	return nil
}

// timeOrZero is row r of a timestamp column, the zero time for null.
func timeOrZero(col *array.Timestamp, r int) time.Time {
	if col.IsNull(r) {
		return time.Time{}
	}
	return col.Value(r).ToTime(arrow.Microsecond)
}
