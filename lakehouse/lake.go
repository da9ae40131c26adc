// Package lakehouse owns costlake's Apache Iceberg tables: the catalog, the
// schema of billing.line_items, Parquet data files in the table's layout,
// and the atomic replacement of one payer's billing period.
package lakehouse

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	icebergio "github.com/apache/iceberg-go/io"
	_ "github.com/apache/iceberg-go/io/gocloud" // s3:// and gs:// warehouses
	"github.com/apache/iceberg-go/table"
	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL catalogs
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/config"
	"github.com/costlake/costlake/internal/sqlbind"
)

// Namespace of the billing tables; each billing.Schema names a table in it.
const (
	Namespace   = "billing"
	catalogName = "costlake"
)

// ErrConfig reports a catalog or warehouse setting costlake cannot use.
var ErrConfig = errors.New("invalid lakehouse configuration")

// Config says where the catalog and the warehouse live.
type Config struct {
	// Catalog is a SQLite file path (or sqlite:///path) or a PostgreSQL URI
	// (postgres://user:pass@host/db).
	Catalog string
	// Warehouse is the root of the data files: file:///path, s3://bucket/prefix
	// or gs://bucket/prefix.
	Warehouse string
	// S3 configures an s3:// warehouse (endpoint for MinIO, region, keys).
	S3 blob.S3Options
	// GCSEndpoint points a gs:// warehouse at an emulator.
	GCSEndpoint string
}

// Lake is an open catalog with the billing tables in it. Safe for
// concurrent use.
type Lake struct {
	cat     *sqlcat.Catalog
	db      *sql.DB
	dialect sqlcat.SupportedDialect
	// warehouse is the normalized root of the data files.
	warehouse string
	// catalog names the catalog database, for locks a SQLite file's
	// users share in one process.
	catalog string
}

// TableID is the identifier of a billing table.
func TableID(bs *billing.Schema) table.Identifier { return table.Identifier{Namespace, bs.Table} }

// BillingTableID is the identifier of the table named name in the billing
// namespace.
func BillingTableID(name string) table.Identifier { return table.Identifier{Namespace, name} }

