package lakehouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/reseller"
)

// A customer's own tables (reseller.CustomerNamespace: customer_<id>.
// resale_line_items and .invoices) hold copies of the data files of its
// closed cycles in billing.resale_line_items and billing.invoices, under
// their own location. Copies, not shared files: each table owns every
// file it references, so expiry and orphan removal of either table can
// never delete a file the other still reads, and the customer's metadata
// (manifest lists, manifests, data files) lies under one prefix of its
// own, which a storage policy can grant alone. They are brought in line
// with the billing table after each of its commits of the customer's
// period (mirrorCustomer); a retry of that commit, unchanged, mirrors
// again, so a crash between the two commits heals on the retry.

// Summary properties of a mirror commit. Not PropCustomer/PropPeriod:
// costlake_commits keys records by table name alone, and these tables
// share their names with the billing tables they copy.
const (
	PropMirrorOf       = "costlake.mirror-of"
	PropMirrorCustomer = "costlake.mirror-customer"
	PropMirrorPeriod   = "costlake.mirror-period"
)

// CustomerTableID is the identifier of a customer's own table
// (reseller.CustomerResaleTable or reseller.CustomerInvoicesTable).
func CustomerTableID(customer, name string) table.Identifier {
	return table.Identifier{reseller.CustomerNamespace(customer), name}
}

// IsCustomerNamespace reports whether ns is a customer's namespace.
func IsCustomerNamespace(ns string) bool {
	return strings.HasPrefix(ns, reseller.CustomerNamespacePrefix)
}

