// Package export writes rebilled line items as CSV files in the layout of
// AWS's legacy "Detailed Billing Report with Resources and Tags" (DBR-RT):
// the same columns, the same file name, one file per payer and month, at
// cost or at resale price, into a customer's or the reseller's own bucket
// (any blob.Store: S3, GCS or a local folder).
//
// # Columns
//
// The header is AWS's DBR-RT column set, in AWS's order (Header):
//
//	InvoiceID, PayerAccountId, LinkedAccountId, RecordType, RecordId,
//	ProductName, RateId, SubscriptionId, PricingPlanId, UsageType,
//	Operation, AvailabilityZone, ReservedInstance, ItemDescription,
//	UsageStartDate, UsageEndDate, UsageQuantity, BlendedRate, BlendedCost,
//	UnBlendedRate, UnBlendedCost, ResourceId,
//
// followed by one column per declared tag, named as AWS named them
// ("user:Name", "user:CostCenter", "aws:createdBy"). The plain DBR (without
// resources and tags) is the same list up to UnBlendedCost. As AWS did,
// every field is double-quoted, dates are "YYYY-MM-DD HH:MM:SS" in UTC,
// and lines end with "\n". Amounts are printed exactly from money.Amount in
// plain notation (never an exponent, never rounded). AWS ended each DBR
// with InvoiceTotal / Rounding rows; this writer does not: every data row
// is a line item, and the totals live in the manifest instead.
//
// # Modes
//
// AtCost prints the line item's own rates and costs. AtResale replaces
// BlendedCost and UnBlendedCost with Row.Resale and both rate columns with
// Row.ResaleRate (blank when nil), so a resale file never shows the
// reseller's cost.
//
// # Files and keys
//
// Keys are deterministic, so re-running an export overwrites the same
// objects. Under the destination prefix an export of account A and month
// M (YYYY-MM) writes:
//
//	A-aws-billing-detailed-line-items-with-resources-and-tags-M.csv[.gz]               one file (AWS's own name)
//	A-aws-billing-detailed-line-items-with-resources-and-tags-M-part-00001.csv[.gz]    parts, when split (00002, …)
//	A-aws-billing-detailed-line-items-with-resources-and-tags-M-manifest.json          the manifest, written last
//
// An export is split only when it has more rows than Spec.MaxRowsPerFile;
// then every file, the first included, carries a five-digit part number,
// so a month is either exactly AWS's single file or numbered parts.
// AWS delivered DBR files zipped (.csv.zip); gzip is used here instead.
//
// Exports of several accounts and months may share one prefix, as AWS's
// files shared the bucket root; an at-cost and an at-resale export of the
// same account and month must not (their names are the same), so give
// them different prefixes (e.g. "at-cost/" and "at-resale/").
//
// # Consistency
//
// A run first deletes the export's previous manifest, then writes the
// files, deletes files of an earlier run that the new run did not write
// (an earlier, larger run's extra parts, or the other compression), and
// writes the manifest last. A reader that finds a manifest therefore finds
// every file it lists, complete; a run that fails leaves no manifest.
// The destination needs s3:PutObject, s3:DeleteObject and s3:ListBucket
// (GCS: storage.objects.create, .delete and .list); Verify checks them.
package export

import (
	"cmp"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/costlake/costlake/internal/money"

	"github.com/costlake/costlake/internal/period"
)

// Mode says which amounts an export prints.
type Mode string

const (
	// AtCost prints the rates and costs of the line items as AWS billed them.
	AtCost Mode = "at_cost"
	// AtResale prints the resale amount in the cost columns and the resale
	// rate (or nothing) in the rate columns.
	AtResale Mode = "at_resale"
)

// Valid reports whether m is a known mode.
func (m Mode) Valid() bool { return m == AtCost || m == AtResale }

// Header lists the fixed columns of the Detailed Billing Report with
// Resources and Tags, in AWS's order. Tag columns follow them. It is
// derived from the columns table, which also prints them.
var Header = headerOf(columns)

// column is one fixed column of the report: its name and how a row's
// cell is printed. Text cells come from AWS and from customers (tags,
// descriptions, names) and are neutralised; dates and amounts are ours
// and printed as they are, so a negative amount stays a number.
type column struct {
	name string
	text bool
	cell func(r *Row, a amounts) string
}

// amounts are the four amount cells of a row as the export's mode prints
// them: the cost, or the resale (and its rate, if any).
type amounts struct{ blendedRate, blendedCost, unblendedRate, unblendedCost string }

