package export

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/money"
)

// Format names the file layout in manifests.
const Format = "aws-detailed-billing-report-with-resources-and-tags"

// Manifest describes one complete export. It is written after every file
// it lists, so its presence means the export is complete. Amounts are
// JSON strings with every digit (money.Amount).
type Manifest struct {
	Format      string   `json:"format"`
	AccountID   string   `json:"account_id"`
	Period      string   `json:"period"`
	Mode        Mode     `json:"mode"`
	Compression string   `json:"compression"` // "gzip" or "none"
	Columns     []string `json:"columns"`
	Files       []File   `json:"files"`
	// Totals are the sums over every row, as printed in the files (so
	// resale amounts in an AtResale export).
	Totals Totals `json:"totals"`
	// Accounts are the same sums per LinkedAccountId.
	Accounts map[string]Totals `json:"accounts"`
}

// File is one file of an export.
type File struct {
	Key    string `json:"key"` // full key in the store
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`  // object size, compressed when gzipped
	SHA256 string `json:"sha256"` // hex SHA-256 of the object's bytes
}

// Totals sums the rows' printed amounts.
type Totals struct {
	Rows          int64        `json:"rows"`
	UsageQuantity money.Amount `json:"usage_quantity"`
	BlendedCost   money.Amount `json:"blended_cost"`
	UnBlendedCost money.Amount `json:"unblended_cost"`
}

func (t *Totals) add(mode Mode, r *Row) {
	t.Rows++
	t.UsageQuantity = t.UsageQuantity.Add(r.UsageQuantity)
	if mode == AtResale {
		t.BlendedCost = t.BlendedCost.Add(r.Resale)
		t.UnBlendedCost = t.UnBlendedCost.Add(r.Resale)
		return
	}
	t.BlendedCost = t.BlendedCost.Add(r.BlendedCost)
	t.UnBlendedCost = t.UnBlendedCost.Add(r.UnBlendedCost)
}

// ReadManifest reads the manifest of the export spec describes; a missing
// manifest (no export, or one still running or failed) returns an error
// wrapping blob.ErrNotFound.
func ReadManifest(ctx context.Context, store blob.Store, spec Spec) (*Manifest, error) {
	rc, err := store.Open(ctx, spec.ManifestKey())
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s/%s: %w", store, spec.ManifestKey(), err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest %s/%s: %w", store, spec.ManifestKey(), err)
	}
	return &m, nil
}
