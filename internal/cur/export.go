package cur

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/costlake/costlake/internal/blob"
)

// ExportManifest is the manifest AWS Data Exports (CUR 2.0, FOCUS) writes
// for a billing period under metadata/BILLING_PERIOD=YYYY-MM/. AWS does
// not publish a schema for it; the fields read here are the ones seen in
// deliveries, and anything else is ignored.
type ExportManifest struct {
	ExecutionID string          `json:"executionId"`
	ExportARN   string          `json:"exportArn"`
	ExportName  string          `json:"exportName"`
	DataFiles   []string        `json:"dataFiles"`
	Columns     []ExportColumn  `json:"columns"`
	Account     string          `json:"account"`
	Bucket      string          `json:"bucket"`
	Raw         json.RawMessage `json:"-"`
}

// ExportColumn is one column of an export manifest.
type ExportColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// ParseExportManifest decodes and checks a Data Exports manifest.
func ParseExportManifest(data []byte) (*ExportManifest, error) {
	var m ExportManifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidManifest, err)
	}
	switch {
	case m.ExecutionID == "":
		return nil, fmt.Errorf("%w: executionId is empty", ErrInvalidManifest)
	case len(m.DataFiles) == 0:
		return nil, fmt.Errorf("%w: dataFiles is empty", ErrInvalidManifest)
	}
	return &m, nil
}

// Headers returns the column names the manifest promises, or nil when it
// lists none.
func (m *ExportManifest) Headers() []string {
	if len(m.Columns) == 0 {
		return nil
	}
	h := make([]string, len(m.Columns))
	for i, c := range m.Columns {
		h[i] = c.Name
	}
	return h
}

// exportPeriodFolder is the Data Exports partition folder of a period.
func exportPeriodFolder(period string) string { return "BILLING_PERIOD=" + period }

// findExportDelivery finds the newest manifest of a Data Exports period:
// "<export>/metadata/BILLING_PERIOD=YYYY-MM/[<execution folder>/]<export>-Manifest.json".
// It returns nil, nil when the export has no manifest for the period.
func findExportDelivery(ctx context.Context, store blob.Store, src blob.Location, period string) (*Delivery, error) {
	folder := exportPeriodFolder(period)
	newest, err := newestManifest(ctx, store, src.Key("metadata", folder)+"/")
	if err != nil || newest == nil {
		return nil, err
	}
	url := locationURL(src, newest.Key)
	m, err := readExportManifest(ctx, store, newest.Key, newest.Pin())
	if err != nil {
		return nil, &FileError{File: url, Err: err}
	}
	d := &Delivery{
		Source: src, Period: period, ManifestKey: newest.Key, ManifestETag: newest.ETag,
		StableManifestKey: newest.Key, DeliveredAt: newest.LastModified,
		AssemblyID: m.ExecutionID, Payer: m.Account, Headers: m.Headers(),
	}
	for _, f := range m.DataFiles {
		// dataFiles are s3:// URIs; resolve them relative to the period's
		// data folder so copies under another prefix still read.
		_, rest, ok := strings.Cut(f, "/data/"+folder+"/")
		if !ok || rest == "" {
			return nil, &FileError{File: url, Err: fmt.Errorf("%w: data file %s is not under data/%s/", ErrInvalidManifest, quoteShort(f), folder)}
		}
		if err := checkManifestKey(rest); err != nil {
			return nil, &FileError{File: url, Err: err}
		}
		d.ChunkKeys = append(d.ChunkKeys, src.Key("data", folder, rest))
	}
	if d.Format, d.Compression, err = exportFileFormat(d.ChunkKeys[0]); err != nil {
		return nil, &FileError{File: url, Err: err}
	}
	// FOCUS and CUR 2.0 share the layout; the columns tell them apart.
	header := d.Headers
	if header == nil {
		if header, err = firstHeader(ctx, store, d); err != nil {
			return nil, err
		}
	}
	if slices.Contains(header, "BilledCost") {
		d.Format = map[Format]Format{FormatCUR2CSV: FormatFOCUSCSV, FormatCUR2Parquet: FormatFOCUSParquet}[d.Format]
	}
	return d, nil
}

// firstHeader reads the column names of a delivery's first data file.
func firstHeader(ctx context.Context, store blob.Store, d *Delivery) ([]string, error) {
	probe := *d
	probe.Headers = nil // nothing to check it against yet
	r, err := OpenChunk(ctx, store, &probe, d.ChunkKeys[0], blob.Pin{}, "", DefaultLimits)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Header(), nil
}

// exportFileFormat tells a Data Exports file's format by its name.
func exportFileFormat(key string) (Format, string, error) {
	switch {
	case strings.HasSuffix(key, ".parquet"):
		return FormatCUR2Parquet, "PARQUET", nil
	case strings.HasSuffix(key, ".csv.gz"):
		return FormatCUR2CSV, "GZIP", nil
	case strings.HasSuffix(key, ".csv"):
		return FormatCUR2CSV, "", nil
	}
	return "", "", fmt.Errorf("%w: data file %q is neither .csv, .csv.gz nor .parquet", ErrUnsupportedCompression, path.Base(key))
}

func readExportManifest(ctx context.Context, store blob.Store, key string, pin blob.Pin) (*ExportManifest, error) {
	data, err := readManifestBytes(ctx, store, key, pin)
	if err != nil {
		return nil, err
	}
	return ParseExportManifest(data)
}

// newestManifest returns the most recently written *-Manifest.json under
// prefix, or nil when there is none: Data Exports and partner generators
// keep one per execution, and the newest describes the delivery.
func newestManifest(ctx context.Context, store blob.Store, prefix string) (*blob.Info, error) {
	objects, err := store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var newest *blob.Info
	for i, o := range objects {
		if strings.HasSuffix(o.Key, "-Manifest.json") && (newest == nil || o.LastModified.After(newest.LastModified)) {
			newest = &objects[i]
		}
	}
	return newest, nil
}

// readManifestBytes reads a manifest object, bounded by maxManifestBytes:
// the version pin names, the one a Stat or a listing just described.
func readManifestBytes(ctx context.Context, store blob.Store, key string, pin blob.Pin) ([]byte, error) {
	rc, err := store.OpenPinned(ctx, key, pin)
	if errors.Is(err, blob.ErrChanged) {
		return nil, fmt.Errorf("%w: the manifest was rewritten while it was read", ErrDeliveryChanged)
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxManifestBytes))
}
