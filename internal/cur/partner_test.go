package cur

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/costlake/costlake/internal/blob"
)

// Every report manifest of a partner period is a delivery of its own,
// sorted by report; a report whose manifest is copied keeps its newest.
func TestLocateReportsPartner(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	store := blob.NewLocal("/") // as the worker opens file:// sources
	put := func(key, body string) {
		t.Helper()
		if err := store.Put(ctx, strings.TrimPrefix(root, "/")+"/eco/"+key, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	const folder = "20261001-20261101"
	put("RawCURReports/cur/111111111111/"+folder+"/a1/f-1.csv.gz", "x")
	put("RawCURReports/cur/222222222222/"+folder+"/b1/f-1.csv.gz", "x")
	put("RawCURReports/cur/222222222222/"+folder+"/b1/f-2.csv.gz", "x")
	put("manifests/"+folder+"/rep-b-Manifest.json", `{"assemblyId":"b1","account":"222222222222"}`)
	put("manifests/"+folder+"/rep-a-Manifest.json", `{"assembly_id":"a1","report_keys":["RawCURReports/cur/111111111111/`+folder+`/a1/f-1.csv.gz"]}`)
	src, err := blob.ParseLocation("file://" + root + "/eco")
	if err != nil {
		t.Fatal(err)
	}
	ds, err := LocateReports(ctx, store, src, "2026-10")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, d.Report+":"+d.AssemblyID+":"+strings.Join(d.ChunkKeys, ","))
	}
	want := []string{
		"rep-a:a1:" + src.Key("RawCURReports/cur/111111111111", folder, "a1/f-1.csv.gz"),
		"rep-b:b1:" + src.Key("RawCURReports/cur/222222222222", folder, "b1/f-1.csv.gz") + "," + src.Key("RawCURReports/cur/222222222222", folder, "b1/f-2.csv.gz"),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("reports\n%v\nwant\n%v", got, want)
	}

	// A third manifest naming rep-a's file would count it twice.
	put("manifests/"+folder+"/rep-c-Manifest.json", `{"assemblyId":"c1","reportKeys":["RawCURReports/cur/111111111111/`+folder+`/a1/f-1.csv.gz"]}`)
	_, err = LocateReports(ctx, store, src, "2026-10")
	var fe *FileError
	if !errors.Is(err, ErrInvalidManifest) || !errors.As(err, &fe) || !strings.Contains(err.Error(), "reports rep-a and rep-c both name") {
		t.Fatalf("overlapping reports: %v", err)
	}
}

// A folder of legacy CUR reports is a source with one report per folder.
func TestLocateReportsLegacyFolders(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	store := blob.NewLocal("/")
	for _, r := range []string{"linked-b", "linked-a"} {
		m := strings.ReplaceAll(manifestJSON, "orig/prefix/r/", "orig/prefix/"+r+"/")
		m = strings.ReplaceAll(m, "20231203T041213Z", "asm-"+r)
		if err := store.Put(ctx, strings.TrimPrefix(root, "/")+"/cur/"+r+"/20231101-20231201/"+r+"-Manifest.json", strings.NewReader(m)); err != nil {
			t.Fatal(err)
		}
		// The chunk the manifest names: locating pins it, so it must exist.
		if err := store.Put(ctx, strings.TrimPrefix(root, "/")+"/cur/"+r+"/20231101-20231201/asm-"+r+"/r-1.csv.gz", strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	src, _ := blob.ParseLocation("file://" + root + "/cur")
	ds, err := LocateReports(ctx, store, src, "2023-11")
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].Report != "linked-a" || ds[1].Report != "linked-b" || ds[1].AssemblyID != "asm-linked-b" ||
		ds[0].ChunkKeys[0] != src.Key("linked-a/20231101-20231201/asm-linked-a/r-1.csv.gz") {
		t.Fatalf("reports %+v", ds)
	}
	// The report folder itself stays a single-report source.
	one, _ := blob.ParseLocation("file://" + root + "/cur/linked-a")
	if ds, err := LocateReports(ctx, store, one, "2023-11"); err != nil || len(ds) != 1 || ds[0].Report != "" {
		t.Fatalf("single report: %+v, %v", ds, err)
	}
}
