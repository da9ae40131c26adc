package cur

import (
	"context"
	"os"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/money"
)

// TestParquetDoublesBeyond18Digits reads CUR 2.0 Parquet doubles whose
// shortest text has more than 18 fractional digits, in a cost column and
// in the discount map: each is rounded half-even to 18 digits and
// counted; the rest are read as written.
func TestParquetDoublesBeyond18Digits(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "line_item_usage_account_id", Type: arrow.BinaryTypes.String},
		{Name: "line_item_unblended_cost", Type: arrow.PrimitiveTypes.Float64},
		{Name: "discount", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Float64), Nullable: true},
	}, nil)
	costs := []float64{1e-19, 1.2345678901234567e-10, 5e-324, 12.5, -2.5e-18}
	want := []string{"0", "0.000000000123456789", "0", "12.5", "-0.000000000000000002"}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	mb := b.Field(2).(*array.MapBuilder)
	for i, c := range costs {
		b.Field(0).(*array.StringBuilder).Append("111122223333")
		b.Field(1).(*array.Float64Builder).Append(c)
		mb.Append(true)
		mb.KeyBuilder().(*array.StringBuilder).Append("edp")
		if i == 0 {
			mb.ItemBuilder().(*array.Float64Builder).Append(1e-19)
		} else {
			mb.ItemBuilder().(*array.Float64Builder).Append(0.25)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()

	f, err := os.CreateTemp(t.TempDir(), "doubles-*.parquet")
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(schema, f, parquet.NewWriterProperties(), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err = os.Open(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewParquetReader(context.Background(), f, "s3://b/doubles.parquet", nil, billing.MapCUR2Header)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cost, discount := billing.MustIndex("line_item_unblended_cost"), billing.MustIndex("discount")
	row := billing.LineItems.NewRecord()
	for i := range costs {
		if err := r.Next(row); err != nil {
			t.Fatalf("row %d: %v", i+1, err)
		}
		if got := row.Values[cost]; got != want[i] {
			t.Errorf("row %d: cost %q, want %q", i+1, got, want[i])
		}
		if _, err := money.Parse(row.Values[cost]); err != nil {
			t.Errorf("row %d: %v", i+1, err)
		}
		wantDiscount := "0.25"
		if i == 0 {
			wantDiscount = "0"
		}
		if e := row.Entries[discount]; len(e) != 1 || e[0].Key != "edp" || e[0].Value != wantDiscount {
			t.Errorf("row %d: discount %v, want edp=%s", i+1, e, wantDiscount)
		}
	}
	// 1e-19, 1.23…e-10, 5e-324 and -2.5e-18 as costs, 1e-19 as a discount.
	if got := r.Rounded(); got != 5 {
		t.Errorf("Rounded() = %d, want 5", got)
	}
}
