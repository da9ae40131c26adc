package export

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"

	"github.com/klauspost/compress/gzip"

	"github.com/costlake/costlake/internal/blob"
)

// Writer streams rows into an export. Memory stays bounded whatever the
// row count: each part is spooled to one temporary file (at most
// MaxRowsPerFile rows, compressed when gzipped) and uploaded once it is
// full or the export closes; only then is it known whether the export is
// split, which decides the first part's name without ever reading back
// from the destination. A Writer is not safe for concurrent use.
type Writer struct {
	ctx   context.Context
	store blob.Store
	spec  Spec
	cols  []string
	max   int

	cur   *part
	files []File
	buf   []byte

	totals   Totals
	accounts map[string]*Totals
	err      error // sticky: the first failure
	closed   bool
}

// part is the file being written.
type part struct {
	f    *os.File
	hash hash.Hash
	n    int64 // bytes written to f
	gz   *gzip.Writer
	bw   *bufio.Writer
	rows int64
}

func (p *part) Write(b []byte) (int, error) {
	n, err := p.f.Write(b)
	p.hash.Write(b[:n])
	p.n += int64(n)
	return n, err
}

// NewWriter starts an export into store. It deletes the export's previous
// manifest first, so that while this run overwrites files no reader
// trusts a manifest describing the old ones. ctx governs every upload the
// writer makes.
func NewWriter(ctx context.Context, store blob.Store, spec Spec) (*Writer, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	spec.TagKeys = slices.Clone(spec.TagKeys)
	if err := store.Delete(ctx, spec.ManifestKey()); err != nil {
		return nil, fmt.Errorf("export %s: remove the previous manifest: %w", spec.Stem(), err)
	}
	return &Writer{
		ctx: ctx, store: store, spec: spec, cols: spec.Columns(), max: spec.maxRows(),
		accounts: map[string]*Totals{}, buf: make([]byte, 0, 1024),
	}, nil
}

// Spec returns the export's spec.
func (w *Writer) Spec() Spec { return w.spec }

// Write adds one row. After an error the writer is unusable: Close
// returns that error and writes no manifest.
func (w *Writer) Write(r *Row) error {
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	if err := w.checkTags(r); err != nil {
		return w.fail(err)
	}
	if w.cur != nil && w.cur.rows >= int64(w.max) {
		// The export needs another part, so it is split: part 1 too is numbered.
		if err := w.finishPart(true); err != nil {
			return w.fail(err)
		}
	}
	if w.cur == nil {
		if err := w.startPart(); err != nil {
			return w.fail(err)
		}
	}
	w.buf = w.spec.appendRow(w.buf[:0], r)
	if _, err := w.cur.bw.Write(w.buf); err != nil {
		return w.fail(fmt.Errorf("export %s: spool part %d: %w", w.spec.Stem(), len(w.files)+1, err))
	}
	w.cur.rows++
	w.totals.add(w.spec.Mode, r)
	acc := w.accounts[r.LinkedAccountID]
	if acc == nil {
		acc = &Totals{}
		w.accounts[r.LinkedAccountID] = acc
	}
	acc.add(w.spec.Mode, r)
	return nil
}

func (w *Writer) checkTags(r *Row) error {
	if w.spec.DropUndeclaredTags || len(r.Tags) == 0 {
		return nil
	}
	for k := range r.Tags {
		if !slices.Contains(w.spec.TagKeys, k) {
			return fmt.Errorf("%w: %q (declared: %q)", ErrUndeclaredTag, k, w.spec.TagKeys)
		}
	}
	return nil
}

func (w *Writer) fail(err error) error {
	w.err = err
	w.dropPart()
	return err
}

func (w *Writer) startPart() error {
	f, err := os.CreateTemp(w.spec.TempDir, "costlake-export-*.part")
	if err != nil {
		return fmt.Errorf("export %s: %w", w.spec.Stem(), err)
	}
	p := &part{f: f, hash: sha256.New()}
	var sink io.Writer = p
	if w.spec.Gzip {
		p.gz = gzip.NewWriter(p)
		sink = p.gz
	}
	p.bw = bufio.NewWriterSize(sink, 256<<10)
	w.cur = p
	_, err = p.bw.Write(appendHeader(w.buf[:0], w.cols))
	return err
}

