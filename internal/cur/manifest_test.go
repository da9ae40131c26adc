package cur

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

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
