package cur

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
)

// readLimited reads a CSV chunk to its end within lim and returns the
// error it stopped on (nil at EOF).
func readLimited(t *testing.T, data []byte, compression string, lim Limits) error {
	t.Helper()
	r, err := newCSVReader(bytes.NewReader(data), "s3://b/k.csv.gz", compression, nil, billing.MapLegacyHeader, lim, int64(len(data)))
	if err != nil {
		return err
	}
	defer r.Close()
	rec := billing.NewRecord()
	for {
		if err := r.Next(rec); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

func requireFileError(t *testing.T, err, target error, line int) {
	t.Helper()
	var fe *FileError
	if !errors.Is(err, target) || !errors.As(err, &fe) {
		t.Fatalf("want a FileError wrapping %v, got %v", target, err)
	}
	if fe.Line != line {
		t.Errorf("line %d, want %d (%v)", fe.Line, line, err)
	}
}

// TestRecordBounds: a quoted field over many short lines is refused once
// the record passes MaxRecordBytes, at the line it starts on; a record
// wider than MaxFields, on one line or over several, is refused too; one
// within both reads.
func TestRecordBounds(t *testing.T) {
	lim := Limits{MaxRecordBytes: 1 << 10, MaxFields: 6}
	long := good + `c,111122223333,1,"` + strings.Repeat(strings.Repeat("x", 99)+"\n", 20) + "\"\n"
	requireFileError(t, readLimited(t, []byte(long), "", lim), ErrRecordTooLarge, 4)
	requireFileError(t, readLimited(t, gz(t, long), "GZIP", lim), ErrRecordTooLarge, 4)
	if err := readLimited(t, []byte(long), "", Limits{}); err != nil {
		t.Fatalf("within the default bounds: %v", err)
	}

	wide := good + "c,1,2,3,4,5,6,7\n"
	requireFileError(t, readLimited(t, []byte(wide), "", lim), ErrRecordTooLarge, 4)
	wideQuoted := good + "c,1,2,3,4,5,\"6\n\",7\n"
	requireFileError(t, readLimited(t, []byte(wideQuoted), "", lim), ErrRecordTooLarge, 4)
	wideHeader := "a,b,c,d,e,f,g\n1,2,3,4,5,6,7\n"
	err := readLimited(t, []byte(wideHeader), "", lim)
	requireFileError(t, err, ErrRecordTooLarge, 1)
}

// TestInflationBounds: a chunk inflating past its ratio (above the floor)
// or past the absolute bound is a DecompressionBomb; a zipped CSV the
// same; a chunk over MaxObjectBytes is refused before it is read.
func TestInflationBounds(t *testing.T) {
	body := "identity/LineItemId,lineItem/UsageAccountId\n" + strings.Repeat("\n", 4<<20) // empty lines: never a record
	data := gz(t, body)
	lim := Limits{DecompressionFloor: 1 << 20, MaxDecompressionRatio: 20}
	requireFileError(t, readLimited(t, data, "GZIP", lim), ErrDecompressionBomb, 2)
	if err := readLimited(t, data, "GZIP", Limits{}); err != nil {
		t.Fatalf("within the default bounds: %v", err)
	}
	requireFileError(t, readLimited(t, data, "GZIP", Limits{MaxDecompressedBytes: 1 << 20}), ErrDecompressionBomb, 2)

	for _, c := range []struct {
		stored, want int64
	}{
		{0, DefaultLimits.MaxDecompressedBytes},        // unknown size: the absolute bound
		{1 << 10, DefaultLimits.DecompressionFloor},    // small: the floor
		{1 << 30, 200 << 30},                           // the ratio
		{20 << 30, DefaultLimits.MaxDecompressedBytes}, // huge: the absolute bound
		{1 << 62, DefaultLimits.MaxDecompressedBytes},  // no overflow
	} {
		if got := DefaultLimits.inflateBound(c.stored); got != c.want {
			t.Errorf("inflateBound(%d) = %d, want %d", c.stored, got, c.want)
		}
	}

	// A legacy .csv.zip inflates as it is read: bounded alike.
	dir := t.TempDir()
	store := blob.NewLocal(dir)
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	if w, err := zw.Create("r.csv"); err != nil {
		t.Fatal(err)
	} else if _, err := io.WriteString(w, body); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := store.Put(context.Background(), "cur/r/20261001-20261101/r-1.csv.zip", &zbuf); err != nil {
		t.Fatal(err)
	}
	d := &Delivery{Source: blob.Location{Scheme: "file", Prefix: strings.TrimPrefix(dir, "/")}, Format: FormatLegacyCSV, Compression: "ZIP", StableManifestKey: "m"}
	rr, err := OpenChunk(context.Background(), blob.NewLocal("/"), d, d.Source.Prefix+"/cur/r/20261001-20261101/r-1.csv.zip", blob.Pin{}, dir, lim)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Close()
	if err := rr.Next(billing.NewRecord()); !errors.Is(err, ErrDecompressionBomb) {
		t.Fatalf("zip: want ErrDecompressionBomb, got %v", err)
	}

	// Sized before download.
	_, err = OpenChunk(context.Background(), blob.NewLocal("/"), d, d.Source.Prefix+"/cur/r/20261001-20261101/r-1.csv.zip", blob.Pin{}, dir, Limits{MaxObjectBytes: 100})
	requireFileError(t, err, ErrChunkTooLarge, 0)
	// A key outside the source is refused before anything is opened.
	_, err = OpenChunk(context.Background(), blob.NewLocal("/"), d, "etc/passwd", blob.Pin{}, dir, Limits{})
	if !errors.Is(err, ErrInvalidManifest) {
		t.Fatalf("outside: want ErrInvalidManifest, got %v", err)
	}
}

// TestManifestKeysStayInTheReport: keys that are absolute, climb with
// "..", or hold "." segments, backslashes or NULs are InvalidManifest;
// the error quotes no more than the start of the key.
func TestManifestKeysStayInTheReport(t *testing.T) {
	src := blob.Location{Scheme: "s3", Bucket: "b", Prefix: "cur/r"}
	const folder = "20261001-20261101"
	for _, k := range []string{
		"cur/r/" + folder + "/asm/../../../../other/secret.csv.gz",
		"/cur/r/" + folder + "/asm/r-1.csv.gz",
		"cur/r/" + folder + "/./r-1.csv.gz",
		"cur/r/" + folder + "/asm/..",
		`cur/r/` + folder + `/asm\..\x.csv.gz`,
		"cur/r/" + folder + "/asm/r\x00.csv.gz",
		"cur/r/" + folder + "/" + strings.Repeat("../", 200) + "x",
	} {
		_, err := rebaseLegacyKey(src, "r", folder, k)
		if !errors.Is(err, ErrInvalidManifest) {
			t.Errorf("%q: want ErrInvalidManifest, got %v", k, err)
			continue
		}
		if len(err.Error()) > 300 {
			t.Errorf("%q: the error quotes too much: %d bytes", k, len(err.Error()))
		}
	}
	got, err := rebaseLegacyKey(src, "r", folder, "other/prefix/r/"+folder+"/asm/r-1.csv.gz")
	if err != nil || got != "cur/r/"+folder+"/asm/r-1.csv.gz" {
		t.Fatalf("a plain key: %q, %v", got, err)
	}
	for _, k := range []string{"cur/other/x.csv.gz", "cur/r", "cur/rx/a.csv.gz"} {
		if err := UnderSource(src, k); !errors.Is(err, ErrInvalidManifest) {
			t.Errorf("UnderSource(%q): want ErrInvalidManifest, got %v", k, err)
		}
	}
	if err := UnderSource(src, "cur/r/"+folder+"/a.csv.gz"); err != nil {
		t.Errorf("a key under the source: %v", err)
	}
}

// TestParquetFooterBounds: the footer's column count and column chunk
// sizes are checked before any page is read, and page headers over
// MaxPageBytes stop the read; both are ErrChunkTooLarge.
func TestParquetFooterBounds(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "line_item_usage_account_id", Type: arrow.BinaryTypes.String},
		{Name: "line_item_unblended_cost", Type: arrow.BinaryTypes.String},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for range 20_000 {
		b.Field(0).(*array.StringBuilder).Append("111122223333")
		b.Field(1).(*array.StringBuilder).Append(strings.Repeat("9", 40))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	path := writeParquet(t, rec)
	open := func(lim Limits) (*ParquetReader, error) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		r, err := newParquetReader(context.Background(), f, "s3://b/x.parquet", nil, billing.MapCUR2Header, lim)
		if err != nil {
			f.Close()
		}
		return r, err
	}
	if _, err := open(Limits{MaxFields: 1}); !errors.Is(err, ErrChunkTooLarge) {
		t.Errorf("columns: want ErrChunkTooLarge, got %v", err)
	}
	if _, err := open(Limits{MaxColumnChunkBytes: 1 << 10}); !errors.Is(err, ErrChunkTooLarge) {
		t.Errorf("column chunk: want ErrChunkTooLarge, got %v", err)
	}
	r, err := open(Limits{MaxPageBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Next(billing.LineItems.NewRecord()); !errors.Is(err, ErrChunkTooLarge) {
		t.Errorf("page: want ErrChunkTooLarge, got %v", err)
	}
	// A footer declared larger than costlake decodes is refused unread.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint32(data[len(data)-8:], 1<<30)
	if err := os.WriteFile(path+".big", data, 0o644); err != nil {
		t.Fatal(err)
	}
	big, err := os.Open(path + ".big")
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	if _, err := newParquetReader(context.Background(), big, "s3://b/x.parquet", nil, billing.MapCUR2Header, Limits{}); !errors.Is(err, ErrChunkTooLarge) {
		t.Errorf("footer: want ErrChunkTooLarge, got %v", err)
	}
	r2, err := open(Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if err := r2.Next(billing.LineItems.NewRecord()); err != nil {
		t.Errorf("within the default bounds: %v", err)
	}
}

func writeParquet(t *testing.T, rec arrow.RecordBatch) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "*.parquet")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pqarrow.NewFileWriter(rec.Schema(), f, parquet.NewWriterProperties(parquet.WithDictionaryDefault(false)), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}
