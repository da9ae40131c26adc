package synth

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"io"
	"slices"
)

// WithInvoiceID copies a gzip CSV chunk Generate wrote, setting
// bill/InvoiceId on every row, as AWS writes once the month is invoiced
// (costs are untouched, so the Result's totals still hold).
func WithInvoiceID(src io.Reader, dst io.Writer, invoice string) error {
	zr, err := gzip.NewReader(src)
	if err != nil {
		return err
	}
	r := csv.NewReader(bufio.NewReader(zr))
	r.ReuseRecord = true
	zw := gzip.NewWriter(dst)
	w := csv.NewWriter(zw)
	header, err := r.Read()
	if err != nil {
		return err
	}
	col := slices.Index(header, "bill/InvoiceId")
	if col < 0 {
		return errors.New("no bill/InvoiceId column")
	}
	if err := w.Write(header); err != nil {
		return err
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		rec[col] = invoice
		if err := w.Write(rec); err != nil {
			return err
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return zw.Close()
}
