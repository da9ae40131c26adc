package tests

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/lakehouse"
)

// jdbcColumns is the catalog schema of Iceberg's JdbcCatalog (schema V1,
// org.apache.iceberg.jdbc.JdbcUtil), the one Trino's and Spark's JDBC
// catalogs read: table → column → whether it is part of the primary key.
var jdbcColumns = map[string]map[string]bool{
	"iceberg_tables": {
		"catalog_name": true, "table_namespace": true, "table_name": true,
		"metadata_location": false, "previous_metadata_location": false, "iceberg_type": false,
	},
	"iceberg_namespace_properties": {
		"catalog_name": true, "namespace": true, "property_key": true, "property_value": false,
	},
}

// A lake on PostgreSQL keeps its catalog in exactly the tables and keys
// of Iceberg's JDBC catalog, one row per billing table with a metadata
// location that exists, so Trino or Spark pointed at the same database
// (catalog name "costlake") find billing.*.
func TestPostgresCatalogIsIcebergJDBC(t *testing.T) {
	pg := postgresCluster(t)
	uri := pg.NewDatabase(t)
	dir := t.TempDir()
	ctx := context.Background()
	lake, err := lakehouse.Open(ctx, lakehouse.Config{Catalog: uri, Warehouse: "file://" + dir + "/warehouse"})
	require.NoError(t, err)
	defer lake.Close()
	_, err = lake.LineItems(ctx)
	require.NoError(t, err)
	db, postgres := lake.DB()
	require.True(t, postgres)

	for table, want := range jdbcColumns {
		got := map[string]bool{}
		rows, err := db.QueryContext(ctx, `SELECT c.column_name, EXISTS (
				SELECT 1 FROM information_schema.table_constraints tc
				JOIN information_schema.key_column_usage k ON k.constraint_name = tc.constraint_name AND k.table_name = tc.table_name
				WHERE tc.table_name = c.table_name AND tc.constraint_type = 'PRIMARY KEY' AND k.column_name = c.column_name)
			FROM information_schema.columns c WHERE c.table_schema = current_schema() AND c.table_name = $1`, table)
		require.NoError(t, err)
		for rows.Next() {
			var col string
			var pk bool
			require.NoError(t, rows.Scan(&col, &pk))
			got[col] = pk
		}
		require.NoError(t, rows.Err())
		rows.Close()
		require.Equal(t, want, got, "columns of %s (true: in the primary key)", table)
	}

	var ns, name, typ string
	var location sql.NullString
	require.NoError(t, db.QueryRowContext(ctx, `SELECT table_namespace, table_name, iceberg_type, metadata_location FROM iceberg_tables
		WHERE catalog_name = 'costlake' AND table_name = 'line_items'`).Scan(&ns, &name, &typ, &location))
	require.Equal(t, "billing", ns)
	require.Equal(t, "TABLE", typ)
	require.True(t, location.Valid)
	_, err = os.Stat(strings.TrimPrefix(location.String, "file://"))
	require.NoError(t, err, "the metadata location %s exists", location.String)
}
