// Package clock is costlake's business clock: the date that decides which
// billing periods are "this month" and "last month" and when a period is
// final.
// Production reads the system clock; a test stand pins it, so no test
// depends on the day it runs.
//
// Workflows read it through the contract.BusinessNow local activity: the value is
// recorded in history, so a replay sees the same date. Durations that only
// wait (poll intervals, reminders, give-up timeouts, a first delivery's
// grace) stay on Temporal's clock, which the workflow test environment
// sets and skips through.
package clock

import (
	"time"

	"github.com/costlake/costlake/internal/period"
)

// Clock returns the business date and time. The zero value reads the
// system clock.
type Clock func() time.Time

// Fixed is a clock stopped at t.
func Fixed(t time.Time) Clock { return func() time.Time { return t } }

// Now returns the clock's time in UTC.
func (c Clock) Now() time.Time {
	if c == nil {
		return time.Now().UTC()
	}
	return c().UTC()
}

// Period is the billing period ("YYYY-MM") monthsBack months before t's
// own month: Period(t, 0) is t's month, Period(t, 1) the one before. It
// counts from the first of the month, so March 31 minus one month is
// February, not March 3.
func Period(t time.Time, monthsBack int) string {
	return period.Of(t).Add(-monthsBack).String()
}
