package cur

import (
	"fmt"
	"io"
)

// Limits bound what one data file of a delivery may cost the worker. A
// customer's bucket is untrusted: without them a file can hold a quoted
// field of gigabytes, or a few KiB of gzip that inflate to terabytes, and
// crash-loop every worker that retries it. Each limit fails the file with
// a named, permanent error. The defaults are far above anything AWS
// writes, so they never refuse real data.
type Limits struct {
	// MaxObjectBytes bounds a data file's stored size, checked before it
	// is downloaded. AWS splits CUR into chunks of a few GiB at most.
	MaxObjectBytes int64
	// MaxDecompressedBytes bounds the bytes a chunk inflates to.
	MaxDecompressedBytes int64
	// MaxDecompressionRatio bounds inflated bytes per stored byte, once
	// past DecompressionFloor. Billing CSV gzips 10–30×; only crafted
	// input reaches hundreds.
	MaxDecompressionRatio int64
	// DecompressionFloor is what any chunk may inflate to whatever its
	// ratio: small files of repeated text compress far better than big ones.
	DecompressionFloor int64
	// MaxRecordBytes bounds one CSV record, all its lines together (a
	// quoted field may span lines). Real CUR records are a few KiB; the
	// largest seen, with thousands of tag columns, well under 1 MiB.
	MaxRecordBytes int64
	// MaxFields bounds the columns of a file (CSV fields per record,
	// Parquet columns). AWS's widest reports have a few thousand tag
	// columns.
	MaxFields int
	// MaxColumnChunkBytes bounds a Parquet column chunk's uncompressed
	// size, as the footer declares it, checked before any page is read.
	MaxColumnChunkBytes int64
	// MaxPageBytes bounds a Parquet page's uncompressed size, as its
	// header declares it, checked before the page is read. Writers make
	// pages of about 1 MiB; a dictionary page of a few MiB is large.
	MaxPageBytes int64
}

// DefaultLimits are the limits a worker applies unless configured.
var DefaultLimits = Limits{
	MaxObjectBytes:        20 << 30,  // 20 GiB: several times the largest AWS chunk
	MaxDecompressedBytes:  256 << 30, // 256 GiB: a 20 GiB gzip at a generous 12×
	MaxDecompressionRatio: 200,       // 200×: CSV gzips 10–30×; crafted input 1000× and more
	DecompressionFloor:    1 << 30,   // 1 GiB: any chunk may inflate to this
	MaxRecordBytes:        16 << 20,  // 16 MiB: real records are KiB
	MaxFields:             10_000,    // a few times AWS's widest reports
	MaxColumnChunkBytes:   8 << 30,   // 8 GiB: one column of a huge row group
	MaxPageBytes:          64 << 20,  // 64 MiB: writers make 1 MiB pages
}

// orDefaults fills the limits left zero with DefaultLimits'.
func (l Limits) orDefaults() Limits {
	d := DefaultLimits
	setPositive(&d.MaxObjectBytes, l.MaxObjectBytes)
	setPositive(&d.MaxDecompressedBytes, l.MaxDecompressedBytes)
	setPositive(&d.MaxDecompressionRatio, l.MaxDecompressionRatio)
	setPositive(&d.DecompressionFloor, l.DecompressionFloor)
	setPositive(&d.MaxRecordBytes, l.MaxRecordBytes)
	setPositive(&d.MaxFields, l.MaxFields)
	setPositive(&d.MaxColumnChunkBytes, l.MaxColumnChunkBytes)
	setPositive(&d.MaxPageBytes, l.MaxPageBytes)
	return d
}

// setPositive sets *dst to v when v is a positive limit.
func setPositive[T int | int64](dst *T, v T) {
	if v > 0 {
		*dst = v
	}
}

// inflateBound is what a chunk of stored bytes (0: unknown) may inflate
// to: the ratio's share with the floor under it, and never past the
// absolute maximum.
func (l Limits) inflateBound(stored int64) int64 {
	bound := l.MaxDecompressedBytes
	if stored > 0 {
		byRatio := max(l.DecompressionFloor, stored*l.MaxDecompressionRatio)
		if stored > bound/l.MaxDecompressionRatio { // stored*ratio would overflow or pass the bound
			byRatio = bound
		}
		bound = min(bound, byRatio)
	}
	return bound
}

// capReader fails a read once more than max bytes have passed, with err
// saying why; it withholds the bytes past the bound, so a reader above it
// never sees them.
type capReader struct {
	r    io.Reader
	left int64
	err  func() error
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, c.err()
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1] // one byte past the bound is enough to tell
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return 0, c.err()
	}
	return n, err
}

// inflateCap bounds the decompressed stream of a chunk.
func inflateCap(r io.Reader, lim Limits, stored int64) io.Reader {
	bound := lim.inflateBound(stored)
	return &capReader{r: r, left: bound, err: func() error {
		if stored > 0 && bound < lim.MaxDecompressedBytes {
			return fmt.Errorf("%w: more than %d bytes from %d stored (%d× at most, %d bytes whatever the size)",
				ErrDecompressionBomb, bound, stored, lim.MaxDecompressionRatio, lim.DecompressionFloor)
		}
		return fmt.Errorf("%w: more than %d bytes", ErrDecompressionBomb, bound)
	}}
}

// storedCap bounds the stored bytes of a chunk as they are read, in case
// the store reports one size and serves another.
func storedCap(r io.Reader, lim Limits) io.Reader {
	return &capReader{r: r, left: lim.MaxObjectBytes, err: func() error {
		return fmt.Errorf("%w: more than %d bytes stored", ErrChunkTooLarge, lim.MaxObjectBytes)
	}}
}
