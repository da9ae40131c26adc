package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/costlake/costlake/activities"
	"github.com/costlake/costlake/internal/config"
	"github.com/costlake/costlake/internal/contract/cycle"
	"github.com/costlake/costlake/internal/contract/monthend"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/worker"
)

// monthEndFlags are a worker's month-end settings: the schedule it
// creates when missing, the guards, and which webhook endpoints it may
// reach.
type monthEndFlags struct {
	hour           *int
	finalAfterDays *int
	maxCrawlAge    *time.Duration
	tolerance      *string
	allowPrivate   *bool
}

func addMonthEndFlags(fs *flag.FlagSet) *monthEndFlags {
	return &monthEndFlags{
		hour: fs.Int("month-end-hour", envInt("COSTLAKE_MONTH_END_HOUR", worker.DefaultMonthEndHour),
			"UTC hour of the daily MonthEnd schedule this worker creates when it is missing (-1: create none) [COSTLAKE_MONTH_END_HOUR]"),
		finalAfterDays: fs.Int("final-after-days", envInt("COSTLAKE_FINAL_AFTER_DAYS", cycle.DefaultFinalAfterDays),
			"without invoice IDs, a period is final this many days after its month (10: once the 10th has passed) [COSTLAKE_FINAL_AFTER_DAYS]"),
		maxCrawlAge: fs.Duration("max-crawl-age", envDuration("COSTLAKE_MAX_CRAWL_AGE", monthend.DefaultMaxCrawlAge),
			"month-end closes a cycle only if each payer's last successful crawl is newer than this [COSTLAKE_MAX_CRAWL_AGE]"),
		tolerance: fs.String("cost-explorer-tolerance", config.Env("COSTLAKE_COST_EXPLORER_TOLERANCE", monthend.DefaultTolerance),
			"the largest difference per linked account between line items and Cost Explorer month-end lets pass, a decimal [COSTLAKE_COST_EXPLORER_TOLERANCE]"),
		allowPrivate: fs.Bool("webhook-allow-private", envInt("COSTLAKE_WEBHOOK_ALLOW_PRIVATE", 0) == 1,
			"let webhook endpoints be http:// and private addresses (an endpoint inside the operator's network) [COSTLAKE_WEBHOOK_ALLOW_PRIVATE=1]"),
	}
}

// input is the schedule's month-end input.
func (f *monthEndFlags) input() (monthend.Input, error) {
	age := *f.maxCrawlAge
	tol, err := money.Parse(*f.tolerance)
	if err != nil {
		return monthend.Input{}, fmt.Errorf("--cost-explorer-tolerance %q: want a decimal: %w", *f.tolerance, err)
	}
	in := monthend.Input{Settings: monthend.Settings{FinalAfterDays: *f.finalAfterDays, MaxCrawlAge: age, Tolerance: &tol}}
	if fe := in.Settings.FieldErrors(); len(fe) > 0 {
		return in, fmt.Errorf("month-end settings: %s", monthend.Describe(fe))
	}
	return in, nil
}

// apply sets the worker's webhook sender.
func (f *monthEndFlags) apply(cfg *activities.Config) { cfg.Webhooks.AllowPrivate = *f.allowPrivate }

// ensure creates the schedule unless the hour is -1.
func (f *monthEndFlags) ensure(ctx context.Context, c client.Client) error {
	if *f.hour < 0 {
		return nil
	}
	in, err := f.input()
	if err != nil {
		return err
	}
	return worker.EnsureMonthEndSchedule(ctx, c, *f.hour, in)
}
