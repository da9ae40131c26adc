package lakehouse

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/iceberg-go/table"

	"github.com/costlake/costlake/internal/billing"
)

// addMissingColumns brings an existing table up to its billing schema:
// columns costlake added since the table was created are appended as
// optional columns (Iceberg schema evolution), so files written before
// read them as null and nothing is rewritten. Columns are only added,
// never changed or dropped.
func (l *Lake) addMissingColumns(ctx context.Context, bs *billing.Schema) error {
	var err error
	for range 3 { // a concurrent Open may evolve it first: look again
		if err = l.addMissingColumnsOnce(ctx, bs); !errors.Is(err, table.ErrCommitFailed) {
			return err
		}
	}
	return err
}

func (l *Lake) addMissingColumnsOnce(ctx context.Context, bs *billing.Schema) error {
	id := TableID(bs)
	tbl, err := l.cat.LoadTable(ctx, id)
	if err != nil {
		return fmt.Errorf("load table %s: %w", id, err)
	}
	var missing []billing.Column
	for _, c := range bs.Columns {
		if _, ok := tbl.Schema().FindFieldByName(c.Name); !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	tx := tbl.NewTransaction()
	us := tx.UpdateSchema(true, false)
	for _, c := range missing {
		next := 0
		us.AddColumn([]string{c.Name}, icebergType(c.Kind, &next), c.Doc, false, nil)
	}
	if err := us.Commit(); err != nil {
		return fmt.Errorf("add columns to %s: %w", id, err)
	}
	if _, err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("add columns to %s: %w", id, err)
	}
	return nil
}
