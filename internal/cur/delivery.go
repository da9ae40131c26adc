package cur

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/costlake/costlake/internal/blob"
)

// maxManifestBytes bounds what we read of a manifest; real ones are a few
// hundred KiB even with thousands of columns and chunks.
const maxManifestBytes = 64 << 20

// Delivery is one legacy CUR delivery of a billing period: the manifest
// and the chunk keys it names, resolved inside the source store.
type Delivery struct {
	Source       blob.Location
	Period       string // YYYY-MM
	ManifestKey  string
	ManifestETag string
	// AssemblyManifestKey is the assembly folder's copy of the manifest,
	// or ManifestKey when the delivery has none.
	AssemblyManifestKey string
	// DeliveredAt is when AWS wrote the assembly (its manifest's
	// LastModified): deliveries are ordered by it, never by name.
	DeliveredAt time.Time
	Manifest    *Manifest
	ChunkKeys   []string
}

// FindLegacyDelivery reads the period manifest of a legacy CUR report.
// src is the report's location, "<prefix>/<report>" in the bucket; the
// manifest is "<prefix>/<report>/<yyyymmdd-yyyymmdd>/<report>-Manifest.json".
func FindLegacyDelivery(ctx context.Context, store blob.Store, src blob.Location, period string) (*Delivery, error) {
	folder, err := PeriodFolder(period)
	if err != nil {
		return nil, err
	}
	report := path.Base(src.Prefix)
	if report == "." || report == "/" || report == "" {
		return nil, fmt.Errorf("%w: source %s does not name a report folder", ErrManifestNotFound, src)
	}
	key := src.Key(folder, report+"-Manifest.json")
	m, info, err := ReadManifest(ctx, store, src, key)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, &FileError{File: locationURL(src, key), Err: fmt.Errorf("%w for period %s (is %s the report folder?)", ErrManifestNotFound, period, src)}
	}
	if err != nil {
		return nil, err
	}
	url := locationURL(src, key)
	if got, _ := m.Period(); got != period {
		return nil, &FileError{File: url, Err: fmt.Errorf("%w: billingPeriod is %s, asked for %s", ErrInvalidManifest, got, period)}
	}
	d := &Delivery{Source: src, Period: period, ManifestKey: key, ManifestETag: info.ETag, Manifest: m}
	// AWS overwrites the period manifest on every delivery; the copy in the
	// assembly folder never changes, so later reads use it when present,
	// and its time says when the assembly was delivered.
	d.AssemblyManifestKey, d.DeliveredAt = key, info.LastModified
	if ak := src.Key(folder, m.AssemblyID, report+"-Manifest.json"); ak != key {
		if ai, err := store.Stat(ctx, ak); err == nil {
			d.AssemblyManifestKey, d.DeliveredAt = ak, ai.LastModified
		}
	}
	for _, rk := range m.ReportKeys {
		// reportKeys are bucket keys; resolve them relative to the period
		// folder so a delivery copied under another prefix or to a local
		// folder still reads.
		_, rest, ok := strings.Cut(rk, "/"+folder+"/")
		if !ok {
			if strings.HasPrefix(rk, folder+"/") {
				rest, ok = strings.TrimPrefix(rk, folder+"/"), true
			}
		}
		if !ok || rest == "" {
			return nil, &FileError{File: url, Err: fmt.Errorf("%w: reportKey %q is not under the period folder %s", ErrInvalidManifest, rk, folder)}
		}
		d.ChunkKeys = append(d.ChunkKeys, src.Key(folder, rest))
	}
	return d, nil
}

// URL returns the URL of a key of the delivery's store.
func (d *Delivery) URL(key string) string { return locationURL(d.Source, key) }

func locationURL(src blob.Location, key string) string { return src.URLOf(key) }

// ReadManifest reads and parses the manifest at key and describes the
// object. A missing key wraps blob.ErrNotFound; a bad manifest is a
// *FileError wrapping ErrInvalidManifest.
func ReadManifest(ctx context.Context, store blob.Store, src blob.Location, key string) (*Manifest, blob.Info, error) {
	url := locationURL(src, key)
	info, err := store.Stat(ctx, key)
	if err != nil {
		return nil, info, err
	}
	rc, err := store.Open(ctx, key)
	if err != nil {
		return nil, info, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxManifestBytes))
	if err != nil {
		return nil, info, fmt.Errorf("read %s: %w", url, err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, info, &FileError{File: url, Err: err}
	}
	return m, info, nil
}
