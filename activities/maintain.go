package activities

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/iceberg-go/table"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/contract/maintain"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/lakehouse"
)

// Maintain holds the MaintainTables workflow's activities.
type Maintain struct {
	Lake     *lakehouse.Lake
	Reseller *reseller.Store
}

// Failure types of maintenance: a maintenance input names no billing
// table, or a negative duration.
const (
	ErrTypeUnknownTable       = "UnknownTable"
	ErrTypeInvalidMaintenance = "InvalidMaintenanceInput"
)

// maintainedTables are the billing tables maintenance keeps flat; the
// line_items snapshots closed cycles pin are kept in line_items.
func maintainedTables() []string {
	var out []string
	for _, bs := range billing.Schemas {
		out = append(out, bs.Table)
	}
	return append(out, lakehouse.ResaleTable, lakehouse.CostExplorerTable, lakehouse.AccountsTable, lakehouse.InvoicesTable)
}

// MaintenanceTables lists the tables a maintenance run maintains, those
// that exist.
func (a *Maintain) MaintenanceTables(ctx context.Context, _ struct{}) ([]string, error) {
	out := []string{}
	for _, t := range maintainedTables() {
		ok, err := a.Lake.Catalog().CheckTableExists(ctx, lakehouse.BillingTableID(t))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, t)
		}
	}
	// Customers' own tables (copies of their closed cycles' rows), named
	// namespace.table.
	ids, err := a.Lake.CustomerTables(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		out = append(out, strings.Join(id, "."))
	}
	return out, nil
}

// maintainedTable resolves a name MaintenanceTables gave: a billing table,
// or a customer's own table as namespace.table.
func maintainedTable(name string) (table.Identifier, bool) {
	if ns, t, ok := strings.Cut(name, "."); ok {
		known := t == reseller.CustomerResaleTable || t == reseller.CustomerInvoicesTable
		return table.Identifier{ns, t}, known && lakehouse.IsCustomerNamespace(ns) && !strings.Contains(t, ".")
	}
	return lakehouse.BillingTableID(name), slices.Contains(maintainedTables(), name)
}

// MaintainTable maintains one table (lakehouse.MaintainTable); for
// line_items it keeps every snapshot a closed cycle pins.
func (a *Maintain) MaintainTable(ctx context.Context, in maintain.TableInput) (maintain.TableResult, error) {
	id, known := maintainedTable(in.Table)
	if !known {
		return maintain.TableResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("no billing table %q to maintain", in.Table), ErrTypeUnknownTable, nil)
	}
	if in.Retention < 0 || in.OrphanAge < 0 {
		return maintain.TableResult{}, temporal.NewNonRetryableApplicationError("maintenance retention and orphan age must not be negative", ErrTypeInvalidMaintenance, nil)
	}
	o := lakehouse.MaintainOptions{Retention: in.Retention, OrphanAge: in.OrphanAge}
	if in.Table == billing.LineItems.Table && a.Reseller != nil {
		o.Pinned = a.Reseller.PinnedSnapshots
	}
	if in.Table == lakehouse.ResaleTable || in.Table == lakehouse.InvoicesTable {
		// Customers' copies first: cycles closed before they existed get
		// theirs (a no-op for periods in line).
		activity.RecordHeartbeat(ctx, "copying customers' cycles of "+in.Table)
		if _, err := a.Lake.SyncCustomerTables(ctx, id); err != nil {
			return maintain.TableResult{}, err
		}
	}
	activity.RecordHeartbeat(ctx, "maintaining "+in.Table)
	r, err := a.Lake.MaintainTable(ctx, id, o)
	if err != nil {
		return maintain.TableResult{}, err
	}
	activity.GetLogger(ctx).Info("table maintained", "table", in.Table, "snapshots_before", r.SnapshotsBefore, "snapshots_after", r.SnapshotsAfter,
		"manifests_before", r.ManifestsBefore, "manifests_after", r.ManifestsAfter, "pinned", r.Kept, "orphans_removed", r.OrphansRemoved)
	return maintain.TableResult{Table: in.Table, SnapshotsBefore: r.SnapshotsBefore, SnapshotsAfter: r.SnapshotsAfter,
		ManifestsBefore: r.ManifestsBefore, ManifestsAfter: r.ManifestsAfter, Pinned: r.Kept,
		OrphansRemoved: r.OrphansRemoved, Repointed: r.Repointed}, nil
}
