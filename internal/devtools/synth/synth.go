// Package synth generates realistic synthetic legacy AWS Cost and Usage
// Report deliveries for demos and benchmarks, laid out in a blob.Store
// exactly as AWS lays out a create-new-version delivery:
//
//	<prefix>/<report>/<yyyymmdd-yyyymmdd>/<report>-Manifest.json
//	<prefix>/<report>/<yyyymmdd-yyyymmdd>/<assemblyId>/<report>-Manifest.json
//	<prefix>/<report>/<yyyymmdd-yyyymmdd>/<assemblyId>/<report>-<N>.csv.gz
//
// The chunks carry more than 140 real legacy CUR columns (identity/*, bill/*,
// lineItem/*, product/*, pricing/*, reservation/*, savingsPlan/*, tags and
// a cost category) for several linked accounts and every common line item
// type. Output is deterministic for a seed, streamed in constant memory,
// and every amount is an exact decimal, so the totals in Result reconcile
// to the last digit with a sum over the CSV.
package synth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/cur"
)

// ErrInvalidOptions reports Options that Generate cannot use.
var ErrInvalidOptions = errors.New("invalid synth options")

// Defaults of Options fields left zero.
const (
	DefaultPrefix         = "cur"
	DefaultReport         = "costlake-demo"
	DefaultBucket         = "costlake-demo-bucket"
	DefaultRows           = 10000
	DefaultFiles          = 1
	DefaultPayer          = "111122223333"
	DefaultLinkedAccounts = 4
	// MaxLinkedAccounts bounds Options.LinkedAccounts.
	MaxLinkedAccounts = 1000
)

// Options describe one synthetic delivery. Zero fields take the defaults
// above; only Period is required.
type Options struct {
	Prefix string // key prefix of the report; default "cur"; surrounding slashes are ignored
	Report string // report name; default "costlake-demo"
	Bucket string // written into the manifest only; default "costlake-demo-bucket"
	Period string // billing period "YYYY-MM"; required
	Rows   int    // data rows across all chunks (header lines not counted); default 10000
	Files  int    // number of csv.gz chunks, at most Rows; default 1; rows are split evenly
	Seed   int64  // same Options, same seed: byte-identical objects
	Payer  string // payer account, 12 digits; default "111122223333"
	// LinkedAccounts is the number of usage accounts, the payer included;
	// default 4, at most MaxLinkedAccounts.
	LinkedAccounts int
	// Member, when set, is the first usage account instead of Payer: a
	// member account's own report, which AWS bills to its management
	// account (Payer).
	Member string
	// AssemblyID names the assembly folder; default a delivery timestamp
	// such as "20261103T120125Z" derived from Seed and Period.
	AssemblyID string
}

// Result describes what Generate wrote.
type Result struct {
	ManifestKey         string   // the period manifest, <prefix>/<report>/<yyyymmdd-yyyymmdd>/<report>-Manifest.json
	AssemblyManifestKey string   // the same manifest inside the assembly folder
	AssemblyID          string   // the assembly folder name
	ReportKeys          []string // the chunks, in manifest order (N = 1, 2, …)
	Rows                int      // data rows written, equal to Options.Rows
	// Accounts holds, per lineItem/UsageAccountId that has rows, the row
	// count and the exact sum of lineItem/UnblendedCost as written.
	Accounts map[string]AccountTotal
}

// AccountTotal is one usage account's share of a delivery.
type AccountTotal struct {
	Rows int
	// UnblendedCost is the exact sum of the account's lineItem/UnblendedCost
	// values: a plain decimal string without exponent or trailing
	// fractional zeros, such as "12345.6789" or "-3.5" or "0".
	UnblendedCost string
}