// columns are the report's fixed columns, in AWS's order.
var columns = []column{
	{"InvoiceID", true, func(r *Row, _ amounts) string { return r.InvoiceID }},
	{"PayerAccountId", true, func(r *Row, _ amounts) string { return r.PayerAccountID }},
	{"LinkedAccountId", true, func(r *Row, _ amounts) string { return r.LinkedAccountID }},
	{"RecordType", true, func(r *Row, _ amounts) string { return cmp.Or(r.RecordType, "LineItem") }},
	{"RecordId", true, func(r *Row, _ amounts) string { return r.RecordID }},
	{"ProductName", true, func(r *Row, _ amounts) string { return r.ProductName }},
	{"RateId", true, func(r *Row, _ amounts) string { return r.RateID }},
	{"SubscriptionId", true, func(r *Row, _ amounts) string { return r.SubscriptionID }},
	{"PricingPlanId", true, func(r *Row, _ amounts) string { return r.PricingPlanID }},
	{"UsageType", true, func(r *Row, _ amounts) string { return r.UsageType }},
	{"Operation", true, func(r *Row, _ amounts) string { return r.Operation }},
	{"AvailabilityZone", true, func(r *Row, _ amounts) string { return r.AvailabilityZone }},
	{"ReservedInstance", true, func(r *Row, _ amounts) string { return r.ReservedInstance }},
	{"ItemDescription", true, func(r *Row, _ amounts) string { return r.ItemDescription }},
	{"UsageStartDate", false, func(r *Row, _ amounts) string { return formatDate(r.UsageStartDate) }},
	{"UsageEndDate", false, func(r *Row, _ amounts) string { return formatDate(r.UsageEndDate) }},
	{"UsageQuantity", false, func(r *Row, _ amounts) string { return r.UsageQuantity.String() }},
	{"BlendedRate", false, func(_ *Row, a amounts) string { return a.blendedRate }},
	{"BlendedCost", false, func(_ *Row, a amounts) string { return a.blendedCost }},
	{"UnBlendedRate", false, func(_ *Row, a amounts) string { return a.unblendedRate }},
	{"UnBlendedCost", false, func(_ *Row, a amounts) string { return a.unblendedCost }},
	{"ResourceId", true, func(r *Row, _ amounts) string { return r.ResourceID }},
}

func headerOf(cols []column) []string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	return names
}

// DateLayout is how the report prints UsageStartDate and UsageEndDate (UTC).
const DateLayout = "2006-01-02 15:04:05"

// Row is one line of the report. Amounts are exact; zero times print as
// empty fields.
type Row struct {
	InvoiceID        string // "Estimated" until AWS finalizes the month
	PayerAccountID   string
	LinkedAccountID  string
	RecordType       string // "LineItem" when empty
	RecordID         string
	ProductName      string
	RateID           string
	SubscriptionID   string
	PricingPlanID    string
	UsageType        string
	Operation        string
	AvailabilityZone string
	ReservedInstance string // "Y" or "N"
	ItemDescription  string
	UsageStartDate   time.Time
	UsageEndDate     time.Time
	UsageQuantity    money.Amount
	BlendedRate      money.Amount
	BlendedCost      money.Amount
	UnBlendedRate    money.Amount
	UnBlendedCost    money.Amount
	ResourceID       string
	// Tags by report column name ("user:Name"); each key must be one of
	// Spec.TagKeys.
	Tags map[string]string

	// Resale is the line's resale amount, printed in BlendedCost and
	// UnBlendedCost by AtResale exports.
	Resale money.Amount
	// ResaleRate, when set, is printed in both rate columns by AtResale
	// exports; when nil they are left blank.
	ResaleRate *money.Amount
}

// Spec describes one export: whose month, which amounts, where and how.
type Spec struct {
	// AccountID is the account the file is named after: the payer account
	// for a per-payer export (AWS named DBR files after the payer).
	AccountID string
	// Period is the billing month, YYYY-MM.
	Period string
	Mode   Mode
	// Prefix is the destination key prefix inside the store, without
	// leading or trailing slash; "" is the bucket root.
	Prefix string
	// Gzip compresses every file (.csv.gz).
	Gzip bool
	// MaxRowsPerFile splits the export into parts of at most this many
	// rows; 0 means DefaultMaxRowsPerFile.
	MaxRowsPerFile int
	// TagKeys are the tag columns, in order, after ResourceId
	// ("user:Name", "aws:createdBy"). The header must be known before the
	// first row, so tags cannot be discovered while streaming.
	TagKeys []string
	// DropUndeclaredTags silently drops row tags that are not in TagKeys;
	// otherwise such a row fails with ErrUndeclaredTag.
	DropUndeclaredTags bool
	// TempDir holds the one part being written before it is uploaded; ""
	// means os.TempDir().
	TempDir string
}

// DefaultMaxRowsPerFile keeps each part below spreadsheet row limits.
const DefaultMaxRowsPerFile = 1_000_000

// Errors of bad specs and rows.
var (
	ErrBadSpec       = errors.New("invalid export spec")
	ErrUndeclaredTag = errors.New("row has a tag that is not a declared tag column")
	ErrClosed        = errors.New("export writer is closed")
)

var (
	accountPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
)

