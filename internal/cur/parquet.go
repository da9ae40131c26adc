package cur

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/money"
)

// parquetBatchRows is the rows per Arrow batch: on the DuckDB-written file
// measured in NewParquetReader, 8192 took 85 MiB more and 1024 8% more time.
const parquetBatchRows = 2048

// ParquetReader streams the rows of a Parquet data file (CUR 2.0, or
// legacy CUR's Athena layout) as canonical
// records, one record batch at a time.
type ParquetReader struct {
	file    string
	pf      *file.Reader
	rr      pqarrow.RecordReader
	mapping *billing.Mapping
	batch   arrow.RecordBatch
	cols    []arrow.Array
	row     int // next row in batch
	rows    int // rows read so far
	rounded int64
}

// NewParquetReader opens a Parquet data file. wantHeader, when not nil,
// is the manifest's column list, which the file's columns must equal.
// Doubles (AWS writes costs as double) are turned into their shortest
// decimal text, which is the decimal AWS started from; one with more than
// 18 fractional digits is rounded half-even to 18 (money.FloatText) and
// counted in Rounded.
func NewParquetReader(ctx context.Context, f *os.File, name string, wantHeader []string, mapHeader func([]string) (*billing.Mapping, error)) (*ParquetReader, error) {
	return newParquetReader(ctx, f, name, wantHeader, mapHeader, DefaultLimits)
}

// newParquetReader is NewParquetReader within lim: the footer's columns
// and column chunks are checked before any page is read, and each page's
// header before its page.
func newParquetReader(ctx context.Context, f *os.File, name string, wantHeader []string, mapHeader func([]string) (*billing.Mapping, error), lim Limits) (*ParquetReader, error) {
	fail := func(err error) error { return &FileError{File: name, Err: err} }
	lim = lim.orDefaults()
	// A conversion holds a page of every column at once, so memory follows
	// the source's pages, never its row groups: columns are read through
	// a buffer (not a whole column chunk each), large PLAIN pages are
	// decoded as they stream, and batches are small. Reading a 1M-row,
	// 141-column file that DuckDB wrote (122,880-row row groups) took a
	// peak RSS of 263 MiB before, 147 MiB with these, at the same speed;
	// with one 1M-row row group, 739 MiB before, 347 MiB with them.
	props := parquet.NewReaderProperties(memory.DefaultAllocator)
	props.BufferedStreamEnabled = true
	props.BufferSize = 64 << 10
	props.PageStreamingEnabled = true
	// A page is held whole once decompressed (one per column being read):
	// its header's sizes are checked before it is.
	props.MaxCompressedPageSize = lim.MaxPageBytes
	props.MaxUncompressedPageSize = lim.MaxPageBytes
	if err := checkFooterSize(f); err != nil {
		return nil, fail(err)
	}
	pf, err := file.NewParquetReader(f, file.WithReadProps(props))
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fail(fmt.Errorf("%w: %v", ErrEmptyChunk, err))
		}
		return nil, fail(fmt.Errorf("%w: not a Parquet file: %v", ErrCorruptChunk, err))
	}
	if err := checkFooter(pf, lim); err != nil {
		pf.Close()
		return nil, fail(err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: parquetBatchRows}, memory.DefaultAllocator)
	if err != nil {
		pf.Close()
		return nil, fail(fmt.Errorf("%w: %v", ErrCorruptChunk, err))
	}
	schema, err := fr.Schema()
	if err != nil {
		pf.Close()
		return nil, fail(fmt.Errorf("%w: %v", ErrCorruptChunk, err))
	}
	header := make([]string, schema.NumFields())
	for i, fld := range schema.Fields() {
		header[i] = fld.Name
	}
	if wantHeader != nil && !sameColumns(wantHeader, header) {
		pf.Close()
		return nil, fail(fmt.Errorf("%w: %s", ErrHeaderMismatch, headerDiff(wantHeader, header)))
	}
	mapping, err := mapHeader(header)
	if err != nil {
		pf.Close()
		return nil, fail(err)
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		pf.Close()
		return nil, fail(fmt.Errorf("%w: %v", ErrCorruptChunk, err))
	}
	return &ParquetReader{file: name, pf: pf, rr: rr, mapping: mapping}, nil
}

