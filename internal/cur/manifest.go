// Package cur reads AWS Cost and Usage Report deliveries: the legacy CUR
// manifest, the layout of a delivery in its bucket, and the csv.gz chunks.
package cur

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/costlake/costlake/internal/period"
)

// ErrInvalidManifest reports a manifest that cannot be used: bad JSON, a
// missing field, or a billing period that does not parse.
var ErrInvalidManifest = errors.New("invalid CUR manifest")

// Manifest is the legacy CUR `<report>-Manifest.json` that AWS writes for a
// billing period (and, unchanged, inside each assembly folder).
type Manifest struct {
	AssemblyID             string           `json:"assemblyId"`
	Account                string           `json:"account"`
	Columns                []ManifestColumn `json:"columns"`
	Charset                string           `json:"charset"`
	Compression            string           `json:"compression"`
	ContentType            string           `json:"contentType"`
	ReportID               string           `json:"reportId"`
	ReportName             string           `json:"reportName"`
	BillingPeriod          ManifestPeriod   `json:"billingPeriod"`
	Bucket                 string           `json:"bucket"`
	ReportKeys             []string         `json:"reportKeys"`
	AdditionalArtifactKeys []ArtifactKey    `json:"additionalArtifactKeys"`
}

// ManifestColumn is one column of a legacy manifest: category "lineItem",
// name "UnblendedCost" stands for the CSV header "lineItem/UnblendedCost".
type ManifestColumn struct {
	Category string `json:"category"`
	Name     string `json:"name"`
	Type     string `json:"type,omitempty"`
}

// Header returns the CSV header AWS writes for the column.
func (c ManifestColumn) Header() string { return c.Category + "/" + c.Name }

// ManifestPeriod is the billing period as AWS writes it: 20231101T000000.000Z.
type ManifestPeriod struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// ArtifactKey is an extra file AWS delivers beside the report (Redshift and
// QuickSight helpers); costlake ignores them.
type ArtifactKey struct {
	ArtifactType string `json:"artifactType"`
	Name         string `json:"name"`
}

const manifestTimeLayout = "20060102T150405.000Z"

// ParseManifest decodes and checks a legacy manifest. Errors wrap
// ErrInvalidManifest.
func ParseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidManifest, err)
	}
	switch {
	case m.AssemblyID == "":
		return nil, fmt.Errorf("%w: assemblyId is empty", ErrInvalidManifest)
	case len(m.ReportKeys) == 0:
		return nil, fmt.Errorf("%w: reportKeys is empty", ErrInvalidManifest)
	case len(m.Columns) == 0:
		return nil, fmt.Errorf("%w: columns is empty", ErrInvalidManifest)
	}
	if _, err := m.Period(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Period returns the billing period as "YYYY-MM".
func (m *Manifest) Period() (string, error) {
	start, err := time.Parse(manifestTimeLayout, m.BillingPeriod.Start)
	if err != nil {
		return "", fmt.Errorf("%w: billingPeriod.start %s is not a time like 20231101T000000.000Z", ErrInvalidManifest, quoteShort(m.BillingPeriod.Start))
	}
	return start.UTC().Format("2006-01"), nil
}

// Headers returns the CSV headers the manifest promises, in order.
func (m *Manifest) Headers() []string {
	h := make([]string, len(m.Columns))
	for i, c := range m.Columns {
		h[i] = c.Header()
	}
	return h
}

// PeriodFolder returns the period folder AWS names deliveries by,
// "20261001-20261101", for a "YYYY-MM" period.
func PeriodFolder(period string) (string, error) {
	start, err := ParsePeriod(period)
	if err != nil {
		return "", err
	}
	return start.Format("20060102") + "-" + start.AddDate(0, 1, 0).Format("20060102"), nil
}

// ErrInvalidPeriod reports a billing period that is not "YYYY-MM".
var ErrInvalidPeriod = period.ErrInvalid

// ParsePeriod parses "YYYY-MM" into the first instant of the month (UTC).
func ParsePeriod(s string) (time.Time, error) {
	p, err := period.Parse(s)
	return p.Start(), err
}

// ManifestPeriodFor returns the manifest billingPeriod of a "YYYY-MM" period.
func ManifestPeriodFor(period string) (ManifestPeriod, error) {
	start, err := ParsePeriod(period)
	if err != nil {
		return ManifestPeriod{}, err
	}
	return ManifestPeriod{
		Start: start.Format(manifestTimeLayout),
		End:   start.AddDate(0, 1, 0).Format(manifestTimeLayout),
	}, nil
}
