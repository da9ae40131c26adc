package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/apache/iceberg-go/table"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/contract/ingest"
	"github.com/costlake/costlake/internal/cur"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/lakehouse"
)

// DefaultPartRows bounds a data file: a chunk of a million rows becomes
// four files, and a retry after a crash redoes at most one of them.
const DefaultPartRows = 250_000

// A conversion heartbeats at most every heartbeatInterval, checking the
// clock every heartbeatCheckRows rows; the workflow's heartbeat timeout is
// several intervals, so a dead worker's chunk is retried within seconds.
const (
	heartbeatInterval  = 2 * time.Second
	heartbeatCheckRows = 1000
)

// ChunkProgress is what a conversion heartbeats: the data files it has
// finished and what went into them. A retry reads it back, skips the
// source rows already converted and goes on from there.
type ChunkProgress struct {
	Parts    []string        `json:"parts"`
	Rows     int64           `json:"rows"`    // source rows consumed (kept or left out)
	Written  int64           `json:"written"` // rows in Parts
	Totals   []billing.Total `json:"totals"`
	Excluded []billing.Total `json:"excluded"`
	Rounded  int64           `json:"rounded"` // values rounded in the rows consumed
}

// chunkConverter streams one source file into numbered Parquet parts.
type chunkConverter struct {
	ctx      context.Context
	lake     *lakehouse.Lake
	tbl      *table.Table
	bs       *billing.Schema
	in       ingest.ConvertChunkInput
	reader   cur.RowReader
	chunkURL string
	partRows int64

	progress ChunkProgress
	part     *lakehouse.DataFileWriter
	totals   map[[2]string]*billing.Total
	excluded map[[2]string]*billing.Total
	rounded  int64 // values rounded in the rows consumed, earlier attempts' included
	lastBeat time.Time
}

func (c *chunkConverter) run() (ingest.ConvertChunkResult, error) {
	var res ingest.ConvertChunkResult
	c.totals, c.excluded = map[[2]string]*billing.Total{}, map[[2]string]*billing.Total{}
	c.lastBeat = time.Now()
	if activity.HasHeartbeatDetails(c.ctx) {
		if err := activity.GetHeartbeatDetails(c.ctx, &c.progress); err != nil {
			return res, fmt.Errorf("read the progress of the previous attempt: %w", err)
		}
		addTotals(c.totals, c.progress.Totals)
		addTotals(c.excluded, c.progress.Excluded)
		c.rounded = c.progress.Rounded
		activity.GetLogger(c.ctx).Info("resuming conversion", "chunk", c.chunkURL, "rows", c.progress.Rows, "files", len(c.progress.Parts))
	}
	var (
		bs       = c.bs
		rec      = bs.NewRecord()
		iPayer   = bs.MustIndex(bs.Payer)
		iPeriod  = bs.MustIndex(bs.Period)
		iReport  = bs.MustIndex(bs.Report)
		iAccount = bs.MustIndex(bs.Account)
		iType    = bs.MustIndex(bs.ChargeType)
		iCost    = bs.MustIndex(bs.Cost)
		iOther   = bs.MustIndex(billing.ColOtherColumns)
		consumed int64
		seen     int64 // the reader's rounding count before this row
	)
	for {
		err := c.reader.Next(rec)
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, classify(err)
		}
		consumed++
		if consumed <= c.progress.Rows {
			seen = c.reader.Rounded()
			continue // converted by an earlier attempt, which counted its rounding
		}
		c.rounded += c.reader.Rounded() - seen
		seen = c.reader.Rounded()
		if p := rec.Values[iPayer]; p != c.in.PayerAccountID {
			switch {
			case p == "":
			case p == c.in.BillPayerAccountID:
				keepDelivered(rec, iOther, DeliveredBillPayerKey, p)
			default:
				return res, classify(&cur.FileError{File: c.chunkURL, Line: c.reader.Line(),
					Err: fmt.Errorf("%w: %s is %s, the delivery's payer is %s", errPayerMismatch, bs.Payer, p, c.in.PayerAccountID)})
			}
			rec.Values[iPayer] = c.in.PayerAccountID
		}
		rec.Values[iPeriod] = c.in.Period.String()
		rec.Values[iReport] = c.in.Report
		target := c.totals
		if !c.in.Accounts.Keeps(rec.Values[iAccount]) {
			target = c.excluded
		} else {
			if bs == billing.LineItems {
				// The cost measures come from the row alone, so a retry or
				// a re-ingestion computes the same values.
				if err := billing.SetMeasures(rec); err != nil {
					return res, classify(&cur.FileError{File: c.chunkURL, Line: c.reader.Line(), Err: err})
				}
			}
			if err := c.append(rec); err != nil {
				return res, classify(&cur.FileError{File: c.chunkURL, Line: c.reader.Line(), Err: err})
			}
		}
		if err := count(target, rec.Values[iAccount], rec.Values[iType], rec.Values[iCost]); err != nil {
			return res, classify(&cur.FileError{File: c.chunkURL, Line: c.reader.Line(),
				Err: &lakehouse.ValueError{Column: bs.Cost, Value: rec.Values[iCost], Err: err}})
		}
		if c.part != nil && c.part.Rows() >= c.partRows {
			if err := c.finishPart(consumed); err != nil {
				return res, err
			}
		}
		if consumed%heartbeatCheckRows == 0 && time.Since(c.lastBeat) >= heartbeatInterval {
			c.beat()
			if err := c.ctx.Err(); err != nil {
				return res, err
			}
		}
	}
	if c.part != nil {
		if err := c.finishPart(consumed); err != nil {
			return res, err
		}
	}
	// Rows after the last part (all left out, or none at all) count too.
	c.progress.Rows, c.progress.Rounded = consumed, c.rounded
	c.progress.Totals, c.progress.Excluded = listTotals(c.totals), listTotals(c.excluded)
	return ingest.ConvertChunkResult{
		DataFiles: c.progress.Parts,
		Rows:      c.progress.Written,
		Totals:    c.progress.Totals,
		Excluded:  c.progress.Excluded,
		Rounded:   c.progress.Rounded,
	}, nil
}

