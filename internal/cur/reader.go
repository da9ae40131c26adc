package cur

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"

	"github.com/costlake/costlake/internal/billing"
)

// MaxLineBytes bounds one CSV line. Real CUR lines are a few KiB; a line
// of megabytes is a damaged file, and reading it whole would exhaust memory.
const MaxLineBytes = 4 << 20

// lineLimiter fails a read once more than max bytes pass without a newline.
type lineLimiter struct {
	r       io.Reader
	max     int
	sinceNL int
}

func (l *lineLimiter) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	first := bytes.IndexByte(p[:n], '\n')
	if first < 0 {
		l.sinceNL += n
	} else if l.sinceNL += first; l.sinceNL <= l.max {
		l.sinceNL = n - bytes.LastIndexByte(p[:n], '\n') - 1
	}
	if l.sinceNL > l.max {
		// Withhold the bytes, so the reader above cannot complete the line.
		return 0, fmt.Errorf("%w: more than %d bytes without a line break", ErrLineTooLong, l.max)
	}
	return n, err
}

// ChunkReader streams the rows of one legacy CUR CSV chunk as canonical
// records, in constant memory.
type ChunkReader struct {
	file    string
	gz      *gzip.Reader
	body    io.Reader // what gz inflates to, bounded
	csv     *csvReader
	mapping *billing.Mapping
	line    int
}

// NewChunkReader opens a legacy CUR chunk ("lineItem/UnblendedCost"
// headers). compression is the manifest's ("GZIP", or "" for plain CSV);
// wantHeader, when not nil, is the manifest's column list, which the
// chunk's header must equal. file names the chunk in errors.
func NewChunkReader(r io.Reader, file, compression string, wantHeader []string) (*ChunkReader, error) {
	return newCSVReader(r, file, compression, wantHeader, billing.MapLegacyHeader, DefaultLimits, 0)
}

// NewCUR2CSVReader opens a CUR 2.0 (Data Exports) CSV file: snake_case
// headers, map columns as JSON objects.
func NewCUR2CSVReader(r io.Reader, file, compression string, wantHeader []string) (*ChunkReader, error) {
	return newCSVReader(r, file, compression, wantHeader, billing.MapCUR2Header, DefaultLimits, 0)
}

// newCSVReader opens a CSV chunk of stored bytes (0: unknown, or an
// archive's entry, bounded by its caller), bounded by lim: the stored
// bytes, what they inflate to, and each record.
func newCSVReader(r io.Reader, file, compression string, wantHeader []string, mapHeader func([]string) (*billing.Mapping, error), lim Limits, stored int64) (*ChunkReader, error) {
	c := &ChunkReader{file: file}
	lim = lim.orDefaults()
	if stored > 0 { // a file of the store, not an archive's entry
		r = storedCap(r, lim)
	}
	src := bufio.NewReaderSize(r, 1<<20)
	switch compression {
	case "GZIP", "gzip":
		gz, err := gzip.NewReader(src)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, c.fail(0, ErrEmptyChunk)
			}
			return nil, c.fail(0, fmt.Errorf("%w: %v", ErrCorruptChunk, err))
		}
		c.gz, c.body = gz, inflateCap(gz, lim, stored)
		c.csv = newCSVReaderFast(&lineLimiter{r: c.body, max: MaxLineBytes})
	case "", "NONE", "none", "TEXT_OR_CSV":
		c.csv = newCSVReaderFast(&lineLimiter{r: src, max: MaxLineBytes})
	default:
		return nil, c.fail(0, fmt.Errorf("%w %q (want GZIP)", ErrUnsupportedCompression, compression))
	}
	c.csv.maxRecord, c.csv.maxFields = lim.MaxRecordBytes, lim.MaxFields
	header, err := c.csv.Read()
	c.line = 1
	if errors.Is(err, io.EOF) {
		return nil, c.fail(1, fmt.Errorf("%w: no header row", ErrEmptyChunk))
	}
	if err != nil {
		return nil, c.readError(err)
	}
	header = slices.Clone(header)
	if wantHeader != nil && !slices.Equal(header, wantHeader) {
		return nil, c.fail(1, fmt.Errorf("%w: %s", ErrHeaderMismatch, headerDiff(wantHeader, header)))
	}
	c.mapping, err = mapHeader(header)
	if err != nil {
		return nil, c.fail(1, err)
	}
	c.csv.FieldsPerRecord = len(header)
	return c, nil
}