// finishPart uploads the current part under its final name.
func (w *Writer) finishPart(split bool) error {
	p := w.cur
	n := len(w.files) + 1
	key := w.spec.FileKey(n, split)
	if err := p.bw.Flush(); err != nil {
		return fmt.Errorf("export %s: spool part %d: %w", w.spec.Stem(), n, err)
	}
	if p.gz != nil {
		if err := p.gz.Close(); err != nil {
			return fmt.Errorf("export %s: spool part %d: %w", w.spec.Stem(), n, err)
		}
	}
	if _, err := p.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("export %s: %w", w.spec.Stem(), err)
	}
	if err := w.store.Put(w.ctx, key, p.f); err != nil {
		return fmt.Errorf("export %s: upload %s: %w", w.spec.Stem(), key, err)
	}
	w.files = append(w.files, File{Key: key, Rows: p.rows, Bytes: p.n, SHA256: hex.EncodeToString(p.hash.Sum(nil))})
	w.dropPart()
	return nil
}

func (w *Writer) dropPart() {
	if w.cur == nil {
		return
	}
	_ = w.cur.f.Close()
	_ = os.Remove(w.cur.f.Name())
	w.cur = nil
}

// Abort ends the export without a manifest and removes the spooled part.
// Files already uploaded stay; the next run overwrites or removes them.
func (w *Writer) Abort() {
	w.dropPart()
	w.closed = true
}

// Close uploads the last part, removes files of an earlier run of the same
// export that this run did not write, and writes the manifest last. An
// export without rows still writes one file holding the header.
func (w *Writer) Close() (*Manifest, error) {
	if w.closed {
		return nil, ErrClosed
	}
	defer w.Abort()
	if w.err != nil {
		return nil, w.err
	}
	if w.cur == nil && len(w.files) == 0 {
		if err := w.startPart(); err != nil {
			return nil, w.fail(err)
		}
	}
	if w.cur != nil {
		if err := w.finishPart(len(w.files) > 0); err != nil {
			return nil, w.fail(err)
		}
	}
	if err := w.removeStale(); err != nil {
		return nil, w.fail(err)
	}
	m := w.manifest()
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, w.fail(err)
	}
	if err := w.store.Put(w.ctx, w.spec.ManifestKey(), bytes.NewReader(append(body, '\n'))); err != nil {
		return nil, w.fail(fmt.Errorf("export %s: upload manifest %s: %w", w.spec.Stem(), w.spec.ManifestKey(), err))
	}
	return m, nil
}

// removeStale deletes this export's files that the run did not write: the
// extra parts of an earlier, larger run, or the files of the other
// compression or split. Only keys named like this export's files are
// touched, so other exports sharing the prefix are safe.
func (w *Writer) removeStale() error {
	keep := make(map[string]bool, len(w.files)+1)
	for _, f := range w.files {
		keep[f.Key] = true
	}
	keep[w.spec.ManifestKey()] = true
	infos, err := w.store.List(w.ctx, w.spec.key(w.spec.Stem()))
	if err != nil {
		return fmt.Errorf("export %s: list earlier files: %w", w.spec.Stem(), err)
	}
	for _, in := range infos {
		if keep[in.Key] || !w.spec.owns(in.Key) {
			continue
		}
		if err := w.store.Delete(w.ctx, in.Key); err != nil {
			return fmt.Errorf("export %s: remove stale %s: %w", w.spec.Stem(), in.Key, err)
		}
	}
	return nil
}

func (w *Writer) manifest() *Manifest {
	comp := "none"
	if w.spec.Gzip {
		comp = "gzip"
	}
	m := &Manifest{
		Format: Format, AccountID: w.spec.AccountID, Period: w.spec.Period, Mode: w.spec.Mode,
		Compression: comp, Columns: w.cols, Files: slices.Clone(w.files), Totals: w.totals,
		Accounts: make(map[string]Totals, len(w.accounts)),
	}
	for id, t := range w.accounts {
		m.Accounts[id] = *t
	}
	return m
}
