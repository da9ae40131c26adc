package activities

import (
	"context"
	"fmt"

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
	return out, nil
}

// MaintainTable maintains one table (lakehouse.MaintainTable); for
// line_items it keeps every snapshot a closed cycle pins.
func (a *Maintain) MaintainTable(ctx context.Context, in maintain.TableInput) (maintain.TableResult, error) {
	known := false
	for _, t := range maintainedTables() {
		known = known || t == in.Table
	}
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
	activity.RecordHeartbeat(ctx, "maintaining "+in.Table)
	r, err := a.Lake.MaintainTable(ctx, lakehouse.BillingTableID(in.Table), o)
	if err != nil {
		return maintain.TableResult{}, err
	}
	activity.GetLogger(ctx).Info("table maintained", "table", in.Table, "snapshots_before", r.SnapshotsBefore, "snapshots_after", r.SnapshotsAfter,
		"manifests_before", r.ManifestsBefore, "manifests_after", r.ManifestsAfter, "pinned", r.Kept, "orphans_removed", r.OrphansRemoved)
	return maintain.TableResult{Table: in.Table, SnapshotsBefore: r.SnapshotsBefore, SnapshotsAfter: r.SnapshotsAfter,
		ManifestsBefore: r.ManifestsBefore, ManifestsAfter: r.ManifestsAfter, Pinned: r.Kept,
		OrphansRemoved: r.OrphansRemoved, Repointed: r.Repointed}, nil
}
