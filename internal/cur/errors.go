package cur

import (
	"errors"
	"fmt"
)

// Errors a delivery can fail with. Each is permanent: retrying the same
// files gives the same answer, so workflows fail fast on them.
var (
	ErrManifestNotFound       = errors.New("CUR manifest not found")
	ErrChunkNotFound          = errors.New("CUR chunk named by the manifest not found")
	ErrCorruptChunk           = errors.New("corrupt CUR chunk")
	ErrHeaderMismatch         = errors.New("CUR chunk header disagrees with the manifest")
	ErrMalformedCSV           = errors.New("malformed CUR CSV")
	ErrEmptyChunk             = errors.New("empty CUR chunk")
	ErrUnsupportedCompression = errors.New("unsupported CUR compression")
	ErrLineTooLong            = errors.New("CUR line longer than costlake accepts")
	// ErrRecordTooLarge reports a CSV record over Limits.MaxRecordBytes
	// (across the lines a quoted field spans) or Limits.MaxFields.
	ErrRecordTooLarge = errors.New("CUR record larger than costlake accepts")
	// ErrChunkTooLarge reports a data file over Limits.MaxObjectBytes, or
	// a Parquet file whose column chunks or pages are over their limits.
	ErrChunkTooLarge = errors.New("CUR data file larger than costlake accepts")
	// ErrDecompressionBomb reports a chunk that inflates past
	// Limits.MaxDecompressedBytes, or past Limits.MaxDecompressionRatio
	// times its stored size.
	ErrDecompressionBomb = errors.New("CUR chunk decompresses to more than costlake accepts")
)

// ErrDeliveryChanged reports a delivery rewritten while it was read (AWS
// rewrites a period's files in place in overwrite mode): a chunk is no
// longer the version pinned when the delivery was located, or the manifest
// now describes another assembly. Unlike the errors above it is not about
// bad input: locating the delivery again and starting over succeeds.
var ErrDeliveryChanged = errors.New("the delivery changed while it was read")

// errNoDelivery tells Locate that a layout has nothing for the period, so
// the next layout is tried.
var errNoDelivery = errors.New("no delivery")

// FileError places an error in a source file, and at a line when known.
type FileError struct {
	File string // URL of the file
	Line int    // 1-based CSV line, 0 when not about a line
	Err  error
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s line %d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }
