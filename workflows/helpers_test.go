package workflows

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"

	"github.com/costlake/costlake/internal/contract"
	"github.com/costlake/costlake/internal/period"
)

func activityName(name string) activity.RegisterOptions { return activity.RegisterOptions{Name: name} }

// registerClock gives env a business clock: at, or env's own clock when
// at is zero.
func registerClock(env *testsuite.TestWorkflowEnvironment, at time.Time) {
	env.RegisterActivityWithOptions(func(context.Context) (time.Time, error) {
		if at.IsZero() {
			return env.Now(), nil
		}
		return at, nil
	}, activityName(contract.BusinessNow.Name()))
}

// parsePeriods parses test periods; a typo panics the test.
func parsePeriods(names ...string) []period.Period {
	var out []period.Period
	for _, n := range names {
		out = append(out, period.MustParse(n))
	}
	return out
}
