package tests

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/lakehouse"
)

// Workers starting at once on a fresh PostgreSQL catalog (a Deployment's
// first rollout) all open it: creating the catalog's and costlake's
// tables is serialised, so none fails on PostgreSQL's race between two
// CREATE TABLE IF NOT EXISTS of the same table.
func TestWorkersOpenAFreshPostgresCatalogAtOnce(t *testing.T) {
	pg := postgresCluster(t)
	for round := range 3 {
		catalog := pg.NewDatabase(t)
		warehouse := "file://" + filepath.Join(t.TempDir(), "warehouse")
		var g errgroup.Group
		for range 4 {
			g.Go(func() error {
				lake, err := lakehouse.Open(context.Background(), lakehouse.Config{Catalog: catalog, Warehouse: warehouse})
				if err != nil {
					return err
				}
				defer lake.Close()
				db, postgres := lake.DB()
				_, err = reseller.Open(context.Background(), db, postgres)
				return err
			})
		}
		require.NoError(t, g.Wait(), "round %d", round)
	}
}
