package cur

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/costlake/costlake/internal/blob"
)

// partnerManifest is the manifest of the partner layout (CUR files that a
// partner's own generator writes, as the Eco seed describes):
// "manifests/<yyyymmdd-yyyymmdd>/<report_id>-Manifest.json" beside
// "RawCURReports/cur/<account>/<yyyymmdd-yyyymmdd>/<assembly_id>/<files>".
// Generators differ, so both legacy (camelCase) and snake_case field names
// are read, and the data files are listed when the manifest omits them.
type partnerManifest struct {
	AssemblyID  string          `json:"assemblyId"`
	AssemblyID2 string          `json:"assembly_id"`
	Account     string          `json:"account"`
	ReportKeys  []string        `json:"reportKeys"`
	ReportKeys2 []string        `json:"report_keys"`
	Columns     json.RawMessage `json:"columns"`
}

func parsePartnerManifest(data []byte) (*partnerManifest, error) {
	var m partnerManifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidManifest, err)
	}
	if m.AssemblyID == "" {
		m.AssemblyID = m.AssemblyID2
	}
	if len(m.ReportKeys) == 0 {
		m.ReportKeys = m.ReportKeys2
	}
	if m.AssemblyID == "" {
		return nil, fmt.Errorf("%w: assemblyId is empty", ErrInvalidManifest)
	}
	return &m, nil
}

// headers reads the column list in any of the shapes generators write:
// [{category,name}], [{column_name}], or [{name}].
func (m *partnerManifest) headers() []string {
	var cols []struct {
		Category   string `json:"category"`
		Name       string `json:"name"`
		ColumnName string `json:"column_name"`
	}
	if len(m.Columns) == 0 || json.Unmarshal(m.Columns, &cols) != nil {
		return nil
	}
	var h []string
	for _, c := range cols {
		switch {
		case c.ColumnName != "":
			h = append(h, c.ColumnName)
		case c.Category != "":
			h = append(h, c.Category+"_"+c.Name)
		case c.Name != "":
			h = append(h, c.Name)
		}
	}
	return h
}

const partnerData = "RawCURReports/cur/"

// findPartnerDeliveries finds every report of a period under src (the
// bucket root, or the prefix holding manifests/ and RawCURReports/): each
// "<report_id>-Manifest.json" in the period's manifest folder is one
// report, one CUR per linked account for instance. When a report's
// manifest appears more than once (copies in subfolders), the newest
// counts. It returns nil, nil when there is none.
func findPartnerDeliveries(ctx context.Context, store blob.Store, src blob.Location, period string) ([]*Delivery, error) {
	folder, err := PeriodFolder(period)
	if err != nil {
		return nil, err
	}
	manifests, err := store.List(ctx, src.Key("manifests", folder)+"/")
	if err != nil {
		return nil, err
	}
	newest := map[string]blob.Info{}
	for _, o := range manifests {
		report, ok := strings.CutSuffix(path.Base(o.Key), "-Manifest.json")
		if !ok || report == "" {
			continue
		}
		if n, seen := newest[report]; !seen || o.LastModified.After(n.LastModified) {
			newest[report] = o
		}
	}
	var listed []blob.Info // the data files, listed once for the reports whose manifest names none
	owner := map[string]string{}
	var out []*Delivery
	for _, report := range slices.Sorted(maps.Keys(newest)) {
		info := newest[report]
		d, err := partnerDelivery(ctx, store, src, period, folder, report, info, &listed)
		if err != nil {
			return nil, err
		}
		for _, k := range d.ChunkKeys {
			if other, ok := owner[k]; ok {
				return nil, &FileError{File: locationURL(src, info.Key), Err: fmt.Errorf("%w: reports %s and %s both name %s", ErrInvalidManifest, other, report, locationURL(src, k))}
			}
			owner[k] = report
		}
		out = append(out, d)
	}
	return out, nil
}

// partnerDelivery reads one report's manifest and resolves its data files.
func partnerDelivery(ctx context.Context, store blob.Store, src blob.Location, period, folder, report string, info blob.Info, listed *[]blob.Info) (*Delivery, error) {
	url := locationURL(src, info.Key)
	m, err := readPartnerManifest(ctx, store, info.Key, info.Pin())
	if err != nil {
		return nil, &FileError{File: url, Err: err}
	}
	d := &Delivery{
		Source: src, Period: period, Report: report, Format: FormatPartnerCSV, ManifestKey: info.Key, ManifestETag: info.ETag,
		StableManifestKey: info.Key, DeliveredAt: info.LastModified,
		AssemblyID: m.AssemblyID, Payer: m.Account, Compression: "GZIP", Headers: m.headers(),
	}
	keys := m.ReportKeys
	if len(keys) == 0 {
		if *listed == nil {
			if *listed, err = store.List(ctx, src.Key(partnerData)); err != nil {
				return nil, err
			}
		}
		for _, o := range *listed {
			if strings.Contains(o.Key, "/"+folder+"/"+m.AssemblyID+"/") && strings.HasSuffix(o.Key, ".csv.gz") {
				keys = append(keys, o.Key)
			}
		}
	}
	for _, k := range keys {
		i := strings.Index(k, partnerData)
		if i < 0 || !strings.Contains(k, "/"+folder+"/") {
			return nil, &FileError{File: url, Err: fmt.Errorf("%w: %s is not under %s<account>/%s/", ErrInvalidManifest, quoteShort(k), partnerData, folder)}
		}
		if err := checkManifestKey(k[i:]); err != nil {
			return nil, &FileError{File: url, Err: err}
		}
		// The <account> folder may be a linked account; the payer comes
		// from the manifest or, failing that, from the rows.
		d.ChunkKeys = append(d.ChunkKeys, src.Key(k[i:]))
	}
	if len(d.ChunkKeys) == 0 {
		return nil, &FileError{File: url, Err: fmt.Errorf("%w: no data files for assembly %s under %s", ErrChunkNotFound, m.AssemblyID, locationURL(src, src.Key(partnerData)))}
	}
	return d, nil
}

func readPartnerManifest(ctx context.Context, store blob.Store, key string, pin blob.Pin) (*partnerManifest, error) {
	data, err := readManifestBytes(ctx, store, key, pin)
	if err != nil {
		return nil, err
	}
	return parsePartnerManifest(data)
}
