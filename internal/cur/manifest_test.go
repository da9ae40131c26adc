package cur

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
)

const manifestJSON = `{"assemblyId":"20231203T041213Z","account":"123412340534",
 "columns":[{"category":"identity","name":"LineItemId","type":"String"},{"category":"lineItem","name":"UnblendedCost","type":"BigDecimal"}],
 "compression":"GZIP","reportName":"r","billingPeriod":{"start":"20231101T000000.000Z","end":"20231201T000000.000Z"},
 "bucket":"orig-bucket","reportKeys":["orig/prefix/r/20231101-20231201/20231203T041213Z/r-1.csv.gz"]}`

func TestParseManifest(t *testing.T) {
	m, err := ParseManifest([]byte(manifestJSON))
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := m.Period(); p != "2023-11" {
		t.Errorf("period = %s", p)
	}
	if h := m.Headers(); h[1] != "lineItem/UnblendedCost" {
		t.Errorf("headers = %v", h)
	}
	for name, bad := range map[string]string{
		"not json":       `{"assemblyId":`,
		"no assembly":    strings.Replace(manifestJSON, `"20231203T041213Z"`, `""`, 1),
		"no report keys": strings.Replace(manifestJSON, `"reportKeys":["orig/prefix/r/20231101-20231201/20231203T041213Z/r-1.csv.gz"]`, `"reportKeys":[]`, 1),
		"bad period":     strings.Replace(manifestJSON, "20231101T000000.000Z", "November", 1),
		"no columns":     strings.Replace(manifestJSON, `"columns":[`, `"columns":[],"x":[`, 1),
	} {
		if _, err := ParseManifest([]byte(bad)); !errors.Is(err, ErrInvalidManifest) {
			t.Errorf("%s: err = %v, want ErrInvalidManifest", name, err)
		}
	}
}

func TestLocateLegacyRebasesKeys(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store := blob.NewLocal("/")
	local := blob.NewLocal(dir)
	if err := local.Put(ctx, "copy/r/20231101-20231201/r-Manifest.json", strings.NewReader(manifestJSON)); err != nil {
		t.Fatal(err)
	}
	src, err := blob.ParseLocation("file://" + dir + "/copy/r")
	if err != nil {
		t.Fatal(err)
	}
	// The manifest names a chunk that is not there: found when locating.
	if _, err := Locate(ctx, store, src, "2023-11"); !errors.Is(err, ErrChunkNotFound) {
		t.Fatalf("missing chunk: err = %v, want ErrChunkNotFound", err)
	}
	if err := local.Put(ctx, "copy/r/20231101-20231201/20231203T041213Z/r-1.csv.gz", strings.NewReader("chunk")); err != nil {
		t.Fatal(err)
	}
	d, err := Locate(ctx, store, src, "2023-11")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimPrefix(dir, "/") + "/copy/r/20231101-20231201/20231203T041213Z/r-1.csv.gz"
	if len(d.ChunkKeys) != 1 || d.ChunkKeys[0] != want {
		t.Errorf("chunk keys = %v, want [%s]", d.ChunkKeys, want)
	}
	if len(d.ChunkPins) != 1 || d.ChunkPins[0].Size != int64(len("chunk")) || d.ChunkPins[0].ETag == "" {
		t.Errorf("chunk pins = %+v, want the chunk's size and ETag", d.ChunkPins)
	}
	if _, err := Locate(ctx, store, src, "2023-12"); !errors.Is(err, ErrManifestNotFound) {
		t.Errorf("other period: err = %v, want ErrManifestNotFound", err)
	}
	if _, err := Locate(ctx, store, src, "2023-13"); !errors.Is(err, ErrInvalidPeriod) {
		t.Errorf("bad period: err = %v, want ErrInvalidPeriod", err)
	}
}

