package lakehouse_test

import (
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/costlake/costlake/lakehouse"
)

// An account Organizations gives no join date for is stored with a null
// joined_at, which any engine reads as unknown, not as year 1; costlake
// reads it back as the zero time.
func TestAccountWithoutJoinDateIsNull(t *testing.T) {
	ctx := context.Background()
	lake := openTestLake(t)
	seen := time.Date(2026, 10, 15, 9, 30, 0, 0, time.UTC)
	joined := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	err := lake.ReplaceAccounts(ctx, "111122223333", []lakehouse.Account{
		{AccountID: "111122223333", Name: "management", Status: "ACTIVE", FirstSeen: seen, LastSeen: seen},
		{AccountID: "222233334444", Name: "member", Status: "ACTIVE", JoinedAt: joined, FirstSeen: seen, LastSeen: seen},
	})
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := lake.AccountsIcebergTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	at, err := tbl.Scan().ToArrowTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	joins := map[string]bool{}
	tr := array.NewTableReader(at, -1)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		idCol := rec.Column(int(rec.Schema().FieldIndices("account_id")[0])).(*array.String)
		joinCol := rec.Column(rec.Schema().FieldIndices("joined_at")[0])
		for r := range int(rec.NumRows()) {
			joins[idCol.Value(r)] = joinCol.IsNull(r)
		}
	}
	if !joins["111122223333"] || joins["222233334444"] {
		t.Errorf("joined_at null per account: %v, want only the management account's", joins)
	}
	got, err := lake.Accounts(ctx, "111122223333")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range got {
		want := time.Time{}
		if a.AccountID == "222233334444" {
			want = joined
		}
		if !a.JoinedAt.Equal(want) {
			t.Errorf("account %s joined %s, want %s", a.AccountID, a.JoinedAt, want)
		}
	}
}