// normalize fills defaults and validates. Errors wrap ErrInvalidOptions.
func (o Options) normalize() (Options, error) {
	bad := func(format string, args ...any) (Options, error) {
		return Options{}, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...)
	}
	o.Prefix = strings.Trim(o.Prefix, "/")
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	for _, seg := range strings.Split(o.Prefix, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return bad("prefix %q has an empty, \".\" or \"..\" segment", o.Prefix)
		}
	}
	if o.Report == "" {
		o.Report = DefaultReport
	}
	if !validReportName(o.Report) {
		return bad("report name %q: want 1-256 of A-Z a-z 0-9 ! - _ . * ' ( ), not \".\" or \"..\"", o.Report)
	}
	if o.Bucket == "" {
		o.Bucket = DefaultBucket
	}
	if o.Period == "" {
		return bad("period is required (YYYY-MM)")
	}
	if _, err := cur.ParsePeriod(o.Period); err != nil || len(o.Period) != len("2006-01") {
		return bad("period %q: want YYYY-MM", o.Period)
	}
	switch {
	case o.Rows == 0:
		o.Rows = DefaultRows
	case o.Rows < 0:
		return bad("rows %d: must be positive", o.Rows)
	}
	switch {
	case o.Files == 0:
		o.Files = DefaultFiles
	case o.Files < 0:
		return bad("files %d: must be positive", o.Files)
	}
	if o.Files > o.Rows {
		return bad("files %d: more chunks than rows (%d)", o.Files, o.Rows)
	}
	if o.Payer == "" {
		o.Payer = DefaultPayer
	}
	if len(o.Payer) != 12 || strings.Trim(o.Payer, "0123456789") != "" {
		return bad("payer %q: want a 12-digit account ID", o.Payer)
	}
	if o.Member != "" && (len(o.Member) != 12 || strings.Trim(o.Member, "0123456789") != "" || o.Member == o.Payer) {
		return bad("member %q: want a 12-digit account ID other than the payer", o.Member)
	}
	switch {
	case o.LinkedAccounts == 0:
		o.LinkedAccounts = DefaultLinkedAccounts
	case o.LinkedAccounts < 0 || o.LinkedAccounts > MaxLinkedAccounts:
		return bad("linked accounts %d: want 1 to %d", o.LinkedAccounts, MaxLinkedAccounts)
	}
	if o.AssemblyID == "" {
		o.AssemblyID = defaultAssemblyID(o.Seed, o.Period)
	}
	if o.AssemblyID == "." || o.AssemblyID == ".." || strings.ContainsAny(o.AssemblyID, "/\\") {
		return bad("assembly ID %q: must be a single folder name", o.AssemblyID)
	}
	return o, nil
}

func validReportName(s string) bool {
	if s == "" || len(s) > 256 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!-_.*'()", r)
		if !ok {
			return false
		}
	}
	return true
}

