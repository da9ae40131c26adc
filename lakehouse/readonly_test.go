package lakehouse_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/lakehouse"
)

// TestCatalogReadOnly: the gateway's connection reads what a worker wrote
// and the database itself refuses its writes; a catalog no worker created
// yet is a configuration error, not an empty file made on the spot.
func TestCatalogReadOnly(t *testing.T) {
	ctx := context.Background()
	catalog := filepath.Join(t.TempDir(), "catalog.db")
	if _, _, err := lakehouse.OpenCatalogReadOnly(catalog); !errors.Is(err, lakehouse.ErrConfig) {
		t.Fatalf("missing catalog: got %v, want ErrConfig", err)
	}

	lake, err := lakehouse.Open(ctx, lakehouse.Config{Catalog: catalog, Warehouse: "file://" + filepath.Join(t.TempDir(), "warehouse")})
	if err != nil {
		t.Fatal(err)
	}
	defer lake.Close()
	db, postgres := lake.DB()
	store, err := reseller.Open(ctx, db, postgres)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.PutCustomer(ctx, reseller.Customer{ID: "acme", Name: "Acme"}, "test"); err != nil {
		t.Fatal(err)
	}

	rodb, ropg, err := lakehouse.OpenCatalogReadOnly(catalog)
	if err != nil {
		t.Fatal(err)
	}
	defer rodb.Close()
	ro := reseller.ReadOnly(rodb, ropg)
	v, err := ro.View(ctx, "acme", "2026-10")
	if err != nil || v.Name != "Acme" {
		t.Fatalf("read through the read-only connection: %+v, %v", v, err)
	}
	if err := ro.PutCustomer(ctx, reseller.Customer{ID: "acme", Name: "Squatter"}, "gateway"); err == nil {
		t.Fatal("a write through the read-only connection succeeded")
	}
	if _, err := rodb.ExecContext(ctx, `CREATE TABLE intruder (x TEXT)`); err == nil {
		t.Fatal("DDL through the read-only connection succeeded")
	}
	if v, err := store.View(ctx, "acme", "2026-10"); err != nil || v.Name != "Acme" {
		t.Fatalf("the worker's record changed: %+v, %v", v, err)
	}
}
