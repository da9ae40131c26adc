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

	r := parquetReaderOf(t, rec, "s3://b/doubles.parquet", billing.MapCUR2Header)
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

// TestParquetKeepsColumnsOfUnexpectedTypes: columns AWS might add with
// types costlake does not expect (a list, a struct, a map that is not a
// known map column, a small integer) are kept as text in other_columns;
// a known map column keeps its keys as written.
func TestParquetKeepsColumnsOfUnexpectedTypes(t *testing.T) {
	strMap := arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "line_item_unblended_cost", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "resource_tags", Type: strMap, Nullable: true},
		{Name: "new_list", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "new_struct", Type: arrow.StructOf(arrow.Field{Name: "a", Type: arrow.BinaryTypes.String, Nullable: true}), Nullable: true},
		{Name: "new_map", Type: strMap, Nullable: true},
		{Name: "new_int8", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.Float64Builder).Append(0.1)
	tags := b.Field(1).(*array.MapBuilder)
	tags.Append(true)
	for _, k := range []string{"user_env", "user_Env"} {
		tags.KeyBuilder().(*array.StringBuilder).Append(k)
		tags.ItemBuilder().(*array.StringBuilder).Append("v-" + k)
	}
	list := b.Field(2).(*array.ListBuilder)
	list.Append(true)
	list.ValueBuilder().(*array.StringBuilder).AppendValues([]string{"x", "y"}, nil)
	st := b.Field(3).(*array.StructBuilder)
	st.Append(true)
	st.FieldBuilder(0).(*array.StringBuilder).Append("z")
	m := b.Field(4).(*array.MapBuilder)
	m.Append(true)
	m.KeyBuilder().(*array.StringBuilder).Append("k")
	m.ItemBuilder().(*array.StringBuilder).Append("v")
	b.Field(5).(*array.Int8Builder).Append(7)
	rec := b.NewRecordBatch()
	defer rec.Release()

	r := parquetReaderOf(t, rec, "s3://b/new.parquet", billing.MapCUR2Header)
	got := billing.NewRecord()
	if err := r.Next(got); err != nil {
		t.Fatal(err)
	}
	if v := got.Values[billing.MustIndex(billing.ColUnblendedCost)]; v != "0.1" {
		t.Errorf("cost %q", v)
	}
	wantTags := []billing.Entry{{Key: "user_env", Value: "v-user_env"}, {Key: "user_Env", Value: "v-user_Env"}}
	if e := got.Entries[billing.MustIndex(billing.ColResourceTags)]; len(e) != 2 || e[0] != wantTags[0] || e[1] != wantTags[1] {
		t.Errorf("resource_tags %v", e)
	}
	other := map[string]string{}
	for _, e := range got.Entries[billing.MustIndex(billing.ColOtherColumns)] {
		other[e.Key] = e.Value
	}
	want := map[string]string{"new_list": `["x","y"]`, "new_struct": `{"a":"z"}`, "new_map": `{"k":"v"}`, "new_int8": "7"}
	for k, v := range want {
		if other[k] != v {
			t.Errorf("other_columns[%s] = %q, want %q", k, other[k], v)
		}
	}
	if len(other) != len(want) {
		t.Errorf("other_columns = %v", other)
	}
}

// TestParquetFOCUSTagsMap: a FOCUS Parquet Tags map keeps its keys as
// written (the targets index FOCUS's columns, not line_items').
func TestParquetFOCUSTagsMap(t *testing.T) {
	strMap := arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "BilledCost", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "Tags", Type: strMap, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.Float64Builder).Append(2.5)
	tags := b.Field(1).(*array.MapBuilder)
	tags.Append(true)
	tags.KeyBuilder().(*array.StringBuilder).Append("user:CostCenter")
	tags.ItemBuilder().(*array.StringBuilder).Append("cc")
	rec := b.NewRecordBatch()
	defer rec.Release()
	r := parquetReaderOf(t, rec, "s3://b/focus.parquet", billing.MapFOCUSHeader)
	got := billing.FOCUS.NewRecord()
	if err := r.Next(got); err != nil {
		t.Fatal(err)
	}
	if e := got.Entries[billing.FOCUS.MustIndex("Tags")]; len(e) != 1 || e[0] != (billing.Entry{Key: "user:CostCenter", Value: "cc"}) {
		t.Errorf("Tags %v", e)
	}
	if v := got.Values[billing.FOCUS.MustIndex("BilledCost")]; v != "2.5" {
		t.Errorf("BilledCost %q", v)
	}
}

// parquetReaderOf writes rec to a Parquet file with pqarrow's defaults
// and opens it with costlake's reader, closed when the test ends.
func parquetReaderOf(t *testing.T, rec arrow.RecordBatch, name string, mapHeader func([]string) (*billing.Mapping, error)) *ParquetReader {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "*.parquet")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pqarrow.NewFileWriter(rec.Schema(), f, parquet.NewWriterProperties(), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewParquetReader(context.Background(), in, name, nil, mapHeader)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}
