package cur

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

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
	// Header is the file's column names, as the file writes them.
	Header() []string
	// Rounded counts the values read so far that were rounded (Parquet
	// doubles with more than 18 fractional digits); text is never rounded.
	Rounded() int64
	Close() error
}

// OpenChunk opens one data file of a delivery, the version pin names (a
// zero pin: whatever is there), within lim (zero fields: DefaultLimits).
// The file's size is checked before anything is read, and the key must
// lie under the delivery's source. Parquet needs random access, so a
// Parquet file is first copied to a temporary file in tmpDir (removed on
// Close); CSV streams straight from the store.
func OpenChunk(ctx context.Context, store blob.Store, d *Delivery, key string, pin blob.Pin, tmpDir string, lim Limits) (RowReader, error) {
	url := d.URL(key)
	lim = lim.orDefaults()
	if err := UnderSource(d.Source, key); err != nil {
		return nil, &FileError{File: d.Source.String(), Err: err}
	}
	size := pin.Size
	if pin.IsZero() {
		info, err := store.Stat(ctx, key)
		switch {
		case errors.Is(err, blob.ErrNotFound):
			return nil, &FileError{File: url, Err: fmt.Errorf("%w (listed in %s; %v)", ErrChunkNotFound, d.URL(d.StableManifestKey), err)}
		case err != nil:
			return nil, err
		}
		size = info.Size
	}
	if size > lim.MaxObjectBytes {
		return nil, &FileError{File: url, Err: fmt.Errorf("%w: %d bytes stored, %d at most", ErrChunkTooLarge, size, lim.MaxObjectBytes)}
	}
	rc, err := store.OpenPinned(ctx, key, pin)
	switch {
	case errors.Is(err, blob.ErrNotFound):
		return nil, &FileError{File: url, Err: fmt.Errorf("%w (listed in %s; %v)", ErrChunkNotFound, d.URL(d.StableManifestKey), err)}
	case errors.Is(err, blob.ErrChanged):
		return nil, &FileError{File: url, Err: fmt.Errorf("%w: the file is not the version it was when the delivery was located", ErrDeliveryChanged)}
	case err != nil:
		return nil, err
	}
	switch {
	case d.Format == FormatLegacyCSV && strings.EqualFold(d.Compression, "ZIP"):
		tmp, err := download(rc, url, tmpDir, "chunk-*.zip", lim)
		if err != nil {
			return nil, err
		}
		r, err := openZippedCSV(tmp, url, d.Headers, lim)
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			return nil, err
		}
		return &closeBoth{RowReader: r, src: tmp, remove: tmp.Name()}, nil
	case d.Format == FormatLegacyCSV || d.Format == FormatCUR2CSV || d.Format == FormatPartnerCSV || d.Format == FormatFOCUSCSV:
		r, err := newCSVReader(rc, url, d.Compression, d.Headers, headerMappers[d.Format], lim, size)
		if err != nil {
			rc.Close()
			return nil, err
		}
		return &closeBoth{RowReader: r, src: rc}, nil
	case d.Format == FormatCUR2Parquet || d.Format == FormatLegacyParquet || d.Format == FormatFOCUSParquet:
		tmp, err := download(rc, url, tmpDir, "chunk-*.parquet", lim)
		if err != nil {
			return nil, err
		}
		mapper := headerMappers[d.Format]
		if d.Format == FormatLegacyParquet && len(d.Originals) > 0 {
			mapper = func(h []string) (*billing.Mapping, error) { return billing.MapAthenaHeaderOriginals(h, d.Originals) }
		}
		r, err := newParquetReader(ctx, tmp, url, d.Headers, mapper, lim)
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

// headerMappers maps each format's header onto its table's columns.
var headerMappers = map[Format]func([]string) (*billing.Mapping, error){
	FormatLegacyCSV:     billing.MapLegacyHeader,
	FormatCUR2CSV:       billing.MapCUR2Header,
	FormatPartnerCSV:    billing.MapAthenaHeader,
	FormatLegacyParquet: billing.MapAthenaHeader,
	FormatCUR2Parquet:   billing.MapCUR2Header,
	FormatFOCUSCSV:      billing.MapFOCUSHeader,
	FormatFOCUSParquet:  billing.MapFOCUSHeader,
}

// download copies an object to a temporary file (for formats that need
// random access), no more than lim.MaxObjectBytes, and closes the object.
func download(rc io.ReadCloser, url, tmpDir, pattern string, lim Limits) (*os.File, error) {
	defer rc.Close()
	tmp, err := os.CreateTemp(tmpDir, pattern)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(tmp, storedCap(rc, lim)); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		if errors.Is(err, ErrChunkTooLarge) {
			return nil, &FileError{File: url, Err: err}
		}
		return nil, fmt.Errorf("download %s: %w", url, err)
	}
	return tmp, nil
}

// openZippedCSV opens the one CSV inside a legacy .csv.zip chunk.
func openZippedCSV(f *os.File, url string, wantHeader []string, lim Limits) (RowReader, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() == 0 {
		return nil, &FileError{File: url, Err: ErrEmptyChunk}
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		return nil, &FileError{File: url, Err: fmt.Errorf("%w: not a zip archive: %v", ErrCorruptChunk, err)}
	}
	if len(zr.File) != 1 {
		return nil, &FileError{File: url, Err: fmt.Errorf("%w: the zip holds %d files, want one CSV", ErrCorruptChunk, len(zr.File))}
	}
	entry, err := zr.File[0].Open()
	if err != nil {
		return nil, &FileError{File: url, Err: fmt.Errorf("%w: %v", ErrCorruptChunk, err)}
	}
	// The entry inflates as it is read: bound it as a gzip chunk is.
	body := inflateCap(entry, lim, st.Size())
	name := zr.File[0].Name
	if len(name) > 96 {
		name = name[:96] + "…" // the archive's own text: kept short
	}
	r, err := newCSVReader(body, url+"!"+name, "", wantHeader, billing.MapLegacyHeader, lim, 0)
	if err != nil {
		entry.Close()
		return nil, err
	}
	return &closeBoth{RowReader: r, src: entry}, nil
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
