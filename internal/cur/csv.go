package cur

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"strings"
)

// csvReader reads CSV exactly as encoding/csv's Reader does with its
// defaults (comma, no comments, no lazy quotes, no trimming), ReuseRecord
// and FieldsPerRecord: the same records, and the same *csv.ParseError
// (lines and column) for malformed input, \r\n, empty lines and a last
// line without a line break handled alike.
//
// A record on one line whose quoted fields are well formed (nearly every
// record of a billing file) takes a fast path: the line becomes one string
// and each field is a slice of it, found in one pass over the line, where
// encoding/csv copies each field into a buffer and searches for its end
// with a call per field. Anything else goes through a copy of encoding/csv's
// own parser (Go's source, BSD licence), which also reports the errors.
type csvReader struct {
	r *bufio.Reader
	// FieldsPerRecord is the number of fields every record must have; 0
	// takes the first record's count, as in encoding/csv.
	FieldsPerRecord int
	// maxRecord and maxFields bound one record (its bytes, all its lines
	// together, and its fields); 0 is no bound.
	maxRecord int64
	maxFields int

	numLine      int
	rawBuffer    []byte
	recordBuffer []byte
	fieldIndexes []int
	record       []string
}

func newCSVReaderFast(r io.Reader) *csvReader {
	return &csvReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// readLine is encoding/csv's: a line with its \n, \r\n normalized to \n,
// a trailing \r before EOF dropped.
func (r *csvReader) readLine() ([]byte, error) {
	line, err := r.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		r.rawBuffer = append(r.rawBuffer[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = r.r.ReadSlice('\n')
			r.rawBuffer = append(r.rawBuffer, line...)
		}
		line = r.rawBuffer
	}
	readSize := len(line)
	if readSize > 0 && err == io.EOF {
		err = nil
		if line[readSize-1] == '\r' {
			line = line[:readSize-1]
		}
	}
	r.numLine++
	if n := len(line); n >= 2 && line[n-2] == '\r' && line[n-1] == '\n' {
		line[n-2] = '\n'
		line = line[:n-1]
	}
	return line, err
}

func lengthNL(b []byte) int {
	if len(b) > 0 && b[len(b)-1] == '\n' {
		return 1
	}
	return 0
}

// Read returns the next record; the slice is reused by the next call, the
// strings are not.
func (r *csvReader) Read() ([]string, error) {
	var line []byte
	var errRead error
	for errRead == nil {
		line, errRead = r.readLine()
		if errRead == nil && len(line) == lengthNL(line) {
			line = nil
			continue // skip empty lines
		}
		break
	}
	if errRead == io.EOF {
		return nil, errRead
	}
	recLine := r.numLine
	if errRead == nil {
		if rec, ok := r.splitLine(line); ok && (r.maxFields <= 0 || len(rec) <= r.maxFields) {
			r.record = rec
			return rec, r.checkCount(rec, recLine, nil)
		}
	}
	rec, err := r.parseRecord(line, errRead, recLine)
	r.record = rec
	return rec, r.checkCount(rec, recLine, err)
}

func (r *csvReader) checkCount(rec []string, recLine int, err error) error {
	if r.FieldsPerRecord > 0 {
		if len(rec) != r.FieldsPerRecord && err == nil {
			err = &csv.ParseError{StartLine: recLine, Line: recLine, Column: 1, Err: csv.ErrFieldCount}
		}
	} else if r.FieldsPerRecord == 0 {
		r.FieldsPerRecord = len(rec)
	}
	return err
}

// splitLine parses a record that is the whole line, or reports false for
// anything else: a quoted field going on to the next line, a quote where
// none may be (an error the full parser reports).
func (r *csvReader) splitLine(line []byte) ([]string, bool) {
	s := string(line[:len(line)-lengthNL(line)])
	rec := r.record[:0]
	i := 0
	for {
		if i < len(s) && s[i] == '"' {
			j := i + 1
			escaped := false
			for {
				q := strings.IndexByte(s[j:], '"')
				if q < 0 {
					return nil, false // the field goes on past this line
				}
				j += q + 1
				if j < len(s) && s[j] == '"' {
					escaped, j = true, j+1 // "" is a quote
					continue
				}
				break
			}
			f := s[i+1 : j-1] // runs of quotes in it have even lengths
			if escaped {
				f = strings.ReplaceAll(f, `""`, `"`)
			}
			rec = append(rec, f)
			if j == len(s) {
				return rec, true
			}
			if s[j] != ',' {
				return nil, false // text after a closing quote
			}
			i = j + 1
			continue
		}
		j := i
		for j < len(s) && s[j] != ',' {
			if s[j] == '"' {
				return nil, false // a bare quote
			}
			j++
		}
		rec = append(rec, s[i:j])
		if j == len(s) {
			return rec, true
		}
		i = j + 1
	}
}

type position struct{ line, col int }

// checkSize fails a record past maxRecord bytes or maxFields fields.
func (r *csvReader) checkSize(recLine int) error {
	var err error
	switch {
	case r.maxRecord > 0 && int64(len(r.recordBuffer)) > r.maxRecord:
		err = fmt.Errorf("%w: more than %d bytes (lines %d to %d)", ErrRecordTooLarge, r.maxRecord, recLine, r.numLine)
	case r.maxFields > 0 && len(r.fieldIndexes) > r.maxFields:
		err = fmt.Errorf("%w: more than %d fields", ErrRecordTooLarge, r.maxFields)
	default:
		return nil
	}
	return &csv.ParseError{StartLine: recLine, Line: r.numLine, Column: 1, Err: err}
}

// parseRecord is encoding/csv's readRecord after the first line is read,
// for Comma ',' and no LazyQuotes or TrimLeadingSpace.
func (r *csvReader) parseRecord(line []byte, errRead error, recLine int) ([]string, error) {
	const quoteLen, commaLen = 1, 1
	var err error
	r.recordBuffer = r.recordBuffer[:0]
	r.fieldIndexes = r.fieldIndexes[:0]
	pos := position{line: r.numLine, col: 1}
parseField:
	for {
		if len(line) == 0 || line[0] != '"' {
			// Non-quoted string field
			i := bytes.IndexByte(line, ',')
			field := line
			if i >= 0 {
				field = field[:i]
			} else {
				field = field[:len(field)-lengthNL(field)]
			}
			if j := bytes.IndexByte(field, '"'); j >= 0 {
				err = &csv.ParseError{StartLine: recLine, Line: r.numLine, Column: pos.col + j, Err: csv.ErrBareQuote}
				break parseField
			}
			r.recordBuffer = append(r.recordBuffer, field...)
			r.fieldIndexes = append(r.fieldIndexes, len(r.recordBuffer))
			if err = r.checkSize(recLine); err != nil {
				break parseField
			}
			if i >= 0 {
				line = line[i+commaLen:]
				pos.col += i + commaLen
				continue parseField
			}
			break parseField
		}
		// Quoted string field
		line = line[quoteLen:]
		pos.col += quoteLen
		for {
			i := bytes.IndexByte(line, '"')
			switch {
			case i >= 0:
				// Hit next quote.
				r.recordBuffer = append(r.recordBuffer, line[:i]...)
				line = line[i+quoteLen:]
				pos.col += i + quoteLen
				switch {
				case len(line) > 0 && line[0] == '"':
					// `""` sequence (append quote).
					r.recordBuffer = append(r.recordBuffer, '"')
					line = line[quoteLen:]
					pos.col += quoteLen
				case len(line) > 0 && line[0] == ',':
					// `",` sequence (end of field).
					line = line[commaLen:]
					pos.col += commaLen
					r.fieldIndexes = append(r.fieldIndexes, len(r.recordBuffer))
					if err = r.checkSize(recLine); err != nil {
						break parseField
					}
					continue parseField
				case lengthNL(line) == len(line):
					// `"\n` sequence (end of line).
					r.fieldIndexes = append(r.fieldIndexes, len(r.recordBuffer))
					break parseField
				default:
					// `"*` sequence (invalid non-escaped quote).
					err = &csv.ParseError{StartLine: recLine, Line: r.numLine, Column: pos.col - quoteLen, Err: csv.ErrQuote}
					break parseField
				}
			case len(line) > 0:
				// Hit end of line (copy all data so far).
				r.recordBuffer = append(r.recordBuffer, line...)
				if errRead != nil {
					break parseField
				}
				// The field goes on: a record of many lines is bounded
				// here, where one line alone is bounded by its reader.
				if err = r.checkSize(recLine); err != nil {
					break parseField
				}
				pos.col += len(line)
				line, errRead = r.readLine()
				if len(line) > 0 {
					pos.line++
					pos.col = 1
				}
				if errRead == io.EOF {
					errRead = nil
				}
			default:
				// Abrupt end of file (EOF or error).
				if errRead == nil {
					err = &csv.ParseError{StartLine: recLine, Line: pos.line, Column: pos.col, Err: csv.ErrQuote}
					break parseField
				}
				r.fieldIndexes = append(r.fieldIndexes, len(r.recordBuffer))
				break parseField
			}
		}
	}
	if err == nil {
		err = r.checkSize(recLine)
	}
	if err == nil {
		err = errRead
	}
	str := string(r.recordBuffer)
	dst := r.record[:0]
	preIdx := 0
	for _, idx := range r.fieldIndexes {
		dst = append(dst, str[preIdx:idx])
		preIdx = idx
	}
	return dst, err
}