// maxFooterBytes bounds a Parquet footer, read and decoded whole before
// anything else: real ones are KiB to a few MiB, even with thousands of
// columns and many row groups.
const maxFooterBytes = 64 << 20

// checkFooterSize reads the footer's length from the file's last 8 bytes
// (its length, then "PAR1") and refuses one over maxFooterBytes before
// the footer is read. Anything else odd is left to the Parquet reader.
func checkFooterSize(f *os.File) error {
	st, err := f.Stat()
	if err != nil || st.Size() < 12 {
		return nil
	}
	var tail [8]byte
	if _, err := f.ReadAt(tail[:], st.Size()-8); err != nil {
		return nil
	}
	if n := binary.LittleEndian.Uint32(tail[:4]); string(tail[4:]) == "PAR1" && n > maxFooterBytes {
		return fmt.Errorf("%w: a footer of %d bytes, %d at most", ErrChunkTooLarge, n, maxFooterBytes)
	}
	return nil
}

// checkFooter checks what a Parquet footer declares before anything it
// points to is read: the number of columns, and each column chunk's size
// (uncompressed, and stored: no more than the file holds).
func checkFooter(pf *file.Reader, lim Limits) error {
	md := pf.MetaData()
	if n := md.Schema.NumColumns(); n > lim.MaxFields {
		return fmt.Errorf("%w: %d columns, %d at most", ErrChunkTooLarge, n, lim.MaxFields)
	}
	for i := range md.NumRowGroups() {
		rg := md.RowGroup(i)
		for j := range rg.NumColumns() {
			cc, err := rg.ColumnChunk(j)
			if err != nil {
				return fmt.Errorf("%w: row group %d column %d: %v", ErrCorruptChunk, i, j, err)
			}
			switch {
			case cc.TotalUncompressedSize() > lim.MaxColumnChunkBytes:
				return fmt.Errorf("%w: row group %d column %d declares %d bytes uncompressed, %d at most",
					ErrChunkTooLarge, i, j, cc.TotalUncompressedSize(), lim.MaxColumnChunkBytes)
			case cc.TotalCompressedSize() < 0 || cc.TotalCompressedSize() > pf.MetaData().GetSourceFileSize():
				return fmt.Errorf("%w: row group %d column %d declares %d bytes stored, more than the file's %d",
					ErrCorruptChunk, i, j, cc.TotalCompressedSize(), pf.MetaData().GetSourceFileSize())
			}
		}
	}
	return nil
}

// pageError names a page over the limits: arrow-go checks each page
// header against them and says so.
func pageError(err error) error {
	if strings.Contains(err.Error(), "exceeds configured limit") {
		return fmt.Errorf("%w: %v", ErrChunkTooLarge, err)
	}
	return fmt.Errorf("%w: %v", ErrCorruptChunk, err)
}

// sameColumns compares column lists as sets: Parquet files keep their own order.
func sameColumns(want, got []string) bool {
	if len(want) != len(got) {
		return false
	}
	seen := make(map[string]bool, len(want))
	for _, w := range want {
		seen[w] = true
	}
	for _, g := range got {
		if !seen[g] {
			return false
		}
	}
	return true
}

// Next fills rec with the next row, or returns io.EOF.
func (p *ParquetReader) Next(rec *billing.Record) error {
	for p.batch == nil || p.row >= int(p.batch.NumRows()) {
		if !p.rr.Next() {
			if err := p.rr.Err(); err != nil && !errors.Is(err, io.EOF) {
				return &FileError{File: p.file, Line: p.rows + 1, Err: pageError(err)}
			}
			return io.EOF
		}
		p.batch = p.rr.RecordBatch()
		p.cols = p.batch.Columns()
		p.row = 0
	}
	rec.Reset()
	for i, col := range p.cols {
		t := p.mapping.Targets[i]
		if col.IsNull(p.row) {
			continue
		}
		// A map into a whole map column (t.JSON: CSV would hold JSON
		// there); a map anywhere else is kept as its JSON text.
		if m, ok := col.(*array.Map); ok && t.JSON {
			if err := addMapEntries(rec, t.Column, m, p.row, &p.rounded); err != nil {
				return &FileError{File: p.file, Line: p.rows + 1, Err: fmt.Errorf("%w: column %s: %v", ErrCorruptChunk, p.mapping.Source[i], err)}
			}
			continue
		}
		v, err := cellText(col, p.row, &p.rounded)
		if err != nil {
			return &FileError{File: p.file, Line: p.rows + 1, Err: fmt.Errorf("%w: column %s: %v", ErrCorruptChunk, p.mapping.Source[i], err)}
		}
		switch {
		case t.JSON:
			if err := rec.AddJSON(t.Column, v); err != nil {
				return &FileError{File: p.file, Line: p.rows + 1, Err: fmt.Errorf("%w: column %s: %v", ErrCorruptChunk, p.mapping.Source[i], err)}
			}
		case t.Key != "":
			rec.Entries[t.Column] = append(rec.Entries[t.Column], billing.Entry{Key: t.Key, Value: v})
		default:
			rec.Values[t.Column] = v
		}
	}
	p.row++
	p.rows++
	return nil
}

