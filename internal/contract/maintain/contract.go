// Package maintain is the contract between the MaintainTables workflow and
// its activities: names, inputs and results. Workflows and activities
// both import it; neither imports the other.
package maintain

import "time"

// Workflow is the registered name of the table maintenance workflow, and
// ScheduleID the schedule every worker makes sure exists.
const (
	Workflow   = "MaintainTables"
	ScheduleID = "costlake-maintain-tables"
	WorkflowID = "costlake-maintain-tables"
)

// Activity names. They equal the method names on activities.Maintain,
// which a test checks.
const (
	TablesActivity        = "MaintenanceTables"
	MaintainTableActivity = "MaintainTable"
)

// Input tunes a maintenance run; zero fields take the defaults.
type Input struct {
	// Retention: snapshots older than this expire, unless a closed cycle
	// pins them (default 30 days: time travel reaches a month back).
	Retention time.Duration `json:"retention,omitempty"`
	// OrphanAge: files no snapshot references and older than this are
	// removed (default 72 hours, Iceberg's own: longer than any ingestion
	// takes between writing its files and committing them).
	OrphanAge time.Duration `json:"orphan_age,omitempty"`
}

// TableInput names one table and the run's settings.
type TableInput struct {
	Table string `json:"table"`
	Input
}

// TableResult says what maintaining one table did.
type TableResult struct {
	Table           string `json:"table"`
	SnapshotsBefore int    `json:"snapshots_before"`
	SnapshotsAfter  int    `json:"snapshots_after"`
	ManifestsBefore int    `json:"manifests_before"`
	ManifestsAfter  int    `json:"manifests_after"`
	// Pinned snapshots stayed because closed cycles read them.
	Pinned         int `json:"pinned"`
	OrphansRemoved int `json:"orphans_removed"`
	// Repointed records named an expired snapshot and now name the
	// current one, which holds the same rows of their key.
	Repointed int `json:"repointed"`
}

// Result is every table's result, in the order maintained.
type Result struct {
	Tables []TableResult `json:"tables"`
}