// Generate writes one create-new-version legacy CUR delivery of o.Rows
// rows for o.Period into store: the o.Files gzip CSV chunks first, then the
// assembly manifest, then the period manifest, so a reader that starts
// from the period manifest never sees a partial delivery. Both manifests
// are identical and parse with cur.ParseManifest; their columns equal
// Columns() and match every chunk's header.
//
// Chunks are generated in parallel (up to GOMAXPROCS), each streamed
// through gzip into store.Put without being held in memory. The objects
// depend only on o: the same Options give byte-identical output.
//
// Invalid options return an error wrapping ErrInvalidOptions before
// anything is written. On a store error or a cancelled ctx, Generate
// returns the error; chunks already written may remain, manifests are not
// written.
func Generate(ctx context.Context, store blob.Store, o Options) (*Result, error) {
	o, err := o.normalize()
	if err != nil {
		return nil, err
	}
	folder, err := cur.PeriodFolder(o.Period)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	billingPeriod, err := cur.ManifestPeriodFor(o.Period)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	periodDir := o.Prefix + "/" + o.Report + "/" + folder
	assemblyDir := periodDir + "/" + o.AssemblyID
	res := &Result{
		ManifestKey:         periodDir + "/" + o.Report + "-Manifest.json",
		AssemblyManifestKey: assemblyDir + "/" + o.Report + "-Manifest.json",
		AssemblyID:          o.AssemblyID,
		ReportKeys:          make([]string, o.Files),
		Rows:                o.Rows,
		Accounts:            map[string]AccountTotal{},
	}
	for i := range res.ReportKeys {
		res.ReportKeys[i] = assemblyDir + "/" + o.Report + "-" + strconv.Itoa(i+1) + ".csv.gz"
	}

	g := newGenerator(o)
	totals, err := g.writeChunks(ctx, store, res.ReportKeys)
	if err != nil {
		return nil, err
	}
	for i, a := range g.accounts {
		if totals.rows[i] > 0 {
			res.Accounts[a.id] = AccountTotal{Rows: totals.rows[i], UnblendedCost: formatTotal(&totals.sums[i])}
		}
	}

	reportID := sha256.Sum256([]byte(o.Bucket + "/" + o.Prefix + "/" + o.Report + "/" + o.Payer))
	m := cur.Manifest{
		AssemblyID:             o.AssemblyID,
		Account:                o.Payer,
		Columns:                Columns(),
		Charset:                "UTF-8",
		Compression:            "GZIP",
		ContentType:            "text/csv",
		ReportID:               hex.EncodeToString(reportID[:]),
		ReportName:             o.Report,
		BillingPeriod:          billingPeriod,
		Bucket:                 o.Bucket,
		ReportKeys:             res.ReportKeys,
		AdditionalArtifactKeys: []cur.ArtifactKey{},
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	for _, key := range []string{res.AssemblyManifestKey, res.ManifestKey} {
		if err := store.Put(ctx, key, strings.NewReader(string(data))); err != nil {
			return nil, fmt.Errorf("synth: put %s: %w", key, err)
		}
	}
	return res, nil
}

type chunkTotals struct {
	rows []int
	sums []big.Int
}

func (t *chunkTotals) add(rows []int, sums []big.Int) {
	for i := range rows {
		t.rows[i] += rows[i]
		t.sums[i].Add(&t.sums[i], &sums[i])
	}
}

// writeChunks writes every chunk, GOMAXPROCS at a time, and adds up their totals.
func (g *generator) writeChunks(ctx context.Context, store blob.Store, keys []string) (*chunkTotals, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	total := &chunkTotals{rows: make([]int, len(g.accounts)), sums: make([]big.Int, len(g.accounts))}
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	jobs := make(chan int)
	for range min(len(keys), runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := range jobs {
				rows, sums, err := g.writeChunk(ctx, store, keys[i], i, g.chunkRows(i))
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
					cancel(err)
				}
				if err == nil {
					total.add(rows, sums)
				}
				mu.Unlock()
			}
		})
	}
feed:
	for i := range keys {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	return total, nil
}

// chunkRows splits Options.Rows evenly; the first chunks take the remainder.
func (g *generator) chunkRows(i int) int {
	n := g.o.Rows / g.o.Files
	if i < g.o.Rows%g.o.Files {
		n++
	}
	return n
}

// errStoreStopped reports a Put that returned before reading the whole chunk.
var errStoreStopped = errors.New("store stopped reading the chunk before its end")

// writeChunk streams one chunk through an io.Pipe into store.Put.
func (g *generator) writeChunk(ctx context.Context, store blob.Store, key string, index, rows int) ([]int, []big.Int, error) {
	pr, pw := io.Pipe()
	putErr := make(chan error, 1)
	go func() {
		err := store.Put(ctx, key, pr)
		pr.CloseWithError(errStoreStopped) // unblocks the writer if Put returned early
		putErr <- err
	}()
	c := newChunk(g, index)
	werr := c.write(ctx, pw, rows)
	pw.CloseWithError(werr) // nil: the reader sees EOF
	perr := <-putErr
	switch {
	case perr != nil:
		return nil, nil, fmt.Errorf("synth: put %s: %w", key, perr)
	case werr != nil:
		return nil, nil, fmt.Errorf("synth: write %s: %w", key, werr)
	}
	return c.rows, c.sums, nil
}
