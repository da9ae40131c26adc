package restcatalog

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	"github.com/apache/iceberg-go/table"
	"github.com/uptrace/bun/driver/sqliteshim"
)

// A real iceberg-go SQL catalog (SQLite) with the reseller's namespace,
// two customers' and a table: what each scope lists and hears.
func TestScopes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sql.Open(sqliteshim.ShimName, "file:"+filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cat, err := sqlcat.NewCatalog("costlake", db, sqlcat.SQLite, iceberg.Properties{"warehouse": "file://" + filepath.Join(dir, "warehouse")})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"billing", "customer_acme_corp", "customer_globex"} {
		if err := cat.CreateNamespace(ctx, table.Identifier{ns}, nil); err != nil {
			t.Fatal(err)
		}
	}
	schema := iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "x", Type: iceberg.PrimitiveTypes.String})
	if _, err := cat.CreateTable(ctx, table.Identifier{"customer_acme_corp", "invoices"}, schema); err != nil {
		t.Fatal(err)
	}
	s := New(cat, map[string]string{"s3.endpoint": "http://minio:9000"})
	all, acme := Scope{}, Scope{Customer: "acme-corp"}

	names := func(r ListNamespacesResponse) (out []string) {
		for _, ns := range r.Namespaces {
			out = append(out, strings.Join(ns, "."))
		}
		return out
	}
	r, err := s.ListNamespaces(ctx, all, "", Page{})
	if err != nil || !slices.Equal(names(r), []string{"billing", "customer_acme_corp", "customer_globex"}) {
		t.Fatalf("unscoped: %v, %v", names(r), err)
	}
	r, err = s.ListNamespaces(ctx, all, "", Page{Size: "2"})
	if err != nil || len(r.Namespaces) != 2 || r.NextPageToken == nil {
		t.Fatalf("first page: %v, %v", names(r), err)
	}
	r, err = s.ListNamespaces(ctx, all, "", Page{Size: "2", Token: *r.NextPageToken})
	if err != nil || !slices.Equal(names(r), []string{"customer_globex"}) || r.NextPageToken != nil {
		t.Fatalf("second page: %v, %v", names(r), err)
	}
	r, err = s.ListNamespaces(ctx, acme, "", Page{})
	if err != nil || !slices.Equal(names(r), []string{"customer_acme_corp"}) {
		t.Fatalf("acme-corp: %v, %v", names(r), err)
	}
	tables, err := s.ListTables(ctx, acme, "customer_acme_corp", Page{})
	if err != nil || len(tables.Identifiers) != 1 || tables.Identifiers[0].Name != "invoices" {
		t.Fatalf("acme-corp's tables: %+v, %v", tables, err)
	}
	lt, err := s.LoadTable(ctx, acme, "customer_acme_corp", "invoices")
	if err != nil || lt.MetadataLocation == "" || lt.Config["s3.endpoint"] == "" {
		t.Fatalf("load: %+v, %v", lt, err)
	}

	for _, tc := range []struct {
		name   string
		err    error
		status int
		typ    string
	}{
		{"billing for a scoped key", second(s.Namespace(ctx, acme, "billing")), http.StatusForbidden, TypeForbidden},
		{"another customer's namespace", second(s.ListTables(ctx, acme, "customer_globex", Page{})), http.StatusNotFound, TypeNoNamespace},
		{"another customer's table", second(s.LoadTable(ctx, acme, "customer_globex", "invoices")), http.StatusNotFound, TypeNoNamespace},
		{"no such table", second(s.LoadTable(ctx, all, "billing", "nope")), http.StatusNotFound, TypeNoTable},
		{"no such namespace", second(s.Namespace(ctx, all, "nope")), http.StatusNotFound, TypeNoNamespace},
		{"nested namespace", second(s.Namespace(ctx, all, "billing%1Fx")), http.StatusNotFound, TypeNoNamespace},
		{"bad escape", second(s.Namespace(ctx, all, "%zz")), http.StatusBadRequest, TypeBadRequest},
		{"long name", second(s.Namespace(ctx, all, strings.Repeat("a", 300))), http.StatusBadRequest, TypeBadRequest},
		{"page size", second(s.ListNamespaces(ctx, all, "", Page{Size: "100000"})), http.StatusBadRequest, TypeBadRequest},
	} {
		var e *Error
		if !errors.As(tc.err, &e) || e.Code != tc.status || e.Type != tc.typ {
			t.Errorf("%s: %v, want %d %s", tc.name, tc.err, tc.status, tc.typ)
		}
	}
}

func second[T any](_ T, err error) error { return err }
