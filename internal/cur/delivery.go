package cur

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
)

// maxManifestBytes bounds what we read of a manifest; real ones are a few
// hundred KiB even with thousands of columns and chunks.
const maxManifestBytes = 64 << 20

// Format is the shape of a delivery's data files.
type Format string

// The delivery formats costlake reads.
const (
	FormatLegacyCSV     Format = "legacy-cur-csv"     // legacy CUR, csv.gz chunks with a period manifest
	FormatCUR2CSV       Format = "cur2-csv"           // Data Exports CUR 2.0, csv or csv.gz
	FormatCUR2Parquet   Format = "cur2-parquet"       // Data Exports CUR 2.0, Parquet
	FormatPartnerCSV    Format = "partner-cur-csv"    // a partner generator's RawCURReports layout, Athena snake_case csv.gz
	FormatLegacyParquet Format = "legacy-cur-parquet" // legacy CUR for Athena: Parquet under <report>/year=/month=
	FormatFOCUSCSV      Format = "focus-csv"          // Data Exports FOCUS 1.x, csv or csv.gz
	FormatFOCUSParquet  Format = "focus-parquet"      // Data Exports FOCUS 1.x, Parquet
)

// Delivery is one delivery of a billing period: its manifest and the data
// files it names, resolved inside the source store.
type Delivery struct {
	Source blob.Location
	Period string // YYYY-MM
	// Report names the report of a source that holds several for one
	// payer and period (the partner layout's report_id); empty when the
	// source has one report. Each report is restated on its own.
	Report       string
	Format       Format
	ManifestKey  string
	ManifestETag string
	// StableManifestKey is a copy of the manifest that never changes (the
	// legacy assembly folder's), or ManifestKey when there is none; later
	// reads use it, since AWS rewrites the period manifest on each delivery.
	StableManifestKey string
	// DeliveredAt is when AWS wrote the assembly (its manifest's
	// LastModified): deliveries are ordered by it, never by name.
	DeliveredAt time.Time
	AssemblyID  string // legacy assemblyId or Data Exports executionId
	Payer       string // from the manifest; empty when it does not say
	Compression string
	Headers     []string // the columns the manifest promises; nil when it lists none
	// Originals maps an Athena-layout Parquet column to the legacy header
	// its manifest names ("resource_tags_user_cost_center" →
	// "resourceTags/user:CostCenter"), so tags keep the key AWS wrote.
	Originals map[string]string
	ChunkKeys []string
	// ChunkPins are the versions of ChunkKeys when the delivery was located;
	// reading them pinned keeps one ingestion on one delivery.
	ChunkPins []blob.Pin
}

// Schema returns the table the format's rows go to: FOCUS exports keep
// their FOCUS columns in billing.focus_line_items; everything else is CUR
// in billing.line_items.
func (f Format) Schema() *billing.Schema {
	if f == FormatFOCUSCSV || f == FormatFOCUSParquet {
		return billing.FOCUS
	}
	return billing.LineItems
}

// Locate finds the delivery of a period under src, whatever its format:
// src is the report folder of a legacy CUR ("<prefix>/<report>", holding
// "<yyyymmdd-yyyymmdd>/<report>-Manifest.json") or the export folder of
// Data Exports ("<prefix>/<export>", holding
// "metadata/BILLING_PERIOD=YYYY-MM/…-Manifest.json"). For a source with
// several reports it returns the first, by report name; LocateReports
// returns them all.
func Locate(ctx context.Context, store blob.Store, src blob.Location, period string) (*Delivery, error) {
	ds, err := LocateReports(ctx, store, src, period)
	if err != nil {
		return nil, err
	}
	return ds[0], nil
}

