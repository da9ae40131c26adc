// Package activities holds every side effect costlake's workflows need,
// one struct per workflow with only what its activities use: Ingest,
// Onboard, Crawl, Cycle, Customers, Maintain, MonthEnd and BusinessClock. New wires them from
// one Config; worker.Register registers each through its contract's
// typed handle.
package activities

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"go.temporal.io/sdk/client"

	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/clock"
	"github.com/costlake/costlake/internal/cur"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/internal/telemetry"
	"github.com/costlake/costlake/internal/webhook"
	"github.com/costlake/costlake/lakehouse"
)

// Config is what a worker gives its activities.
type Config struct {
	Lake  *lakehouse.Lake
	Blobs blob.Opener
	// AWSBase is costlake's own AWS identity, which assumes customers'
	// roles; nil uses the SDK's default chain (environment, instance role).
	AWSBase aws.CredentialsProvider
	// TempDir holds files while they are read or written; empty means the
	// system's temporary folder.
	TempDir string
	// Limits bound each data file read; zero fields take cur.DefaultLimits.
	Limits cur.Limits
	// PartRows and OrphanAge tune ingestion (see Ingest).
	PartRows  int
	OrphanAge time.Duration
	// Onboarding configures the customer stack and reminders.
	Onboarding OnboardingConfig
	// Temporal manages payers' crawl schedules; worker.New sets it.
	Temporal client.Client
	// Reseller holds customers' accounts, pricebooks and closed cycles.
	Reseller *reseller.Store
	// Clock is the business date workflows judge periods by; nil reads
	// the system clock. Test stands pin it.
	Clock clock.Clock
	// CostExplorer tunes Cost Explorer crawls; the zero value is what
	// workers use.
	CostExplorer CostExplorerTuning
	// Metrics counts rows, bytes, commits, reconciliation failures and
	// exports; nil counts nothing.
	Metrics *telemetry.Metrics
	// Webhooks delivers month-end events; the zero value sends to public
	// https endpoints only.
	Webhooks webhook.Sender
	// LocalBuckets is the folder whose subfolders are the buckets of local
	// payers (access mode local); only `costlake dev` sets it, and a
	// production build (-tags nodev) refuses local payers whatever it is.
	LocalBuckets string
}

// Set is every workflow's activities, wired from one Config.
type Set struct {
	Ingest    *Ingest
	Onboard   *Onboard
	Crawl     *Crawl
	Cycle     *Cycle
	Customers *Customers
	Clock     *BusinessClock
	Maintain  *Maintain
	MonthEnd  *MonthEnd
}

// New gives each workflow's activities what they use of c.
func New(c Config) *Set {
	aws := AWS{Base: c.AWSBase, Blobs: c.Blobs, LocalBuckets: c.LocalBuckets}
	dest := Destinations{AWS: aws, Templates: c.Onboarding.Templates}
	if c.Lake != nil {
		dest.Warehouse = c.Lake.Warehouse()
	}
	return &Set{
		Ingest: &Ingest{Lake: c.Lake, AWS: aws, TempDir: c.TempDir, Limits: c.Limits, PartRows: c.PartRows,
			OrphanAge: c.OrphanAge, Reseller: c.Reseller, Metrics: c.Metrics},
		Onboard:   &Onboard{AWS: aws, Settings: c.Onboarding, Reseller: c.Reseller},
		Crawl:     &Crawl{Lake: c.Lake, AWS: aws, Temporal: c.Temporal, CostExplorer: c.CostExplorer},
		Cycle:     &Cycle{Lake: c.Lake, Reseller: c.Reseller, Destinations: dest, TempDir: c.TempDir, Metrics: c.Metrics},
		Customers: &Customers{Lake: c.Lake, Reseller: c.Reseller, Destinations: dest},
		Clock:     &BusinessClock{Clock: c.Clock},
		Maintain:  &Maintain{Lake: c.Lake, Reseller: c.Reseller},
		MonthEnd:  &MonthEnd{Lake: c.Lake, Reseller: c.Reseller, AWS: aws, CostExplorer: c.CostExplorer, Webhooks: c.Webhooks},
	}
}

// BusinessClock answers the business date workflows judge periods by.
type BusinessClock struct {
	Clock clock.Clock
}

// BusinessNow is the contract.BusinessNow local activity: the worker's
// business date, recorded in the calling workflow's history.
func (c *BusinessClock) BusinessNow(context.Context) (time.Time, error) {
	return c.Clock.Now(), nil
}
