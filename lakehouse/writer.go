package lakehouse

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/period"
)

// ErrBadValue reports a source value that does not fit its column's type.
var ErrBadValue = errors.New("bad value")

// ValueError says which column and value could not be typed.
type ValueError struct {
	Column string
	Value  string
	Err    error
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("%v: column %s: %q: %v", ErrBadValue, e.Column, truncate(e.Value, 80), e.Err)
}

// Unwrap lets errors.Is match ErrBadValue and the cause (money.ErrSyntax …).
func (e *ValueError) Unwrap() []error { return []error{ErrBadValue, e.Err} }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// A Parquet file is written a row group at a time: until its row group is
// flushed, a column holds its dictionary and its compressed pages, and
// every column buffers up to a page of values. So these bound a
// conversion's memory, whatever the size of the chunk. Measured with
// convbench (1M rows × 141 columns, 2 chunks at a time; peak anonymous
// memory, Parquet bytes):
//
//	32k rows, 64 KiB pages, 32 KiB page chunks   196 MiB   107.4 MiB
//	32k rows, 32 KiB pages, 4 KiB page chunks    162 MiB   110.6 MiB
//	16k rows, 32 KiB pages, 4 KiB page chunks    126 MiB   117.5 MiB
//
// at the same CPU time. The last keeps a worker converting two chunks
// under 256 MiB of RSS, for files 9% larger (a row group repeats the
// dictionaries). Compressed pages go into chunks of pageChunkBytes: most
// columns compress a row group into a few KiB, and parquet-go's default
// 32 KiB chunk per column was mostly empty.
const (
	rowGroupRows   = 16 * 1024
	pageBytes      = 32 << 10
	pageChunkBytes = 4 << 10
)

// DataFileWriter writes canonical records into one Parquet data file in
// the table's layout, with the table's field IDs, so the file can be
// committed as is.
type DataFileWriter struct {
	path string
	out  icebergio.FileWriter
	pf   *pqFile
	rows int64
}

// DataFilePath returns where a chunk's data file goes: under the table's
// data folder, in its partition's folder, named by the writer.
func DataFilePath(tbl *table.Table, bs *billing.Schema, payer string, p period.Period, name string) string {
	return fmt.Sprintf("%s/data/%s=%s/%s=%s/%s.parquet", strings.TrimRight(tbl.Location(), "/"),
		bs.Payer, url.PathEscape(payer), bs.Period, p, name)
}

// NewDataFileWriter creates the file at path (replacing any earlier
// attempt) for records of schema bs.
func NewDataFileWriter(ctx context.Context, tbl *table.Table, bs *billing.Schema, path string) (*DataFileWriter, error) {
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return nil, err
	}
	wfs, ok := fsys.(icebergio.WriteFileIO)
	if !ok {
		return nil, fmt.Errorf("warehouse of %s is read-only", TableID(bs))
	}
	out, err := wfs.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	pf, err := newPQFile(out, tbl.Schema(), bs)
	if err != nil {
		out.Close()
		return nil, fmt.Errorf("parquet writer %s: %w", path, err)
	}
	return &DataFileWriter{path: path, out: out, pf: pf}, nil
}

// Path returns the file's location.
func (w *DataFileWriter) Path() string { return w.path }

// Rows returns how many records were appended.
func (w *DataFileWriter) Rows() int64 { return w.rows }

// Append types one record and adds it. On a *ValueError the record is
// half-appended and the file must be abandoned.
func (w *DataFileWriter) Append(r *billing.Record) error {
	if err := w.pf.append(r); err != nil {
		var ve *ValueError
		if errors.As(err, &ve) {
			return err
		}
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	w.rows++
	return nil
}

// Close flushes and closes the file.
func (w *DataFileWriter) Close() error {
	if err := w.pf.close(); err != nil {
		w.out.Close()
		return fmt.Errorf("close %s: %w", w.path, err)
	}
	if err := w.out.Close(); err != nil {
		return fmt.Errorf("close %s: %w", w.path, err)
	}
	return nil
}

// Abort closes the file without caring about errors; the caller removes it.
func (w *DataFileWriter) Abort() { _ = w.out.Close() }

var timestampLayouts = []string{
	time.RFC3339Nano, // 2023-11-01T00:00:00.000Z, 2023-11-01T00:00:00Z
	"2006-01-02T15:04:05.000Z0700",
	"2006-01-02 15:04:05.000", // Athena / CUR 2.0 CSV, UTC
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
	"2006-01-02",
}

// ParseTimestamp reads the timestamp shapes AWS billing files use; values
// without a zone are UTC.
func ParseTimestamp(s string) (time.Time, error) {
	for _, layout := range timestampLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("not a timestamp (want RFC 3339 like 2023-11-01T00:00:00.000Z)")
}