// LocateReports finds every report's delivery of a period under src: one
// for a legacy CUR or a Data Exports export, one per report manifest for
// the partner layout, sorted by report. Each is the report's newest
// assembly; no report hides another. Two reports that name the same data
// file are an invalid delivery, never counted twice.
func LocateReports(ctx context.Context, store blob.Store, src blob.Location, period string) ([]*Delivery, error) {
	d, err := findLegacyDelivery(ctx, store, src, period)
	if !errors.Is(err, errNoDelivery) {
		return pinnedAll(ctx, store, []*Delivery{d}, err)
	}
	d, err = findExportDelivery(ctx, store, src, period)
	if err != nil {
		return nil, err
	}
	if d != nil {
		return pinnedAll(ctx, store, []*Delivery{d}, nil)
	}
	ds, err := findPartnerDeliveries(ctx, store, src, period)
	if err != nil || len(ds) > 0 {
		return pinnedAll(ctx, store, ds, err)
	}
	ds, err = findLegacyReports(ctx, store, src, period)
	if err != nil || len(ds) > 0 {
		return pinnedAll(ctx, store, ds, err)
	}
	folder, _ := PeriodFolder(period)
	report := path.Base(src.Prefix)
	return nil, &FileError{File: src.String(), Err: fmt.Errorf(
		"%w for period %s: looked for %s (legacy CUR), %s (Data Exports), %s (partner layout) and %s (a legacy CUR per report folder); is %s the report or export folder?",
		ErrManifestNotFound, period, locationURL(src, src.Key(folder, report+"-Manifest.json")),
		locationURL(src, src.Key("metadata", exportPeriodFolder(period))+"/"),
		locationURL(src, src.Key("manifests", folder))+"/",
		locationURL(src, src.Key("<report>", folder, "<report>-Manifest.json")), src)}
}