// Open connects to the catalog and creates the billing namespace and the
// line_items table when they are missing.
func Open(ctx context.Context, cfg Config) (*Lake, error) {
	if cfg.Warehouse == "" {
		return nil, fmt.Errorf("%w: warehouse is empty", ErrConfig)
	}
	warehouse, err := normalizeWarehouse(cfg.Warehouse)
	if err != nil {
		return nil, err
	}
	db, dialect, err := openCatalogDB(cfg.Catalog)
	if err != nil {
		return nil, err
	}
	props := iceberg.Properties{"warehouse": warehouse}
	for k, v := range ioProperties(cfg) {
		props[k] = v
	}
	// The catalog's tables and costlake's are created under the schema
	// lock, so workers starting at once on a fresh database do not race.
	var l *Lake
	err = sqlbind.WithSchemaLock(ctx, db, dialect == sqlcat.Postgres, func() error {
		cat, err := sqlcat.NewCatalog(catalogName, db, dialect, props)
		if err != nil {
			return fmt.Errorf("open catalog %s: %w", config.RedactDSN(cfg.Catalog), err)
		}
		l = &Lake{cat: cat, db: db, dialect: dialect, warehouse: warehouse, catalog: cfg.Catalog}
		return l.ensureTables(ctx)
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return l, nil
}

// DB is the catalog's database, where costlake keeps its own small
// records (customers' accounts, pricebooks, closed cycles) beside the
// catalog's; postgres tells its SQL dialect (otherwise SQLite).
func (l *Lake) DB() (db *sql.DB, postgres bool) { return l.db, l.dialect == sqlcat.Postgres }

// Warehouse is the root of the data files (file:///path, s3://bucket/prefix
// or gs://bucket/prefix): exports are never written there.
func (l *Lake) Warehouse() string { return l.warehouse }

// Close releases the catalog's database connections.
func (l *Lake) Close() error { return l.db.Close() }

// Catalog exposes the Iceberg catalog, for readers and tests.
func (l *Lake) Catalog() catalog.Catalog { return l.cat }

// LineItems loads the current metadata of billing.line_items.
func (l *Lake) LineItems(ctx context.Context) (*table.Table, error) {
	return l.Table(ctx, billing.LineItems)
}

// Table loads the current metadata of a billing table.
func (l *Lake) Table(ctx context.Context, bs *billing.Schema) (*table.Table, error) {
	return l.cat.LoadTable(ctx, TableID(bs))
}

func (l *Lake) ensureTables(ctx context.Context) error {
	ns := table.Identifier{Namespace}
	exists, err := l.cat.CheckNamespaceExists(ctx, ns)
	if err != nil {
		return fmt.Errorf("check namespace %s: %w", Namespace, err)
	}
	if !exists {
		err := l.cat.CreateNamespace(ctx, ns, iceberg.Properties{"comment": "costlake billing data"})
		if err != nil && !errors.Is(err, catalog.ErrNamespaceAlreadyExists) {
			return fmt.Errorf("create namespace %s: %w", Namespace, err)
		}
	}
	comments := map[*billing.Schema]string{
		billing.LineItems: "AWS billing line items, CUR 2.0 column names; one partition per payer and billing period",
		billing.FOCUS:     "AWS FOCUS 1.0 exports, FOCUS column names; one partition per billing account and billing period",
	}
	for _, bs := range billing.Schemas {
		id := TableID(bs)
		exists, err = l.cat.CheckTableExists(ctx, id)
		if err != nil {
			return fmt.Errorf("check table %s: %w", id, err)
		}
		if exists {
			if err := l.evolve(ctx, bs); err != nil {
				return err
			}
			continue
		}
		schema := IcebergSchema(bs)
		spec, err := partitionSpec(bs, schema)
		if err != nil {
			return err
		}
		_, err = l.cat.CreateTable(ctx, id, schema,
			catalog.WithPartitionSpec(&spec),
			catalog.WithProperties(iceberg.Properties{
				"format-version":                  "2",
				"write.parquet.compression-codec": "zstd",
				table.ManifestMergeEnabledKey:     "true", // appends merge small manifests: scans open few
				"comment":                         comments[bs],
			}))
		if err != nil && !errors.Is(err, catalog.ErrTableAlreadyExists) {
			return fmt.Errorf("create table %s: %w", id, err)
		}
	}
	if err := l.ensureReportRecords(ctx); err != nil {
		return err
	}
	if err := l.ensureCostExplorerTable(ctx); err != nil {
		return err
	}
	ids := []table.Identifier{CostExplorerTableID()}
	for _, bs := range billing.Schemas {
		ids = append(ids, TableID(bs))
	}
	if ok, err := l.cat.CheckTableExists(ctx, ResaleTableID()); err != nil {
		return fmt.Errorf("check table %s: %w", ResaleTableID(), err)
	} else if ok {
		ids = append(ids, ResaleTableID())
	}
	return l.ensureCommitRecords(ctx, ids...)
}

// evolve adds the columns of bs that an existing table lacks (a table
// created by an older costlake, before AWS added them), by Iceberg schema
// evolution: each gets new field IDs, and data files written before read
// it as null. Columns are only ever added, never changed or dropped. Two
// workers opening the table at once may race; the loser reloads and
// finds the columns there.
func (l *Lake) evolve(ctx context.Context, bs *billing.Schema) error {
	id := TableID(bs)
	_, err := retryLostRace(ctx, func() (struct{}, error) {
		tbl, err := l.cat.LoadTable(ctx, id)
		if err != nil {
			return struct{}{}, fmt.Errorf("load table %s: %w", id, err)
		}
		missing := missingColumns(tbl.Schema(), bs)
		if len(missing) == 0 {
			return struct{}{}, nil
		}
		tx := tbl.NewTransaction()
		us := tx.UpdateSchema(true, false)
		nextID := 1 // AddColumn assigns fresh IDs; these are placeholders
		for _, c := range missing {
			us.AddColumn([]string{c.Name}, icebergType(c.Kind, &nextID), c.Doc, false, nil)
		}
		if err := us.Commit(); err != nil {
			return struct{}{}, fmt.Errorf("add columns to %s: %w", id, err)
		}
		if _, err := l.commit(ctx, tx, tbl); err != nil {
			return struct{}{}, fmt.Errorf("add columns to %s: %w", id, err)
		}
		return struct{}{}, nil
	})
	return err
}

// missingColumns returns the columns of bs that schema lacks, in bs's order.
func missingColumns(schema *iceberg.Schema, bs *billing.Schema) []billing.Column {
	var missing []billing.Column
	for _, c := range bs.Columns {
		if _, ok := schema.FindFieldByName(c.Name); !ok {
			missing = append(missing, c)
		}
	}
	return missing
}

func openCatalogDB(uri string) (*sql.DB, sqlcat.SupportedDialect, error) {
	switch {
	case uri == "":
		return nil, "", fmt.Errorf("%w: catalog is empty", ErrConfig)
	case strings.HasPrefix(uri, "postgres://"), strings.HasPrefix(uri, "postgresql://"):
		db, err := sql.Open("pgx", uri)
		return db, sqlcat.Postgres, err
	}
	path := strings.TrimPrefix(strings.TrimPrefix(uri, "sqlite://"), "file:")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, "", fmt.Errorf("%w: catalog folder: %v", ErrConfig, err)
	}
	// WAL and a busy timeout let the worker and readers share the file.
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
	db, err := sql.Open(sqliteshim.ShimName, dsn)
	if err != nil {
		return nil, "", err
	}
	// SQLite takes one writer at a time; one connection avoids "database is locked".
	db.SetMaxOpenConns(1)
	return db, sqlcat.SQLite, nil
}

// OpenCatalogReadOnly opens the catalog database for a reader that must
// never write (the gateway): a PostgreSQL session whose transactions are
// read-only, or an existing SQLite file on a query-only connection. The
// database refuses writes itself, whatever the caller runs.
func OpenCatalogReadOnly(uri string) (db *sql.DB, postgres bool, err error) {
	switch {
	case uri == "":
		return nil, false, fmt.Errorf("%w: catalog is empty", ErrConfig)
	case strings.HasPrefix(uri, "postgres://"), strings.HasPrefix(uri, "postgresql://"):
		u, err := url.Parse(uri)
		if err != nil {
			return nil, false, fmt.Errorf("%w: catalog URI does not parse", ErrConfig)
		}
		q := u.Query()
		q.Set("default_transaction_read_only", "on") // sent as a run-time parameter
		u.RawQuery = q.Encode()
		db, err := sql.Open("pgx", u.String())
		return db, true, err
	}
	path := strings.TrimPrefix(strings.TrimPrefix(uri, "sqlite://"), "file:")
	if _, err := os.Stat(path); err != nil {
		return nil, false, fmt.Errorf("%w: catalog %s: %v (a worker creates it on its first start)", ErrConfig, path, err)
	}
	db, err = sql.Open(sqliteshim.ShimName, "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	return db, false, err
}

// normalizeWarehouse turns a bare path into file:// and creates local folders.
func normalizeWarehouse(w string) (string, error) {
	if strings.HasPrefix(w, "/") {
		w = "file://" + w
	}
	u, err := url.Parse(w)
	if err != nil {
		return "", fmt.Errorf("%w: warehouse %q: %v", ErrConfig, w, err)
	}
	switch u.Scheme {
	case "file":
		if err := os.MkdirAll(u.Path, 0o755); err != nil {
			return "", fmt.Errorf("%w: warehouse %q: %v", ErrConfig, w, err)
		}
	case "s3", "gs":
	default:
		return "", fmt.Errorf("%w: warehouse %q: want file://, s3:// or gs://", ErrConfig, w)
	}
	return strings.TrimRight(w, "/"), nil
}

func ioProperties(cfg Config) iceberg.Properties {
	p := iceberg.Properties{}
	if cfg.S3.Endpoint != "" {
		p[icebergio.S3EndpointURL] = cfg.S3.Endpoint
	}
	if cfg.S3.Region != "" {
		p[icebergio.S3Region] = cfg.S3.Region
	} else if strings.HasPrefix(cfg.Warehouse, "s3://") {
		p[icebergio.S3Region] = "us-east-1"
	}
	if cfg.S3.AccessKeyID != "" {
		p[icebergio.S3AccessKeyID] = cfg.S3.AccessKeyID
		p[icebergio.S3SecretAccessKey] = cfg.S3.SecretAccessKey
		if cfg.S3.SessionToken != "" {
			p[icebergio.S3SessionToken] = cfg.S3.SessionToken
		}
	}
	if cfg.GCSEndpoint != "" {
		// Emulators take no credentials and route reads only through the JSON API.
		p[icebergio.GCSEndpoint] = cfg.GCSEndpoint
		p[icebergio.GCSNoAuth] = "true"
		p[icebergio.GCSUseJSONAPI] = "true"
	}
	return p
}