// append writes a record into the current part, starting one if needed.
func (c *chunkConverter) append(rec *billing.Record) error {
	if c.part == nil {
		name := fmt.Sprintf("%s-%05d-%03d", c.in.FilePrefix, c.in.ChunkIndex, len(c.progress.Parts))
		w, err := lakehouse.NewDataFileWriter(c.ctx, c.tbl, c.bs,
			lakehouse.ReportDataFilePath(lakehouse.DataFilePath(c.tbl, c.bs, c.in.PayerAccountID, c.in.Period, name), c.in.Report))
		if err != nil {
			return err
		}
		c.part = w
	}
	return c.part.Append(rec)
}

// finishPart closes the current part and records it as done.
func (c *chunkConverter) finishPart(consumed int64) error {
	if err := c.part.Close(); err != nil {
		return err
	}
	c.progress.Parts = append(c.progress.Parts, c.part.Path())
	c.progress.Written += c.part.Rows()
	c.part = nil
	c.progress.Rows, c.progress.Rounded = consumed, c.rounded
	c.progress.Totals, c.progress.Excluded = listTotals(c.totals), listTotals(c.excluded)
	c.beat()
	return nil
}

// beat reports the finished parts, the only progress a retry can build on.
func (c *chunkConverter) beat() {
	activity.RecordHeartbeat(c.ctx, c.progress)
	c.lastBeat = time.Now()
}

// abort removes the unfinished part. When the failure is permanent the
// finished parts go too: no retry will resume from them.
func (c *chunkConverter) abort(cause error) {
	files := []string{}
	if c.part != nil {
		c.part.Abort()
		files = append(files, c.part.Path())
	}
	var app *temporal.ApplicationError
	if errors.As(cause, &app) && app.NonRetryable() {
		files = append(files, c.progress.Parts...)
	}
	if err := c.lake.RemoveFiles(context.WithoutCancel(c.ctx), c.bs, files); err != nil {
		activity.GetLogger(c.ctx).Warn("could not remove data files of a failed conversion", "files", files, "error", err)
	}
}

func count(m map[[2]string]*billing.Total, account, typ, cost string) error {
	k := [2]string{account, typ}
	t, ok := m[k]
	if !ok {
		t = &billing.Total{Account: account, LineItemType: typ}
		m[k] = t
	}
	t.Rows++
	if cost != "" {
		amt, err := money.Parse(cost)
		if err != nil {
			return err
		}
		t.UnblendedCost = t.UnblendedCost.Add(amt)
	}
	return nil
}

func addTotals(m map[[2]string]*billing.Total, list []billing.Total) {
	for _, t := range list {
		c := t
		m[[2]string{t.Account, t.LineItemType}] = &c
	}
}

func listTotals(m map[[2]string]*billing.Total) []billing.Total {
	out := make([]billing.Total, 0, len(m))
	for _, t := range m {
		out = append(out, *t)
	}
	return billing.MergeTotals(out)
}

// DeliveredBillPayerKey is the other_columns key that keeps the bill payer
// AWS wrote in a row that costlake keys by another payer (a member account
// onboarded alone is billed to its management account).
const DeliveredBillPayerKey = "costlake_delivered_bill_payer_account_id"

// keepDelivered sets key in the map column col to value, replacing an
// entry of that key the source may itself have sent.
func keepDelivered(rec *billing.Record, col int, key, value string) {
	for i, e := range rec.Entries[col] {
		if e.Key == key {
			rec.Entries[col][i].Value = value
			return
		}
	}
	rec.Entries[col] = append(rec.Entries[col], billing.Entry{Key: key, Value: value})
}