// pinnedAll pins every report's delivery (see pinned).
func pinnedAll(ctx context.Context, store blob.Store, ds []*Delivery, err error) ([]*Delivery, error) {
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if _, err := pinned(ctx, store, d, nil); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// pinned records the version of every chunk of a located delivery, and
// then checks the manifest is still the one read. In overwrite mode AWS
// rewrites the chunks at the same keys first and the manifest last, so a
// chunk newer than its manifest belongs to the next delivery, half
// written: that is DeliveryChanged (the ingestion starts again from the
// next manifest), never a period mixed of two deliveries. Chunks under a
// folder named by the assembly (create-new mode) are never rewritten, so
// their times are not compared. A chunk the manifest names that does not
// exist fails here, before anything is converted, unless the delivery is
// being rewritten.
func pinned(ctx context.Context, store blob.Store, d *Delivery, err error) (*Delivery, error) {
	if err != nil {
		return nil, err
	}
	manifest, err := store.Stat(ctx, d.ManifestKey)
	if err != nil && !errors.Is(err, blob.ErrNotFound) {
		return nil, err
	}
	rewritten := func(why string) error {
		return &FileError{File: d.URL(d.ManifestKey), Err: fmt.Errorf("%w: %s", ErrDeliveryChanged, why)}
	}
	if err != nil || (d.ManifestETag != "" && manifest.ETag != d.ManifestETag) {
		return nil, rewritten("the manifest was rewritten while the delivery was located")
	}
	d.ChunkPins = make([]blob.Pin, len(d.ChunkKeys))
	var missing, newer string
	var missingErr error // the store's own words: the URL and the identity used
	for i, key := range d.ChunkKeys {
		info, err := store.Stat(ctx, key)
		if errors.Is(err, blob.ErrNotFound) {
			if missing == "" {
				missing, missingErr = key, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if newer == "" && !inAssemblyFolder(key, d.AssemblyID) && info.LastModified.After(manifest.LastModified) {
			newer = key
		}
		d.ChunkPins[i] = info.Pin()
	}
	again, err := store.Stat(ctx, d.ManifestKey)
	if err != nil && !errors.Is(err, blob.ErrNotFound) {
		return nil, err
	}
	switch {
	case err != nil || again.Pin() != manifest.Pin() || !again.LastModified.Equal(manifest.LastModified):
		return nil, rewritten("the manifest was rewritten while the delivery was located")
	case newer != "":
		return nil, rewritten(fmt.Sprintf("%s was written after the manifest of assembly %s: the next delivery is being written over this one", d.URL(newer), d.AssemblyID))
	case missing != "":
		return nil, &FileError{File: d.URL(missing), Err: fmt.Errorf("%w (listed in %s; %v)", ErrChunkNotFound, d.URL(d.StableManifestKey), missingErr)}
	}
	return d, nil
}

// inAssemblyFolder tells whether key lies in a folder named by the
// delivery's assembly, as create-new deliveries do.
func inAssemblyFolder(key, assembly string) bool {
	return assembly != "" && slices.Contains(strings.Split(path.Dir(key), "/"), assembly)
}

// findLegacyDelivery reads the period manifest of a legacy CUR report,
// "<prefix>/<report>/<yyyymmdd-yyyymmdd>/<report>-Manifest.json". It
// returns errNoDelivery when there is none.
func findLegacyDelivery(ctx context.Context, store blob.Store, src blob.Location, period string) (*Delivery, error) {
	folder, err := PeriodFolder(period)
	if err != nil {
		return nil, err
	}
	report := path.Base(src.Prefix)
	if report == "." || report == "/" || report == "" {
		return nil, errNoDelivery // a bucket root names no report
	}
	key := src.Key(folder, report+"-Manifest.json")
	m, info, err := ReadManifest(ctx, store, src, key)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, errNoDelivery
	}
	if err != nil {
		return nil, err
	}
	url := locationURL(src, key)
	if got, _ := m.Period(); got != period {
		return nil, &FileError{File: url, Err: fmt.Errorf("%w: billingPeriod is %s, asked for %s", ErrInvalidManifest, got, period)}
	}
	d := &Delivery{
		Source: src, Period: period, Format: FormatLegacyCSV, ManifestKey: key, ManifestETag: info.ETag,
		StableManifestKey: key, DeliveredAt: info.LastModified,
		AssemblyID: m.AssemblyID, Payer: m.Account, Compression: m.Compression, Headers: m.Headers(),
	}
	if ak := src.Key(folder, m.AssemblyID, report+"-Manifest.json"); ak != key {
		if ai, err := store.Stat(ctx, ak); err == nil {
			d.StableManifestKey, d.DeliveredAt = ak, ai.LastModified
		}
	}
	switch strings.ToUpper(m.Compression) {
	case "GZIP", "ZIP", "":
	case "PARQUET":
		d.Format = FormatLegacyParquet
		d.Headers, d.Originals = athenaHeaders(m.Columns)
	default:
		return nil, &FileError{File: url, Err: fmt.Errorf("%w %q (want GZIP, ZIP or Parquet)", ErrUnsupportedCompression, m.Compression)}
	}
	for _, rk := range m.ReportKeys {
		key, err := rebaseLegacyKey(src, report, folder, rk)
		if err != nil {
			return nil, &FileError{File: url, Err: err}
		}
		d.ChunkKeys = append(d.ChunkKeys, key)
	}
	return d, nil
}

// findLegacyReports reads a folder of legacy CUR reports, one per linked
// account for instance: "<src>/<report>/<yyyymmdd-yyyymmdd>/<report>-Manifest.json"
// for each report folder directly under src. Each report is its own
// delivery, named by its folder.
func findLegacyReports(ctx context.Context, store blob.Store, src blob.Location, period string) ([]*Delivery, error) {
	if _, err := PeriodFolder(period); err != nil {
		return nil, err
	}
	root := src.Key() + "/"
	if root == "/" {
		root = ""
	}
	// One listing of the report folders and one look per report: the
	// cost follows the reports, not the months of data under them.
	reports, err := store.Folders(ctx, root)
	if err != nil {
		return nil, err
	}
	var out []*Delivery
	for _, report := range reports {
		sub := src
		sub.Prefix = src.Key(report)
		d, err := findLegacyDelivery(ctx, store, sub, period)
		if errors.Is(err, errNoDelivery) {
			continue // no manifest of this period: not a report of it
		}
		if err != nil {
			return nil, err
		}
		d.Report = report
		out = append(out, d)
	}
	return out, nil // Folders is sorted: by report
}

// rebaseLegacyKey resolves a manifest's reportKey (a bucket key) inside
// src, relative to the period folder ("<report>/<yyyymmdd-yyyymmdd>/…")
// or, for the Athena layout, the report's data folder
// ("<report>/<report>/year=YYYY/month=M/…"), so a delivery copied under
// another prefix or to a local folder still reads.
func rebaseLegacyKey(src blob.Location, report, folder, key string) (string, error) {
	if err := checkManifestKey(key); err != nil {
		return "", err
	}
	if _, rest, ok := strings.Cut("/"+key, "/"+folder+"/"); ok && rest != "" {
		return src.Key(folder, rest), nil
	}
	if i := strings.LastIndex("/"+key, "/"+report+"/year="); i >= 0 {
		return src.Key(key[i:]), nil
	}
	return "", fmt.Errorf("%w: reportKey %q is neither under the period folder %s nor under %s/year=", ErrInvalidManifest, key, folder, report)
}

// checkManifestKey refuses a key a manifest names that could resolve
// outside the delivery once joined under its source: an absolute key, or
// one with a "." or ".." segment (path.Join would climb out with it), a
// backslash or a NUL. AWS writes plain relative keys. The key is not
// quoted in the error beyond its first bytes: it comes from the file.
func checkManifestKey(key string) error {
	bad := key == "" || strings.HasPrefix(key, "/") || strings.ContainsAny(key, "\\\x00")
	for seg := range strings.SplitSeq(key, "/") {
		bad = bad || seg == ".." || seg == "."
	}
	if bad {
		return fmt.Errorf("%w: key %s is absolute or climbs out of its folder (\".\" or \"..\")", ErrInvalidManifest, quoteShort(key))
	}
	return nil
}

// UnderSource checks that key, a key of src's store, lies below src's
// prefix and is clean: a key from a manifest or a workflow's input never
// reads past the delivery it belongs to.
func UnderSource(src blob.Location, key string) error {
	if err := checkManifestKey(key); err != nil {
		return err
	}
	if src.Prefix != "" && !strings.HasPrefix(key, src.Prefix+"/") {
		return fmt.Errorf("%w: key %s is outside %s", ErrInvalidManifest, quoteShort(key), src)
	}
	return nil
}

// quoteShort quotes text from a file or an input for a message, cut to
// its first 96 bytes so a message never carries much of it.
func quoteShort(s string) string {
	const max = 96
	if len(s) > max {
		return strconv.Quote(s[:max]) + "…"
	}
	return strconv.Quote(s)
}

// athenaHeaders names manifest columns the way the Athena layout's Parquet
// files do: "lineItem/UnblendedCost" → "line_item_unblended_cost". It
// also returns each such column's legacy header when the manifest gives
// one, except for a column name two headers share ("user:env" and
// "user:Env" are both "resource_tags_user_env"), which has no single
// original and keeps its own text.
func athenaHeaders(cols []ManifestColumn) ([]string, map[string]string) {
	h := make([]string, len(cols))
	originals := map[string]string{}
	shared := map[string]bool{}
	for i, c := range cols {
		prefix := billing.SnakeCase(c.Category) + "_"
		if c.Category == "" || strings.HasPrefix(c.Name, prefix) {
			h[i] = c.Name // already the physical name
			continue
		}
		h[i] = prefix + billing.SnakeCase(c.Name)
		if _, dup := originals[h[i]]; dup {
			shared[h[i]] = true
		}
		originals[h[i]] = c.Header()
	}
	for name := range shared {
		delete(originals, name)
	}
	return h, originals
}

// Reopen reads a delivery's stable manifest again, for an activity that
// gets only keys, and checks it still describes assemblyID.
func Reopen(ctx context.Context, store blob.Store, src blob.Location, format Format, manifestKey, assemblyID string) (*Delivery, error) {
	url := locationURL(src, manifestKey)
	d := &Delivery{Source: src, Format: format, ManifestKey: manifestKey, StableManifestKey: manifestKey}
	switch format {
	case FormatLegacyCSV, FormatLegacyParquet:
		m, _, err := ReadManifest(ctx, store, src, manifestKey)
		if err != nil {
			return nil, notFoundAsManifest(err, url)
		}
		d.AssemblyID, d.Compression, d.Headers = m.AssemblyID, m.Compression, m.Headers()
		if format == FormatLegacyParquet {
			d.Headers, d.Originals = athenaHeaders(m.Columns)
		}
	case FormatCUR2CSV, FormatCUR2Parquet, FormatFOCUSCSV, FormatFOCUSParquet:
		m, err := readExportManifest(ctx, store, manifestKey, blob.Pin{})
		if err != nil {
			return nil, notFoundAsManifest(err, url)
		}
		d.AssemblyID, d.Headers = m.ExecutionID, m.Headers()
		if _, d.Compression, err = exportFileFormat(m.DataFiles[0]); err != nil {
			return nil, &FileError{File: url, Err: err}
		}
	case FormatPartnerCSV:
		m, err := readPartnerManifest(ctx, store, manifestKey, blob.Pin{})
		if err != nil {
			return nil, notFoundAsManifest(err, url)
		}
		d.AssemblyID, d.Compression, d.Headers = m.AssemblyID, "GZIP", m.headers()
	default:
		return nil, &FileError{File: url, Err: fmt.Errorf("%w: unknown format %q", ErrInvalidManifest, format)}
	}
	if d.AssemblyID != assemblyID {
		return nil, &FileError{File: url, Err: fmt.Errorf("%w: the manifest describes %s now, not %s", ErrDeliveryChanged, d.AssemblyID, assemblyID)}
	}
	return d, nil
}

func notFoundAsManifest(err error, url string) error {
	var fe *FileError
	switch {
	case errors.As(err, &fe):
		return err
	case errors.Is(err, blob.ErrNotFound):
		return &FileError{File: url, Err: ErrManifestNotFound}
	case errors.Is(err, ErrInvalidManifest):
		return &FileError{File: url, Err: err}
	}
	return err
}

// URL returns the URL of a key of the delivery's store.
func (d *Delivery) URL(key string) string { return locationURL(d.Source, key) }

func locationURL(src blob.Location, key string) string { return src.URLOf(key) }

// ReadManifest reads and parses the legacy manifest at key and describes
// the object. A missing key wraps blob.ErrNotFound; a bad manifest is a
// *FileError wrapping ErrInvalidManifest.
func ReadManifest(ctx context.Context, store blob.Store, src blob.Location, key string) (*Manifest, blob.Info, error) {
	url := locationURL(src, key)
	info, err := store.Stat(ctx, key)
	if err != nil {
		return nil, info, err
	}
	data, err := readManifestBytes(ctx, store, key, info.Pin())
	if errors.Is(err, blob.ErrNotFound) {
		return nil, info, err
	}
	if err != nil {
		return nil, info, fmt.Errorf("read %s: %w", url, err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, info, &FileError{File: url, Err: err}
	}
	return m, info, nil
}

// PeriodAssembly names what a payer's period holds, given each report's
// assembly: the assembly itself for a single-report source (report ""),
// otherwise "<report>=<assembly>" pairs sorted by report and joined by
// commas. Equal names mean equal content.
func PeriodAssembly(assemblies map[string]string) string {
	if a, ok := assemblies[""]; ok && len(assemblies) == 1 {
		return a
	}
	reports := make([]string, 0, len(assemblies))
	for r := range assemblies {
		reports = append(reports, r)
	}
	slices.Sort(reports)
	for i, r := range reports {
		reports[i] = r + "=" + assemblies[r]
	}
	return strings.Join(reports, ",")
}