func TestParseExportManifest(t *testing.T) {
	m, err := ParseExportManifest([]byte(`{"executionId":"e1","dataFiles":["s3://b/p/x/data/BILLING_PERIOD=2026-10/x-00001.parquet"],"columns":[{"name":"bill_payer_account_id","type":"string"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.ExecutionID != "e1" || m.Headers()[0] != "bill_payer_account_id" {
		t.Errorf("parsed %+v", m)
	}
	for name, bad := range map[string]string{
		"not json":      `{`,
		"no execution":  `{"dataFiles":["s3://b/k"]}`,
		"no data files": `{"executionId":"e1","dataFiles":[]}`,
	} {
		if _, err := ParseExportManifest([]byte(bad)); !errors.Is(err, ErrInvalidManifest) {
			t.Errorf("%s: err = %v, want ErrInvalidManifest", name, err)
		}
	}
}

func TestParquetReaderRejectsGarbage(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "x.parquet")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("this is not parquet, not even close to a footer")
	_, err = NewParquetReader(context.Background(), f, "s3://b/x.parquet", nil, billing.MapCUR2Header)
	var fe *FileError
	if !errors.Is(err, ErrCorruptChunk) || !errors.As(err, &fe) || fe.File != "s3://b/x.parquet" {
		t.Fatalf("err = %v, want a CorruptChunk FileError naming the file", err)
	}
	empty, _ := os.CreateTemp(t.TempDir(), "empty.parquet")
	defer empty.Close()
	if _, err := NewParquetReader(context.Background(), empty, "s3://b/empty.parquet", nil, billing.MapCUR2Header); err == nil {
		t.Fatal("an empty file must not open")
	}
}

// TestAthenaHeadersOriginals: a Parquet manifest's legacy column names
// give each tag column its original key, except a column name that two
// tags share (they differ only by case), which keeps its own text.
func TestAthenaHeadersOriginals(t *testing.T) {
	h, originals := athenaHeaders([]ManifestColumn{
		{Category: "lineItem", Name: "UnblendedCost"},
		{Category: "resourceTags", Name: "user:CostCenter"},
		{Category: "resourceTags", Name: "user:env"},
		{Category: "resourceTags", Name: "user:Env"},
		{Category: "", Name: "resource_tags_user_team"},
	})
	want := []string{"line_item_unblended_cost", "resource_tags_user_cost_center", "resource_tags_user_env", "resource_tags_user_env", "resource_tags_user_team"}
	if !slices.Equal(h, want) {
		t.Errorf("headers %q, want %q", h, want)
	}
	if len(originals) != 2 || originals["resource_tags_user_cost_center"] != "resourceTags/user:CostCenter" || originals["line_item_unblended_cost"] != "lineItem/UnblendedCost" {
		t.Errorf("originals %q", originals)
	}
}

// In overwrite mode the chunks sit at the same keys for every delivery and
// AWS writes them before the manifest: a chunk newer than its manifest is
// the next delivery half written, so locating says DeliveryChanged rather
// than pin a mix of two deliveries. A create-new chunk (in its assembly's
// folder) is never rewritten, so its time does not matter; a missing chunk
// is ChunkNotFound unless the delivery is being rewritten.
func TestLocateRefusesADeliveryBeingRewritten(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store := blob.NewLocal("/")
	local := blob.NewLocal(dir)
	put := func(key, body string, at time.Time) {
		t.Helper()
		if err := local.Put(ctx, key, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(dir, key), at, at); err != nil {
			t.Fatal(err)
		}
	}
	delivered := time.Date(2023, 12, 3, 4, 12, 13, 0, time.UTC)
	overwrite := strings.ReplaceAll(manifestJSON, `"orig/prefix/r/20231101-20231201/20231203T041213Z/r-1.csv.gz"`,
		`"orig/prefix/r/20231101-20231201/r-1.csv.gz","orig/prefix/r/20231101-20231201/r-2.csv.gz"`)
	put("o/r/20231101-20231201/r-Manifest.json", overwrite, delivered)
	put("o/r/20231101-20231201/r-1.csv.gz", "a1", delivered.Add(-time.Minute))
	src, err := blob.ParseLocation("file://" + dir + "/o/r")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Locate(ctx, store, src, "2023-11"); !errors.Is(err, ErrChunkNotFound) {
		t.Fatalf("a chunk missing, none newer: err = %v, want ErrChunkNotFound", err)
	}
	put("o/r/20231101-20231201/r-2.csv.gz", "a2", delivered.Add(-time.Minute))
	if _, err := Locate(ctx, store, src, "2023-11"); err != nil {
		t.Fatalf("delivery A: %v", err)
	}
	// The next delivery rewrites chunk 1; its manifest is not there yet.
	put("o/r/20231101-20231201/r-1.csv.gz", "b1", delivered.Add(24*time.Hour))
	if _, err := Locate(ctx, store, src, "2023-11"); !errors.Is(err, ErrDeliveryChanged) {
		t.Fatalf("chunk newer than the manifest: err = %v, want ErrDeliveryChanged", err)
	}
	// It also removed chunk 2: still a rewrite in progress, not a bad manifest.
	if err := os.Remove(filepath.Join(dir, "o/r/20231101-20231201/r-2.csv.gz")); err != nil {
		t.Fatal(err)
	}
	if _, err := Locate(ctx, store, src, "2023-11"); !errors.Is(err, ErrDeliveryChanged) {
		t.Fatalf("chunk missing and another newer: err = %v, want ErrDeliveryChanged", err)
	}
	// Its manifest lands: one delivery again.
	put("o/r/20231101-20231201/r-Manifest.json", strings.ReplaceAll(strings.ReplaceAll(overwrite, "20231203T041213Z", "20231204T000000Z"), `,"orig/prefix/r/20231101-20231201/r-2.csv.gz"`, ""), delivered.Add(25*time.Hour))
	if d, err := Locate(ctx, store, src, "2023-11"); err != nil || d.AssemblyID != "20231204T000000Z" || len(d.ChunkKeys) != 1 {
		t.Fatalf("delivery B: %+v, %v", d, err)
	}

	// Create-new: a chunk in its assembly's folder may be newer (a copy).
	put("c/r/20231101-20231201/r-Manifest.json", manifestJSON, delivered)
	put("c/r/20231101-20231201/20231203T041213Z/r-1.csv.gz", "a1", delivered.Add(time.Hour))
	src, _ = blob.ParseLocation("file://" + dir + "/c/r")
	if _, err := Locate(ctx, store, src, "2023-11"); err != nil {
		t.Fatalf("create-new chunk newer than its manifest: %v", err)
	}
}
