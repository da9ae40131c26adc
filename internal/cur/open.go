package cur

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
)

// RowReader streams canonical records out of one data file.
type RowReader interface {
	// Next fills rec with the next row; io.EOF after the last one; a
	// *FileError naming the file and row for anything malformed.
	Next(rec *billing.Record) error
	// Line is the source line (CSV) or row (Parquet) of the last record.
	Line() int
	Close() error
}

// OpenChunk opens one data file of a delivery. Parquet needs random
// access, so a Parquet file is first copied to a temporary file in tmpDir
// (removed on Close); CSV streams straight from the store.
func OpenChunk(ctx context.Context, store blob.Store, d *Delivery, key, tmpDir string) (RowReader, error) {
	url := d.URL(key)
	rc, err := store.Open(ctx, key)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, &FileError{File: url, Err: fmt.Errorf("%w (listed in %s)", ErrChunkNotFound, d.URL(d.StableManifestKey))}
	}
	if err != nil {
		return nil, err
	}
	switch d.Format {
	case FormatLegacyCSV, FormatCUR2CSV, FormatPartnerCSV:
		mapHeader := map[Format]func([]string) (*billing.Mapping, error){
			FormatLegacyCSV:  billing.MapLegacyHeader,
			FormatCUR2CSV:    billing.MapCUR2Header,
			FormatPartnerCSV: billing.MapAthenaHeader,
		}[d.Format]
		r, err := newCSVReader(rc, url, d.Compression, d.Headers, mapHeader)
		if err != nil {
			rc.Close()
			return nil, err
		}
		return &closeBoth{RowReader: r, src: rc}, nil
	case FormatCUR2Parquet:
		defer rc.Close()
		tmp, err := os.CreateTemp(tmpDir, "chunk-*.parquet")
		if err != nil {
			return nil, err
		}
		if _, err := io.Copy(tmp, rc); err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			return nil, fmt.Errorf("download %s: %w", url, err)
		}
		r, err := NewParquetReader(ctx, tmp, url, d.Headers)
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			return nil, err
		}
		return &closeBoth{RowReader: r, src: tmp, remove: tmp.Name()}, nil
	default:
		rc.Close()
		return nil, &FileError{File: url, Err: fmt.Errorf("%w: format %q", ErrUnsupportedCompression, d.Format)}
	}
}

// closeBoth closes the reader, then its source, then removes a temp file.
type closeBoth struct {
	RowReader
	src    io.Closer
	remove string
}

func (c *closeBoth) Close() error {
	srcErr := c.src.Close()
	if errors.Is(srcErr, os.ErrClosed) { // the Parquet reader closed it already
		srcErr = nil
	}
	err := errors.Join(c.RowReader.Close(), srcErr)
	if c.remove != "" {
		err = errors.Join(err, os.Remove(c.remove))
	}
	return err
}