// CustomerTables lists the customers' own tables that exist, as
// namespace.table names (for maintenance).
func (l *Lake) CustomerTables(ctx context.Context) ([]table.Identifier, error) {
	nss, err := l.cat.ListNamespaces(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	var out []table.Identifier
	for _, ns := range nss {
		if len(ns) != 1 || !IsCustomerNamespace(ns[0]) {
			continue
		}
		for id, err := range l.cat.ListTables(ctx, ns) {
			if err != nil {
				return nil, fmt.Errorf("list tables of %s: %w", ns[0], err)
			}
			out = append(out, id)
		}
	}
	return out, nil
}

// SyncCustomerTables brings the customers' copies of src
// (billing.resale_line_items or billing.invoices) in line for every
// customer period src has a commit record of: cycles closed before these
// tables existed get theirs, a lost copy comes back, and periods already
// in line cost two partition plans and no commit. It returns how many
// periods it checked.
func (l *Lake) SyncCustomerTables(ctx context.Context, src table.Identifier) (int, error) {
	keys, err := queryColumn[string](ctx, l, `SELECT owner || '/' || period FROM costlake_commits WHERE table_name = ? ORDER BY 1`, tableName(src))
	if err != nil {
		return 0, err
	}
	for i, k := range keys {
		customer, period, _ := strings.Cut(k, "/")
		if err := l.mirrorCustomer(ctx, src, customer, period); err != nil {
			return i, err
		}
	}
	return len(keys), nil
}

// mirrorCustomer makes customer's period in the customer's own copy of
// src hold exactly src's data files of that partition: files missing are
// copied byte for byte (same name, under the copy's location), files src
// no longer has are dropped, in one snapshot; when they already agree
// nothing is committed.
func (l *Lake) mirrorCustomer(ctx context.Context, srcID table.Identifier, customer, period string) error {
	_, err := retryLostRace(ctx, func() (struct{}, error) {
		return struct{}{}, l.mirrorOnce(ctx, srcID, customer, period)
	})
	if err != nil {
		return fmt.Errorf("copy %s %s of %s into %s: %w", customer, period, tableName(srcID), reseller.CustomerNamespace(customer), err)
	}
	return nil
}

func (l *Lake) mirrorOnce(ctx context.Context, srcID table.Identifier, customer, period string) error {
	src, err := l.cat.LoadTable(ctx, srcID)
	if err != nil {
		return err
	}
	filter := iceberg.NewAnd(iceberg.EqualTo(iceberg.Reference(ColResaleCustomer), customer),
		iceberg.EqualTo(iceberg.Reference(billing.ColBillingPeriod), period))
	want, err := partitionFiles(ctx, src, filter)
	if err != nil {
		return err
	}
	if len(want) == 0 {
		// Nothing to copy: no table is made for a customer with no rows.
		if ok, err := l.cat.CheckTableExists(ctx, CustomerTableID(customer, tableName(srcID))); err != nil || !ok {
			return err
		}
	}
	dst, err := l.customerTable(ctx, src, customer, tableName(srcID))
	if err != nil {
		return err
	}
	have, err := partitionFiles(ctx, dst, filter)
	if err != nil {
		return err
	}
	dir := fmt.Sprintf("%s/data/%s=%s/%s=%s", strings.TrimRight(dst.Location(), "/"),
		ColResaleCustomer, url.PathEscape(customer), billing.ColBillingPeriod, url.PathEscape(period))
	var add, drop []string
	copies := map[string]string{} // copy path -> source path
	for p, size := range want {
		cp := dir + "/" + path.Base(p)
		copies[cp] = p
		switch got, ok := have[cp]; {
		case !ok:
			add = append(add, cp)
		case got != size:
			// Names are unique per pricing (the cycle's pins), so a file of
			// the same name and another size is not ours to overwrite.
			return fmt.Errorf("%s holds %s of %d bytes, the source %d", tableName(dst.Identifier()), cp, got, size)
		}
	}
	for p := range have {
		if _, ok := copies[p]; !ok {
			drop = append(drop, p)
		}
	}
	if len(add) == 0 && len(drop) == 0 {
		return nil
	}
	slices.Sort(add)
	slices.Sort(drop)
	if err := copyFiles(ctx, src, dst, add, copies); err != nil {
		return err
	}
	props := iceberg.Properties{PropMirrorOf: strings.Join(srcID, "."), PropMirrorCustomer: customer, PropMirrorPeriod: period}
	tx := dst.NewTransaction()
	if len(drop) == 0 {
		err = tx.AddFiles(ctx, add, props, true) // new names in this partition: no duplicate scan
	} else {
		err = tx.ReplaceDataFiles(ctx, drop, add, props)
	}
	if err != nil {
		return fmt.Errorf("stage: %w", err)
	}
	// Committed directly, not through commit: no costlake_commits record
	// (see PropMirrorOf).
	if _, err := tx.Commit(ctx); err != nil {
		if errors.Is(err, table.ErrCommitFailed) || l.moved(ctx, dst) {
			return fmt.Errorf("%w: %w", errLostRace, err)
		}
		return err
	}
	return nil
}

// partitionFiles lists the data files of tbl's current snapshot that the
// filter's partition holds, with their sizes.
func partitionFiles(ctx context.Context, tbl *table.Table, filter iceberg.BooleanExpression) (map[string]int64, error) {
	out := map[string]int64{}
	if tbl.CurrentSnapshot() == nil {
		return out, nil
	}
	tasks, err := tbl.Scan(table.WithRowFilter(filter)).PlanFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan files of %s: %w", tableName(tbl.Identifier()), err)
	}
	for _, t := range tasks {
		if len(t.DeleteFiles) > 0 {
			// costlake writes copy-on-write only; a delete file would
			// change the rows a copy of the data files holds.
			return nil, fmt.Errorf("%s has delete files; costlake does not copy them", tableName(tbl.Identifier()))
		}
		out[t.File.FilePath()] = t.File.FileSizeBytes()
	}
	return out, nil
}