// Line returns the 1-based number of the last row read.
func (p *ParquetReader) Line() int { return p.rows }

// Rounded counts the doubles read so far that were rounded to 18 digits.
func (p *ParquetReader) Rounded() int64 { return p.rounded }

// Header returns the file's column names.
func (p *ParquetReader) Header() []string { return p.mapping.Source }

// Close releases the file.
func (p *ParquetReader) Close() error {
	p.rr.Release()
	return p.pf.Close()
}

func addMapEntries(rec *billing.Record, col int, m *array.Map, row int, rounded *int64) error {
	start, end := m.ValueOffsets(row)
	keys, items := m.Keys(), m.Items()
	for j := int(start); j < int(end); j++ {
		if items.IsNull(j) {
			continue
		}
		k, err := cellText(keys, j, rounded)
		if err != nil {
			return err
		}
		v, err := cellText(items, j, rounded)
		if err != nil {
			return err
		}
		rec.Entries[col] = append(rec.Entries[col], billing.Entry{Key: k, Value: v})
	}
	return nil
}

// cellText renders one non-null value as the text costlake types from,
// counting the doubles it rounds in rounded. Types costlake does not
// expect (a column AWS adds as a list, a struct or a map, or some other
// primitive) are kept as their JSON or plain text, so a new column is
// stored in other_columns rather than failing.
func cellText(a arrow.Array, i int, rounded *int64) (string, error) {
	var text string
	var r bool
	switch c := a.(type) {
	case *array.Map:
		return mapJSON(c, i, rounded)
	case *array.String:
		return c.Value(i), nil
	case *array.LargeString:
		return c.Value(i), nil
	case *array.Binary:
		return string(c.Value(i)), nil
	case *array.Float64:
		text, r = money.FloatText(c.Value(i), 64)
	case *array.Float32:
		text, r = money.FloatText(float64(c.Value(i)), 32)
	case *array.Int64:
		return strconv.FormatInt(c.Value(i), 10), nil
	case *array.Int32:
		return strconv.FormatInt(int64(c.Value(i)), 10), nil
	case *array.Boolean:
		return strconv.FormatBool(c.Value(i)), nil
	case *array.Decimal128:
		return c.Value(i).ToString(c.DataType().(*arrow.Decimal128Type).Scale), nil
	case *array.Timestamp:
		unit := c.DataType().(*arrow.TimestampType).Unit
		return c.Value(i).ToTime(unit).UTC().Format(time.RFC3339Nano), nil
	case *array.Date32:
		return c.Value(i).ToTime().Format("2006-01-02"), nil
	case *array.Dictionary:
		return cellText(c.Dictionary(), c.GetValueIndex(i), rounded)
	default:
		return a.ValueStr(i), nil
	}
	if r {
		*rounded++
	}
	return text, nil
}

// mapJSON renders one map value as a JSON object of its keys' and items'
// text (a null item is JSON null).
func mapJSON(m *array.Map, row int, rounded *int64) (string, error) {
	start, end := m.ValueOffsets(row)
	keys, items := m.Keys(), m.Items()
	obj := make(map[string]*string, end-start)
	for j := int(start); j < int(end); j++ {
		k, err := cellText(keys, j, rounded)
		if err != nil {
			return "", err
		}
		if items.IsNull(j) {
			obj[k] = nil
			continue
		}
		v, err := cellText(items, j, rounded)
		if err != nil {
			return "", err
		}
		obj[k] = &v
	}
	b, err := json.Marshal(obj) // keys sorted: the same map is the same text
	return string(b), err
}