// Validate checks the spec.
func (s Spec) Validate() error {
	if !accountPattern.MatchString(s.AccountID) {
		return fmt.Errorf("%w: account ID %q: want 1 to 64 letters, digits, '.', '_' or '-'", ErrBadSpec, s.AccountID)
	}
	if !period.Valid(s.Period) {
		return fmt.Errorf("%w: period %q: want YYYY-MM", ErrBadSpec, s.Period)
	}
	if !s.Mode.Valid() {
		return fmt.Errorf("%w: mode %q: want %q or %q", ErrBadSpec, s.Mode, AtCost, AtResale)
	}
	if s.Prefix != strings.Trim(s.Prefix, "/") {
		return fmt.Errorf("%w: prefix %q: no leading or trailing slash", ErrBadSpec, s.Prefix)
	}
	if s.MaxRowsPerFile < 0 {
		return fmt.Errorf("%w: MaxRowsPerFile %d is negative", ErrBadSpec, s.MaxRowsPerFile)
	}
	seen := make(map[string]bool, len(s.TagKeys))
	for _, k := range s.TagKeys {
		switch {
		case k == "":
			return fmt.Errorf("%w: empty tag key", ErrBadSpec)
		case seen[k]:
			return fmt.Errorf("%w: tag key %q declared twice", ErrBadSpec, k)
		case slices.Contains(Header, k):
			return fmt.Errorf("%w: tag key %q is a fixed column", ErrBadSpec, k)
		}
		seen[k] = true
	}
	return nil
}

// Columns returns the full header: Header, then the tag columns.
func (s Spec) Columns() []string {
	return append(slices.Clip(Header), s.TagKeys...)
}

// Stem is the part of every file name of this export before its suffix:
// "<account>-aws-billing-detailed-line-items-with-resources-and-tags-<YYYY-MM>".
func (s Spec) Stem() string {
	return s.AccountID + "-aws-billing-detailed-line-items-with-resources-and-tags-" + s.Period
}

func (s Spec) ext() string {
	if s.Gzip {
		return ".csv.gz"
	}
	return ".csv"
}

// FileKey returns the key of part n (1-based) of the export; split tells
// whether the export has more than one part. An unsplit export has AWS's
// own file name.
func (s Spec) FileKey(n int, split bool) string {
	name := s.Stem() + s.ext()
	if split {
		name = fmt.Sprintf("%s-part-%05d%s", s.Stem(), n, s.ext())
	}
	return s.key(name)
}

// ManifestKey returns the key of the export's manifest.
func (s Spec) ManifestKey() string { return s.key(s.Stem() + "-manifest.json") }

func (s Spec) key(name string) string { return strings.TrimPrefix(path.Join(s.Prefix, name), "/") }

// ownedSuffix matches what may follow the stem in a key this package
// writes: a single file, a numbered part (either compression) or the manifest.
var ownedSuffix = regexp.MustCompile(`^(-part-[0-9]{5,})?\.csv(\.gz)?$|^-manifest\.json$`)

// owns reports whether key is one of the files an export of this account
// and month writes (in any compression or split), so stale cleanup never
// touches anything else under the prefix.
func (s Spec) owns(key string) bool {
	rest, ok := strings.CutPrefix(key, s.key(s.Stem()))
	return ok && ownedSuffix.MatchString(rest)
}

func (s Spec) maxRows() int {
	if s.MaxRowsPerFile == 0 {
		return DefaultMaxRowsPerFile
	}
	return s.MaxRowsPerFile
}

// appendRow appends the CSV line of r to buf: every field quoted, as AWS did.
func (s Spec) appendRow(buf []byte, r *Row) []byte {
	var a amounts
	switch s.Mode {
	case AtCost:
		a.blendedRate, a.blendedCost = r.BlendedRate.String(), r.BlendedCost.String()
		a.unblendedRate, a.unblendedCost = r.UnBlendedRate.String(), r.UnBlendedCost.String()
	case AtResale:
		if r.ResaleRate != nil {
			a.blendedRate = r.ResaleRate.String()
			a.unblendedRate = a.blendedRate
		}
		a.blendedCost = r.Resale.String()
		a.unblendedCost = a.blendedCost
	}
	for i, c := range columns {
		if i > 0 {
			buf = append(buf, ',')
		}
		if c.text {
			buf = appendText(buf, c.cell(r, a))
		} else {
			buf = appendQuoted(buf, c.cell(r, a))
		}
	}
	for _, k := range s.TagKeys {
		buf = append(buf, ',')
		buf = appendText(buf, r.Tags[k])
	}
	return append(buf, '\n')
}

// formulaTriggers are the first characters that make a spreadsheet read
// a cell as a formula (OWASP's CSV injection list).
const formulaTriggers = "=+-@\t\r"

// appendText appends a text cell, quoted, with a single quote in front
// when it starts like a formula: a tag value "=HYPERLINK(…)" opens as the
// text it is, never as a formula, in Excel, Sheets and LibreOffice.
func appendText(buf []byte, s string) []byte {
	if s != "" && strings.IndexByte(formulaTriggers, s[0]) >= 0 {
		s = "'" + s
	}
	return appendQuoted(buf, s)
}

func appendHeader(buf []byte, cols []string) []byte {
	for i, c := range cols {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendText(buf, c) // tag columns are named by customers' keys
	}
	return append(buf, '\n')
}

func appendQuoted(buf []byte, s string) []byte {
	buf = append(buf, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			buf = append(buf, '"')
		}
		buf = append(buf, s[i])
	}
	return append(buf, '"')
}

func formatDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(DateLayout)
}