// copyFiles copies each source file (copies[dst path]) to its path in
// dst's location, streaming.
func copyFiles(ctx context.Context, src, dst *table.Table, paths []string, copies map[string]string) error {
	sfs, err := src.FS(ctx)
	if err != nil {
		return err
	}
	dfs, err := dst.FS(ctx)
	if err != nil {
		return err
	}
	wfs, ok := dfs.(icebergio.WriteFileIO)
	if !ok {
		return fmt.Errorf("warehouse of %s is read-only", tableName(dst.Identifier()))
	}
	for _, p := range paths {
		if err := copyFile(sfs, wfs, copies[p], p); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(sfs icebergio.IO, wfs icebergio.WriteFileIO, from, to string) error {
	in, err := sfs.Open(from)
	if err != nil {
		return fmt.Errorf("open %s: %w", from, err)
	}
	defer in.Close()
	out, err := wfs.Create(to)
	if err != nil {
		return fmt.Errorf("create %s: %w", to, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", from, to, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("close %s: %w", to, err)
	}
	return nil
}

// customerTable loads the customer's copy of src, creating its namespace
// and the table (src's schema, partitioned like src) on first use.
func (l *Lake) customerTable(ctx context.Context, src *table.Table, customer, name string) (*table.Table, error) {
	id := CustomerTableID(customer, name)
	tbl, err := l.cat.LoadTable(ctx, id)
	if err == nil || !errors.Is(err, catalog.ErrNoSuchTable) {
		return tbl, err
	}
	ns := table.Identifier{id[0]}
	err = l.cat.CreateNamespace(ctx, ns, iceberg.Properties{"comment": "customer " + customer + "'s closed billing cycles: its resale line items and invoices only"})
	if err != nil && !errors.Is(err, catalog.ErrNamespaceAlreadyExists) {
		return nil, fmt.Errorf("create namespace %s: %w", ns[0], err)
	}
	schema := src.Schema()
	spec, err := iceberg.NewPartitionSpecOpts(
		iceberg.AddPartitionFieldByName(ColResaleCustomer, ColResaleCustomer, iceberg.IdentityTransform{}, schema, nil),
		iceberg.AddPartitionFieldByName(billing.ColBillingPeriod, billing.ColBillingPeriod, iceberg.IdentityTransform{}, schema, nil),
	)
	if err != nil {
		return nil, fmt.Errorf("partition spec of %s: %w", tableName(id), err)
	}
	_, err = l.cat.CreateTable(ctx, id, schema, catalog.WithPartitionSpec(&spec), catalog.WithProperties(iceberg.Properties{
		"format-version":              "2",
		table.ManifestMergeEnabledKey: "true",
		"comment":                     "customer " + customer + "'s rows of billing." + name + ", closed cycles only",
	}))
	if err != nil && !errors.Is(err, catalog.ErrTableAlreadyExists) {
		return nil, fmt.Errorf("create table %s.%s: %w", id[0], id[1], err)
	}
	return l.cat.LoadTable(ctx, id)
}

// OpenReadOnlyCatalog opens the Iceberg catalog for a reader that never
// writes (the gateway's Iceberg REST catalog): the catalog database over
// OpenCatalogReadOnly's connection, creating none of the catalog's
// tables, with cfg's settings to read metadata files from the
// warehouse. Close the catalog's database with the returned func.
func OpenReadOnlyCatalog(cfg Config) (catalog.Catalog, func() error, error) {
	db, postgres, err := OpenCatalogReadOnly(cfg.Catalog)
	if err != nil {
		return nil, nil, err
	}
	dialect := sqlcat.SQLite
	if postgres {
		dialect = sqlcat.Postgres
	}
	props := iceberg.Properties{"init_catalog_tables": "false"}
	for k, v := range ioProperties(cfg) {
		props[k] = v
	}
	if cfg.Warehouse != "" {
		props["warehouse"] = cfg.Warehouse
	}
	cat, err := sqlcat.NewCatalog(catalogName, db, dialect, props)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("open catalog read-only: %w", err)
	}
	return cat, db.Close, nil
}