// Next fills rec with the next row. It returns io.EOF after the last row,
// and a *FileError naming the line for anything malformed.
func (c *ChunkReader) Next(rec *billing.Record) error {
	row, err := c.csv.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return c.readError(err)
	}
	c.line++
	if err := rec.Fill(c.mapping, row); err != nil {
		return c.fail(c.line, fmt.Errorf("%w: %v", ErrMalformedCSV, err))
	}
	return nil
}

// Line returns the CSV line of the last row read (the header is line 1).
func (c *ChunkReader) Line() int { return c.line }

// Rounded is 0: CSV text is read exactly or refused.
func (c *ChunkReader) Rounded() int64 { return 0 }

// Header returns the file's header row.
func (c *ChunkReader) Header() []string { return c.mapping.Source }

// Close releases the decompressor; the caller closes the source.
func (c *ChunkReader) Close() error {
	if c.gz != nil {
		return c.gz.Close()
	}
	return nil
}

func (c *ChunkReader) fail(line int, err error) error {
	return &FileError{File: c.file, Line: line, Err: err}
}

func (c *ChunkReader) readError(err error) error {
	// Damaged gzip often inflates to garbage before the checksum fails, so
	// a CSV error may really be a corrupt file: read on to find out.
	var pe *csv.ParseError
	switch {
	case errors.Is(err, ErrRecordTooLarge) && errors.As(err, &pe):
		return c.fail(pe.StartLine, pe.Err) // no draining: the rest may be as large
	case errors.Is(err, ErrDecompressionBomb), errors.Is(err, ErrChunkTooLarge):
		return c.fail(c.line+1, unwrapParse(err))
	}
	if errors.As(err, &pe) && c.gz != nil {
		if _, drainErr := io.Copy(io.Discard, c.body); drainErr != nil && isCompressionError(drainErr) {
			return c.fail(pe.Line, fmt.Errorf("%w: %v (truncated or damaged gzip)", ErrCorruptChunk, drainErr))
		}
	}
	var fe flate.CorruptInputError
	switch {
	case errors.Is(err, ErrLineTooLong):
		return c.fail(c.line+1, err)
	case errors.As(err, &pe) && pe.Err != nil && !isCompressionError(pe.Err):
		return c.fail(pe.Line, fmt.Errorf("%w: %v", ErrMalformedCSV, pe.Err))
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader), errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &fe):
		return c.fail(c.line+1, fmt.Errorf("%w: %v (truncated or damaged gzip)", ErrCorruptChunk, err))
	default:
		// A network or storage failure: not about the file, so retryable.
		return fmt.Errorf("read %s after line %d: %w", c.file, c.line, err)
	}
}

// unwrapParse drops a *csv.ParseError's wrapping of a read error: the
// line is said by the FileError.
func unwrapParse(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) && pe.Err != nil {
		return pe.Err
	}
	return err
}

func isCompressionError(err error) bool {
	var fe flate.CorruptInputError
	return errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &fe)
}

func headerDiff(want, got []string) string {
	if len(want) != len(got) {
		return fmt.Sprintf("manifest lists %d columns, file has %d", len(want), len(got))
	}
	for i := range want {
		if want[i] != got[i] {
			// Names cut short: a message carries no more of a file than that.
			return fmt.Sprintf("column %d is %s, manifest says %s", i+1, quoteShort(got[i]), quoteShort(want[i]))
		}
	}
	return "headers differ"
}
